"""Reductions: a model's error blocks folded onto the output units and reduced to scores.

A model yields error blocks ``(start, stop, sums, counts)`` per sample (see
:meth:`skdiffad._core.exact.ExactModel.errors`). A modality *folds* them into the
layout of its outputs -- rows stay rows, window errors are summed onto the steps they
cover, patch errors onto the pixels -- and *reduces* the folded errors to one score
per output unit. The functions here are those folds and reductions, shared by the
modalities (:mod:`skdiffad.modalities`), the in-memory scoring and the blockwise
scoring of Dask collections (:mod:`skdiffad._dask`), so that both give the same bits.

Pure numpy and scipy: no estimator, no torch model.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter, maximum_filter1d

from ._core.samples import fold

__all__ = [
    "SCALE_PERCENTILE",
    "StretchScorer",
    "channel_errors",
    "collect_rows",
    "covering_window_mean",
    "fill_gaps",
    "finite_scores",
    "fold_steps",
    "max_window_mean",
    "mean_of",
    "mean_per_sample",
    "normalised_maps",
    "observed_mean",
    "pixel_errors",
    "pixel_statistics",
    "step_columns",
    "training_scales",
]

#: Each window length's scores are divided by this percentile of its training scores
#: before the lengths are averaged (a series detector with several window lengths).
SCALE_PERCENTILE = 99.0


def finite_scores(scores):
    """``scores``, or a ``FloatingPointError`` that counts the ones not finite."""
    if not np.all(np.isfinite(scores)):
        raise FloatingPointError(
            f"{int(np.sum(~np.isfinite(scores)))} of {len(scores)} scores are not finite; "
            "the input holds values too extreme for float32 after standardisation")
    return scores


# ------------------------------------------------------------------ rows
def collect_rows(blocks, n):
    """A model's error blocks of ``n`` samples, one entry per sample.

    Returns ``(sums, counts)`` of shape ``(n, *event_shape)`` for element-wise errors,
    or ``(scores, None)`` of shape ``(n,)``.
    """
    sums = counts = None
    for start, stop, block_sums, block_counts in blocks:
        if sums is None:
            sums = np.empty((n,) + block_sums.shape[1:])
            counts = None if block_counts is None else np.empty_like(sums)
        sums[start:stop] = block_sums
        if counts is not None:
            counts[start:stop] = block_counts
    return sums, counts


def mean_per_sample(folded):
    """One score per sample: its per-sample score, or the mean error of its scored
    entries (an entry's error is ``sums / counts``)."""
    sums, counts = folded
    if counts is None:
        return sums
    n = sums.shape[0]
    sums, counts = sums.reshape(n, -1), counts.reshape(n, -1)
    scored = counts > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        per_entry = np.where(scored, sums / counts, 0.0)
    return per_entry.sum(axis=1) / np.maximum(scored.sum(axis=1), 1)


# ---------------------------------------------------------------- images
def pixel_errors(blocks, samples, n_images, working_size):
    """Pixel errors of every image, ``(n, H, W)`` at the working size: patch (or
    pixel) errors summed onto the pixels they cover (:func:`~skdiffad._core.samples.fold`),
    averaged over the channels."""
    sums, counts = fold(samples, blocks)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_pixel = np.where(counts > 0, sums / counts, 0.0)
    return per_pixel.reshape((n_images,) + tuple(working_size) + (-1,)).mean(axis=-1)


def pixel_statistics(maps, centred=True):
    """Per-pixel ``"scale"`` of training error maps ``(n, H, W)``: the standard deviation
    plus a tenth of its mean over the pixels (1 when every map is alike, so errors then
    count in raw units); with ``centred``, also their ``"mean"``, which
    :func:`normalised_maps` subtracts first."""
    std = maps.std(axis=0)
    floor = 0.1 * float(std.mean())
    statistics = {"scale": std + (floor if floor > 0 else 1.0)}
    if centred:
        statistics["mean"] = maps.mean(axis=0)
    return statistics


def normalised_maps(maps, statistics, smoothing):
    """Error maps measured against the training maps' ``statistics`` (``None``: raw) --
    less their ``"mean"`` when there is one, divided by their ``"scale"`` -- then smoothed
    by a Gaussian of ``smoothing`` pixels (0: none)."""
    if statistics is not None:
        if "mean" in statistics:
            maps = maps - statistics["mean"]
        maps = maps / statistics["scale"]
    if smoothing <= 0:
        return maps
    return gaussian_filter(maps, sigma=(0, smoothing, smoothing), mode="nearest")


# ---------------------------------------------------------------- series
def fold_steps(blocks, samples):
    """Window errors summed onto the steps they cover: ``(sums, counts)`` of shape
    ``(C, n)``."""
    sums, counts = fold(samples, blocks)
    return sums.T, counts.T


def observed_mean(sums, counts):
    """Mean error over each step's observed channels; NaN where none is observed.

    The channels are added one after another, so a step's value does not depend in
    its last bits on how long the series (or the stretch of it) is.
    """
    # channel rows contiguous (they often come as a transposed view): same sums, read
    # in cache order
    sums, counts = np.ascontiguousarray(sums), np.ascontiguousarray(counts)
    total = np.zeros(sums.shape[1])
    n_obs = np.zeros(sums.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        for channel_sums, channel_counts in zip(sums, counts):
            scored = channel_counts > 0
            total += np.where(scored, channel_sums / channel_counts, 0.0)
            n_obs += scored
        return np.where(n_obs > 0, total / np.maximum(n_obs, 1), np.nan)


def channel_errors(sums, counts):
    """Each channel's mean error at each step ``(C, n)``; NaN where not observed."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


def step_columns(folded, channels=False):
    """Folded errors of each window length (``None``: a length that did not score the
    series) -> ``(filled, raw)`` step errors ``(n, K)``: a column per length that scored
    it (``channels``: per length and channel), NaN where nothing is observed in ``raw``,
    the gaps filled in ``filled``."""
    raw = np.hstack([channel_errors(*part).T if channels else observed_mean(*part)[:, None]
                     for part in folded if part is not None])
    return np.column_stack([fill_gaps(column) for column in raw.T]), raw


def fill_gaps(values, positions=None, left=None, right=None):
    """``values`` with their NaN entries interpolated linearly from the nearest known ones
    (the first or last known one beyond the ends).

    ``positions`` are the entries' steps in the series (default ``0..n-1``);
    ``left`` / ``right`` are ``(step, value)`` of the nearest known entries before and
    after them in a longer series (``None``: none), so that a stretch of a series is
    filled exactly as the whole series would be.
    """
    known = ~np.isnan(values)
    if known.all():
        return values
    if positions is None:
        positions = np.arange(len(values))
    xp, fp = positions[known], values[known]
    if left is not None:
        xp, fp = np.r_[left[0], xp], np.r_[left[1], fp]
    if right is not None:
        xp, fp = np.r_[xp, right[0]], np.r_[fp, right[1]]
    if not len(xp):
        return values
    return np.where(known, values, np.interp(positions, xp, fp))


def mean_of(parts):
    """Element-wise mean of equal-shape arrays, added one after another (so the result
    does not depend in its last bits on the arrays' shape)."""
    total = np.array(parts[0], dtype=np.float64, copy=True)
    for part in parts[1:]:
        total += part
    return total / len(parts)


_CHUNK = 1 << 16


def _window_sums(values, length):
    """Sum of ``values`` over every window of ``length`` steps inside the array, each
    window's sum run over its steps in order (no running sums), so an entry's bits do
    not depend on the array's length or on distant values."""
    sums = np.empty(len(values) - length + 1)
    for start in range(0, len(sums), _CHUNK):
        stop = min(start + _CHUNK, len(sums))
        total = values[start:stop].copy()
        for k in range(1, length):
            total += values[start + k : stop + k]
        sums[start:stop] = total
    return sums


def max_window_mean(errors, length):
    """For each step, the largest mean of ``errors`` over a window of ``length``
    steps that covers it (windows lie inside the series).

    Each window's sum runs over its steps in order, with no running sums, so a
    step's value depends neither on distant steps nor on the length of the array
    (a stretch of a series gives its steps the whole series' values).
    """
    n = len(errors)
    means = _window_sums(errors, length) / length
    padded = np.concatenate([np.full(length - 1, -np.inf), means, np.full(length - 1, -np.inf)])
    return maximum_filter1d(padded, length, origin=-(length // 2), mode="nearest")[:n]


def covering_window_mean(errors, length):
    """For each step, the mean over the windows of ``length`` steps that cover it
    (windows inside the series) of their mean of ``errors``.

    A point's error reaches as far as in :func:`max_window_mean` (``length - 1``
    steps on each side), but tapers linearly with the distance instead of staying
    at the covering window's full height. Each step's sum runs over its covering
    windows in one order, with no running sums, so a stretch of a series gives its
    steps the whole series' values.
    """
    n, m = len(errors), len(errors) - length + 1
    means = _window_sums(errors, length) / length
    # the windows covering step t start at t - length + 1 .. t: a window sum over the
    # means, with zeros standing for windows outside the series
    padded = np.concatenate([np.zeros(length - 1), means, np.zeros(length - 1)])
    steps = np.arange(n)
    covering = np.minimum(steps, m - 1) - np.maximum(steps - length + 1, 0) + 1
    return _window_sums(padded, length) / covering


#: ``aggregation`` -> what turns one window length's gap-free step errors into its
#: step scores (``"step"``: the errors themselves).
_AGGREGATIONS = {"window": max_window_mean, "window_mean": covering_window_mean}


def _aggregate(errors, length, aggregation):
    """Gap-free step errors of one window length -> its step scores."""
    rule = _AGGREGATIONS.get(aggregation)
    return errors if rule is None else rule(errors, length)


def _aggregate_channels(per_channel, length, aggregation, filled):
    """Per-channel step errors ``(C, n)`` (NaN: not observed) and the same with their gaps
    filled -> per-channel scores, NaN where not observed."""
    rule = _AGGREGATIONS.get(aggregation)
    if rule is None:
        return per_channel
    out = np.full_like(per_channel, np.nan)
    for c, row in enumerate(per_channel):
        seen = ~np.isnan(row)
        if seen.any():
            out[c] = np.where(seen, rule(filled[c], length), np.nan)
    return out


def training_scales(columns):
    """What each window length's scores are divided by: the ``SCALE_PERCENTILE``-th
    percentile of its training scores (the columns ``(n, K)``), 1 where that is not
    positive."""
    tops = [float(np.percentile(columns[:, i], SCALE_PERCENTILE))
            for i in range(columns.shape[1])]
    return np.asarray([top if top > 0 else 1.0 for top in tops])


class StretchScorer:
    """Step scores of a series, or of a stretch of it, from its step errors.

    The one reduction of the series modality: in-memory scoring, ``channel_scores``
    and every block of a Dask series go through it, so a stretch's steps get the
    whole series' scores.

    Parameters
    ----------
    aggregation : {"window", "window_mean", "step"}
    lengths : list of (int, float)
        Each window length scored and its divisor (its training scale).
    n_channels : int
    longest : int or None, default=None
        The longest window the aggregation reads: a length's step errors are
        aggregated over windows of ``min(length, longest)`` steps (``None``: its own).
    """

    def __init__(self, aggregation, lengths, n_channels, longest=None):
        self.aggregation, self.lengths, self.n_channels = aggregation, lengths, n_channels
        self.longest = longest

    def _parts(self, filled, raw, channels):
        width = self.n_channels if channels else 1
        for i, (length, divisor) in enumerate(self.lengths):
            cols = slice(i * width, (i + 1) * width)
            span = length if self.longest is None else min(length, self.longest)
            if channels:
                part = _aggregate_channels(raw[:, cols].T, span, self.aggregation,
                                           filled[:, cols].T).T
            else:
                part = _aggregate(filled[:, i], span, self.aggregation)
            yield part, divisor

    def scores(self, filled, raw, channels):
        """``raw`` step errors ``(m, K)`` (NaN: nothing observed) and the same with gaps
        filled -> each length's aggregation inside the stretch, divided by its divisor,
        the mean over lengths: ``(m,)``, or ``(m, C)`` per channel."""
        return mean_of([part / divisor for part, divisor in self._parts(filled, raw, channels)])

    def columns(self, filled, raw):
        """Each length's step scores, not divided: ``(m, K)`` (what the training scales
        are read from)."""
        return np.column_stack([part for part, _ in self._parts(filled, raw, False)])
