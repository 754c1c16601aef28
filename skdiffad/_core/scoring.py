"""The paradigms' maths on one batch of a trained denoiser.

Each function maps a batch ``x`` of shape ``(n, C, *spatial)`` (with an optional
observation mask) to its errors under one paradigm, with the fixed grid and
noise of a :class:`~skdiffad._core.plans.ScoringPlan`:

* :func:`reconstruction_errors` -- diffuse to ``t0`` and denoise back with DDIM
  (AnoDDPM); the squared error of every entry, averaged over a grid of ``t0``
  and an antithetic noise pair (the multi-step form ``S(x) = sum_t w_t L(x, x_hat_t)``).
* :func:`imputation_errors` -- hide part of the sample, generate it with DDIM
  from pure noise conditioned on the visible part (ImDiffusion, DiffAD); the
  squared error of every hidden entry, over masks that hide each entry once.
* :func:`negative_elbo_terms` -- the negative ELBO, a bound on ``-log p(x)``
  (DDPM, VDM), as a sum of per-entry terms.
* :func:`score_norms` -- the norm of the learned score ``|grad log p_t| =
  |eps_theta| / s_t`` at the forward mean ``a_t x`` of the sample, averaged over
  a grid of ``t``.
* :func:`expected_times` -- diffusion-time estimation (DTE): the expected
  diffusion time of ``x`` under a classifier over time bins; one forward pass.

The reconstruction also has a *conditioned* form, :func:`reconstruct_conditioned`
(DDAD, Mousakhan et al. 2023): every DDIM step's noise estimate is nudged so the
clean estimate moves toward the input itself, which keeps the restoration close
to the sample's nominal patterns while the denoiser still removes what it cannot
explain; ``guidance=0`` is the plain reconstruction. A plan's ``guidance`` turns
it on. :func:`feature_errors` compares each restoration with its sample in the
feature maps of an encoder instead of pixel by pixel (DDAD's feature distance),
over the same grid and noise.

The reconstruction, imputation, density and feature errors are *element-wise*:
they return per-entry ``(sums, counts)`` (summed weighted errors and the weight
of the restorations that scored each entry; ``sums / counts`` is the entry's
error), from which maps and channel scores fall out before a detector reduces
them to one score per sample. The score norm and time are *per-sample*: they
return one score per sample (and ``counts`` ``None``).

The paradigm objects (:mod:`skdiffad._core.paradigms`) call these functions;
they are kept apart so that each formula can be tested on its own.
"""

from __future__ import annotations

import numpy as np
import torch

from .features import feature_distance_map
from .schedules import ddim_path
from .training import imputation_input, masked_mean, network_input, observed

__all__ = [
    "accumulate",
    "ddim_path",
    "expected_times",
    "feature_errors",
    "imputation_errors",
    "impute",
    "negative_elbo_terms",
    "reconstruct",
    "reconstruct_conditioned",
    "reconstruction_errors",
    "restorations",
    "score_norms",
]


def reconstruct(network, schedule, x0, mask, noise, t0, n_steps, mask_input):
    """Diffuse ``x0`` to ``t0`` with fixed ``noise``, then DDIM it back to step 0."""
    x = schedule.add_noise(x0, noise, t0)
    for t, s in ddim_path(t0, n_steps):
        eps = network(network_input(x, mask, mask_input), torch.tensor(t, device=x.device))
        x = schedule.ddim_step(x, eps.float(), t, s)
    return x


