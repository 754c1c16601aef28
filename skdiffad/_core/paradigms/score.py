"""Score norm: the size of the learned score at the sample."""

from __future__ import annotations

import torch

from ..plans import SCORE_RANGE, ScoringPlan, step_grid
from .base import Paradigm, denoiser_of, positive_int
from ..scoring import score_norms

__all__ = ["Score"]


class Score(Paradigm):
    """The norm of the learned score ``|eps_theta(a_t x)| / s_t`` at the forward
    mean of each sample, averaged over a grid of steps; one score per sample
    (:func:`~skdiffad._core.scoring.score_norms`).

    Parameters
    ----------
    n_grid : int, default=8
        Steps of the grid, over the fractions :data:`~skdiffad._core.plans.SCORE_RANGE`
        of ``T`` (fewer when they round alike).
    """

    name = "score"
    options = ("n_grid",)
    elementwise = False

    def __init__(self, *, n_grid=8):
        self.n_grid = positive_int("n_grid", n_grid)

    def plan(self, schedule, event_shape, generator):
        """Equally weighted steps; no noise (the score is read at the forward mean)."""
        ts = step_grid(*SCORE_RANGE, self.n_grid, schedule.n_timesteps)
        weights = torch.full((len(ts),), 1.0 / len(ts), dtype=torch.float64)
        return ScoringPlan(self.name, ts, weights, None, None)

    def batch_errors(self, networks, schedule, plan, x, mask=None, *, mask_input=False):
        return score_norms(denoiser_of(networks), schedule, plan, x, mask,
                           mask_input=mask_input), None
