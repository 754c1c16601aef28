"""The discriminative head of DiffusionAD and DRAEM: anomaly maps learned from synthetic defects.

A reconstruction error map flags every pixel the denoiser restores badly, which
includes fine normal texture it never quite reproduces. DRAEM (Zavrtanik et al.
2021) and DiffusionAD (Zhang et al. 2023) instead train a small segmentation
network (:class:`~skdiffad._core.networks.SegmentationHead2d`) on pairs of an
image and its reconstruction, where the image is a good one with synthetic
defects pasted in (:func:`~skdiffad._core.synthetic.synthetic_anomalies`) and
the target is where they were pasted. At scoring time its per-pixel probability
is the anomaly map. The denoiser is trained first, as for the reconstruction
paradigm, and stays frozen while the head learns.

* :func:`segmentation_loss` -- the head's per-sample training loss, usable as
  ``loss_fn`` of :func:`~skdiffad._core.training.train_network`;
* :func:`segmentation_map` -- the head's anomaly map of a batch, with the fixed
  scoring noise of a plan.

``denoiser=None`` is an ablation: the head sees the image twice instead of the
image and its reconstruction, so it must tell defects from normal texture by
their look alone, with no restoration to compare against. That is weaker
whenever a defect is plausible locally but absent from the normal data.
"""

from __future__ import annotations

import torch
from torch import nn

from .noise import noise_like
from .scoring import reconstruct
from .synthetic import synthetic_anomalies
from .training import masked_mean, observed

