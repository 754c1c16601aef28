"""Reconstruction: diffuse each sample part way and denoise it back (AnoDDPM)."""

from __future__ import annotations

import torch

from ..noise import NOISE_KINDS
from ..plans import RECONSTRUCTION_RANGE, ScoringPlan, antithetic_noise, step_grid
from .base import Paradigm, denoiser_of, non_negative_float, one_of, positive_int
from ..scoring import reconstruction_errors

__all__ = ["Reconstruction", "Restoring"]


def _fraction_range(name, value):
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high) of fractions of n_timesteps, "
                         f"got {value!r}") from None
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"{name} must be (low, high) with 0 <= low <= high <= 1, got {value!r}")
    return low, high


class Restoring(Paradigm):
    """The paradigms scored over reconstructions: a denoiser trained as for
    reconstruction, and a plan of starting steps ``t0`` with antithetic noise.

    Parameters
    ----------
    n_grid : int, default=8
        Starting steps ``t0`` of the plan (fewer when they round alike).
    n_inference_steps : int, default=5
        DDIM steps of each denoising run.
    t0_range : tuple of float, default=RECONSTRUCTION_RANGE
        Fractions of ``T`` spanned by the starting steps.
    noise : {"gaussian", "simplex"}, default="gaussian"
        Noise of the denoiser's training and of the plan. ``"simplex"``
        (AnoDDPM's multi-scale simplex noise, :mod:`~skdiffad._core.noise`)
        needs images; a denoiser trained on it cannot sample.
    """

    options = ("n_grid", "n_inference_steps", "t0_range", "noise")
    #: DDAD's conditioning weight of every reconstruction; 0 is the plain one.
    guidance = 0.0

    def __init__(self, *, n_grid=8, n_inference_steps=5, t0_range=RECONSTRUCTION_RANGE,
                 noise="gaussian"):
        self.n_grid = positive_int("n_grid", n_grid)
        self.n_inference_steps = positive_int("n_inference_steps", n_inference_steps)
        self.t0_range = _fraction_range("t0_range", t0_range)
        self.noise = one_of("noise", noise, NOISE_KINDS)

    def plan(self, schedule, event_shape, generator):
        """A grid of ``n_grid`` starting steps over ``t0_range`` with equal weights,
        and an antithetic pair of the paradigm's noise per step."""
        event_shape = tuple(int(s) for s in event_shape)
        ts = step_grid(*self.t0_range, self.n_grid, schedule.n_timesteps)
        weights = torch.full((len(ts),), 1.0 / len(ts), dtype=torch.float64)
        noise = antithetic_noise(len(ts), event_shape, generator, self.noise)
        return ScoringPlan("reconstruction", ts, weights, noise, None, self.n_inference_steps,
                           self.guidance)


class Reconstruction(Restoring):
    """Reconstruction error: diffuse to ``t0``, denoise back with DDIM, and take
    the squared error of every entry, averaged over the plan's ``t0`` and
    noise (AnoDDPM); conditioned on the sample when ``guidance > 0`` (DDAD).

    Parameters
    ----------
    n_grid, n_inference_steps, t0_range, noise
        As for :class:`Restoring`.
    guidance : float, default=0.0
        DDAD's conditioning weight of every reconstruction
        (:func:`~skdiffad._core.scoring.reconstruct_conditioned`); 0
        is the plain reconstruction, bit for bit.
    """

    name = "reconstruction"
    options = Restoring.options + ("guidance",)
    exact = True

    def __init__(self, *, n_grid=8, n_inference_steps=5, t0_range=RECONSTRUCTION_RANGE,
                 noise="gaussian", guidance=0.0):
        super().__init__(n_grid=n_grid, n_inference_steps=n_inference_steps,
                         t0_range=t0_range, noise=noise)
        self.guidance = non_negative_float("guidance", guidance)

    def batch_errors(self, networks, schedule, plan, x, mask=None, *, mask_input=False):
        return reconstruction_errors(denoiser_of(networks), schedule, plan, x, mask,
                                     mask_input=mask_input)