def reconstruct_conditioned(network, schedule, x0, mask, noise, t0, n_steps, mask_input, *,
                            guidance=1.0):
    """:func:`reconstruct` with every DDIM step conditioned on the target ``x0`` (DDAD).

    At each step from ``t`` to ``s`` the target is diffused to the same level
    with the network's own noise estimate, ``y_t = a_t x0 + s_t eps_hat``, and the
    estimate is corrected toward it,

    ``eps_tilde = eps_hat - guidance * s_t * (y_t - x_t)``,

    before the DDIM step uses ``eps_tilde``. This is DDAD's eq. with
    ``sqrt(alpha_bar_t) = a_t`` and ``sqrt(1 - alpha_bar_t) = s_t`` (the same
    numbers for a variance-preserving schedule). Read as a score,
    ``-eps / s_t``, the correction adds ``guidance * (y_t - x_t)``: the gradient
    of ``-guidance/2 |y_t - x_t|^2``, a Gaussian pull of ``x_t`` toward the
    target at the same noise level, which carries over to variance-exploding
    schedules unchanged. Since ``y_t - x_t = a_t (x0 - x0_hat)``, the clean
    estimate moves a fraction ``guidance * s_t^2`` of the way from ``x0_hat`` to
    the target: ``x0_tilde = x0_hat + guidance s_t^2 (x0 - x0_hat)``. For
    variance-preserving schedules ``s_t^2 < 1``, so ``guidance`` in ``[0, 1]``
    interpolates; a variance-exploding schedule (``s_t`` up to ``sigma_max``)
    wants a guidance near ``1 / sigma_max^2`` or smaller.

    Parameters
    ----------
    network, schedule, x0, mask, noise, t0, n_steps, mask_input
        As for :func:`reconstruct`; ``x0`` is both the sample and the target.
    guidance : float, default=1.0
        DDAD's conditioning weight ``w``; 0 gives :func:`reconstruct` exactly.

    Returns
    -------
    x_hat : torch.Tensor of the shape of ``x0``

    References
    ----------
    A. Mousakhan, T. Brox and J. Tayyub, "Anomaly detection with conditioned
    denoising diffusion models", arXiv:2305.15956, 2023.
    """
    x = schedule.add_noise(x0, noise, t0)
    for t, s in ddim_path(t0, n_steps):
        eps = network(network_input(x, mask, mask_input), torch.tensor(t, device=x.device))
        eps = eps.float()
        if guidance:  # skipped at 0 so the result is bit-identical to reconstruct
            a_t, s_t = schedule.coefficients(t, x)
            y_t = a_t * x0 + s_t * eps
            eps = eps - guidance * s_t * (y_t - x)
        x = schedule.ddim_step(x, eps, t, s)
    return x


def restorations(network, schedule, plan, x, mask=None, *, mask_input=False):
    """The reconstructions of a batch over a reconstruction plan, with their weights.

    Yields ``(x_hat, weight)`` for every grid point ``t0`` and noise draw of the
    plan, in order; the weights (the grid point's weight over the number of
    draws) add up to 1. Each run is conditioned on ``x`` with the plan's
    ``guidance`` (:func:`reconstruct_conditioned`) when it is positive, and is
    the plain :func:`reconstruct` otherwise.
    """
    n_draws = plan.noise.shape[1]
    guidance = float(plan.guidance)
    for k, t0 in enumerate(plan.timesteps.tolist()):
        for noise in plan.noise[k]:
            if guidance:
                x_hat = reconstruct_conditioned(network, schedule, x, mask, noise, t0,
                                                plan.n_inference_steps, mask_input,
                                                guidance=guidance)
            else:
                x_hat = reconstruct(network, schedule, x, mask, noise, t0,
                                    plan.n_inference_steps, mask_input)
            yield x_hat, float(plan.weights[k]) / n_draws


