"""Imputation: hide part of each sample and generate it from the rest (ImDiffusion, DiffAD)."""

from __future__ import annotations

import torch

from ..plans import ScoringPlan
from ..training import imputation_loss
from .base import Paradigm, denoiser_of, one_of, positive_int
from ..scoring import imputation_errors

__all__ = ["Imputation", "masks_of"]


def masks_of(value):
    try:
        hidden = torch.as_tensor(value, dtype=torch.bool)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError("hidden must be a boolean tensor or array of shape (M, *mask_shape), "
                        f"got {type(value).__name__}") from None
    if hidden.ndim < 2 or len(hidden) == 0:
        raise ValueError("hidden must hold at least one mask, with shape (M, *mask_shape), "
                         f"got shape {tuple(hidden.shape)}")
    return hidden


class Imputation(Paradigm):
    """Imputation error: every mask's hidden entries are generated with DDIM from
    pure noise, given the visible ones, and compared with the sample; the
    squared error of every hidden entry, over masks that hide each entry once.

    The network is a conditional imputer: it sees the noisy hidden entries,
    the clean visible ones and the visibility (three times the channels), and
    is trained on random masks, or on the scoring masks themselves
    (:func:`~skdiffad._core.training.imputation_loss`).

    Parameters
    ----------
    n_inference_steps : int, default=5
        DDIM steps of each generation.
    hidden : torch.Tensor of shape (M, *mask_shape), bool, optional
        The scoring masks (``True`` = hidden), in complementary pairs,
        broadcastable to a sample (e.g.
        :func:`~skdiffad._core.plans.grating_masks` reshaped). Scoring needs
        them; ``None`` only leaves them to be given later. Masks that need not
        come in pairs when every sample hides the same part (a video frame,
        generated from the frames before it: the conditional model).
    training_masks : {"random", "scoring"}, default="random"
        What the network learns to fill in: random stripes and scattered
        entries, or the scoring masks ``hidden`` (a conditional generator of
        that part).
    """

    name = "imputation"
    options = ("n_inference_steps", "hidden", "training_masks")
    generative = False
    exact = True
    network_kind = "a conditional imputer of hidden entries"

    def __init__(self, *, n_inference_steps=5, hidden=None, training_masks="random"):
        self.n_inference_steps = positive_int("n_inference_steps", n_inference_steps)
        self.hidden = None if hidden is None else masks_of(hidden)
        self.training_masks = one_of("training_masks", training_masks, ("random", "scoring"))
        if self.training_masks == "scoring" and self.hidden is None:
            raise ValueError("training_masks='scoring' trains on the masks hidden: give them")

    def check_ready(self):
        if self.hidden is None:
            raise ValueError("imputation needs its masks (hidden)")

    def _in_channels(self, channels, mask_input):
        return 3 * channels  # noisy hidden, clean visible, visibility

    def training_loss(self, schedule, *, device, mask_input):
        schedule = schedule.to(device)

        masks = self.hidden if self.training_masks == "scoring" else None

        def loss(network, x, mask, generator):
            return imputation_loss(network, schedule, x, mask, generator, hidden_masks=masks)
        return loss

    def plan(self, schedule, event_shape, generator):
        """Start at step ``T`` from one pure-noise draw per mask."""
        self.check_ready()
        event_shape = tuple(int(s) for s in event_shape)
        noise = torch.randn((1, len(self.hidden)) + event_shape, generator=generator)
        return ScoringPlan(self.name, torch.tensor([schedule.n_timesteps]),
                           torch.ones(1, dtype=torch.float64), noise, self.hidden,
                           self.n_inference_steps)

    def batch_errors(self, networks, schedule, plan, x, mask=None, *, mask_input=False):
        return imputation_errors(denoiser_of(networks), schedule, plan, x, mask)
