"""Diffusion over windows of a series: the two time-series paradigms.

A series is held as one ``(channels, n)`` tensor with an observation mask of the
same shape; windows are gathered from it on the fly (never materialised as an
``(n_windows, channels, length)`` copy), so training and scoring need memory in
proportion to the series plus one batch, whatever the series' length.

* **reconstruction** (DDTAD, D3R, TimeADDM): diffuse a whole window to ``t0`` with
  fixed noise and denoise it back with DDIM; the squared error of each point,
  averaged over a grid of ``t0`` and an antithetic noise pair, is its score.
* **imputation** (ImDiffusion, DiffAD): hide part of each window, then generate
  the hidden points with DDIM from pure noise, conditioned on the visible ones;
  a point's score is its squared imputation error, over masks that hide every
  point exactly once (complementary grating masks, and optionally complementary
  random masks). An anomaly that is hidden cannot leak into its own imputation,
  which is what makes the imputation error sharper than the reconstruction
  error, at the price of starting every denoising run from pure noise.

Both paradigms train the same network with the same loop
(:func:`~skdiffad._core.training.train_network`); only the loss and the scorer
differ. All scoring randomness (noise, random masks) is drawn once at fit time in
a :class:`SequencePlan`, so a window's score does not depend on its batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .nonparametric import ranking_sq_distances
from .training import _random_timesteps

__all__ = [
    "SEQUENCE_SCORINGS",
    "SequencePlan",
    "window_starts",
    "gather_windows",
    "sequence_loss",
    "make_sequence_plan",
    "score_series",
    "grating_masks",
    "WindowReference",
]

SEQUENCE_SCORINGS = ("reconstruction", "imputation")

# reconstruction starts where fine detail is gone but the window's shape is kept
_RECONSTRUCTION_RANGE = (0.05, 0.3)
# windows per scoring block: a fixed size, so every window goes through the same
# kernels (a window's score does not depend on the series' length or its batch)
_SCORE_BLOCK = 128


def window_starts(n: int, length: int, stride: int) -> np.ndarray:
    """Start of each window of ``length`` steps, every ``stride`` steps, the last
    one aligned to the series' end so that every step is covered."""
    if n < length:
        raise ValueError(f"a series of {n} steps is shorter than one window ({length})")
    starts = np.arange(0, n - length + 1, stride, dtype=np.int64)
    if starts[-1] != n - length:
        starts = np.append(starts, n - length)
    return starts


def gather_windows(series: torch.Tensor, starts: torch.Tensor, length: int) -> torch.Tensor:
    """Windows ``series[:, s:s+length]`` for each start, as ``(len(starts), C, length)``."""
    idx = starts.reshape(-1, 1) + torch.arange(length, device=starts.device)
    return series[:, idx].permute(1, 0, 2)


def grating_masks(length: int, n_stripes: int) -> torch.Tensor:
    """Two complementary grating masks over ``length`` steps, shape ``(2, length)``.

    The window is cut into ``n_stripes`` stripes of (nearly) equal width; mask 0
    hides the odd stripes and mask 1 the even ones (``True`` = hidden), so each
    step is hidden by exactly one of the two.
    """
    stripe = (torch.arange(length) * n_stripes) // length
    odd = stripe % 2 == 1
    return torch.stack([odd, ~odd])


