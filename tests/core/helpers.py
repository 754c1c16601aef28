"""Small builders shared by the core tests."""

import torch

from skdiffad._core import grating_masks, make_plan
from skdiffad._core.networks import ConvDenoiser1d


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def plan_for(paradigm, schedule, event_shape, seed=0, k=4, **kwargs):
    """A plan with small defaults (5 time bins, 3 DDIM steps, 2-stripe masks)."""
    kwargs.setdefault("n_bins", 5)
    kwargs.setdefault("n_inference_steps", 3)
    if paradigm == "imputation":
        kwargs.setdefault("hidden", grating_masks(event_shape[-1], 2))
    return make_plan(paradigm, schedule, event_shape, seeded(seed), n_grid=k, **kwargs)


def conv_net(in_channels, out_channels, seed=0, n_timesteps=50):
    """A seeded 1-D U-Net whose output layer says something (in training mode)."""
    net = ConvDenoiser1d(in_channels, out_channels, widths=(8, 16), kernel_size=3,
                         time_embed_dim=8, n_timesteps=n_timesteps, gaussian_skip=True)
    net.reset_parameters(seeded(seed))
    with torch.no_grad():  # reset_parameters zeroes the output layer; make it say something
        net.output.weight.copy_(0.1 * torch.randn(net.output.weight.shape, generator=seeded(seed)))
    return net
