"""Video: clips of frames as stacks of the current frame, the frames before it and their motion."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from .._core.samples import ArraySamples, PatchSamples
from ._base import CLIP, Encoded, InputRecord, column_moments
from .images import ImageEncoder

__all__ = ["STREAMS", "VideoEncoder"]

#: What a frame's sample holds: the frames themselves, their differences, or both.
STREAMS = ("frames", "motion", "both")


class VideoEncoder(InputRecord):
    """Fitted layout and scaling of :class:`~skdiffad.DiffusionVideoDetector`'s clips.

    A clip is an array of frames: ``(T, H, W)`` grey, ``(T, H, W, C)`` or
    ``(T, C, H, W)`` (``channel_axis``), or flat frames ``(T, H*W*C)`` read as
    :class:`~skdiffad._encoders.ImageEncoder` reads flat images; several clips
    come as a list. Frame ``t`` of a clip becomes one sample ``(C', H, W)``:

    * ``"frames"``: frames ``t - n_past .. t`` (oldest first), standardised with
      the training pixels' per-channel mean and standard deviation;
    * ``"motion"``: the ``n_past`` differences ``f_s - f_{s-1}`` for
      ``s = t - n_past + 1 .. t``, divided by the training differences' standard
      deviation per channel;
    * ``"both"``: the frames, then the differences.

    The channels that hold frame ``t`` (the frame itself, its difference with
    the one before) are the *current* ones (:meth:`current_channels`); the others
    are its past. Before the first frame a clip is padded with that frame, so
    every frame gets a sample (the first frame has no motion).

    Parameters
    ----------
    n_past : int
        Frames before the current one that a sample holds.
    stream : {"frames", "motion", "both"}
    image_shape, image_size, channel_axis
        The layout of the frames (see :class:`~skdiffad._encoders.ImageEncoder`).
    patch, stride : int or None
        Cut each sample into patches (the exact denoiser), as the image encoder does.
    owner : str

    Attributes
    ----------
    frames_ : ImageEncoder
        The layout of the frames (channels, working size), fitted on the first clip.
    n_channels_ : int
        Channels of a frame.
    size_ : tuple of int
        Working height and width.
    mean_, scale_ : ndarray of shape (n_channels_,)
        Standardisation of the frames.
    motion_scale_ : ndarray of shape (n_channels_,)
        Standard deviation of the standardised training frames' differences.
    patch_, stride_ : int or None
    n_features_in_ : int
        Values per frame (``C * H * W``).
    feature_names_in_ : ndarray or None
        Column names of a DataFrame of flat frames.
    """

    def __init__(self, n_past=2, stream="motion", image_shape="auto", image_size=None,
                 channel_axis="auto", patch=None, stride=None, owner="DiffusionVideoDetector"):
        self.n_past = int(n_past)
        self.stream = stream
        self.image_shape = image_shape
        self.image_size = image_size
        self.channel_axis = channel_axis
        self.patch = patch
        self.stride = stride
        self.owner = owner

    # ------------------------------------------------------------------ API
    @property
    def context(self):
        """Frames a sample holds: the current one and ``n_past`` before it."""
        return self.n_past + 1

    @property
    def n_stacked(self):
        """Channels of a sample."""
        per_frame = {"frames": self.n_past + 1, "motion": self.n_past,
                     "both": 2 * self.n_past + 1}[self.stream]
        return per_frame * self.n_channels_

    def current_channels(self):
        """Boolean ``(n_stacked,)``: the channels that hold the current frame."""
        c, k = self.n_channels_, self.n_past
        frames = np.zeros((k + 1) * c, dtype=bool)
        frames[k * c:] = True
        motion = np.zeros(k * c, dtype=bool)
        motion[(k - 1) * c:] = True
        return {"frames": frames, "motion": motion,
                "both": np.concatenate([frames, motion])}[self.stream]

    def fit_transform(self, X):
        """Fit the layout and scaling on the training clips and encode every frame."""
        clips = _as_clips(X, self.owner)
        self.frames_ = ImageEncoder(self.image_shape, self.image_size, self.channel_axis,
                                    owner=self.owner)
        try:
            first, _ = self.frames_.fit_read(clips[0])
        except ValueError as exc:
            raise ValueError(f"clip 0: {exc}") from None
        self.n_channels_ = self.frames_.n_channels_
        self.size_ = self.frames_.size_
        self.patch_, self.stride_ = self._patch_geometry()
        read = [first] + [self._read_clip(clip, i) for i, clip in enumerate(clips[1:], 1)]
        self._check_lengths(read)
        pixels = np.concatenate([r.transpose(1, 0, 2, 3).reshape(self.n_channels_, -1)
                                 for r in read], axis=1)
        with np.errstate(over="ignore", invalid="ignore"):
            self.mean_, std = pixels.mean(axis=1), pixels.std(axis=1)
        if not (np.all(np.isfinite(self.mean_)) and np.all(np.isfinite(std))):
            self.mean_, std = column_moments(pixels.T)
        self.scale_ = _positive(std, self.mean_)
        self.motion_scale_ = np.ones(self.n_channels_)
        standard = [self.standardise(r) for r in read]
        if self.stream != "frames":
            diffs = np.concatenate([np.diff(z, axis=0).transpose(1, 0, 2, 3)
                                    .reshape(self.n_channels_, -1) for z in standard], axis=1)
            if diffs.shape[1]:
                self.motion_scale_ = _positive(diffs.std(axis=1), np.zeros(self.n_channels_))
        self.n_features_in_ = self.frames_.n_features_in_
        self.feature_names_in_ = self.frames_.feature_names_in_
        return self.encode_clips(standard)

    def transform(self, X):
        """Encode every frame of clips of the fitted kind."""
        return self.encode_clips([self.read_frames(clip, i)
                                  for i, clip in enumerate(self.split(X))])

    def split(self, X):
        """The clips of ``X`` as given (arrays or DataFrames of flat frames), each
        checked to hold at least :attr:`context` frames; read them with
        :meth:`read_frames`, a stretch at a time."""
        clips = _as_clips(X, self.owner)
        self._check_lengths(clips)
        return clips

    def read_frames(self, frames, index=0):
        """Frames of the fitted kind (a clip or a stretch of one; ``index``: the clip's
        place in the input, for messages), checked and standardised: ``(T, C, H, W)``
        float64 at the working size."""
        return self.standardise(self._read_clip(frames, index))

    def standardise(self, frames):
        """Frames ``(T, C, H, W)`` in pixel units -> model units."""
        z = (frames - self.mean_[None, :, None, None]) / self.scale_[None, :, None, None]
        return np.clip(z, -CLIP, CLIP)

    def stacked(self, clip, start, stop):
        """Samples of frames ``start .. stop - 1`` of a standardised ``clip``:
        ``(stop - start, n_stacked, H, W)`` float32, from those frames and the
        ``n_past`` before them (the clip's first frame repeated before its start)."""
        k = self.n_past
        index = np.clip(np.arange(start - k, stop), 0, None)
        window = clip[index]                                  # (m + k, C, H, W)
        m = stop - start
        parts = []
        if self.stream in ("frames", "both"):
            parts += [window[j:j + m] for j in range(k + 1)]
        if self.stream in ("motion", "both"):
            diffs = np.diff(window, axis=0) / self.motion_scale_[None, :, None, None]
            parts += [diffs[j:j + m] for j in range(k)]
        return np.concatenate(parts, axis=1).astype(np.float32)

    def encode_frames(self, clip, start, stop):
        """:class:`Encoded` frames ``start .. stop - 1`` of a standardised ``clip``."""
        return self._encoded(self.stacked(clip, start, stop), [stop - start])

    def encode_clips(self, clips):
        """:class:`Encoded` every frame of standardised ``clips``; ``groups`` holds each
        clip's number of frames."""
        stacked = np.concatenate([self.stacked(c, 0, len(c)) for c in clips])
        return self._encoded(stacked, [len(c) for c in clips])

    # ------------------------------------------------------------- helpers
    def _encoded(self, stacked, groups):
        if self.patch_:
            samples = PatchSamples(stacked, self.patch_, self.stride_)
        else:
            samples = ArraySamples(stacked)
        size = tuple(stacked.shape[2:])
        return Encoded(samples, working_size=size, sizes=[size] * len(stacked),
                       groups=list(groups))

    def _patch_geometry(self):
        if not self.patch:
            return None, None
        patch = min(int(self.patch), min(self.size_))
        stride = patch if self.stride is None else min(int(self.stride), patch)
        return patch, max(1, stride)

    def _read_clip(self, clip, i):
        try:
            frames, _ = self.frames_.read(clip)
        except ValueError as exc:
            raise ValueError(f"clip {i}: {exc}") from None
        return frames

    def _check_lengths(self, clips):
        for i, clip in enumerate(clips):
            if len(clip) < self.context:
                raise ValueError(
                    f"clip {i} has {len(clip)} frame(s), fewer than the {self.context} a "
                    f"sample holds (n_past={self.n_past} frames before the current one); pass "
                    "longer clips or a smaller n_past")


def _positive(std, centre):
    return np.where(std > 1e-12 * np.maximum(1.0, np.abs(centre)), std, 1.0)


def _as_clips(X, owner):
    """A list of clips from one clip or a list of them."""
    if isinstance(X, (list, tuple)):
        if len(X) == 0:
            raise ValueError(f"{owner} got an empty list of clips")
        clips = list(X)
    else:
        clips = [X]
    out = []
    for i, clip in enumerate(clips):
        if sparse.issparse(clip):
            raise TypeError(f"{owner} does not accept sparse input: pass a dense array")
        if isinstance(clip, (str, bytes)) or not (
                isinstance(clip, (np.ndarray, pd.DataFrame)) or hasattr(clip, "__array__")
                or isinstance(clip, (list, tuple))):
            raise TypeError(f"clip {i} is a {type(clip).__name__}; {owner} takes a clip as an "
                            "array of frames (T, H, W), (T, H, W, C), (T, C, H, W) or flat "
                            "(T, H*W*C), and several clips as a list of them")
        if not isinstance(clip, pd.DataFrame):
            clip = np.asarray(clip)
            if clip.ndim < 2:
                raise ValueError(f"clip {i} has shape {clip.shape}: a clip is an array of frames. "
                                 "Reshape your data as flat frames (T, H*W*C), or pass "
                                 "(T, H, W[, C])")
            if clip.ndim not in (2, 3, 4):
                raise ValueError(f"clip {i} has shape {clip.shape}; a clip is an array of "
                                 "frames (T, H, W), (T, H, W, C), (T, C, H, W) or flat "
                                 "(T, H*W*C), and several clips come as a list")
        out.append(clip)
    return out
