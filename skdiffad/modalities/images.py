"""Images: arrays, flat rows, files or PIL images; pixel maps and a score per image."""

from __future__ import annotations

import numpy as np
import torch

from .. import _dask
from .._core.noise import noise_mask
from .._core.synthetic import HARMONISE_LEVEL, harmonise
from .._encoders import ImageEncoder, is_image_list
from .._reductions import normalised_maps, pixel_errors, pixel_statistics
from ._base import Modality, _seed, edit

__all__ = ["ImageModality"]

_RESAMPLE = 3  # RePaint's resampling in the inpainting chains


class ImageModality(Modality):
    """Images as ``(C, H, W)`` samples (or patches of them); error maps and their maxima.

    A pixel's error is folded from the patches (or the images) that restored it
    (:func:`~skdiffad._reductions.pixel_errors`); the reduction measures it in units of
    the spread of the errors the same pixel shows on the training images
    (``reduction_``: per-pixel scale), smooths the map and takes its maximum as the
    image's score.

    Parameters
    ----------
    owner : str
    denoiser : {"exact", "unet"}
    scoring : {"reconstruction", "density", "feature", "discriminative"}
    patch_size : int or "auto"
        Exact denoiser: side of the patches.
    stride : int or None
        Exact denoiser: pixels between patches.
    image_shape, image_size, channel_axis
        The layout of the input (see :class:`~skdiffad._encoders.ImageEncoder`).
    pixel_normalisation : bool
        Measure each pixel's error against the training maps.
    smoothing : float
        Standard deviation of the Gaussian that smooths the maps.
    widths : tuple of int
    kernel_size : int
    attention : bool
    noise : {"gaussian", "simplex"}
    guidance : float
    feature_extractor : torch.nn.Module or None
    head_widths : tuple of int
    head_defects : {"synthetic", "generated"}
        The U-Net and its paradigms' settings (see the detector).
    """

    kind = "images"
    anomaly_kinds = ("blend", "inpaint", "fewshot")
    fewshot_needs_masks = True
    sampling_hint = ("fit it with denoiser='unet' (and noise='gaussian'), which trains a "
                     "denoiser of the images")

    def __init__(self, *, owner, denoiser, scoring, patch_size, stride, image_shape, image_size,
                 channel_axis, pixel_normalisation, smoothing, widths, kernel_size, attention,
                 noise, guidance, feature_extractor, head_widths, head_defects):
        super().__init__(owner=owner)
        self.denoiser, self.scoring = denoiser, scoring
        self.patch_size, self.stride = patch_size, stride
        self.image_shape, self.image_size, self.channel_axis = image_shape, image_size, channel_axis
        self.pixel_normalisation, self.smoothing = pixel_normalisation, float(smoothing)
        self.widths, self.kernel_size = tuple(int(w) for w in widths), int(kernel_size)
        self.attention, self.noise, self.guidance = attention, noise, float(guidance)
        self.feature_extractor = feature_extractor
        self.head_widths, self.head_defects = tuple(int(w) for w in head_widths), head_defects

    @staticmethod
    def claims(X):
        return is_image_list(X) or np.ndim(X) in (3, 4)

    @classmethod
    def generation_defaults(cls, X):
        return {"denoiser": "unet"}

    def can_sample(self):
        return self.denoiser != "exact" and self.noise == "gaussian"

    # ------------------------------------------------------------------ recipe
    def make_encoder(self):
        patch = self.patch_size if self.denoiser == "exact" else None
        return ImageEncoder(self.image_shape, self.image_size, self.channel_axis, patch,
                            self.stride, owner=self.owner)

    def make_model(self, encoded, settings):
        if self.denoiser == "exact":
            # a patch is restored from stored patches of its own border class only
            # (BorderPatchSamples): never with a training image's interior on its border
            return settings.exact_model("reconstruction", exclusion="two-fold", per_site=True)
        network = {"name": "conv2d", "widths": self.widths, "kernel_size": self.kernel_size}
        if self.attention:
            network["attention"] = True
        return settings.learned_model(
            self.scoring, network, len(encoded.training), noise=self.noise,
            guidance=self.guidance, feature_extractor=self.feature_extractor,
            head={"widths": self.head_widths, "kernel_size": 3},
            head_defects=self.head_defects)

    def explain_exclusion(self, exc):
        return ("every stored training patch comes from the scored patch's own image, so "
                "the training images cannot be scored as new images would be; fit on more "
                f"images ({exc.n_positions} given)")

    @property
    def patch_size_(self):
        """The exact denoiser's resolved patch side (``None`` for the U-Net)."""
        return self.encoder_.patch_

    # --------------------------------------------------------------- reduction
    def fold(self, blocks, encoded):
        """Pixel errors of every image, ``(n, H, W)`` at the working size."""
        return pixel_errors(blocks, encoded.samples, len(encoded.sizes), encoded.working_size)

    def fit_reduction(self, folded, encoded):
        """Per-pixel scale of the training images' error maps (see
        ``pixel_normalisation``); ``None`` when it is off.

        A map is not centred on the training maps' mean: the training errors come from
        half the stored patches (the two-fold rule), so a new normal image, restored
        from all of them, is restored better, and its centred map was negative wherever
        it has content and zero on an always blank margin, where such a map then had
        its maximum (issue #29). A detector fitted before keeps its ``"mean"``."""
        if not self.pixel_normalisation:
            return None
        return pixel_statistics(folded, centred=False)

    def maps(self, folded):
        """Normalised and smoothed error maps at the working size."""
        return normalised_maps(folded, self.reduction_, self.smoothing)

    def reduce(self, folded, encoded):
        """One score per image: the maximum of its map."""
        return self.maps(folded).reshape(len(folded), -1).max(axis=1)

    def anomaly_map(self, model, X):
        """Maps of ``X`` at each input's own size (a list when the sizes differ)."""
        encoded = self.encode(X)
        maps = self.maps(self.errors(model, encoded))
        out = [_at_size(m, size) for m, size in zip(maps, encoded.sizes)]
        if len({o.shape for o in out}) == 1:
            return np.stack(out)
        return out

    # -------------------------------------------------------------------- dask
    def dask_scores(self, estimator, X, method="decision_function"):
        """Scores (or, for ``anomaly_map`` / ``predict_mask``, maps at the input's size)
        of a Dask array of images, block by block."""
        if method not in ("anomaly_map", "predict_mask"):
            return super().dask_scores(estimator, X, method)
        if not hasattr(X, "chunks") or X.ndim < 2:
            raise TypeError(f"{self.owner}.{method} takes a Dask array of images (n, H, W), "
                            f"(n, H, W, C), (n, C, H, W) or flat rows, got {type(X).__name__}")
        dtype = bool if method == "predict_mask" else np.float64
        return _dask.rowwise(estimator, method, X, out_dtype=dtype,
                             out_event=self.encoder_.map_size(X.shape))

    # -------------------------------------------------------------- generation
    def real_anomalies(self, anomalies, masks=None):
        values = self.encode(anomalies).samples.values
        if masks is not None:
            masks = np.asarray(masks, dtype=bool)
            size = values.shape[2:]
            if masks.shape != (len(values),) + tuple(size):
                raise ValueError(f"anomaly_masks must have shape ({len(values)}, "
                                 f"{size[0]}, {size[1]}), got {masks.shape}")
            if not masks.reshape(len(masks), -1).any(axis=1).all():
                raise ValueError("every anomaly mask must mark at least one pixel")
        return values, masks

    def plant(self, kind, n, strength, rng, *, model, pool, anomalies=None, n_steps=100):
        """Images with a defect of ``kind`` and its pixel mask (see :mod:`skdiffad.generation`)."""
        model = self.sampling_model(model)
        x = pool[rng.randint(len(pool), size=n)]
        if kind == "fewshot":
            real, real_masks = anomalies
            pick = rng.randint(len(real), size=n)
            region = real_masks[pick][:, None]
            opacity = min(1.0, 0.5 + 0.5 * strength)
            planted = x + opacity * (real[pick] - x)
            x = np.where(region, planted, x).astype(np.float32)
        elif kind == "blend":
            opacity = min(1.0, 0.3 + 0.5 * strength)
            images, masks = harmonise(
                model, torch.as_tensor(x), seed=_seed(rng), source=torch.as_tensor(pool),
                n_steps=n_steps, n_resample=_RESAMPLE, opacity=(opacity, opacity))
            return images.cpu().numpy(), masks.cpu().numpy()[:, 0].astype(int)
        else:  # inpaint
            generator = torch.Generator().manual_seed(_seed(rng))
            region = noise_mask(x.shape, generator, coverage=(0.02, 0.2)).numpy()
        if kind == "inpaint":
            out = edit(model, x, None, rng, n_steps, keep=~region, temperature=1 + strength,
                       n_resample=_RESAMPLE)
        else:
            out = edit(model, x, HARMONISE_LEVEL, rng, n_steps, keep=~region,
                       n_resample=_RESAMPLE)
        return out, region[:, 0].astype(int)


def _at_size(error_map, size):
    if tuple(error_map.shape) == tuple(size):
        return error_map
    x = torch.as_tensor(error_map)[None, None]
    return torch.nn.functional.interpolate(x, size=tuple(size), mode="bilinear",
                                           align_corners=False)[0, 0].numpy()