def feature_errors(extractor, network, schedule, plan, x, mask=None, *, mask_input=False):
    """Feature-distance errors of one batch over a reconstruction plan (DDAD), float64.

    Every restoration of :func:`restorations` is compared with its sample by
    :func:`~skdiffad._core.features.feature_distance_map` (per pixel, one minus
    the cosine of the two feature vectors, averaged over the extractor's
    levels), and the maps are averaged with the plan's weights. The map is
    shared by a pixel's channels.

    Parameters
    ----------
    extractor : callable
        Maps a batch to a list of feature maps (a
        :class:`~skdiffad._core.features.DenoiserFeatures` or
        :class:`~skdiffad._core.features.ModuleFeatures`).
    network, schedule : torch.nn.Module, NoiseSchedule
        The denoiser and its schedule.
    plan : ScoringPlan
        A ``"reconstruction"`` plan (its grid, noise and guidance).
    x : torch.Tensor of shape (n, C, *spatial)
    mask : torch.Tensor of the shape of ``x``, bool, optional
        Observation mask; unobserved entries enter as 0 and are not scored.
    mask_input : bool, default=False
        Whether the denoiser takes the mask as extra channels.

    Returns
    -------
    sums, counts : torch.Tensor of the shape of ``x``, float64
        ``sums / counts`` is the weighted mean distance map on every observed
        entry (``counts`` is the summed weight there, 0 elsewhere).
    """
    x = observed(x, mask)
    obs = (torch.ones_like(x) if mask is None else mask.to(x.dtype)).double()
    sums = torch.zeros(x.shape, dtype=torch.float64, device=x.device)
    counts = torch.zeros_like(sums)
    features = extractor(x)  # the sample's own features, once for all its restorations
    for x_hat, weight in restorations(network, schedule, plan, x, mask, mask_input=mask_input):
        distance = feature_distance_map(extractor, x, x_hat.to(x.dtype), size=x.shape[2:],
                                        features=features)
        sums += distance * obs * weight
        counts += obs * weight
    return sums, counts


def impute(network, schedule, x0, visible, hidden, noise, t_start, n_steps):
    """Generate the ``hidden`` entries of ``x0`` by DDIM from ``noise`` at
    ``t_start``, given its ``visible`` entries; the hidden values are never read."""
    x0_visible = x0 * visible
    x = noise.expand_as(x0)
    for t, s in ddim_path(t_start, n_steps):
        eps = network(imputation_input(x, x0_visible, visible, hidden),
                      torch.tensor(t, device=x.device))
        x = schedule.ddim_step(x, eps.float(), t, s)
    return x


def accumulate(sums, counts, x_hat, x0, target, weight=1.0):
    """Add one restoration's squared errors on the ``target`` entries, weighted."""
    err = (x_hat - x0).double()
    err.mul_(err).mul_(target)  # in place: the same products as ((x_hat - x0) ** 2) * target
    if weight != 1.0:  # weights in float64: K x R restorations add up to exactly 1
        err.mul_(weight)
        target = target.double() * weight
    sums += err
    counts += target


def negative_elbo_terms(network, schedule, plan, x, mask=None, *, mask_input=False):
    """Per-entry terms of the negative ELBO, a bound on ``-log p(x)``.

    ``prior KL(q(x_T|x) || N(0, a_T^2 + s_T^2)) + decoder -log N(x; x0_hat(x_1), 1/SNR(1))
    + sum_{t>=2} 1/2 (SNR(t-1) - SNR(t)) |x - x0_hat(x_t)|^2``, the last sum written
    as ``sum_t w_t |eps - eps_hat(x_t)|^2`` and estimated by the plan's quadrature
    over strata equally spaced in log-SNR. Every term is a sum over entries, so
    the bound splits into per-entry terms; their sum over a sample's observed
    entries divided by their number is the bound in nats per entry. It is that
    of the discrete T-step model with DDPM's fixed reverse variance: for
    variance-preserving schedules it sits a roughly constant ~0.4 nats per
    entry above ``-log p(x)`` even with a perfect denoiser, which shifts every
    sample alike and leaves the ranking intact.

    Returns
    -------
    terms, counts : torch.Tensor of the shape of ``x``, float64
        The terms (0 on unobserved entries) and the observation mask.
    """
    x = observed(x, mask)
    xd = x.double()
    m = torch.ones_like(xd) if mask is None else mask.to(torch.float64)
    T = schedule.n_timesteps
    a_T, s_T = float(schedule.alphas[T]), float(schedule.sigmas[T])
    v = schedule.prior_variance()
    terms = 0.5 * (np.log(v / s_T**2) + (s_T**2 + a_T**2 * xd**2) / v - 1.0) * m
    n_draws = plan.noise.shape[1]
    for k, t in enumerate(plan.timesteps.tolist()):
        sq = torch.zeros_like(terms)
        for noise in plan.noise[k]:
            x_t = schedule.add_noise(x, noise, t)
            eps = network(network_input(x_t, mask, mask_input), torch.tensor(t, device=x.device))
            # |x - x0_hat|^2 = |eps - eps_hat|^2 / SNR(t)
            sq += ((noise.double() - eps.double()) ** 2) * m / n_draws
        if k == 0:  # decoder term at t = 1: -log N(x; x0_hat, 1/SNR(1))
            terms += 0.5 * sq + 0.5 * np.log(2 * np.pi / float(schedule.snr(1))) * m
        else:
            terms += plan.weights[k] * sq
    return terms, m


