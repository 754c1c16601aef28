"""The discriminative paradigm: a segmentation head trained on synthetic defects
(DRAEM, DiffusionAD)."""

from __future__ import annotations

import dataclasses

import torch

# modules, not names: skdiffad._core.discriminative imports the batch functions
# of this package, so its names may not exist yet when this module is loaded
from .. import discriminative as heads
from .. import synthetic
from ..networks import build_network, place
from ..plans import RECONSTRUCTION_RANGE
from ..training import train_network
from .base import one_of, optional_positive_int
from .reconstruction import Restoring

__all__ = ["Discriminative"]


def head_grid_point(plan):
    """Index of the plan's middle ``t0``, the one the segmentation head learns and scores at."""
    return len(plan.timesteps) // 2


class Discriminative(Restoring):
    """DRAEM/DiffusionAD, for images ``(C, H, W)``: a segmentation head
    (:class:`~skdiffad._core.networks.SegmentationHead2d`) is trained, after
    the denoiser and by the same loop, to find synthetic defects pasted into
    the training images from the image and its reconstruction at the plan's
    middle ``t0`` (:func:`~skdiffad._core.discriminative.segmentation_loss`);
    an image's errors are the head's per-pixel probability
    (:func:`~skdiffad._core.discriminative.segmentation_map`, averaged over the
    antithetic noise pair of that ``t0``), shared by the channels. The
    denoiser is trained as for ``"reconstruction"``; the head reads plain
    (unguided) reconstructions.

    Parameters
    ----------
    n_grid, n_inference_steps, t0_range, noise
        As for :class:`~skdiffad._core.paradigms.reconstruction.Restoring`.
    head : dict, optional
        Settings of the segmentation head, e.g. ``{"widths": (16, 32),
        "kernel_size": 3}`` (the
        :class:`~skdiffad._core.networks.SegmentationHead2d` defaults when
        ``None``); its input channels (``2 C``: the image and its
        reconstruction) and single output are filled in.
    head_steps : int, optional
        Gradient steps of the head's training; ``None`` gives it the
        denoiser's budget (``training.max_steps``). The head is trained with a
        copy of the model's training settings whose ``max_steps`` is this.
    head_defects : {"synthetic", "generated"}, default="synthetic"
        The head's training defects. ``"synthetic"`` pastes DRAEM's patches
        into each batch (:func:`~skdiffad._core.synthetic.synthetic_anomalies`);
        ``"generated"`` draws, once after the denoiser is trained, a pool of
        up to :data:`~skdiffad._core.synthetic.POOL_SIZE` training images with
        such patches harmonised by the denoiser
        (:func:`~skdiffad._core.synthetic.harmonise`), and feeds the head from
        it (:class:`~skdiffad._core.synthetic.DefectPool`); it needs Gaussian
        noise.
    """

    name = "discriminative"
    options = Restoring.options + ("head", "head_steps", "head_defects")
    needs_images = True

    def __init__(self, *, n_grid=8, n_inference_steps=5, t0_range=RECONSTRUCTION_RANGE,
                 noise="gaussian", head=None, head_steps=None, head_defects="synthetic"):
        super().__init__(n_grid=n_grid, n_inference_steps=n_inference_steps,
                         t0_range=t0_range, noise=noise)
        if head is not None and not isinstance(head, dict):
            raise TypeError(f"head must be a dict of the head's settings or None, got "
                            f"{type(head).__name__}")
        self.head = None if head is None else {
            key: tuple(value) if isinstance(value, list) else value for key, value in head.items()}
        self.head_steps = optional_positive_int("head_steps", head_steps)
        self.head_defects = one_of("head_defects", head_defects, synthetic.DEFECT_SOURCES)
        if head_defects == "generated" and self.noise != "gaussian":
            raise ValueError("head_defects='generated' harmonises defects with the denoiser's "
                             "reverse chain, which needs noise='gaussian'")

    # ------------------------------------------------------------- training
    def fit_extra(self, model, samples, seed):
        """Train the segmentation head on the frozen denoiser's reconstructions
        (weights from ``seed + 4``, training noise from ``seed + 5``, the
        generated-defect pool from ``seed + 6``)."""
        channels = int(model.event_shape_[0])
        config = {"name": "seghead2d", **(self.head or {}),
                  "in_channels": 2 * channels, "out_channels": 1}
        head = build_network(config)
        head.reset_parameters(torch.Generator().manual_seed(seed + 4))
        head = place(head, model.device_)
        denoiser = model.denoiser
        schedule = model.schedule_.to(model.device_)
        t0 = int(model.plan_.timesteps[head_grid_point(model.plan_)])
        n_steps, noise_kind, mask_input = self.n_inference_steps, self.noise, model.mask_input_

        defects = (self._defect_pool(model, samples, seed + 6)
                   if self.head_defects == "generated" else None)

        def loss(network, x, mask, generator):
            return heads.segmentation_loss(network, denoiser, schedule, x, mask, generator,
                                           t0=t0, n_steps=n_steps, noise_kind=noise_kind,
                                           mask_input=mask_input, defects=defects)

        max_steps = model.training.max_steps if self.head_steps is None else self.head_steps
        training = dataclasses.replace(model.training, max_steps=max_steps,
                                       label="segmentation head")
        history = train_network(head, loss, samples, training, seed=seed + 5,
                                device=model.device_)
        return {"head": head.eval()}, {"head": history}

    @staticmethod
    def _defect_pool(model, samples, seed):
        """Generated defects of up to ``POOL_SIZE`` training images (on the device)."""
        order = torch.randperm(len(samples), generator=torch.Generator().manual_seed(seed))
        x, _ = samples.take(order[:synthetic.POOL_SIZE].sort().values, model.device_)
        return synthetic.DefectPool(*synthetic.harmonise(model, x, seed=seed, source=x))

    # -------------------------------------------------------------- scoring
    def batch_errors(self, networks, schedule, plan, x, mask=None, *, mask_input=False):
        """The head's probability map of a batch, repeated over the channels."""
        k = head_grid_point(plan)
        probs = heads.segmentation_map(networks["head"], networks["denoiser"], schedule, x,
                                       plan.noise[k], int(plan.timesteps[k]),
                                       plan.n_inference_steps, mask, mask_input=mask_input)
        counts = (torch.ones(x.shape, dtype=torch.float64, device=x.device) if mask is None
                  else mask.to(torch.float64))
        return probs * counts, counts
