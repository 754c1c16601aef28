"""Series: one (multichannel) time series as windows of ``(C, window_size)`` samples."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from .._core.samples import WindowSamples, window_starts
from ._base import CLIP, Encoded, InputRecord, ScalesEncoded, column_moments, standardise, validated

__all__ = ["AUTO_LENGTHS", "PERIOD_STEPS", "SCALINGS", "SeriesEncoder", "auto_lengths",
           "channel_scaling", "dominant_period", "head_steps", "min_training_steps"]

SCALINGS = ("robust", "standard", "minmax", "none")

#: The window lengths of ``window_size="auto"`` that every series gets.
AUTO_LENGTHS = (32, 64, 128)
#: Lags searched for a period: from ``PERIOD_LAGS[0]`` to ``min(PERIOD_LAGS[1], n / 4)``.
PERIOD_LAGS = (8, 512)
#: Autocorrelation a peak needs to count as the series' period.
PERIOD_MIN_CORRELATION = 0.3
#: How far a peak must rise above the lowest autocorrelation before it.
PERIOD_MIN_PROMINENCE = 0.1
#: Period lengths are clipped to this range of steps.
PERIOD_LENGTHS = (8, 256)
#: Leading training steps the period is estimated on (all of a shorter series): one
#: contiguous stretch, which a Dask series reads as it is, so both paths agree.
PERIOD_STEPS = 100_000
# Complex entries of one autocorrelation FFT (64 MiB): wide series go in channel groups.
_PERIOD_FFT_ELEMENTS = 1 << 22

# 2 * the standard normal's 99th percentile: (q99 - q1) / this estimates sigma for normal data
_Q1_Q99_SIGMAS = 4.6526957480816815


def _vanishing(spread, centre):
    """Channels whose spread is zero up to rounding, relative to their level."""
    return ~(spread > 1e-12 * np.maximum(1.0, np.abs(centre)))


def channel_scaling(X, observed, scaling):
    """Centre and scale of each channel from the observed training values.

    Returns ``(centre, scale, two_valued)``; a channel without spread gets
    scale 1 (it is only centred). See ``DiffusionTSDetector``'s ``scaling``.
    """
    lo, hi = np.nanmin(X, axis=0), np.nanmax(X, axis=0)
    two_valued = (hi > lo) & np.all((X == lo) | (X == hi) | ~observed, axis=0)
    # halves first: the same numbers, without overflow near the float64 limit
    if scaling == "minmax":
        centre, spread = lo / 2 + hi / 2, hi / 2 - lo / 2
    elif scaling == "none":
        centre, spread = np.zeros(X.shape[1]), np.ones(X.shape[1])
    else:
        if scaling == "robust":
            q1, centre, q99 = np.nanpercentile(X, [1, 50, 99], axis=0)
            spread = (q99 / 2 - q1 / 2) / (_Q1_Q99_SIGMAS / 2)
            flat = _vanishing(spread, centre)
            if flat.any():  # percentiles coincide (mostly constant): fall back to the std
                spread[flat] = column_moments(X[:, flat])[1]
        else:
            centre, spread = column_moments(X)
        # switches: states one unit apart, whatever their frequency
        centre = np.where(two_valued, lo / 2 + hi / 2, centre)
        spread = np.where(two_valued, hi - lo, spread)
    return centre, np.where(_vanishing(spread, centre), 1.0, spread), two_valued


def dominant_period(X):
    """The training series' dominant period in steps, or ``None``.

    Each channel with spread is standardised (a missing value is its channel's
    mean) and the channels' autocorrelations (by FFT) are averaged. Past the
    autocorrelation's first local minimum (and at least ``PERIOD_LAGS[0]`` steps,
    at most ``min(PERIOD_LAGS[1], n // 4)``), the highest local maximum that rises
    more than ``PERIOD_MIN_PROMINENCE`` above the lowest value before it is the
    period, when its correlation exceeds ``PERIOD_MIN_CORRELATION``. The minimum
    and the rise keep out the small wiggles of an autocorrelation that decays
    slowly without repeating. Only the first :func:`head_steps` steps are read.

    Parameters
    ----------
    X : ndarray of shape (n_timestamps, n_channels)
        The series in its own units, NaN where missing.

    Returns
    -------
    period : int or None
    """
    X = np.asarray(X, dtype=np.float64)
    X = X.reshape(len(X), -1)[:head_steps(len(X))]
    n = X.shape[0]
    lo, hi = PERIOD_LAGS[0], min(PERIOD_LAGS[1], n // 4)
    if hi <= lo + 2:
        return None
    observed = ~np.isnan(X)
    counts = observed.sum(axis=0)
    keep = counts > 0
    X, observed, counts = X[:, keep], observed[:, keep], counts[keep]
    mean = np.where(observed, X, 0.0).sum(axis=0) / np.maximum(counts, 1)
    centred = np.where(observed, X, mean) - mean
    sd = np.sqrt((centred ** 2).mean(axis=0))
    varying = sd > 1e-12 * np.maximum(1.0, np.abs(mean))
    if not varying.any():
        return None
    acf = lagged_products(centred[:, varying] / sd[varying], hi)
    acf = acf / acf[0]
    step = np.diff(acf)
    minima = np.flatnonzero((step[:-1] < 0) & (step[1:] >= 0)) + 1
    if not len(minima):
        return None
    start = max(lo, int(minima[0]))
    seg = acf[start:hi]
    if len(seg) < 3:
        return None
    inner = seg[1:-1]
    peaks = np.flatnonzero((inner >= seg[:-2]) & (inner >= seg[2:])) + 1
    peaks = peaks[seg[peaks] - np.minimum.accumulate(seg)[peaks] > PERIOD_MIN_PROMINENCE]
    if not len(peaks):
        return None
    best = int(peaks[np.argmax(seg[peaks])])
    return start + best if seg[best] > PERIOD_MIN_CORRELATION else None


def lagged_products(Z, max_lag):
    """``sum_c sum_t Z[t, c] Z[t + k, c]`` for ``k = 0 .. max_lag`` of the columns of
    ``Z`` (``(n, C)``, centred by the caller; ``max_lag < n``), by FFT, a few columns
    at a time so the memory stays bounded: an autocorrelation once divided by its
    lag-0 value."""
    n = Z.shape[0]
    out = np.zeros(max_lag + 1)
    group = max(1, _PERIOD_FFT_ELEMENTS // (2 * n))  # columns per FFT
    for j in range(0, Z.shape[1], group):
        spectrum = np.fft.rfft(Z[:, j:j + group], 2 * n, axis=0)
        out += np.fft.irfft(spectrum * np.conj(spectrum), n=2 * n, axis=0)[:max_lag + 1].sum(
            axis=1)
    return out


def head_steps(n):
    """Leading steps of an ``n``-step series that :func:`dominant_period` reads."""
    return min(int(n), PERIOD_STEPS)


def auto_lengths(period):
    """The window lengths of ``window_size="auto"``: :data:`AUTO_LENGTHS`, plus half,
    one and two periods (clipped to :data:`PERIOD_LENGTHS`) when there is a period."""
    if period is None:
        return AUTO_LENGTHS
    lo, hi = PERIOD_LENGTHS
    extra = {int(min(hi, max(lo, w))) for w in (period // 2, period, 2 * period)}
    return tuple(sorted(set(AUTO_LENGTHS) | extra))


class SeriesEncoder(InputRecord):
    """Fitted channel scaling and windowing of :class:`~skdiffad.DiffusionTSDetector`.

    One channel scaling, windows of one or several lengths: every series is encoded
    as a :class:`~skdiffad._encoders.ScalesEncoded`, one part per window length.

    Parameters
    ----------
    window_sizes : tuple of int or "auto"
        The window lengths asked for; ``"auto"``: :func:`auto_lengths` of the training
        series' :func:`dominant_period`, resolved at fit.
    stride : int or None
        Steps between scored windows; ``None``: half the window for a single length
        (every step is scored by two windows), each length itself for several or
        ``"auto"`` (every step is scored once per length). Training uses every window.
    scaling : {"robust", "standard", "minmax", "none"}
        How channels are put on one scale (see the detector).
    owner : str, default="DiffusionTSDetector"
        The detector's name, for error messages.

    Attributes
    ----------
    center_, scale_ : ndarray of shape (n_channels,)
        A value ``x`` becomes ``(x - center_) / scale_``.
    two_valued_ : ndarray of shape (n_channels,), bool
        Channels with exactly two distinct training values.
    period_ : int or None
        With ``"auto"``: the training series' dominant period (``None``: none found,
        or lengths given).
    window_sizes_ : tuple of int
        The lengths kept at fit: those the training series is long enough for
        (at least ``3 * length - 1`` steps, so that a training window can be
        scored without its neighbours), or the shortest one when none is.
    strides_ : tuple of int
        The scoring stride of each kept length.
    n_features_in_, feature_names_in_
        The channels seen in fit (see :class:`~skdiffad._encoders.InputRecord`).
    """

    period_ = None  # states written before window_sizes="auto" (issue #27) lack it

    def __init__(self, window_sizes, stride, scaling, owner="DiffusionTSDetector"):
        self.window_sizes = (window_sizes if isinstance(window_sizes, str)
                             else tuple(int(w) for w in window_sizes))
        self.stride = stride
        self.scaling = scaling
        self.owner = owner

    @property
    def auto(self):
        """Whether the lengths are read from the training series (``"auto"``)."""
        return isinstance(self.window_sizes, str)

    @property
    def several(self):
        """Whether several lengths were asked for (``"auto"`` always counts)."""
        return self.auto or len(self.window_sizes) > 1

    @property
    def shortest(self):
        """The shortest window length: no series may be shorter (before fit, the
        shortest asked for; the shortest asked for is always kept)."""
        fitted = getattr(self, "window_sizes_", None)
        if fitted is not None:
            return min(fitted)
        return min(AUTO_LENGTHS if self.auto else self.window_sizes)

    def fit_transform(self, X):
        """Fit the scaling, keep the lengths the series allows, encode it at each."""
        X = self._validate(X, reset=True)
        lengths = self._lengths(X)
        series, obs = self._fit_scaling(X)
        self._keep_lengths(lengths, series.shape[1])
        return ScalesEncoded([_training_encoding(series, obs, w, s)
                              for w, s in zip(self.window_sizes_, self.strides_)])

    def fit_stream(self, steps, n, head=None):
        """Fit the scaling on ``steps`` (the rows of a series of ``n`` steps, or a
        sample of them) without encoding it; the lengths kept follow ``n``, and with
        ``"auto"`` the period is read from ``head``, the series' first steps in order
        (:func:`dominant_period` reads :func:`head_steps` of them)."""
        if self.auto and head is None:
            raise ValueError("window_sizes='auto' needs the series' first steps (head)")
        self._fit_scaling(self._validate(steps, reset=True))
        self._keep_lengths(self._lengths(head), n)
        return self

    def _lengths(self, head):
        """The lengths asked for, ``"auto"`` resolved from the series' first steps."""
        if not self.auto:
            self.period_ = None
            return self.window_sizes
        self.period_ = dominant_period(head)
        lengths = auto_lengths(self.period_)
        if self.stride is not None and self.stride > min(lengths):
            raise ValueError(
                f"stride={self.stride} is larger than the shortest window length "
                f"{min(lengths)} of window_size='auto' (the training series' period is "
                f"{self.period_}): some steps would never be scored; pass a smaller "
                "stride or explicit window lengths")
        return lengths

    def _keep_lengths(self, lengths, n):
        kept = tuple(w for w in lengths if n >= min_training_steps(w))
        self.window_sizes_ = kept or (min(lengths),)
        self.strides_ = tuple(self.stride or (w if self.several else max(1, w // 2))
                              for w in self.window_sizes_)

    def transform(self, X):
        """Encode a series at every kept length it is long enough for."""
        series, obs = self.scale(X)
        n = series.shape[1]
        return ScalesEncoded([Encoded(_windows(series, obs, w, s)) if n >= w else None
                              for w, s in zip(self.window_sizes_, self.strides_)])

    def scale(self, X):
        """A series of the fitted channels in model units: ``(series, observed)``, the
        scaled series ``(C, n)`` float32 (missing entries at 0) and its observation mask."""
        X = self._validate(X, reset=False)
        if np.isnan(X).all():
            raise ValueError("X has no observed value: every entry is NaN")
        return self.standardise(X)

    def inverse_transform(self, Z):
        """Windows ``(n, C, L)`` in model units -> ``(n, L, C)`` in the series' units."""
        return Z.transpose(0, 2, 1) * self.scale_ + self.center_

    def _fit_scaling(self, X):
        """Fit the channels' scaling on the (validated) training series; the scaled
        series."""
        observed = ~np.isnan(X)
        empty = np.flatnonzero(~observed.any(axis=0))
        if len(empty):
            raise ValueError(f"channel {self._channel_name(empty[0])} has no observed value")
        self.center_, self.scale_, self.two_valued_ = channel_scaling(X, observed, self.scaling)
        return self.standardise(X)

    def standardise(self, X):
        """Values ``(m, C)`` (user units, NaN missing, not validated) -> the scaled
        ``(C, m)`` float32 series with missing entries at 0, and its observation mask."""
        observed = ~np.isnan(X)
        Z = standardise(X, self.center_, self.scale_)
        Z = np.clip(np.where(observed, Z, 0.0), -CLIP, CLIP)
        return (np.ascontiguousarray(Z.T, dtype=np.float32),
                np.ascontiguousarray(observed.T))

    def _validate(self, X, reset):
        """``(n_timestamps, n_channels)`` float64 array from any accepted input."""
        name = self.owner
        if isinstance(X, pd.Series):
            X = X.to_frame()
        if isinstance(X, pd.DataFrame):
            bad = [c for c in X.columns if not (pd.api.types.is_numeric_dtype(X[c])
                                                or pd.api.types.is_bool_dtype(X[c]))]
            if bad:
                raise TypeError(
                    f"{name} needs numeric channels; column {bad[0]!r} has dtype "
                    f"{X[bad[0]].dtype}"
                )
        elif sparse.issparse(X):
            raise TypeError(f"{name} does not accept sparse input: pass a dense "
                            "array (sparse data is not supported)")
        elif not hasattr(X, "__array__") and not isinstance(X, (list, tuple)):
            raise TypeError(f"X must be an array-like series, got {type(X).__name__}")
        else:
            X = np.asarray(X)
            if X.ndim == 1:
                fitted = self.n_features_in_
                if not reset and fitted is not None and fitted != 1:
                    raise ValueError(
                        f"X is 1-D (one univariate series) but {name} was "
                        f"fitted on {fitted} channels. Reshape your data to "
                        f"(n_timestamps, {fitted})"
                    )
                X = X.reshape(-1, 1)
            if X.ndim != 2:
                raise ValueError(
                    "X must be one series of shape (n_timestamps,) or (n_timestamps, "
                    f"n_channels), got an array of shape {X.shape}"
                )
        X = validated(self, X, reset=reset, dtype=np.float64,
                      ensure_all_finite="allow-nan", ensure_min_samples=1)
        n = X.shape[0]
        if n < self.shortest:
            raise ValueError(
                f"the series has {n} sample(s) (time steps), fewer than window_size="
                f"{self.shortest}; pass a longer series or a smaller window_size"
            )
        return X

    def _channel_name(self, j):
        names = self.feature_names_in_
        return repr(names[j]) if names is not None else str(j)


def min_training_steps(length):
    """Training steps the exact denoiser's two-fold rule needs for windows of
    ``length`` steps, so that every training window can be scored without
    the windows that overlap it."""
    return 3 * length - 1


def _windows(series, obs, length, stride):
    starts = window_starts(series.shape[1], length, stride)
    return WindowSamples(series, obs, starts, length)


def _training_encoding(series, obs, length, stride):
    """Scored windows every ``stride`` steps; training uses every window."""
    every = np.arange(series.shape[1] - length + 1)
    return Encoded(_windows(series, obs, length, stride),
                   WindowSamples(series, obs, every, length))
