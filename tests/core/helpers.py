"""Small builders shared by the core tests."""

import torch

from skdiffad._core import PARADIGMS, grating_masks, make_paradigm
from skdiffad._core.networks import ConvDenoiser1d

#: The paradigms that score samples of any shape (not only images).
ANY_SHAPE_PARADIGMS = tuple(name for name in PARADIGMS
                            if make_paradigm(name).event_rank is None)


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def paradigm_for(name, event_shape=None, k=4, **options):
    """A paradigm with small defaults (``k`` grid points, 5 time bins, 3 DDIM steps,
    2-stripe masks), each given only to the paradigms that take it."""
    defaults = {"n_grid": k, "n_bins": 5, "n_inference_steps": 3}
    if name in ("imputation", "prediction") and event_shape is not None:
        defaults["hidden"] = grating_masks(event_shape[-1], 2)
    takes = PARADIGMS[name].options if name in PARADIGMS else ()  # make_paradigm says
    options = {**{key: v for key, v in defaults.items() if key in takes}, **options}
    return make_paradigm(name, **options)


def plan_for(paradigm, schedule, event_shape, seed=0, k=4, **options):
    """The plan of :func:`paradigm_for`; a time classifier covers every step
    unless ``t_max`` says otherwise."""
    if paradigm == "time":
        options.setdefault("t_max", schedule.n_timesteps)
    return paradigm_for(paradigm, event_shape, k, **options).plan(schedule, event_shape,
                                                                  seeded(seed))


def conv_net(in_channels, out_channels, seed=0, n_timesteps=50):
    """A seeded 1-D U-Net whose output layer says something (in training mode)."""
    net = ConvDenoiser1d(in_channels, out_channels, widths=(8, 16), kernel_size=3,
                         time_embed_dim=8, n_timesteps=n_timesteps, gaussian_skip=True)
    net.reset_parameters(seeded(seed))
    with torch.no_grad():  # reset_parameters zeroes the output layer; make it say something
        net.output.weight.copy_(0.1 * torch.randn(net.output.weight.shape, generator=seeded(seed)))
    return net
