"""What every encoder shares: the encoded form and the clipping bound."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from sklearn.utils.validation import validate_data

from .._core.samples import Samples

__all__ = ["CLIP", "Encoded", "column_moments", "standardise", "validated"]

# Standardised values beyond this many standard deviations are clipped: the order
# of such points no longer matters (they are anomalies at any threshold) and it
# keeps float32 arithmetic finite.
CLIP = 1e4


@dataclass
class Encoded:
    """An input as a model sees it.

    Attributes
    ----------
    samples : Samples
        The units that are scored (table rows, windows every ``stride`` steps,
        images).
    training : Samples or None
        The units a model learns from, when they differ from ``samples`` (every
        window of the training series); ``None``: the same.
    working_size : tuple of int or None
        Images: the height and width the model sees.
    sizes : list of tuple of int or None
        Images: each input's own height and width (maps come back at it).
    """

    samples: Samples
    training: Samples | None = None
    working_size: tuple | None = None
    sizes: list | None = None

    def __post_init__(self):
        if self.training is None:
            self.training = self.samples


def column_moments(X):
    """``(nanmean, nanstd)`` of each column of ``X``, finite for any finite data.

    Values near the float64 limit overflow the sum of squares (rows of
    ``N(0, 1) * 1e300`` gave an infinite scale and then one score for every
    row); a column whose plain moments are not finite is divided by its
    largest magnitude first and the moments scaled back.
    """
    with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, std = np.nanmean(X, axis=0), np.nanstd(X, axis=0)
        bad = ~(np.isfinite(mean) & np.isfinite(std)) & np.any(~np.isnan(X), axis=0)
        if bad.any():
            size = np.nanmax(np.abs(X[:, bad]), axis=0)
            size = np.where(size > 0, size, 1.0)
            Y = X[:, bad] / size
            mean[bad] = np.nanmean(Y, axis=0) * size
            std[bad] = np.nanstd(Y, axis=0) * size
    return mean, std


def standardise(X, centre, scale):
    """``(X - centre) / scale`` without overflow in ``X - centre``.

    Where the plain difference overflows (a finite value and a centre of
    opposite signs near the float64 limit), ``X / scale - centre / scale`` is
    used, and where even that is not finite the value is an infinitely extreme
    one of the sign of ``X`` (clipped to ``CLIP`` later). NaN stays NaN.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        Z = (X - centre) / scale
        bad = ~np.isfinite(Z) & np.isfinite(X)
        if bad.any():
            alt = X / scale - centre / scale
            alt = np.where(np.isfinite(alt), alt, np.sign(X) * np.inf)
            Z = np.where(bad, alt, Z)
    return Z


def validated(estimator, X, **kwargs):
    """scikit-learn's ``validate_data``, quiet near the float64 limit.

    Its finiteness check sums the values first; for finite values near the
    limit that sum overflows and numpy warns, although the check then looks
    at every value and passes. The warning is suppressed, the check is not.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        return validate_data(estimator, X, **kwargs)