def _training_masks(n, length, generator, device):
    """Hidden steps of each training window, ``(n, 1, length)`` bool.

    Half the windows get a grating mask (2 to 8 stripes, either phase), half an
    i.i.d. mask hiding each step with probability 1/2 -- the two kinds the
    scorer uses, so the network has seen the patterns it is asked to fill.
    """
    pos = torch.arange(length, device=device)
    n_stripes = torch.randint(2, 9, (n, 1), generator=generator, device=device)
    phase = torch.randint(0, 2, (n, 1), generator=generator, device=device)
    grating = ((pos[None] * n_stripes) // length + phase) % 2 == 1
    random = torch.rand((n, length), generator=generator, device=device) < 0.5
    use_grating = torch.rand((n, 1), generator=generator, device=device) < 0.5
    return torch.where(use_grating, grating, random)[:, None, :]


def _imputation_input(x, x0, visible, hidden):
    """Network input: the noisy hidden points, the clean visible ones, the visibility."""
    return torch.cat([x * hidden, x0 * visible, visible.to(x.dtype)], dim=1)


def _masked_sq_mean(diff, weight):
    """Per-window mean of ``diff**2`` over the entries where ``weight`` is 1."""
    dims = tuple(range(1, diff.ndim))
    return (diff.pow(2) * weight).sum(dim=dims) / weight.sum(dim=dims).clamp(min=1)


def sequence_loss(scoring, network, schedule, x0, observed, generator, *, mask_input):
    """Per-window epsilon-prediction loss of a paradigm.

    Parameters
    ----------
    scoring : {"reconstruction", "imputation"}
    network : torch.nn.Module
        A denoiser over ``(n, channels, length)`` windows.
    schedule : NoiseSchedule
    x0 : torch.Tensor of shape (n, C, L)
        Clean windows, missing entries already set to 0 (the training mean).
    observed : torch.Tensor of shape (n, C, L), bool
        Observation mask.
    generator : torch.Generator
    mask_input : bool
        Reconstruction only: append the observation mask to the input (the
        training series had gaps).

    Returns
    -------
    loss : torch.Tensor of shape (n,)
        Mean squared noise error over the observed entries (reconstruction) or
        the observed *hidden* entries (imputation).
    """
    t = _random_timesteps(x0.shape[0], schedule.n_timesteps, generator, x0.device)
    noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    x_t = schedule.add_noise(x0, noise, t)
    obs = observed.to(x0.dtype)
    if scoring == "reconstruction":
        inp = torch.cat([x_t, obs], dim=1) if mask_input else x_t
        eps = network(inp, t)
        return _masked_sq_mean(eps.float() - noise, obs)
    hidden = _training_masks(x0.shape[0], x0.shape[2], generator, x0.device).to(x0.dtype)
    visible = obs * (1 - hidden)
    eps = network(_imputation_input(x_t, x0, visible, hidden), t)
    return _masked_sq_mean(eps.float() - noise, obs * hidden)


@dataclass
class SequencePlan:
    """Everything random or discretised about scoring windows, fixed at fit time.

    Attributes
    ----------
    scoring : str
        ``"reconstruction"`` or ``"imputation"``.
    timesteps : torch.LongTensor of shape (K,)
        Reconstruction: the grid of ``t0``. Imputation: ``(T,)``, the start.
    noise : torch.Tensor of shape (K, R, C, L)
        Noise of each grid point: an antithetic pair (reconstruction), or one
        draw per mask (imputation).
    hidden : torch.Tensor of shape (M, L), bool, or None
        Imputation masks (``True`` = hidden); they come in complementary pairs.
    n_inference_steps : int
        DDIM steps of each denoising run.
    """

    scoring: str
    timesteps: torch.Tensor
    noise: torch.Tensor
    hidden: torch.Tensor | None
    n_inference_steps: int

    def to(self, device) -> "SequencePlan":
        return SequencePlan(self.scoring, self.timesteps.to(device), self.noise.to(device),
                            None if self.hidden is None else self.hidden.to(device),
                            self.n_inference_steps)


def make_sequence_plan(scoring, schedule, n_channels, length, generator, *,
                       n_scoring_timesteps=2, n_inference_steps=5, n_stripes=8,
                       random_masks=False):
    """Draw the fixed noise (and masks) of a paradigm.

    Parameters
    ----------
    scoring : {"reconstruction", "imputation"}
    schedule : NoiseSchedule
    n_channels, length : int
        Shape of a window.
    generator : torch.Generator
        CPU generator everything is drawn from.
    n_scoring_timesteps : int
        Reconstruction: points of the ``t0`` grid.
    n_inference_steps : int
        DDIM steps per denoising run.
    n_stripes : int
        Imputation: stripes of the complementary grating masks.
    random_masks : bool
        Imputation: add a complementary pair of i.i.d. random masks.

    Returns
    -------
    plan : SequencePlan
    """
    T = schedule.n_timesteps
    if scoring == "reconstruction":
        lo, hi = _RECONSTRUCTION_RANGE
        ts = torch.unique(torch.linspace(lo * T, hi * T, n_scoring_timesteps).round().long()
                          .clamp(1, T))
        eps = torch.randn((len(ts), n_channels, length), generator=generator)
        noise = torch.stack([eps, -eps], dim=1)
        return SequencePlan(scoring, ts, noise, None, n_inference_steps)
    if scoring != "imputation":
        raise ValueError(f"scoring must be one of {SEQUENCE_SCORINGS}, got {scoring!r}")
    hidden = grating_masks(length, min(n_stripes, length))
    if random_masks:
        coin = torch.rand(length, generator=generator) < 0.5
        hidden = torch.cat([hidden, torch.stack([coin, ~coin])])
    noise = torch.randn((1, len(hidden), n_channels, length), generator=generator)
    return SequencePlan(scoring, torch.tensor([T]), noise, hidden, n_inference_steps)


def _ddim_path(t_start, n_steps):
    steps = torch.linspace(t_start, 0, min(n_steps, t_start) + 1).round().long().tolist()
    return list(zip(steps[:-1], steps[1:]))


def _reconstruct(network, schedule, x0, obs_f, noise, t0, n_steps, mask_input):
    """Diffuse windows to ``t0`` with fixed ``noise`` and DDIM them back to step 0."""
    x = schedule.add_noise(x0, noise, t0)
    for t, s in _ddim_path(t0, n_steps):
        inp = torch.cat([x, obs_f], dim=1) if mask_input else x
        eps = network(inp, torch.tensor(t, device=x.device))
        x = schedule.ddim_step(x, eps.float(), t, s)
    return x


def _impute(network, schedule, x0, obs_f, hidden, noise, t_start, n_steps):
    """Generate the ``hidden`` steps of windows by DDIM from ``noise`` at ``t_start``,
    given their visible observed values; the hidden values are never read."""
    visible = obs_f * (1 - hidden)
    x0_visible = x0 * visible
    x = noise.expand_as(x0)
    for t, s in _ddim_path(t_start, n_steps):
        eps = network(_imputation_input(x, x0_visible, visible, hidden),
                      torch.tensor(t, device=x.device))
        x = schedule.ddim_step(x, eps.float(), t, s)
    return x


def _restorations(network, schedule, plan, x0, obs_f, mask_input, reference, excluded):
    """Each restoration of the windows the plan asks for, with the entries it scores.

    Yields ``(x_hat, target)``: reconstruction restores every observed entry
    (once per ``(t0, noise)`` pair with the network, once with the exact
    denoiser); imputation restores the observed hidden entries of each mask.
    """
    if plan.scoring == "reconstruction":
        if reference is not None:
            yield reference.nearest(x0, obs_f, excluded), obs_f
            return
        for k, t0 in enumerate(plan.timesteps.tolist()):
            for noise in plan.noise[k]:
                yield _reconstruct(network, schedule, x0, obs_f, noise, t0,
                                   plan.n_inference_steps, mask_input), obs_f
        return
    t_start = int(plan.timesteps[0])
    for m, hidden_row in enumerate(plan.hidden):
        hidden = hidden_row.to(x0.dtype).reshape(1, 1, -1)
        if reference is not None:
            x_hat = reference.nearest(x0, obs_f * (1 - hidden), excluded)
        else:
            x_hat = _impute(network, schedule, x0, obs_f, hidden, plan.noise[0, m], t_start,
                            plan.n_inference_steps)
        yield x_hat, obs_f * hidden


def _window_errors(network, schedule, plan, x0, obs, mask_input, reference=None, excluded=None):
    """Summed squared errors and their counts per entry, both ``(n, C, L)``.

    With a ``reference`` the windows are restored by the exact denoiser of its
    stored windows (``network`` is then unused); ``excluded`` is the ``(n, N)``
    mask of stored windows each window may not use.
    """
    total = torch.zeros(x0.shape, dtype=torch.float64, device=x0.device)
    count = torch.zeros_like(total)
    obs_f = obs.to(x0.dtype)
    for x_hat, target in _restorations(network, schedule, plan, x0, obs_f, mask_input,
                                       reference, excluded):
        total += ((x_hat - x0).double() ** 2) * target
        count += target
    return total, count


class WindowReference:
    """The stored training windows of the *exact* diffusion of a series.

    The noised marginal of the empirical distribution of training windows is a
    Gaussian mixture on them, so its denoiser is known in closed form: as the
    noise vanishes, ``E[x0 | x_t]`` is the stored window nearest to ``x_t``, and
    ``E[x0_hidden | x_visible]`` is the hidden part of the stored window nearest
    on the visible part. Reconstruction and imputation under the exact diffusion
    thus need a nearest-window search and no trained network.

    Parameters
    ----------
    windows : torch.Tensor of shape (N, C, L)
        Stored windows (standardised, missing entries at 0).
    starts : torch.LongTensor of shape (N,)
        Where each stored window starts in the training series (for the
        exclusion zone of :func:`score_series`'s ``self_join``).
    """

    def __init__(self, windows: torch.Tensor, starts: torch.Tensor):
        self.flat = windows.reshape(windows.shape[0], -1).contiguous()
        self.flat_t = self.flat.T.contiguous()
        self.sq_t = (self.flat * self.flat).T.contiguous()
        self.starts = starts

    def to(self, device) -> "WindowReference":
        ref = WindowReference.__new__(WindowReference)
        ref.flat, ref.flat_t, ref.sq_t = (self.flat.to(device), self.flat_t.to(device),
                                           self.sq_t.to(device))
        ref.starts = self.starts.to(device)
        return ref

    def __getstate__(self):
        return {"flat": self.flat, "starts": self.starts}

    def __setstate__(self, state):
        self.flat = state["flat"]
        self.flat_t = self.flat.T.contiguous()
        self.sq_t = (self.flat * self.flat).T.contiguous()
        self.starts = state["starts"]

    def nearest(self, x, weight, excluded=None):
        """Stored window nearest to each row of ``x`` over the entries ``weight`` keeps.

        ``x`` and ``weight`` are ``(n, C, L)``; ``excluded`` an optional ``(n, N)``
        boolean of stored windows a row may not use. Returns ``(n, C, L)``.
        """
        d2 = ranking_sq_distances(x.reshape(x.shape[0], -1), weight.reshape(x.shape[0], -1),
                                  self.flat_t, ref_sq_t=self.sq_t)
        if excluded is not None:
            d2.masked_fill_(excluded, float("inf"))
        return self.flat[d2.argmin(dim=1)].reshape(x.shape)


def score_series(network, schedule, plan, series, observed, starts, length, *,
                 mask_input=False, device="cpu", dtype=torch.float32, reference=None,
                 self_join=False):
    """Per-step, per-channel squared errors of a whole series.

    Parameters
    ----------
    network, schedule, plan
        The trained denoiser, its schedule and the fixed scoring plan.
    series : ndarray of shape (C, n), float32
        Standardised series, missing entries at 0.
    observed : ndarray of shape (C, n), bool
        Observation mask.
    starts : ndarray of int
        Window starts (see :func:`window_starts`).
    length : int
        Window length.
    reference : WindowReference, optional
        Score under the exact diffusion of these stored windows instead of with
        ``network`` (which may then be ``None``).
    self_join : bool, default=False
        The series is the training series. Each window is then restored only
        from stored windows of the *other* half of the series, and never from one
        that overlaps it: otherwise every training window would restore itself,
        and even its near neighbours in time are closer twins than new data ever
        finds (a slowly drifting series), which would set the threshold too low.

    Returns
    -------
    sums, counts : ndarray of shape (C, n), float64
        For each step and channel, the summed squared error over every window
        (and mask) that scored it, and how many did; ``sums / counts`` is the
        mean error (undefined where ``counts`` is 0: a missing entry).
    """
    if network is not None:
        network.eval()
        schedule = schedule.to(device)
    if reference is not None:
        reference = reference.to(device)
    plan = plan.to(device)
    x_all = torch.as_tensor(series, dtype=dtype, device=device)
    m_all = torch.as_tensor(observed, device=device)
    C, n = x_all.shape
    sums = torch.zeros((C, n), dtype=torch.float64, device=device)
    counts = torch.zeros_like(sums)
    starts_t = torch.as_tensor(starts, device=device)
    with torch.inference_mode():
        for begin in range(0, len(starts_t), _SCORE_BLOCK):
            block = starts_t[begin : begin + _SCORE_BLOCK]
            real = len(block)
            if real < _SCORE_BLOCK:  # pad with copies of the first window
                block = torch.cat([block, block[:1].expand(_SCORE_BLOCK - real)])
            x0 = gather_windows(x_all, block, length)
            obs = gather_windows(m_all, block, length)
            excluded = None
            if reference is not None and self_join:
                # two-fold: a window of either half of the series is restored
                # from stored windows of the other half only, never from its
                # own neighbourhood (see ``self_join``)
                middle = (n - length + 1) // 2
                excluded = ((block[:, None] >= middle) == (reference.starts[None] >= middle)) \
                    | ((block[:, None] - reference.starts[None]).abs() < length)
            total, count = _window_errors(network, schedule, plan, x0, obs, mask_input,
                                          reference, excluded)
            idx = (block[:real, None] + torch.arange(length, device=device)).reshape(-1)
            sums.index_add_(1, idx, total[:real].permute(1, 0, 2).reshape(C, -1))
            counts.index_add_(1, idx, count[:real].permute(1, 0, 2).reshape(C, -1))
    return sums.cpu().numpy(), counts.cpu().numpy()
