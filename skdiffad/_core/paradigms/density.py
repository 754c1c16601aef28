"""Density: the negative ELBO, a bound on ``-log p(x)`` (DDPM, VDM)."""

from __future__ import annotations

import torch

from ..plans import ScoringPlan, antithetic_noise, elbo_strata
from ..training import observed
from .base import Paradigm, denoiser_of, positive_int
from ..scoring import negative_elbo_terms

__all__ = ["Density"]


class Density(Paradigm):
    """The negative ELBO of every entry, estimated over strata of the steps
    equally spaced in log-SNR (:func:`~skdiffad._core.scoring.negative_elbo_terms`).

    The bound assumes Gaussian noise, which the denoiser is trained with.

    Parameters
    ----------
    n_grid : int, default=8
        Strata of steps ``2..T`` (fewer when they would be empty); the
        decoder term at step 1 is added to them.
    """

    name = "density"
    options = ("n_grid",)

    def __init__(self, *, n_grid=8):
        self.n_grid = positive_int("n_grid", n_grid)

    def plan(self, schedule, event_shape, generator):
        """Step 1 (the decoder term, weight NaN), then one representative step per
        stratum with the stratum's summed weight; an antithetic noise pair each."""
        event_shape = tuple(int(s) for s in event_shape)
        if schedule.n_timesteps < 2:
            raise ValueError("density scoring needs n_timesteps >= 2")
        ts, weights = elbo_strata(schedule, self.n_grid)
        ts = torch.cat([torch.tensor([1]), ts])
        weights = torch.cat([torch.tensor([float("nan")], dtype=torch.float64), weights])
        noise = antithetic_noise(len(ts), event_shape, generator, "gaussian")
        return ScoringPlan(self.name, ts, weights, noise, None)

    def batch_errors(self, networks, schedule, plan, x, mask=None, *, mask_input=False):
        x = observed(x, mask)
        return negative_elbo_terms(denoiser_of(networks), schedule, plan, x, mask,
                                   mask_input=mask_input)
