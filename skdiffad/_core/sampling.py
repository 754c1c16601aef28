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

:func:`edit_samples` runs the same chains from part-way (SDEdit, Meng et al.
2022): a given batch is noised to a step ``t_start`` and denoised back, which
keeps its coarse shape and redraws its detail. Three optional controls steer the
chain, and the anomaly generator of :mod:`skdiffad.generation` is built of them:

* ``keep`` -- RePaint-style inpainting (Lugmayr et al. 2022): the entries where
  ``keep`` is true are reset after every step to the given batch noised to that
  step, so the rest is redrawn coherently with them;
* ``temperature`` -- every noise draw of the chain (the start and DDPM's steps)
  is scaled by it: above 1 the chain wanders further from the data;
* ``attract``/``target`` -- each step's estimate ``x0_hat`` is pulled towards a
  target, ``x0_hat + w (target - x0_hat)``, with the noise estimate made
  consistent with it (the reconstruction guidance of DDAD, here towards any
  point: a real anomaly in few-shot generation).

Both use the one ``(a_t, s_t)`` form of :mod:`.schedules`, so they serve
variance-preserving and variance-exploding schedules alike. The prior is the
forward marginal at ``T`` of unit-variance data, ``N(0, a_T^2 + s_T^2)`` (the
detectors standardise their data before training).
"""

from __future__ import annotations

import numbers

import torch

from .schedules import ddim_path
from .training import network_input

__all__ = ["SAMPLERS", "draw_samples", "edit_samples"]

#: The reverse chains :func:`draw_samples` runs.
SAMPLERS = ("ddpm", "ddim")


def _check_chain(sampler, n_steps):
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, numbers.Integral) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}")


@torch.no_grad()
def draw_samples(network, schedule, shape, *, sampler="ddim", n_steps=50, generator=None,
                 device="cpu", mask_input=False, temperature=1.0):
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
    temperature : float, default=1.0
        Scale of every noise draw (the prior's and DDPM's steps).

    Returns
    -------
    x0 : torch.Tensor of shape ``shape``
        The samples, in the network's (standardised) units, float32.
    """
    _check_chain(sampler, n_steps)
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2 or min(shape) < 1:
        raise ValueError(f"shape must be (n, C, ...) with every size positive, got {shape}")
    schedule = schedule.to(device)
    x = (temperature * schedule.prior_variance() ** 0.5) * torch.randn(
        shape, generator=generator, device=device)
    return _reverse(network, schedule, x, schedule.n_timesteps, sampler=sampler,
                    n_steps=n_steps, generator=generator, mask_input=mask_input,
                    temperature=temperature)


@torch.no_grad()
def edit_samples(network, schedule, x0, t_start, *, sampler="ddpm", n_steps=50, generator=None,
                 mask_input=False, temperature=1.0, keep=None, target=None, attract=0.0,
                 n_resample=1):
    """Noise ``x0`` to step ``t_start`` and run the reverse chain back to step 0.

    Parameters
    ----------
    network, schedule, sampler, generator, mask_input
        As in :func:`draw_samples`; the chain runs on ``x0``'s device.
    x0 : torch.Tensor of shape ``(n, C, *spatial)``
        The batch to edit, in the network's units.
    t_start : int
        Step the batch is noised to, in ``1..T``; ``T`` forgets it entirely
        (but for ``keep``), small steps redraw only fine detail.
    n_steps : int, default=50
        Network evaluations from ``t_start`` down to 0 (at most ``t_start``).
    temperature : float, default=1.0
        Scale of the start noise and of DDPM's step noise.
    keep : torch.Tensor of bool, optional
        Entries held to ``x0`` (broadcast against it): after every step they
        are reset to ``x0`` noised to that step, and at the end to ``x0``.
    target : torch.Tensor, optional
        Point each step's clean estimate is pulled towards, with weight
        ``attract``.
    attract : float, default=0.0
        Weight in ``[0, 1]`` of the pull towards ``target``.
    n_resample : int, default=1
        RePaint's resampling: every step is run this many times, the state
        noised back to the step's start between runs, so that the redrawn
        entries agree with the kept ones (one run under-conditions them).

    Returns
    -------
    x : torch.Tensor, float32, shaped like ``x0``
    """
    _check_chain(sampler, n_steps)
    t_start = int(t_start)
    if not 1 <= t_start <= schedule.n_timesteps:
        raise ValueError(f"t_start must be in 1..{schedule.n_timesteps}, got {t_start}")
    if not 0.0 <= float(attract) <= 1.0:
        raise ValueError(f"attract must be in [0, 1], got {attract!r}")
    if attract and target is None:
        raise ValueError("attract > 0 needs a target")
    if isinstance(n_resample, bool) or not isinstance(n_resample, numbers.Integral) \
            or n_resample < 1:
        raise ValueError(f"n_resample must be a positive integer, got {n_resample!r}")
    x0 = x0.float()
    schedule = schedule.to(x0.device)
    noise = temperature * torch.randn(x0.shape, generator=generator, device=x0.device)
    x = schedule.add_noise(x0, noise, t_start)
    if keep is not None:
        keep = torch.broadcast_to(keep.to(x0.device, torch.bool), x0.shape)
    return _reverse(network, schedule, x, t_start, sampler=sampler, n_steps=n_steps,
                    generator=generator, mask_input=mask_input, temperature=temperature,
                    keep=keep, known=x0, target=None if target is None else target.float(),
                    attract=float(attract), n_resample=int(n_resample))


def _reverse(network, schedule, x, t_start, *, sampler, n_steps, generator, mask_input,
             temperature, keep=None, known=None, target=None, attract=0.0, n_resample=1):
    """The reverse chain from ``x`` at step ``t_start`` down to step 0."""
    for t, s in ddim_path(t_start, int(n_steps)):
        for r in range(n_resample):
            if r:  # RePaint's resampling: back to step t by the forward transition
                x = _renoise(schedule, x, s, t, generator)
            x = _step(network, schedule, x, t, s, sampler=sampler, generator=generator,
                      mask_input=mask_input, temperature=temperature, keep=keep,
                      known=known, target=target, attract=attract)
    return x


def _renoise(schedule, x_s, s, t, generator):
    """Draw ``q(x_t | x_s)`` for ``s < t``: ``a_{t|s} x_s + sqrt(v_{t|s}) z``."""
    a_t, s_t = schedule.coefficients(t, x_s)
    a_s, s_s = schedule.coefficients(s, x_s)
    a_ts = a_t / a_s
    z = torch.randn(x_s.shape, generator=generator, device=x_s.device)
    return a_ts * x_s + (s_t**2 - a_ts**2 * s_s**2).clamp_min(0).sqrt() * z


def _step(network, schedule, x, t, s, *, sampler, generator, mask_input, temperature, keep,
          known, target, attract):
    """One step ``t -> s`` of the chain, with its guidance and kept entries."""
    eps = network(network_input(x, None, mask_input), torch.tensor(t, device=x.device))
    eps = eps.float()
    if attract:
        x0_hat = schedule.predict_x0(x, eps, t)
        x0_hat = x0_hat + attract * (target - x0_hat)
        eps = schedule.predict_eps(x, x0_hat, t)
    if sampler == "ddim":
        x = schedule.ddim_step(x, eps, t, s)
    else:  # the last step (s = 0) has no posterior variance: its mean, no draw
        noise = None
        if s:
            noise = temperature * torch.randn(x.shape, generator=generator,
                                              device=x.device)
        x = schedule.ddpm_step(x, eps, t, s, noise)
    if keep is not None:
        if s:
            fresh = torch.randn(x.shape, generator=generator, device=x.device)
            x = torch.where(keep, schedule.add_noise(known, fresh, s), x)
        else:
            x = torch.where(keep, known, x)
    return x