def _zero_errors(x):
    sums = torch.zeros(x.shape, dtype=torch.float64, device=x.device)
    return sums, torch.zeros_like(sums)


def reconstruction_errors(network, schedule, plan, x, mask=None, *, mask_input=False):
    """Squared reconstruction errors of one batch over a reconstruction plan (float64).

    Every restoration of :func:`restorations` (conditioned on the sample when
    the plan's ``guidance`` is positive, DDAD) is compared with the sample
    entry by entry, weighted by the plan.

    Returns
    -------
    sums, counts : torch.Tensor of the shape of ``x``, float64
        Summed weighted squared errors, and the summed weights (1 on every
        observed entry, 0 elsewhere).
    """
    x = observed(x, mask)
    sums, counts = _zero_errors(x)
    obs = torch.ones_like(x) if mask is None else mask.to(x.dtype)
    for x_hat, weight in restorations(network, schedule, plan, x, mask, mask_input=mask_input):
        accumulate(sums, counts, x_hat, x, obs, weight)
    return sums, counts


def imputation_errors(network, schedule, plan, x, mask=None):
    """Squared errors of the hidden entries of one batch, over an imputation plan's
    masks (float64): each mask's hidden entries are generated from its pure
    noise (:func:`impute`) given the visible ones.

    Returns
    -------
    sums, counts : torch.Tensor of the shape of ``x``, float64
        ``counts`` is the number of masks that hid each observed entry.
    """
    x = observed(x, mask)
    sums, counts = _zero_errors(x)
    obs = torch.ones_like(x) if mask is None else mask.to(x.dtype)
    t_start = int(plan.timesteps[0])
    for m, hidden in enumerate(plan.hidden):
        hidden = hidden.to(x.dtype)
        visible = obs * (1 - hidden)
        x_hat = impute(network, schedule, x, visible, hidden, plan.noise[0, m], t_start,
                       plan.n_inference_steps)
        accumulate(sums, counts, x_hat, x, obs * hidden)
    return sums, counts


def score_norms(network, schedule, plan, x, mask=None, *, mask_input=False):
    """The score norm ``|eps_theta(a_t x)| / s_t`` of each sample (RMS over its
    observed entries), averaged over the plan's grid; shape ``(n,)``, float64."""
    # Read at the forward mean a_t x rather than at a noised x_t: with noise
    # added, an inlier's estimate is the added noise itself (|eps| ~ sqrt(d)),
    # which dominates the small-t terms and swamped the signal (semi-supervised
    # ADBench AUROC: breastw 0.735 -> 0.966, cardio 0.486 -> 0.727 at the mean).
    # At the mean an inlier's noise estimate is near zero and an outlier's is
    # a_t (x - x0_hat) / s_t, growing with its distance from the data.
    x = observed(x, mask)
    out = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    for k, t in enumerate(plan.timesteps.tolist()):
        a_t = float(schedule.alphas[t])
        eps = network(network_input(a_t * x, mask, mask_input), torch.tensor(t, device=x.device))
        rms = masked_mean(eps.double() ** 2, mask).sqrt()
        out += plan.weights[k] * rms / float(schedule.sigmas[t])
    return out


def expected_times(network, plan, x, mask=None, *, mask_input=False):
    """The expected diffusion time of each sample under a time classifier: its
    probabilities over the bins times the plan's weights; shape ``(n,)``, float64."""
    x = observed(x, mask)
    logits = network(network_input(x, mask, mask_input)).double()
    return torch.softmax(logits, dim=1) @ plan.weights
