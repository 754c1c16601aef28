"""Video: clips of frames; a frame is scored with the frames before it, a score per frame."""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d

from .. import _dask
from .._core.samples import fold
from .._encoders.video import VideoEncoder
from .._reductions import finite_scores, normalised_maps, pixel_statistics
from ._base import Modality

__all__ = ["VideoModality"]


class VideoModality(Modality):
    """Clips as one sample per frame: the frame, the ``n_past`` frames before it
    and/or their differences, stacked as channels (:class:`~skdiffad._encoders.video.VideoEncoder`).

    A frame's map is its pixels' errors (summed over the channels that were
    scored), measured against the errors the same pixel shows on the training
    frames and smoothed in space; its raw score is the map's maximum, and a
    clip's raw scores are smoothed in time (a Gaussian of ``temporal_smoothing``
    frames, within the clip). Clips are read and scored ``chunk_size`` frames at
    a time (:meth:`chunked`), so a long video needs memory for one chunk and one
    score per frame.

    Parameters
    ----------
    owner : str
    denoiser : {"exact", "unet", "predictor"}
    scoring : {"reconstruction", "prediction"}
        Restore the whole stack (the frame with its past), or generate the
        current frame's channels from the past ones (a conditional model).
    n_past : int
    stream : {"frames", "motion", "both"}
    patch_size, stride : int or None
        Exact denoiser: the patches.
    per_site : bool
        Exact denoiser: restore a patch only from training patches of its place.
    image_shape, image_size, channel_axis
        The layout of the frames.
    pixel_normalisation : bool
    smoothing : float
        Spatial Gaussian of the maps, in pixels.
    top_fraction : float
        A frame's raw score is the mean of its map's highest ``top_fraction`` of
        pixels (at least one: 0 is the maximum).
    temporal_smoothing : float
        Temporal Gaussian of the scores, in frames.
    chunk_size : int
        Frames scored at once.
    widths, kernel_size : tuple of int, int
        The U-Net.
    """

    kind = "video"
    rowwise = False  # a frame is read with the ones before it, its score smoothed in time
    sampling_hint = "video detectors score frames; they do not generate them"

    def __init__(self, *, owner, denoiser, scoring, n_past, stream, patch_size, stride, per_site,
                 image_shape, image_size, channel_axis, pixel_normalisation, smoothing,
                 top_fraction, temporal_smoothing, chunk_size, widths, kernel_size):
        super().__init__(owner=owner)
        self.denoiser, self.scoring = denoiser, scoring
        self.n_past, self.stream = int(n_past), stream
        self.patch_size, self.stride, self.per_site = patch_size, stride, bool(per_site)
        self.image_shape, self.image_size, self.channel_axis = image_shape, image_size, channel_axis
        self.pixel_normalisation, self.smoothing = pixel_normalisation, float(smoothing)
        self.top_fraction = float(top_fraction)
        self.temporal_smoothing, self.chunk_size = float(temporal_smoothing), int(chunk_size)
        self.widths, self.kernel_size = tuple(int(w) for w in widths), int(kernel_size)

    @staticmethod
    def claims(X):
        """A list of clips: arrays of at least three axes (frames first)."""
        return (isinstance(X, (list, tuple)) and len(X) > 0
                and all(isinstance(c, np.ndarray) and c.ndim >= 3 for c in X))

    # ------------------------------------------------------------------ recipe
    def make_encoder(self):
        patch = self.patch_size if self.denoiser == "exact" else None
        return VideoEncoder(self.n_past, self.stream, self.image_shape, self.image_size,
                            self.channel_axis, patch, self.stride, owner=self.owner)

    def current_mask(self):
        """``(1, C', 1, 1)`` bool: the channels that hold the current frame."""
        current = torch.as_tensor(self.encoder_.current_channels())
        return current[None, :, None, None]

    def make_model(self, encoded, settings):
        conditional = self.scoring == "prediction"
        hidden = self.current_mask() if conditional else None
        if self.denoiser == "exact":
            return settings.exact_model("imputation" if conditional else "reconstruction",
                                        exclusion="two-fold", per_site=self.per_site,
                                        hidden=hidden)
        network = {"name": "conv2d", "widths": self.widths, "kernel_size": self.kernel_size}
        n = len(encoded.training)
        if self.denoiser == "predictor":
            return settings.learned_model("prediction", network, n, hidden=hidden)
        if conditional:
            return settings.learned_model("imputation", network, n, hidden=hidden,
                                          training_masks="scoring")
        return settings.learned_model("reconstruction", network, n)

    def explain_exclusion(self, exc):
        return ("the training frames cannot be scored as new frames would be: a frame's "
                "patches may only be restored from the other half of the training frames, "
                f"and none is left there ({exc}); fit on more frames")

    @property
    def context(self):
        """Frames a sample holds (the current one and ``n_past`` before it)."""
        return self.encoder_.context

    # --------------------------------------------------------------- reduction
    def fold(self, blocks, encoded):
        """Pixel errors of every frame, ``(n, H, W)`` at the working size: the squared
        errors of the channels scored at each pixel over their number."""
        sums, counts = fold(encoded.samples, blocks)
        sums, counts = sums.sum(axis=1), counts.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_pixel = np.where(counts > 0, sums / counts, 0.0)
        return per_pixel.reshape((len(encoded.sizes),) + tuple(encoded.working_size))

    def fit_reduction(self, folded, encoded):
        """Per-pixel mean and scale of the training frames' error maps (``None``
        without ``pixel_normalisation``)."""
        return pixel_statistics(folded) if self.pixel_normalisation else None

    def maps(self, folded):
        """Normalised, spatially smoothed error maps."""
        return normalised_maps(folded, self.reduction_, self.smoothing)

    def frame_scores(self, folded):
        """Raw score of each frame (before temporal smoothing): the mean of its map's
        highest ``top_fraction`` of pixels."""
        maps = self.maps(folded).reshape(len(folded), -1)
        k = max(1, int(round(self.top_fraction * maps.shape[1])))
        if k == 1:
            return maps.max(axis=1)
        return np.partition(maps, maps.shape[1] - k, axis=1)[:, -k:].mean(axis=1)

    def smooth(self, raw, groups):
        """Scores smoothed in time within each clip (``groups``: frames per clip)."""
        if self.temporal_smoothing <= 0:
            return np.asarray(raw, dtype=np.float64)
        out, start = [], 0
        for n in groups:
            out.append(gaussian_filter1d(np.asarray(raw[start:start + n], dtype=np.float64),
                                         self.temporal_smoothing, mode="nearest"))
            start += n
        return np.concatenate(out) if out else np.zeros(0)

    @property
    def smoothing_radius(self):
        """Frames on each side that a smoothed score reads."""
        if self.temporal_smoothing <= 0:
            return 0
        return int(4.0 * self.temporal_smoothing + 0.5)  # scipy's truncate=4

    def reduce(self, folded, encoded):
        return self.smooth(self.frame_scores(folded), encoded.groups)

    # ----------------------------------------------------------------- scoring
    def chunked(self, model, frames, start, reduce, index=0):
        """``reduce`` of the folded error maps of frames ``start ..`` of ``frames`` (user
        units; the ``start`` frames before them are their past), ``chunk_size`` frames at
        a time: each chunk is read, checked and standardised with the ``n_past`` frames
        before it, so no more than a chunk is ever held in model units (``index``: the
        clip's place in the input, for messages)."""
        out = []
        for a in range(start, len(frames), self.chunk_size):
            b = min(a + self.chunk_size, len(frames))
            lo = max(0, a - (self.context - 1))
            clip = self.encoder_.read_frames(frames[lo:b], index)
            out.append(reduce(self.errors(model, self.encoder_.encode_frames(clip, a - lo,
                                                                             b - lo))))
        return np.concatenate(out) if out else np.zeros(0)

    def block_raw_scores(self, model, frames, start, index=0):
        """Raw (unsmoothed) scores of the frames of one block of a clip: ``frames`` (user
        units) holds the ``start`` frames before the block (at most ``n_past``: fewer only
        at the clip's start), then the block's own frames."""
        return self.chunked(model, frames, start, self.frame_scores, index)

    def scores(self, model, X):
        """A score per frame of every clip of ``X``, clip after clip."""
        clips = self.encoder_.split(X)
        raw = [self.block_raw_scores(model, clip, 0, i) for i, clip in enumerate(clips)]
        return finite_scores(self.smooth(np.concatenate(raw), [len(c) for c in clips]))

    def anomaly_map(self, model, X):
        """Maps of every frame of every clip, ``(n_frames, H, W)`` at the working size."""
        return np.concatenate([self.chunked(model, clip, 0, self.maps, i)
                               for i, clip in enumerate(self.encoder_.split(X))])

    # -------------------------------------------------------------------- dask
    def fit_encode_dask(self, X, *, max_samples, seed):
        raise TypeError(f"{self.owner} fits on clips in memory (a list of arrays); a Dask "
                        "array of frames can be scored (decision_function), not fitted on")

    def dask_scores(self, estimator, X, method="decision_function"):
        """Scores of a Dask array of one clip's frames (chunked along time), block by
        block with the frames before each block and the scores around it: the same
        bits as the clip in memory."""
        if method != "decision_function":
            raise TypeError(f"{self.owner}.{method} does not take a Dask collection: compute "
                            "decision_function(X) (lazy, blockwise) and map the scores "
                            "yourself")
        return _dask.frames(self, estimator.model_, X)
