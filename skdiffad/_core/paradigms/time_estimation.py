"""Diffusion-time estimation: how much noise a sample seems to carry (DTE)."""

from __future__ import annotations

from ..plans import ScoringPlan
from ..training import time_bins, time_loss
from .base import Paradigm, denoiser_of, optional_positive_int, positive_int
from ..scoring import expected_times

__all__ = ["TIME_MAX_NOISE", "Time"]

# Largest noise-to-signal ratio s_t/a_t that diffusion-time estimation covers, in
# units of the standardised data (DTE's own schedule stops near 1.9): noise
# levels well above the data's unit spread all look alike and would waste the
# classifier's bins.
TIME_MAX_NOISE = 2.0


class Time(Paradigm):
    """Diffusion-time estimation (DTE, Livernoche et al. 2024): a classifier over
    time bins learns how much noise a point carries
    (:func:`~skdiffad._core.training.time_loss`), and a sample's score is its
    expected diffusion time as a fraction of the last step trained on; one
    forward pass, one score per sample.

    The network is an unconditional classifier, which only the ``"mlp"``
    network provides; the exact model scores the same paradigm from the
    stored samples' distances instead.

    Parameters
    ----------
    n_bins : int, default=7
        Bins of the classifier, equal-width over steps ``1..t_max``.
    t_max : int, optional
        Last step the classifier is trained on; by default the last whose
        noise-to-signal ratio ``s_t / a_t`` is at most :data:`TIME_MAX_NOISE`.
    """

    name = "time"
    options = ("n_bins", "t_max")
    generative = False
    elementwise = False
    exact = True
    network_kind = "a time classifier"

    def __init__(self, *, n_bins=7, t_max=None):
        self.n_bins = positive_int("n_bins", n_bins, minimum=2)
        self.t_max = optional_positive_int("t_max", t_max)

    def max_step(self, schedule):
        """The last step the classifier covers under ``schedule``."""
        if self.t_max is None:
            return schedule.last_step_below(TIME_MAX_NOISE)
        if self.t_max > schedule.n_timesteps:
            raise ValueError(f"t_max={self.t_max} is beyond the schedule's "
                             f"n_timesteps={schedule.n_timesteps}")
        return self.t_max

    def network_config(self, network, event_shape, *, n_timesteps, mask_input):
        if network.get("name") != "mlp":
            raise ValueError("diffusion-time estimation trains an unconditional classifier, "
                             f"which only the 'mlp' network provides (got {network.get('name')!r})")
        config = dict(network)
        config.update(in_channels=self._in_channels(int(event_shape[0]), mask_input),
                      out_channels=self.n_bins, time_embed_dim=0, n_timesteps=int(n_timesteps),
                      gaussian_skip=False)
        return config

    def training_loss(self, schedule, *, device, mask_input):
        n_bins, t_max = self.n_bins, self.max_step(schedule)
        schedule = schedule.to(device)

        def loss(network, x, mask, generator):
            return time_loss(network, schedule, x, mask, generator, n_bins=n_bins,
                             t_max=t_max, mask_input=mask_input)
        return loss

    def plan(self, schedule, event_shape, generator):
        """The bins' centres, weighted by their fraction of ``t_max``; no noise."""
        t_max = self.max_step(schedule)
        edges = time_bins(t_max, self.n_bins)
        centres = 0.5 * (edges[1:] + edges[:-1])
        return ScoringPlan(self.name, centres, centres / t_max, None, None)

    def batch_errors(self, networks, schedule, plan, x, mask=None, *, mask_input=False):
        return expected_times(denoiser_of(networks), plan, x, mask, mask_input=mask_input), None