__all__ = ["focal_loss", "head_input", "segmentation_loss", "segmentation_map"]


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Element-wise binary focal loss ``-(1 - p_t)^gamma log p_t`` (Lin et al. 2017).

    ``p_t`` is the probability given to the true class; ``gamma=0`` is the
    binary cross-entropy. Computed from logits, so it stays finite for
    confident predictions.
    """
    bce = nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    if not gamma:
        return bce
    p_t = torch.exp(-bce)
    return (1 - p_t) ** gamma * bce


def head_input(denoiser, schedule, x, mask, noise, t0, n_steps, *, mask_input=False):
    """What the head sees: ``x`` and its reconstruction, stacked on the channel axis.

    The reconstruction diffuses ``x`` to step ``t0`` with ``noise`` and runs
    ``n_steps`` DDIM steps back (:func:`~skdiffad._core.paradigms.reconstruct`),
    without gradients. With ``denoiser=None`` the image is repeated instead.

    Returns
    -------
    pair : torch.Tensor of shape (n, 2 * C, *spatial)
    """
    if denoiser is None:
        return torch.cat([x, x], dim=1)
    with torch.no_grad():
        x_hat = reconstruct(denoiser, schedule, x, mask, noise, t0, n_steps, mask_input)
    return torch.cat([x, x_hat.to(x.dtype)], dim=1)


def _pixel_weight(mask):
    """Pixels whose every channel is observed (``None`` when all are)."""
    return None if mask is None else mask.all(dim=1, keepdim=True)


def segmentation_loss(head, denoiser, schedule, x0, mask, generator, *, t0, n_steps,
                      noise_kind="gaussian", mask_input=False, gamma=2.0, defects=None,
                      **anomaly_options):
    """Per-sample loss of the head on a batch of good images with pasted defects.

    Synthetic defects are pasted into ``x0``
    (:func:`~skdiffad._core.synthetic.synthetic_anomalies`); the frozen
    ``denoiser`` reconstructs the result from step ``t0`` with fresh noise
    drawn from ``generator`` (:func:`head_input`); the head maps the pair
    to logits, scored against the pasted-defect mask by

    ``loss = mean(focal_gamma(logits, y)) + mean(|sigmoid(logits) - y|)``

    over the observed pixels. This is DiffusionAD's segmentation loss (focal
    plus an L1 term on the probabilities). The focal term keeps the many easy
    background pixels from drowning the few defect pixels; the L1 term pulls
    the probabilities themselves toward 0 and 1, so the map reads as a
    calibrated per-pixel probability. A soft Dice term was not chosen: it is a
    ratio per image, undefined in spirit on the defect-free images
    (``probability`` of them get no defect) and very noisy on tiny regions,
    while both terms here are plain per-pixel means, comparable across samples.

    Only the head receives gradients: the defects, the noise and the
    reconstruction are computed without them. Use it with
    :func:`~skdiffad._core.training.train_network` through a closure::

        def loss_fn(network, x, mask, generator):
            return segmentation_loss(network, denoiser, schedule, x, mask, generator,
                                     t0=t0, n_steps=n_steps)

    Parameters
    ----------
    head : SegmentationHead2d
        Takes ``2 * C`` channels, gives one logit map.
    denoiser : torch.nn.Module or None
        Trained noise predictor ``denoiser(x_t, t)``; ``None`` for the
        ablation without reconstruction (see the module's notes).
    schedule : NoiseSchedule
        The denoiser's schedule (unused when ``denoiser`` is ``None``).
    x0 : torch.Tensor of shape (n, C, H, W)
        Good standardised images.
    mask : torch.Tensor of shape (n, C, H, W), bool, or None
        Observation mask; unobserved pixels enter as 0 and are left out of the
        loss.
    generator : torch.Generator
        On the device of ``x0``; every random draw comes from it.
    t0 : int
        Step the images are diffused to before reconstruction.
    n_steps : int
        DDIM steps of the reconstruction.
    noise_kind : {"gaussian", "simplex"}, default="gaussian"
        Noise of the partial diffusion (:func:`~skdiffad._core.noise.noise_like`);
        use the kind the denoiser was trained and is scored with.
    mask_input : bool, default=False
        Whether the denoiser takes the observation mask as extra channels.
    gamma : float, default=2.0
        Focusing exponent of the focal term.
    defects : callable, optional
        ``defects(x0, generator) -> (x_aug, target)`` in place of
        :func:`~skdiffad._core.synthetic.synthetic_anomalies` (e.g. a
        :class:`~skdiffad._core.synthetic.DefectPool` of generated defects);
        ``anomaly_options`` are then unused.
    **anomaly_options
        Passed on to :func:`~skdiffad._core.synthetic.synthetic_anomalies`
        (``source``, ``probability``, ``opacity``).

    Returns
    -------
    loss : torch.Tensor of shape (n,), float32
    """
    x0 = observed(x0, mask)
    if defects is None:
        x_aug, target = synthetic_anomalies(x0, generator, **anomaly_options)
    else:
        x_aug, target = defects(x0, generator)
    x_aug, target = x_aug.detach().to(x0.dtype), target.detach().float()
    noise = None
    if denoiser is not None:
        noise = noise_like(noise_kind, x0.shape, generator, device=x0.device, dtype=x0.dtype)
    pair = head_input(denoiser, schedule, x_aug, mask, noise, t0, n_steps,
                      mask_input=mask_input)
    logits = head(pair).float()
    per_pixel = focal_loss(logits, target, gamma) + (torch.sigmoid(logits) - target).abs()
    return masked_mean(per_pixel, _pixel_weight(mask))


def segmentation_map(head, denoiser, schedule, x, noise, t0, n_steps, mask=None, *,
                     mask_input=False):
    """The head's anomaly probability of every pixel of a batch (float64).

    Deterministic: the reconstruction uses the fixed scoring ``noise`` (a
    plan's, shared by every sample), so a pixel's probability depends neither
    on the call nor on the other samples of the batch. Runs without gradients
    and writes nothing in place, so it may be called under
    :func:`torch.inference_mode`.

    Parameters
    ----------
    head : SegmentationHead2d
    denoiser : torch.nn.Module or None
        ``None`` for the ablation without reconstruction; ``schedule``,
        ``noise``, ``t0`` and ``n_steps`` are then unused.
    schedule : NoiseSchedule
    x : torch.Tensor of shape (n, C, H, W)
        Standardised images.
    noise : torch.Tensor of shape (C, H, W) or (R, C, H, W)
        Scoring noise of one draw, or of ``R`` draws (an antithetic pair, say)
        whose probabilities are averaged.
    t0 : int
        Step the images are diffused to before reconstruction.
    n_steps : int
        DDIM steps of the reconstruction.
    mask : torch.Tensor of shape (n, C, H, W), bool, or None, default=None
        Observation mask; unobserved entries enter as 0.
    mask_input : bool, default=False
        Whether the denoiser takes the observation mask as extra channels.

    Returns
    -------
    probabilities : torch.Tensor of shape (n, 1, H, W), float64, in [0, 1]
    """
    x = observed(x, mask)
    with torch.no_grad():
        if denoiser is None:
            return torch.sigmoid(head(head_input(None, None, x, mask, None, t0, n_steps))
                                 .double())
        draws = noise if noise.ndim == x.ndim else noise.unsqueeze(0)
        total = 0.0
        for draw in draws:
            pair = head_input(denoiser, schedule, x, mask, draw.to(x), t0, n_steps,
                              mask_input=mask_input)
            total = total + torch.sigmoid(head(pair).double())
        return total / len(draws)
