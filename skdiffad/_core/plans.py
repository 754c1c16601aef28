"""Scoring plans: everything random or discretised about scoring, fixed at fit time.

A plan holds the grid of diffusion steps a paradigm reads, its quadrature
weights, the noise every sample is diffused with and, for imputation, the
masks. It is drawn once from a seeded generator, so every sample is noised with
the same noise vectors: a sample's score never depends on the other samples of
its batch, and repeated calls agree exactly.

Each paradigm object draws its own plan
(:meth:`~skdiffad._core.paradigms.Paradigm.plan`) from the pieces here: the
step grids, the ELBO's strata, the antithetic noise and the grating masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .noise import noise_like

__all__ = ["RECONSTRUCTION_RANGE", "SCORE_RANGE", "ScoringPlan", "antithetic_noise",
           "elbo_strata", "grating_masks", "step_grid"]

#: Fractions of ``T`` spanned by the starting steps ``t0`` of reconstruction, by
#: default: where the schedule has blurred fine detail but kept the data's
#: shape (AnoDDPM's ``t0 = 250/1000`` sits at the top). A detector passes its
#: own range when its data wants another (see ``DiffusionTSDetector``).
RECONSTRUCTION_RANGE = (0.02, 0.25)
#: Fractions of ``T`` of the score-norm grid: the score is most informative at
#: low-to-medium noise.
SCORE_RANGE = (0.01, 0.5)


@dataclass
class ScoringPlan:
    """The fixed grid, weights, noise and masks of one scoring paradigm.

    Attributes
    ----------
    paradigm : str
        The name of the paradigm whose grid it is: ``"reconstruction"`` also
        for the paradigms that score over reconstructions (``"feature"``,
        ``"discriminative"``).
    timesteps : torch.LongTensor of shape (K,)
        The grid of diffusion steps: reconstruction's ``t0``, the ELBO's strata
        (step 1 first, for the decoder term), the score norm's steps, the time
        bins' centres, or imputation's start ``(T,)``.
    weights : torch.Tensor of shape (K,), float64
        Quadrature weights of the grid (the expected-time weights for
        ``"time"``).
    noise : torch.Tensor of shape (K, R, *event_shape) or None
        ``R`` noise draws per grid point, shared by every sample: an
        antithetic pair (reconstruction, density), or one draw per mask
        (imputation, ``K = 1``); ``None`` for the score norm and time.
    hidden : torch.Tensor of shape (M, *mask_shape), bool, or None
        Imputation masks (``True`` = hidden), in complementary pairs,
        broadcastable to a sample.
    n_inference_steps : int
        DDIM steps of each denoising run.
    guidance : float
        Reconstruction: DDAD's conditioning weight of every DDIM step (see
        :func:`~skdiffad._core.paradigms.reconstruct_conditioned`); 0 is the
        plain reconstruction.
    """

    paradigm: str
    timesteps: torch.Tensor
    weights: torch.Tensor
    noise: torch.Tensor | None = None
    hidden: torch.Tensor | None = None
    n_inference_steps: int = 5
    guidance: float = 0.0

    def to(self, device) -> "ScoringPlan":
        """A copy whose tensors live on ``device``."""
        def move(x):
            return None if x is None else x.to(device)

        return ScoringPlan(self.paradigm, move(self.timesteps), move(self.weights),
                           move(self.noise), move(self.hidden), self.n_inference_steps,
                           self.guidance)


def step_grid(lo, hi, k, n_timesteps):
    """Up to ``k`` distinct steps equally spaced between fractions ``lo`` and ``hi``
    of ``n_timesteps`` (rounded, within ``1..n_timesteps``)."""
    ts = torch.linspace(lo * n_timesteps, hi * n_timesteps, k).round().long()
    return torch.unique(ts.clamp(1, n_timesteps))


def elbo_strata(schedule, k):
    """Strata of steps ``2..T`` equally spaced in log-SNR, one representative each.

    The diffusion part of the negative ELBO is
    ``sum_{t=2}^T 1/2 (SNR(t-1) - SNR(t)) |x - x0_hat(t)|^2
    = sum_{t=2}^T w_t |eps - eps_hat(t)|^2`` with ``w_t = 1/2 (SNR(t-1)/SNR(t) - 1)``.
    The noise-prediction error changes slowly with log-SNR (it is O(1) across the
    whole range), so each stratum's summed ``w_t`` times the error at its
    representative step is an accurate quadrature; the same telescoped weights on
    the x0-error would be biased by the SNR ratio across a stratum.
    """
    T = schedule.n_timesteps
    steps = torch.arange(1, T + 1)
    snr = schedule.snr(steps)
    log_snr = torch.log(snr)  # decreasing
    w = torch.zeros(T + 1, dtype=torch.float64)
    w[2:] = 0.5 * (snr[:-1] / snr[1:] - 1.0)
    targets = torch.linspace(float(log_snr[1]), float(log_snr[-1]), k + 1)
    # first step of each stratum: the first t >= 2 whose log-SNR falls below a target
    starts = [2]
    for target in targets[1:-1]:
        start = int(torch.nonzero(log_snr <= target)[0]) + 1
        if start > starts[-1]:
            starts.append(start)
    bounds = starts + [T + 1]
    reps, weights = [], []
    for first, stop in zip(bounds[:-1], bounds[1:]):
        last = stop - 1
        mid_target = 0.5 * (log_snr[first - 1] + log_snr[last - 1])
        rep = first + int(torch.argmin(torch.abs(log_snr[first - 1 : last] - mid_target)))
        reps.append(rep)
        weights.append(float(w[first:stop].sum()))
    return torch.tensor(reps), torch.tensor(weights, dtype=torch.float64)


def antithetic_noise(k, event_shape, generator, kind="gaussian"):
    """Two noise draws per grid point, ``eps`` and ``-eps``, with ``|eps|^2 = n``
    for ``n`` entries per sample; shape ``(k, 2, *event_shape)``.

    The pair cancels every term of the error that is odd in the noise (the cross
    term between the sample and the noise dominates the per-sample variance of
    the ELBO), and fixing the norm removes the chi-square spread of ``|eps|^2``;
    both keep the expectation of any quadratic form unchanged (``E[eps eps^T] = I``).
    With ``kind="simplex"`` the draws are simplex noise fields (AnoDDPM), which
    need an image ``event_shape = (C, H, W)``; simplex noise is symmetric, so
    ``-eps`` is as likely as ``eps`` and the pair stays antithetic.
    """
    event_shape = tuple(event_shape)
    if kind == "simplex" and len(event_shape) != 3:
        raise ValueError(f"simplex noise needs images: event_shape must be (C, H, W), "
                         f"got {event_shape}")
    if kind == "gaussian":
        eps = torch.randn((k,) + event_shape, generator=generator)
    else:
        eps = noise_like(kind, (k,) + event_shape, generator)
    flat = eps.reshape(k, -1)
    n = flat.shape[1]
    flat = flat * (n**0.5) / flat.norm(dim=1, keepdim=True).clamp(min=1e-12)
    eps = flat.reshape(eps.shape)
    return torch.stack([eps, -eps], dim=1)


def grating_masks(length: int, n_stripes: int) -> torch.Tensor:
    """Two complementary grating masks over ``length`` positions, shape ``(2, length)``.

    The axis is cut into ``n_stripes`` stripes of (nearly) equal width; mask 0
    hides the odd stripes and mask 1 the even ones (``True`` = hidden), so each
    position is hidden by exactly one of the two.
    """
    stripe = (torch.arange(length) * n_stripes) // length
    odd = stripe % 2 == 1
    return torch.stack([odd, ~odd])
