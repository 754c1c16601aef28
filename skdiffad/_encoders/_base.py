"""What every encoder shares: the encoded forms, the input record and the clipping bound."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from sklearn.utils import check_array
from sklearn.utils.validation import _get_feature_names

from .._core.samples import Samples
from .._persistence import trust

__all__ = ["CLIP", "Encoded", "InputRecord", "ScalesEncoded", "column_moments", "standardise",
           "validated"]

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
    stream : callable or None
        A Dask collection of rows: makes the streamed source of every row
        (:class:`skdiffad._dask.BlockSamples`), which a model that trains learns from
        instead of ``training`` (the encoded sample).
    groups : list of int or None
        Video: the frames of each clip, in order (a clip's scores are smoothed
        within it).
    """

    samples: Samples
    training: Samples | None = None
    working_size: tuple | None = None
    sizes: list | None = None
    stream: object = None
    groups: list | None = None

    def __post_init__(self):
        if self.training is None:
            self.training = self.samples

    @property
    def streams(self):
        """The streamed sources among the training samples (none: in memory)."""
        return []


@dataclass
class ScalesEncoded:
    """One input encoded at several scales (a series at several window lengths).

    Attributes
    ----------
    parts : list of Encoded or None
        One encoding per scale; ``None`` for a scale the input is too small for
        (a window length longer than the series: that scale does not score it).
    source : object or None
        A Dask series fitted on: the ``(n, C)`` Dask array the parts stream their
        windows from (its training scores are then computed blockwise).
    """

    parts: list
    source: object = None
    #: Series stream their windows per part (``source``), never a whole-row stream.
    stream = None

    @property
    def streams(self):
        """The streamed sources of each part (none: in memory)."""
        return [] if self.source is None else list(self.training)

    @property
    def samples(self):
        return tuple(None if p is None else p.samples for p in self.parts)

    @property
    def training(self):
        return tuple(None if p is None else p.training for p in self.parts)


class InputRecord:
    """The number and names of the features an encoder was fitted on.

    scikit-learn's rules for ``n_features_in_`` and ``feature_names_in_``, kept by the
    encoder itself (the detector copies them once its fit has succeeded), with
    messages that name the detector (``owner``).
    """

    owner = "the detector"
    n_features_in_ = None
    feature_names_in_ = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        trust(cls)  # a plug-in defined outside the package saves and loads like ours


    def check_names(self, X, reset):
        """Record (``reset``) or check the feature names of ``X``, as scikit-learn's
        ``validate_data`` does: a warning when only one side has names, a
        ``ValueError`` when both have and they differ."""
        names = _get_feature_names(X)
        if reset:
            self.feature_names_in_ = names
            return
        fitted = self.feature_names_in_
        if fitted is None and names is None:
            return
        if fitted is None:
            warnings.warn(f"X has feature names, but {self.owner} was fitted without feature "
                          "names", UserWarning, stacklevel=4)
            return
        if names is None:
            warnings.warn(f"X does not have valid feature names, but {self.owner} was fitted "
                          "with feature names", UserWarning, stacklevel=4)
            return
        if len(fitted) == len(names) and np.all(fitted == names):
            return
        message = "The feature names should match those that were passed during fit.\n"
        unseen, missing = sorted(set(names) - set(fitted)), sorted(set(fitted) - set(names))
        for title, group in (("Feature names unseen at fit time:", unseen),
                             ("Feature names seen at fit time, yet now missing:", missing)):
            if group:
                shown = [f"- {name}" for name in group[:5]] + (["- ..."] if len(group) > 5 else [])
                message += title + "\n" + "\n".join(shown) + "\n"
        if not unseen and not missing:
            message += "Feature names must be in the same order as they were in fit.\n"
        raise ValueError(message)

    def check_count(self, n_features, reset):
        """Record (``reset``) or check the number of features."""
        if reset:
            self.n_features_in_ = int(n_features)
        elif self.n_features_in_ is not None and n_features != self.n_features_in_:
            raise ValueError(f"X has {n_features} features, but {self.owner} is expecting "
                             f"{self.n_features_in_} features as input.")


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
        Z = X - centre
        Z /= scale  # in place: one array of the input's size, not three
        finite = np.isfinite(Z)
        bad = None if finite.all() else ~finite & np.isfinite(X)
        if bad is not None and bad.any():
            alt = X / scale - centre / scale
            alt = np.where(np.isfinite(alt), alt, np.sign(X) * np.inf)
            Z = np.where(bad, alt, Z)
    return Z


def validated(record, X, *, reset, **kwargs):
    """scikit-learn's input validation for an encoder (an :class:`InputRecord`): the
    feature names, ``check_array`` (its messages naming the detector) and the feature
    count, recorded with ``reset`` and checked against the record otherwise.

    ``check_array``'s finiteness check sums the values first; for finite values near
    the float64 limit that sum overflows and numpy warns, although the check then looks
    at every value and passes. The warning is suppressed, the check is not.
    """
    record.check_names(X, reset)
    with np.errstate(over="ignore", invalid="ignore"):
        X = check_array(X, estimator=record.owner, input_name="X", **kwargs)
    record.check_count(X.shape[1], reset)
    return X
