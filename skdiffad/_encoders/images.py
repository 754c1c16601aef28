"""Images: arrays, flat rows, files or PIL images as ``(C, H, W)`` samples."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from scipy import sparse

from .._core.samples import ArraySamples, PatchSamples
from ._base import CLIP, Encoded, InputRecord, column_moments, standardise, validated

__all__ = ["CHANNEL_AXES", "BorderPatchSamples", "ImageEncoder"]

CHANNEL_AXES = ("auto", "first", "last")

#: Largest side of the patches ``patch="auto"`` picks: half the working
#: image's shorter side, up to this (the cost of the nearest-patch search grows
#: with the square of the side).
AUTO_PATCH_CAP = 16
_CHANNELS = (1, 3, 4)


class BorderPatchSamples(PatchSamples):
    """Patches of images (:class:`~skdiffad._core.samples.PatchSamples`) whose *site* is
    their place relative to the image's border, not in the grid of patches.

    A patch is in one of nine border classes: whether it touches the top edge, the
    bottom edge or neither, times whether it touches the left edge, the right edge or
    neither (``3 * row_class + column_class``; a patch as tall as the image counts as
    touching the top). An exact model that restores a patch only from stored patches of
    its own site (``per_site``) then restores a patch on the image's border only from
    patches that lay on the same border of the training images, and an interior patch
    from any interior patch, as textures shifted at random need. A position-free search
    may restore a border patch with one cut from the interior of a training image, whose
    content then lands on the border: on MNIST an anomaly's map peaked in the outer two
    pixels, where the training images are blank, for 25-78% of anomalies (issue #29).
    """

    def __init__(self, images, patch, stride, observed=None):
        super().__init__(images, patch, stride, observed)
        height, width = self.images.shape[2:]
        self.sites = (3 * _border_class(self.top_, self.patch, height)
                      + _border_class(self.left_, self.patch, width))
        self.n_sites = 9


def _border_class(starts, patch, side):
    """0 for patches at the start of an axis, 2 at its end, 1 in between."""
    return np.where(starts == 0, 0, np.where(starts + patch >= side, 2, 1)).astype(np.int64)


def is_image_list(X):
    """Whether ``X`` is a list of images (file paths or PIL images), not numbers."""
    return isinstance(X, (list, tuple)) and len(X) > 0 and not isinstance(X[0], (int, float))


class ImageEncoder(InputRecord):
    """Fitted layout, size and per-channel scaling of :class:`~skdiffad.DiffusionImageDetector`.

    Accepted inputs, and how the layout is decided:

    * a 3-D array ``(n, H, W)``: grayscale images;
    * a 4-D array: channels on axis 1 ``(n, C, H, W)`` or axis 3
      ``(n, H, W, C)``, with ``C`` in 1, 3 or 4. ``channel_axis="auto"`` takes the
      one axis of size 1, 3 or 4; when both are (``(n, 3, 8, 3)``) it raises and
      asks for ``channel_axis="first"`` or ``"last"``;
    * a 2-D array ``(n, H*W*C)``: flat images (scikit-learn pipelines and PyOD
      loops hand detectors 2-D ``X``), read row-major as ``(H, W, C)`` with
      ``image_shape=(H, W[, C])``. ``image_shape="auto"`` reads ``k*k`` values
      as a ``k x k`` grayscale image (MNIST's 784), ``3*k*k`` as ``k x k`` RGB,
      and anything else as a one-row grayscale image ``(1, n_features)``;
    * a list of file paths or PIL images, of any sizes: read with Pillow
      (grayscale stays grayscale, anything else becomes RGB) and resized to
      ``image_size``, which they then need unless they share one size.

    ``image_size=(H, W)`` resizes every input to that working size (bilinear,
    antialiased); maps are brought back to each input's own size.

    Attributes
    ----------
    n_channels_ : int
    size_ : tuple of int
        Working height and width.
    input_size_ : tuple of int or None
        Height and width of the training arrays (arrays scored later must
        match it); None when fitted on a list.
    mean_, scale_ : ndarray of shape (n_channels_,)
        Per-channel standardisation from the training pixels.
    patch_, stride_ : int or None
        Side of the patches and the pixels between them (``None`` without
        patches); ``patch="auto"`` takes half the working size's shorter
        side, at most :data:`AUTO_PATCH_CAP`, and ``stride=None`` half the patch.
    value_range_ : tuple of float
        Smallest and largest training pixel value (at the working size).
    integer_valued_ : bool
        Whether every training pixel was a whole number.
    mode_ : {"L", "RGB"} or None
        Pillow mode images read from files are converted to.
    n_features_in_ : int or None
        Values per image (``C * H * W``) when fitted on arrays; ``None`` when fitted
        on a list of files (they have no fixed number of features).
    feature_names_in_ : ndarray or None
        Column names of a DataFrame of flat images.
    """

    def __init__(self, image_shape="auto", image_size=None, channel_axis="auto", patch=None,
                 stride=None, owner="DiffusionImageDetector"):
        self.image_shape = image_shape
        self.image_size = image_size
        self.channel_axis = channel_axis
        self.patch = patch
        self.stride = stride
        self.owner = owner

    # ------------------------------------------------------------------ API
    def fit_read(self, X):
        """Fit the layout (channels, working size, patches) on the training images and
        read them: ``(images (n, C, H, W) float64 at the working size, input sizes)``."""
        images, sizes, flat = self._read(X, fitting=True)
        self.n_channels_ = images.shape[1]
        self.size_ = tuple(int(s) for s in images.shape[2:])
        self.patch_, self.stride_ = self._patch_geometry()
        self.input_size_ = None if is_image_list(X) else sizes[0]
        if self.input_size_ is not None:  # fitted on arrays: files scored later read alike
            self.mode_ = {1: "L", 3: "RGB", 4: "RGBA"}[self.n_channels_]
        if self.input_size_ is None:  # fitted on files: arrays must come at the working size
            self.flat_features_ = int(np.prod(images.shape[1:]))
        if self.input_size_ is None:  # a list of files: no fixed number of features
            self.n_features_in_ = self.feature_names_in_ = None
        elif not flat:  # flat rows: validated() has recorded it
            self.n_features_in_ = self.flat_features_
        return images, sizes

    def fit_transform(self, X):
        """Fit the layout and scaling on the training images and encode them."""
        images, sizes = self.fit_read(X)
        pixels = images.transpose(1, 0, 2, 3).reshape(self.n_channels_, -1)
        self.value_range_ = (float(pixels.min()), float(pixels.max()))
        self.integer_valued_ = bool(np.all(pixels == np.round(pixels)))
        with np.errstate(over="ignore", invalid="ignore"):
            self.mean_, std = pixels.mean(axis=1), pixels.std(axis=1)
        if not (np.all(np.isfinite(self.mean_)) and np.all(np.isfinite(std))):
            self.mean_, std = column_moments(pixels.T)  # values near the float64 limit
        self.scale_ = np.where(std > 1e-12 * np.maximum(1.0, np.abs(self.mean_)), std, 1.0)
        return self._encode(images, sizes)

    def read(self, X):
        """Images of the fitted kind: ``(images (n, C, H, W) float64 at the working
        size, input sizes)``, checked as :meth:`transform` checks them."""
        images, sizes, _ = self._read(X, fitting=False)
        return images, sizes

    def transform(self, X):
        """Encode images of the fitted kind."""
        images, sizes, _ = self._read(X, fitting=False)
        return self._encode(images, sizes)

    def map_size(self, shape):
        """Height and width of the maps of inputs of ``shape`` (an array's, first axis
        the images): each input's own size."""
        probe = np.zeros((1,) + tuple(shape[1:]))
        return tuple(int(s) for s in self._layout(probe, fitting=False).shape[2:])

    def _patch_geometry(self):
        """Side of the patches and the pixels between them, at the working size."""
        if not self.patch:
            return None, None
        short = min(self.size_)
        if self.patch == "auto":
            patch = max(1, min(AUTO_PATCH_CAP, short // 2))
        else:
            patch = min(int(self.patch), short)
        stride = max(1, patch // 2) if self.stride is None else int(self.stride)
        return patch, stride

    def inverse_transform(self, Z):
        """Samples ``(n, C, H, W)`` in model units -> images at the working size.

        De-standardised, then in the value range the training pixels imply:
        clipped to ``0..255`` and rounded to ``uint8`` when they were whole
        numbers in that range (8-bit images), clipped to ``[0, 1]`` when they
        lay in it (float images), left as they are (float64) otherwise. Grey
        images come back ``(n, H, W)``, colour ones ``(n, H, W, C)``.
        """
        Z = np.asarray(Z, dtype=np.float64)
        images = Z * self.scale_[None, :, None, None] + self.mean_[None, :, None, None]
        low, high = self.value_range_
        if self.integer_valued_ and low >= 0 and high <= 255:
            images = np.round(np.clip(images, 0, 255)).astype(np.uint8)
        elif low >= 0 and high <= 1:
            images = np.clip(images, 0.0, 1.0)
        return images[:, 0] if images.shape[1] == 1 else images.transpose(0, 2, 3, 1)

    # ------------------------------------------------------------- encoding
    def _encode(self, images, sizes):
        Z = standardise(images, self.mean_[None, :, None, None], self.scale_[None, :, None, None])
        Z = np.clip(Z, -CLIP, CLIP).astype(np.float32)
        if self.patch_:
            samples = BorderPatchSamples(Z, self.patch_, self.stride_)
        else:
            samples = ArraySamples(Z)
        return Encoded(samples, working_size=tuple(Z.shape[2:]), sizes=sizes)

    # -------------------------------------------------------------- reading
    def _read(self, X, fitting):
        """``(images (n, C, H, W) float64 at the working size, input sizes, flat)``."""
        name = self.owner
        flat = False
        if is_image_list(X):
            images, sizes = self._read_list(X, fitting)
        else:
            if isinstance(X, (list, tuple)) and len(X) == 0:
                raise ValueError(f"{name} got an empty list of images")
            if sparse.issparse(X):
                raise TypeError(f"{name} does not accept sparse input: pass a dense array")
            ndim = X.ndim if isinstance(X, np.ndarray) else np.asarray(X).ndim
            flat = ndim <= 2
            if flat:  # flat rows: scikit-learn's checks and messages
                X = validated(self, X, reset=fitting, dtype=np.float64,
                              ensure_min_samples=2 if fitting else 1)
            else:
                X = np.asarray(X)
                if np.iscomplexobj(X):
                    raise ValueError("Complex data not supported")
                if X.dtype == object:
                    X = X.astype(np.float64)
            images = self._layout(X, fitting)
            sizes = [tuple(images.shape[2:])] * len(images)
            if not fitting and self.image_size is None and tuple(images.shape[2:]) != self.size_:
                raise ValueError(
                    f"X has images of size {tuple(images.shape[2:])} but {name} was fitted on "
                    f"{self.size_}; resize them, or fit with image_size=(H, W)")
            images = self._resize(images)
        if len(images) == 0:
            raise ValueError(f"{name} got no images (n = 0)")
        if fitting and len(images) < 2:
            raise ValueError(f"Found {len(images)} sample(s) (n_samples = {len(images)}) while a "
                             f"minimum of 2 is required: {name} needs at least 2 training images")
        if not np.all(np.isfinite(images)):
            bad = int(np.argmax(~np.isfinite(images).reshape(len(images), -1).all(axis=1)))
            raise ValueError(f"image {bad} holds NaN or infinite values")
        if not fitting and images.shape[1] != self.n_channels_:
            raise ValueError(f"X has {images.shape[1]} channel(s) but {name} was fitted on "
                             f"{self.n_channels_}")
        return images, sizes, flat

    def _flat_shape(self, n_features):
        """``(H, W, C)`` of a flat row of ``n_features`` values."""
        if self.image_shape != "auto":
            shape = tuple(int(s) for s in self.image_shape)
            return shape + (1,) if len(shape) == 2 else shape
        for channels in (1, 3):
            side = int(round((n_features / channels) ** 0.5))
            if side * side * channels == n_features:
                return side, side, channels
        return 1, n_features, 1

    def _layout(self, X, fitting):
        name = self.owner
        if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
            raise TypeError(f"{name} needs numeric images, got an array of dtype {X.dtype}")
        if X.ndim >= 2 and len(X) == 0:
            raise ValueError(f"{name} got no images: X has shape {X.shape}")
        if fitting:
            self.flat_features_ = int(np.prod(X.shape[1:])) if X.ndim >= 2 else 0
        elif X.ndim == 2 and X.shape[1] != self.flat_features_:
            raise ValueError(f"X has {X.shape[1]} features, but {name} is expecting "
                             f"{self.flat_features_} features as input (flat images of shape "
                             f"{self._flat_shape(self.flat_features_)})")
        if X.ndim == 2:
            shape = self._flat_shape(X.shape[1])
            if len(shape) != 3 or int(np.prod(shape)) != X.shape[1]:
                raise ValueError(f"image_shape={self.image_shape} holds {int(np.prod(shape))} "
                                 f"values but each row of X has {X.shape[1]}")
            X = X.reshape((len(X),) + shape).transpose(0, 3, 1, 2)
        elif X.ndim == 3:
            X = X[:, None]
        elif X.ndim == 4:
            axis = self.channel_axis
            if axis == "auto":
                first, last = X.shape[1] in _CHANNELS, X.shape[3] in _CHANNELS
                if first and last:
                    raise ValueError(
                        f"X of shape {X.shape} could hold channels on axis 1 or 3; pass "
                        "channel_axis='first' (n, C, H, W) or 'last' (n, H, W, C)")
                if not (first or last):
                    raise ValueError(f"X of shape {X.shape} has no channel axis of size 1, 3 "
                                     "or 4 on axis 1 or 3")
                axis = "first" if first else "last"
            if axis == "last":
                X = X.transpose(0, 3, 1, 2)
        else:
            raise ValueError(f"X must be images (n, H, W), (n, H, W, C), (n, C, H, W), flat "
                             f"(n, H*W*C) or a list of image files; got shape {X.shape}")
        return X.astype(np.float64)

    def _read_list(self, X, fitting):
        from PIL import Image, UnidentifiedImageError

        pictures = []
        for i, item in enumerate(X):
            if isinstance(item, (str, os.PathLike)):
                try:
                    with Image.open(Path(item)) as img:
                        img.load()
                        pictures.append(img.copy())
                except (OSError, UnidentifiedImageError) as exc:
                    raise ValueError(f"image {i} ({item}) cannot be read: {exc}") from exc
            elif isinstance(item, Image.Image):
                pictures.append(item)
            else:
                raise TypeError(f"image {i} is a {type(item).__name__}; a list must hold file "
                                "paths or PIL images")
        if fitting:
            gray = all(p.mode in ("L", "I", "I;16", "F", "1") for p in pictures)
            self.mode_ = "L" if gray else "RGB"
        sizes = [(p.height, p.width) for p in pictures]
        target = self.image_size
        if target is None:
            target = self.size_ if not fitting else sizes[0]
            if any(s != tuple(target) for s in sizes):
                raise ValueError(f"the images have different sizes ({sorted(set(sizes))[:3]}...)"
                                 "; pass image_size=(H, W) to resize them")
        target = tuple(int(s) for s in target)
        arrays = []
        for p in pictures:
            p = p.convert(self.mode_)
            if (p.height, p.width) != target:
                p = p.resize((target[1], target[0]), Image.BILINEAR)
            a = np.asarray(p, dtype=np.float64)
            arrays.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
        return np.stack(arrays), sizes

    def _resize(self, images):
        if self.image_size is None or tuple(images.shape[2:]) == tuple(self.image_size):
            return images
        x = torch.as_tensor(images)
        x = torch.nn.functional.interpolate(x, size=tuple(int(s) for s in self.image_size),
                                            mode="bilinear", antialias=True, align_corners=False)
        return x.numpy()
