"""Drawing new samples from a trained noise predictor: the reverse process from the prior.

The base of anomaly *generation* (issue #13): start from the prior ``p(x_T)`` and
run the reverse chain down to step 0, either

* ``"ddpm"`` -- ancestral sampling (Ho et al. 2020): each step draws from the
  Gaussian posterior ``q(x_s | x_t, x0_hat)`` with ``x0_hat`` predicted from the
  network's noise estimate. With ``n_steps < T`` the chain jumps between a
  subset of the steps; the posterior of ``q`` is exact for any ``s < t``, so a
  strided chain is still a valid (coarser) reverse process; or
* ``"ddim"`` -- the deterministic DDIM chain (Song et al. 2021, ``eta = 0``),
  which follows the probability-flow ODE and needs far fewer steps.

A chain of fewer steps than ``T`` draws samples that are too concentrated:
each step plugs the point estimate ``x0_hat`` into the posterior and so drops
``Var(x0 | x_t)``. With the exact denoiser of Gaussian data of variance 0.25
and the linear schedule, DDIM gives variance 0.137, 0.222, 0.244 and 0.248 with
10, 50, 250 and 1000 steps (ancestral sampling a little less); the test-suite
checks this. Pick ``n_steps`` with that in mind.

Both use the one ``(a_t, s_t)`` form of :mod:`.schedules`, so they serve
variance-preserving and variance-exploding schedules alike. The prior is the
forward marginal at ``T`` of unit-variance data, ``N(0, a_T^2 + s_T^2)`` (the
detectors standardise their data before training).
"""

from __future__ import annotations

import numbers

import torch

from .paradigms import ddim_path
from .training import network_input

__all__ = ["SAMPLERS", "draw_samples"]

#: The reverse chains :func:`draw_samples` runs.
SAMPLERS = ("ddpm", "ddim")


@torch.no_grad()
def draw_samples(network, schedule, shape, *, sampler="ddim", n_steps=50, generator=None,
                 device="cpu", mask_input=False):
    """Draw ``shape[0]`` samples by running the reverse chain from the prior.

    Parameters
    ----------
    network : callable
        Noise predictor, ``network(x_t, t) -> eps`` with ``t`` a 0-d long tensor.
    schedule : NoiseSchedule
        The schedule the network was trained with.
    shape : tuple of int
        ``(n, C, *spatial)`` of the batch to draw.
    sampler : {"ddpm", "ddim"}, default="ddim"
        Ancestral (stochastic) or DDIM (deterministic after the prior draw).
    n_steps : int, default=50
        Network evaluations: the chain visits ``n_steps`` evenly spaced steps
        from ``T`` down to 0 (all ``T`` when larger).
    generator : torch.Generator or None
        Source of the prior draw and of DDPM's step noise (on ``device``); pass
        a seeded one for reproducible samples.
    device : str or torch.device, default="cpu"
        Where the chain runs.
    mask_input : bool, default=False
        The network was trained with a mask channel (incomplete data); samples
        are drawn as fully observed.

    Returns
    -------
    x0 : torch.Tensor of shape ``shape``
        The samples, in the network's (standardised) units, float32.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, numbers.Integral) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}")
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2 or min(shape) < 1:
        raise ValueError(f"shape must be (n, C, ...) with every size positive, got {shape}")
    schedule = schedule.to(device)
    prior_std = schedule.prior_variance() ** 0.5
    x = prior_std * torch.randn(shape, generator=generator, device=device)
    for t, s in ddim_path(schedule.n_timesteps, int(n_steps)):
        eps = network(network_input(x, None, mask_input), torch.tensor(t, device=x.device))
        eps = eps.float()
        if sampler == "ddim":
            x = schedule.ddim_step(x, eps, t, s)
        else:  # the last step (s = 0) has no posterior variance: its mean, no draw
            noise = torch.randn(shape, generator=generator, device=device) if s else None
            x = schedule.ddpm_step(x, eps, t, s, noise)
    return x
