"""Prediction: a plain network predicts the hidden part of each sample from the rest.

Not a diffusion paradigm: the ablation of the conditional (imputation) model
that shows what diffusion adds, e.g. future-frame prediction (Liu et al., CVPR
2018) without its adversarial loss next to a diffusion model of the next frame.
"""

from __future__ import annotations

import torch

from ..plans import ScoringPlan
from ..scoring import accumulate
from ..training import observed, prediction_input, prediction_loss, prediction_timesteps
from .base import Paradigm, denoiser_of
from .imputation import masks_of

__all__ = ["Prediction"]


class Prediction(Paradigm):
    """Prediction error: the network, trained by mean squared error to output a
    sample's hidden entries from its visible ones (no noise, no diffusion), is
    run once per mask; the squared error of every hidden entry.

    Parameters
    ----------
    hidden : torch.Tensor of shape (M, *mask_shape), bool, optional
        The masks (``True`` = hidden), broadcastable to a sample; the network
        is trained and scored on them, so training and scoring need them
        (``None`` only leaves them to be given later).
    """

    name = "prediction"
    options = ("hidden",)
    generative = False
    network_kind = "a plain predictor of hidden entries"

    def __init__(self, *, hidden=None):
        self.hidden = None if hidden is None else masks_of(hidden)

    def check_ready(self):
        if self.hidden is None:
            raise ValueError("prediction needs the masks of what it predicts (hidden)")

    def network_config(self, network, event_shape, *, n_timesteps, mask_input):
        config = super().network_config(network, event_shape, n_timesteps=n_timesteps,
                                        mask_input=mask_input)
        config["gaussian_skip"] = False  # it outputs the sample, not a noise estimate
        return config

    def _in_channels(self, channels, mask_input):
        return 3 * channels  # the input layout of imputation, with nothing noisy

    def training_loss(self, schedule, *, device, mask_input):
        self.check_ready()
        masks = self.hidden

        def loss(network, x, mask, generator):
            return prediction_loss(network, x, mask, masks, generator)
        return loss

    def plan(self, schedule, event_shape, generator):
        self.check_ready()
        return ScoringPlan(self.name, torch.zeros(1, dtype=torch.long),
                           torch.ones(1, dtype=torch.float64), None, self.hidden, 1)

    def batch_errors(self, networks, schedule, plan, x, mask=None, *, mask_input=False):
        network = denoiser_of(networks)
        x = observed(x, mask)
        obs = torch.ones_like(x) if mask is None else mask.to(x.dtype)
        sums = torch.zeros(x.shape, dtype=torch.float64, device=x.device)
        counts = torch.zeros_like(sums)
        for hidden in plan.hidden:
            hidden = hidden.to(x.dtype)
            visible = obs * (1 - hidden)
            x_hat = network(prediction_input(x, visible, hidden), prediction_timesteps(x))
            accumulate(sums, counts, x_hat.float(), x, obs * hidden)
        return sums, counts
