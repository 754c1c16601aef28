"""Pieces shared by the time-series metrics: anomaly ranges and score thresholds."""

from __future__ import annotations

import numpy as np

from ._validation import as_1d, check_binary


def anomaly_ranges(y):
    """Runs of consecutive 1s in a 0/1 vector, as ``[start, stop)`` index pairs.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Binary labels or predictions (0/1 or bool; 1 = anomaly).

    Returns
    -------
    ranges : ndarray of shape (n_ranges, 2), dtype int64
        Row ``i`` is ``[start, stop)``: ``y[start:stop]`` is all 1 and cannot be
        extended on either side. Rows are in time order; no anomaly gives shape
        ``(0, 2)``.

    Examples
    --------
    >>> from skdiffad.metrics import anomaly_ranges
    >>> anomaly_ranges([0, 1, 1, 0, 0, 1]).tolist()
    [[1, 3], [5, 6]]
    """
    flags = check_binary(as_1d(y, "y"), "y")
    padded = np.concatenate(([False], flags, [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return edges.reshape(-1, 2).astype(np.int64)


def range_maxima(scores, ranges):
    """Highest score in each ``[start, stop)`` row of ``ranges`` (non-empty, sorted)."""
    edges = ranges.ravel()
    padded = np.append(scores, -np.inf)  # so that a range may stop at n
    return np.maximum.reduceat(padded, edges)[::2]


def rank_thresholds(scores, n_thresholds):
    """Scores at ``n_thresholds`` evenly spaced ranks, from the highest to the lowest.

    With ``n_thresholds >= len(scores)`` this is every score, so every distinct
    operating point; otherwise the empirical quantiles at evenly spaced levels
    (repeats, from tied scores, are dropped).
    """
    ranked = np.sort(scores)[::-1]
    positions = np.linspace(0, ranked.size - 1, n_thresholds).astype(np.int64)
    return np.unique(ranked[positions])[::-1]
