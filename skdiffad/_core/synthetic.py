"""Synthetic anomalies for training a discriminative head (DRAEM, DiffusionAD).

A reconstruction network trained on normal images alone gives a reconstruction
error that is only a proxy for "abnormal". DRAEM (Zavrtanik et al. 2021) and
DiffusionAD (Zhang et al. 2023) also train a segmentation head on images with
planted defects whose masks are known: a blob-shaped region
(:func:`~skdiffad._core.noise.noise_mask`) of a normal image is blended with a
foreign texture, and the head learns to find it. :func:`synthetic_anomalies`
plants such defects in a batch.

References
----------
Zavrtanik, Kristan, Skocaj. "DRAEM -- A discriminatively trained reconstruction
embedding for surface anomaly detection." ICCV, 2021.

Zhang, Wang, Chen, Yang, Fang. "DiffusionAD: Norm-guided one-step denoising
diffusion for anomaly detection." arXiv:2303.08730, 2023.
"""

from __future__ import annotations

import torch

from .noise import noise_mask, simplex_noise
from .sampling import edit_samples

__all__ = ["DEFECT_SOURCES", "HARMONISE_LEVEL", "POOL_SIZE", "DefectPool", "harmonise",
           "harmonised_anomalies", "synthetic_anomalies"]

#: Where a segmentation head's training defects come from: pasted as they are
#: (DRAEM), or pasted and then harmonised by the trained denoiser (a pool drawn
#: once, see :class:`DefectPool`).
DEFECT_SOURCES = ("synthetic", "generated")

#: Noise-to-signal ratio ``s_t/a_t`` pasted defects are harmonised at: enough
#: noise to redraw seams and texture, too little to wash the patch out.
HARMONISE_LEVEL = 0.3

#: Images of the generated-defect pool of a segmentation head (at most).
POOL_SIZE = 256


def _check_range(name, value, low=0.0, high=1.0):
    lo, hi = (float(v) for v in value)
    if not low <= lo <= hi <= high:
        raise ValueError(f"{name} must be (low, high) with {low} <= low <= high <= {high}, "
                         f"got {value}")
    return lo, hi


