"""Input checks for the pixel metrics: ground-truth masks and anomaly maps.

Both come as a 3-D array ``(n_images, height, width)`` or as a list of 2-D
arrays, which lets images of different sizes be scored together. Every error
names the argument at fault, and the image index when one image is at fault.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._validation import check_binary


def _as_images(values, name):
    """``values`` as a non-empty list of non-empty 2-D arrays."""
    if isinstance(values, (list, tuple)):
        images = [np.asarray(image) for image in values]
        for index, image in enumerate(images):
            if image.ndim != 2:
                raise ValueError(
                    f"{name}[{index}] must be a 2-D image (height, width); "
                    f"got an array of shape {image.shape}."
                )
    else:
        array = np.asarray(values)
        if array.ndim != 3:
            hint = f" For a single image pass {name}[None]." if array.ndim == 2 else ""
            raise ValueError(
                f"{name} must be a 3-D array (n_images, height, width) or a list of "
                f"2-D arrays; got an array of shape {array.shape}.{hint}"
            )
        images = list(array)
    if not images:
        raise ValueError(f"{name} is empty; it needs at least one image.")
    for index, image in enumerate(images):
        if image.size == 0:
            raise ValueError(f"{name}[{index}] is empty; got an image of shape {image.shape}.")
    return images


def _check_finite_map(image, name):
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == bool):
        raise ValueError(f"{name} must be numeric; got dtype {image.dtype}.")
    image = image.astype(np.float64)
    n_bad = np.count_nonzero(~np.isfinite(image))
    if n_bad:
        raise ValueError(
            f"{name} must be finite; {n_bad} of {image.size} values are NaN or infinite."
        )
    return image


def check_masks_and_maps(masks, maps):
    """``(masks, maps)`` as lists of 2-D images: booleans, and finite float64 scores.

    The two must hold as many images, with the same shape pairwise.
    """
    mask_images = _as_images(masks, "masks")
    map_images = _as_images(maps, "maps")
    if len(mask_images) != len(map_images):
        raise ValueError(
            "masks and maps must hold the same number of images; "
            f"got {len(mask_images)} and {len(map_images)}."
        )
    checked_masks, checked_maps = [], []
    for index, (mask, score) in enumerate(zip(mask_images, map_images)):
        if mask.shape != score.shape:
            raise ValueError(
                f"masks[{index}] and maps[{index}] must have the same shape; "
                f"got {mask.shape} and {score.shape}."
            )
        checked_masks.append(check_binary(mask, f"masks[{index}]"))
        checked_maps.append(_check_finite_map(score, f"maps[{index}]"))
    return checked_masks, checked_maps


def pooled_pixels(masks, maps):
    """Checked masks and maps flattened over all pixels of all images: ``(y, s)``."""
    mask_images, map_images = check_masks_and_maps(masks, maps)
    y = np.concatenate([mask.ravel() for mask in mask_images])
    s = np.concatenate([score.ravel() for score in map_images])
    return y, s


def require_anomalous_pixels(y, metric):
    """Raise when the pooled boolean masks ``y`` hold no anomalous pixel."""
    if not y.any():
        raise ValueError(f"{metric} is undefined when masks hold no anomalous pixel (no 1).")


def require_normal_pixels(y, metric):
    """Raise when the pooled boolean masks ``y`` hold no normal pixel."""
    if y.all():
        raise ValueError(f"{metric} is undefined when masks hold only anomalous pixels (no 0).")


def check_real(value, name, low=-np.inf, high=np.inf, low_open=False):
    """``value`` as a float in ``[low, high]`` (``(low, high]`` if ``low_open``), or raise."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and not np.isnan(value)
    ok = ok and (low < value if low_open else low <= value) and value <= high
    if not ok:
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be a real number in {bracket}{low}, {high}]; got {value!r}.")
    return float(value)