def _textures(pool, n, generator, work):
    """``n`` textures from ``pool`` (m, C, H, W): a random image of it, flipped
    at random along each axis and rolled by a random shift (periodically).

    When the pool is the batch itself (``m == n``), sample ``i`` takes another
    sample's image whenever there is one.
    """
    m, _, height, width = pool.shape
    if m == n and n > 1:
        # a shift in 1..n-1 never maps a sample onto itself
        which = (torch.arange(n, device=work)
                 + torch.randint(1, n, (n,), generator=generator, device=work)) % n
    else:
        which = torch.randint(0, m, (n,), generator=generator, device=work)
    flip = torch.rand((2, n, 1), generator=generator, device=work) < 0.5
    shift_rows = torch.randint(0, height, (n, 1), generator=generator, device=work)
    shift_cols = torch.randint(0, width, (n, 1), generator=generator, device=work)
    rows = torch.arange(height, device=work)
    cols = torch.arange(width, device=work)
    rows = (torch.where(flip[0], height - 1 - rows, rows) + shift_rows) % height
    cols = (torch.where(flip[1], width - 1 - cols, cols) + shift_cols) % width
    device = pool.device
    which, rows, cols = which.to(device), rows.to(device), cols.to(device)
    # advanced indices around a slice put their (n, H, W) axes first
    picked = pool[which[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return picked.permute(0, 3, 1, 2)


def synthetic_anomalies(x, generator, *, source=None, probability=0.5, opacity=(0.15, 1.0)):
    """Plant blob-shaped foreign patches in a random share of a batch of images.

    For each sample chosen (with probability ``probability``) a region mask
    ``M`` is drawn (:func:`~skdiffad._core.noise.noise_mask`, 2 % to 30 % of the
    image) and the region is blended with a fill ``F``:

    ``x_aug = (1 - beta M) x + beta M F``,  ``beta ~ U(opacity)``.

    The fill is, with probability 1/2, a texture -- another image of the batch
    (or of ``source``), flipped and rolled at random so its content is out of
    place -- and otherwise a noise texture, simplex or Gaussian with
    probability 1/4 each, rescaled to the batch's per-channel mean and spread,
    so the defect is neither brighter nor darker than the data on average.
    Samples not chosen are returned unchanged with an empty mask.

    Parameters
    ----------
    x : torch.Tensor of shape (n, C, H, W)
        A batch of (standardised) images.
    generator : torch.Generator
        Every random choice is drawn from it, on its device; the global RNG is
        not touched.
    source : torch.Tensor of shape (m, C, H, W), optional
        Images the textures are taken from; default the batch itself.
    probability : float, default=0.5
        Chance that a sample gets a defect.
    opacity : tuple of float, default=(0.15, 1.0)
        Range of the blending weight ``beta``.

    Returns
    -------
    x_aug : torch.Tensor like ``x``
        Equal to ``x`` outside the masks.
    mask : torch.Tensor of shape (n, 1, H, W), ``x.dtype``
        1 where a defect was planted, 0 elsewhere.

    Examples
    --------
    >>> import torch
    >>> x = torch.zeros(4, 1, 16, 16)
    >>> x_aug, mask = synthetic_anomalies(x, torch.Generator().manual_seed(0), probability=1.0)
    >>> bool((mask.flatten(1).sum(1) > 0).all())
    True
    """
    if x.ndim != 4 or min(x.shape) < 1:
        raise ValueError(f"x must be a batch of images (n, C, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {x.dtype}")
    if not 0.0 <= float(probability) <= 1.0:
        raise ValueError(f"probability must lie in [0, 1], got {probability}")
    lo, hi = _check_range("opacity", opacity)
    if source is None:
        pool = x
    else:
        if source.ndim != 4 or tuple(source.shape[1:]) != tuple(x.shape[1:]) or len(source) < 1:
            raise ValueError(f"source must have shape (m, {', '.join(map(str, x.shape[1:]))}), "
                             f"got {tuple(source.shape)}")
        pool = source.to(device=x.device, dtype=x.dtype)
    n = x.shape[0]
    work = generator.device

    def to_x(t):
        return t.to(device=x.device, dtype=x.dtype)

    chosen = torch.rand((n, 1, 1, 1), generator=generator, device=work) < float(probability)
    region = noise_mask(x.shape, generator) & chosen
    beta = lo + (hi - lo) * torch.rand((n, 1, 1, 1), generator=generator, device=work)
    pick = torch.rand((n, 1, 1, 1), generator=generator, device=work)
    texture = _textures(pool, n, generator, work)
    smooth = simplex_noise(x.shape, generator)
    white = torch.randn(x.shape, generator=generator, device=work)
    noise = to_x(torch.where(pick < 0.75, smooth, white))
    centre = x.mean(dim=(0, 2, 3), keepdim=True)
    spread = x.std(dim=(0, 2, 3), keepdim=True, unbiased=False)
    spread = torch.where(spread > 0, spread, torch.ones_like(spread))
    use_texture = (pick < 0.5).to(x.device)
    fill = torch.where(use_texture, texture.to(x.dtype), centre + spread * noise)
    beta = to_x(beta)
    region = region.to(x.device)
    blended = x + beta * (fill - x)
    return torch.where(region, blended, x), region.to(x.dtype)


def harmonised_anomalies(network, schedule, x, generator, *, t_start, n_steps=100,
                         n_resample=3, **anomaly_options):
    """Synthetic defects pasted into every image, then harmonised by a denoiser.

    :func:`synthetic_anomalies` (with ``probability=1``) pastes a foreign
    patch into each image; the trained ``network`` then noises the result to
    ``t_start`` and redraws the defect's region conditioned on the rest of
    the image (RePaint, :func:`~skdiffad._core.sampling.edit_samples` with the
    outside kept), so that the patch takes on the data's own texture and its
    seams blend in, while it stays foreign in shape and content. The outside
    of the region is returned exactly.

    Parameters
    ----------
    network, schedule
        A trained noise predictor (Gaussian noise, no mask channel) and its
        schedule.
    x : torch.Tensor of shape (n, C, H, W)
        Good standardised images.
    generator : torch.Generator
        Every random draw comes from it.
    t_start : int
        Step the pasted images are noised to: low keeps the patch, high
        redraws it as normal texture.
    n_steps, n_resample : int
        Chain steps and RePaint's resampling.
    **anomaly_options
        ``source`` and ``opacity`` of :func:`synthetic_anomalies`.

    Returns
    -------
    x_aug : torch.Tensor like ``x``
    mask : torch.Tensor of shape (n, 1, H, W), ``x.dtype``
    """
    pasted, region = synthetic_anomalies(x, generator, probability=1.0, **anomaly_options)
    keep = region < 0.5
    out = edit_samples(network, schedule, pasted, t_start, n_steps=min(n_steps, t_start),
                       generator=generator, keep=keep, n_resample=n_resample)
    return out.to(x.dtype), region


def harmonise(model, x, *, seed, source, n_steps=100, n_resample=3, opacity=None):
    """:func:`harmonised_anomalies` of images ``x`` by a fitted learned model, in
    memory-sized blocks.

    Parameters
    ----------
    model : LearnedModel
        A fitted model whose denoiser can sample (see its ``check_generative``);
        only its public attributes are read.
    x : torch.Tensor of shape (n, C, H, W)
        Good images, in the standardised units the model was trained in.
    seed : int
        Seeds the model's generator (on its device) every draw comes from.
    source : torch.Tensor of shape (m, C, H, W)
        Images the pasted textures are taken from.
    n_steps, n_resample : int
        Chain steps and RePaint's resampling.
    opacity : tuple of float, optional
        Range of the blending weight (:func:`synthetic_anomalies`' default when
        ``None``).

    Returns
    -------
    images, masks : torch.Tensor on the model's device
        The harmonised images and their ``(n, 1, H, W)`` defect masks.
    """
    model.check_generative()
    generator = model.generator(seed)
    t_start = model.schedule_.last_step_below(HARMONISE_LEVEL)
    options = {} if opacity is None else {"opacity": opacity}
    x = x.to(model.device_)
    source = source.to(model.device_)
    images, masks = [], []
    for start, stop in model.blocks(len(x)):
        with torch.no_grad():
            aug, mask = harmonised_anomalies(
                model.denoiser, model.schedule_, x[start:stop], generator, t_start=t_start,
                n_steps=n_steps, n_resample=n_resample, source=source, **options)
        images.append(aug)
        masks.append(mask)
    return torch.cat(images), torch.cat(masks)


class DefectPool:
    """Training defects for a segmentation head, drawn once from a fixed pool.

    Call it as ``pool(x0, generator) -> (x_aug, target)`` in place of
    :func:`synthetic_anomalies`: each image of the batch is, with probability
    ``probability``, replaced by a random image of the pool with its mask;
    the others stay good (empty mask).

    Parameters
    ----------
    images : torch.Tensor of shape (m, C, H, W)
    masks : torch.Tensor of shape (m, 1, H, W)
    probability : float, default=0.5
    """

    def __init__(self, images, masks, probability=0.5):
        self.images, self.masks, self.probability = images, masks, float(probability)

    def __call__(self, x0, generator):
        n, work = x0.shape[0], generator.device
        chosen = torch.rand((n, 1, 1, 1), generator=generator, device=work) < self.probability
        pick = torch.randint(len(self.images), (n,), generator=generator, device=work)
        images = self.images.to(work)[pick].to(device=x0.device, dtype=x0.dtype)
        masks = self.masks.to(work)[pick].to(device=x0.device, dtype=x0.dtype)
        chosen = chosen.to(x0.device)
        return torch.where(chosen, images, x0), torch.where(chosen, masks, 0.0 * masks)
