"""Metrics for anomaly scores and anomaly labels (pure numpy).

Three families, all with the conventions of the rest of the package: label 1 is
an anomaly, a higher score is more abnormal, and a threshold ``t`` flags the
points whose score is ``>= t``.

* Point-wise, threshold-free: :func:`auroc`, :func:`aupr`, and the best F1 over
  all thresholds, :func:`best_f1`.
* Range-aware, for time series: the Volume Under the Surface :func:`vus_roc` and
  :func:`vus_pr` (Paparrizos et al., VLDB 2022), and the range-based precision and
  recall of Tatbul et al. (NeurIPS 2018), :func:`range_precision_recall`,
  :func:`range_f1` and :func:`best_range_f1`.
* Point adjustment, :func:`point_adjusted_f1` and :func:`best_point_adjusted_f1`,
  kept only so that numbers can be compared with papers that report it: it
  inflates scores (Kim et al., AAAI 2022).

:func:`anomaly_ranges` turns a 0/1 vector into its ``[start, stop)`` runs of 1s.
The module itself imports numpy only: no torch, no scikit-learn.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "anomaly_ranges",
    "aupr",
    "auroc",
    "best_f1",
    "best_point_adjusted_f1",
    "best_range_f1",
    "point_adjusted_f1",
    "range_f1",
    "range_precision_recall",
    "vus_pr",
    "vus_roc",
]

BIASES = ("flat", "front", "back", "middle")
CARDINALITIES = ("one", "reciprocal")


# ------------------------------------------------------------------ validation
def _as_1d(values, name):
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got an array of shape {array.shape}.")
    if array.size == 0:
        raise ValueError(f"{name} is empty; it needs at least one value.")
    return array


def _check_binary(array, name):
    """Return ``array`` (already 1-D) as booleans, or raise if it is not 0/1."""
    if array.dtype == bool:
        return array
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(
            f"{name} must hold 0/1 or booleans (1 = anomaly); got dtype {array.dtype}."
        )
    bad = ~np.isin(array, (0, 1))
    if bad.any():
        examples = np.unique(array[bad])[:5].tolist()
        raise ValueError(
            f"{name} must hold only 0 and 1 (1 = anomaly); "
            f"{np.count_nonzero(bad)} values are not, e.g. {examples}."
        )
    return array.astype(bool)


def _check_same_length(first, first_name, second, second_name):
    if first.shape != second.shape:
        raise ValueError(
            f"{first_name} and {second_name} must have the same length; "
            f"got shapes {first.shape} and {second.shape}."
        )


def _check_labels_and_scores(y_true, scores):
    y = _as_1d(y_true, "y_true")
    s = _as_1d(scores, "scores")
    _check_same_length(y, "y_true", s, "scores")
    y = _check_binary(y, "y_true")
    if not (np.issubdtype(s.dtype, np.number) or s.dtype == bool):
        raise ValueError(f"scores must be numeric; got dtype {s.dtype}.")
    s = s.astype(np.float64)
    n_bad = np.count_nonzero(~np.isfinite(s))
    if n_bad:
        raise ValueError(f"scores must be finite; {n_bad} of {s.size} values are NaN or infinite.")
    return y, s


def _check_labels_and_predictions(y_true, y_pred):
    y = _as_1d(y_true, "y_true")
    p = _as_1d(y_pred, "y_pred")
    _check_same_length(y, "y_true", p, "y_pred")
    return _check_binary(y, "y_true"), _check_binary(p, "y_pred")


def _require_anomalies(y, metric):
    if not y.any():
        raise ValueError(f"{metric} is undefined when y_true holds no anomaly (no 1).")


def _require_both_classes(y, metric):
    _require_anomalies(y, metric)
    if y.all():
        raise ValueError(f"{metric} is undefined when y_true holds only anomalies (no 0).")


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def _check_option(value, name, options):
    if value not in options:
        raise ValueError(f"{name} must be one of {options}; got {value!r}.")


# ---------------------------------------------------------------- basic pieces
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
    flags = _check_binary(_as_1d(y, "y"), "y")
    padded = np.concatenate(([False], flags, [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return edges.reshape(-1, 2).astype(np.int64)


def _midranks(values):
    """1-based ranks of ``values``, tied values sharing the mean of their ranks."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    last_rank = np.cumsum(counts)
    return (last_rank - (counts - 1) / 2.0)[inverse]


def _counts_at_distinct_thresholds(y, scores):
    """True/false positives when flagging ``scores >= t``, for every distinct ``t``.

    Returns ``(tp, fp, thresholds)`` with the thresholds in decreasing order.
    """
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    last_of_tie = np.append(np.flatnonzero(np.diff(ranked)), ranked.size - 1)
    tp = np.cumsum(y[order])[last_of_tie]
    fp = last_of_tie + 1 - tp
    return tp, fp, ranked[last_of_tie]


def _rank_thresholds(scores, n_thresholds):
    """Scores at ``n_thresholds`` evenly spaced ranks, from the highest to the lowest.

    With ``n_thresholds >= len(scores)`` this is every score, so every distinct
    operating point; otherwise the empirical quantiles at evenly spaced levels
    (repeats, from tied scores, are dropped).
    """
    ranked = np.sort(scores)[::-1]
    positions = np.linspace(0, ranked.size - 1, n_thresholds).astype(np.int64)
    return np.unique(ranked[positions])[::-1]


# --------------------------------------------------------- point-wise metrics
def auroc(y_true, scores):
    """Area under the ROC curve, ties counted by midranks.

    Equals the probability that a random anomaly scores higher than a random
    normal point, a tie counting one half (the Mann-Whitney statistic), which is
    what ``sklearn.metrics.roc_auc_score`` computes.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        0/1 or bool labels, 1 = anomaly. Both classes must be present.
    scores : array-like of shape (n_samples,)
        Anomaly scores, higher = more abnormal; must be finite.

    Returns
    -------
    auroc : float
        In [0, 1]; 0.5 for a score that does not separate the classes.

    Examples
    --------
    >>> from skdiffad.metrics import auroc
    >>> auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    y, s = _check_labels_and_scores(y_true, scores)
    _require_both_classes(y, "AUROC")
    n_pos = np.count_nonzero(y)
    n_neg = y.size - n_pos
    rank_sum = _midranks(s)[y].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def aupr(y_true, scores):
    """Average precision: the step-wise area under the precision-recall curve.

    ``AP = sum_k (R_k - R_{k-1}) P_k`` over the distinct thresholds in decreasing
    order, with ``R_0 = 0``: the definition of
    ``sklearn.metrics.average_precision_score`` (no interpolation).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        0/1 or bool labels, 1 = anomaly; at least one anomaly.
    scores : array-like of shape (n_samples,)
        Anomaly scores, higher = more abnormal; must be finite.

    Returns
    -------
    aupr : float
        In (0, 1]; a random score gets about the anomaly rate.

    Examples
    --------
    >>> from skdiffad.metrics import aupr
    >>> round(aupr([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 4)
    0.8333
    """
    y, s = _check_labels_and_scores(y_true, scores)
    _require_anomalies(y, "AUPR")
    tp, fp, _ = _counts_at_distinct_thresholds(y, s)
    precision = tp / (tp + fp)
    recall = tp / tp[-1]
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def best_f1(y_true, scores):
    """Best point-wise F1 over all thresholds.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        0/1 or bool labels, 1 = anomaly; at least one anomaly.
    scores : array-like of shape (n_samples,)
        Anomaly scores, higher = more abnormal; must be finite.

    Returns
    -------
    f1 : float
        The largest F1 of the predictions ``scores >= t`` over every distinct
        score ``t``.
    threshold : float
        The ``t`` reaching it (the highest one when several do).

    Examples
    --------
    >>> from skdiffad.metrics import best_f1
    >>> best_f1([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    (0.8, 0.35)
    """
    y, s = _check_labels_and_scores(y_true, scores)
    _require_anomalies(y, "F1")
    tp, fp, thresholds = _counts_at_distinct_thresholds(y, s)
    f1 = 2.0 * tp / (tp + fp + np.count_nonzero(y))
    best = int(np.argmax(f1))
    return float(f1[best]), float(thresholds[best])


# ------------------------------------------------------ Volume Under the Surface
def _buffer_distances(y, ranges, max_half):
    """Normal points within ``max_half`` of an anomaly range, and how close they are.

    Returns ``(positions, nearest, second)``: the positions, their distance to
    the nearest range and to the second-nearest one (``n + 1`` when there is
    none). The distance from a point before ``[start, stop)`` is ``start - p``,
    after it ``p - stop + 1``, so the neighbours of a range are at distance 1.
    """
    empty = np.empty(0, dtype=np.int64)
    if max_half == 0:
        return empty, empty, empty
    starts, stops = ranges[:, 0], ranges[:, 1]
    positions = np.flatnonzero(~y)
    far = y.size + 1

    def distance(valid, index, to_edge):
        return np.where(
            valid, np.abs(to_edge[np.clip(index, 0, len(to_edge) - 1)] - positions), far
        )

    left = np.searchsorted(stops, positions, side="right") - 1  # last range ending before p
    right = left + 1  # first range starting after p
    # "stops - 1": the distance after a range counts from its last point.
    left_1 = distance(left >= 0, left, stops - 1)
    left_2 = distance(left >= 1, left - 1, stops - 1)
    right_1 = distance(right < len(starts), right, starts)
    right_2 = distance(right + 1 < len(starts), right + 1, starts)
    nearest = np.minimum(left_1, right_1)
    second = np.where(left_1 <= right_1, np.minimum(right_1, left_2), np.minimum(left_1, right_2))
    close = nearest <= max_half
    return positions[close], nearest[close], second[close]


def _buffer_labels(nearest, second, buffer_length):
    """Soft labels of buffer points for buffer length ``l`` (see :func:`vus_roc`)."""
    half = buffer_length // 2
    if half == 0:
        return np.zeros(nearest.size)
    ramp = np.sqrt(1.0 - np.minimum(nearest, half) / buffer_length)
    # Where two ranges reach a point their ramps (each >= sqrt(1/2)) add up past 1.
    return np.where(nearest > half, 0.0, np.where(second <= half, 1.0, ramp))


class _RangeMaxima:
    """Highest score in each anomaly range grown by ``h`` points on both sides."""

    def __init__(self, scores, ranges):
        self.scores, self.starts, self.stops = scores, ranges[:, 0], ranges[:, 1]
        edges = np.column_stack([self.starts, self.stops]).ravel()
        padded = np.append(scores, -np.inf)  # so that a range may stop at n
        self.maxima = np.maximum.reduceat(padded, edges)[::2]
        self.half = 0

    def grow_to(self, half):
        n = self.scores.size
        while self.half < half:
            self.half += 1
            for edge in (self.starts - self.half, self.stops - 1 + self.half):
                inside = (edge >= 0) & (edge < n)
                self.maxima[inside] = np.maximum(self.maxima[inside], self.scores[edge[inside]])
        return self.maxima


def _existence_fractions(ranges, range_maxima, half, thresholds):
    """Fraction of buffered events holding a flagged point, for each threshold.

    Ranges whose grown extents overlap (gap < 2 * half) form one event, as in
    the TSB-AD implementation.
    """
    gaps = ranges[1:, 0] - ranges[:-1, 1]
    first_of_event = np.concatenate(([0], np.flatnonzero(gaps >= 2 * half) + 1))
    event_maxima = np.sort(np.maximum.reduceat(range_maxima, first_of_event))
    detected = event_maxima.size - np.searchsorted(event_maxima, thresholds, side="left")
    return detected / event_maxima.size


def _range_curve_areas(y, scores, window, n_thresholds):
    """Range-AUC-ROC and range-AUC-PR for every buffer length ``l = 0..window``."""
    n = y.size
    ranges = anomaly_ranges(y)
    thresholds = _rank_thresholds(scores, n_thresholds)
    order = np.argsort(-scores, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    ascending = np.sort(scores)
    flagged = n - np.searchsorted(ascending, thresholds, side="left")  # count of scores >= t

    n_anomalies = np.count_nonzero(y)
    anomalies_flagged = np.concatenate(([0], np.cumsum(y[order])))[flagged]
    positions, nearest, second = _buffer_distances(y, ranges, window // 2)
    buffer_ranks = rank[positions]
    by_rank = np.argsort(buffer_ranks)
    buffer_ranks = buffer_ranks[by_rank]
    nearest, second = nearest[by_rank], second[by_rank]
    buffer_cut = np.searchsorted(buffer_ranks, flagged, side="left")  # buffer points flagged

    maxima = _RangeMaxima(scores, ranges)
    existence = _existence_fractions(ranges, maxima.maxima, 0, thresholds)
    roc_areas = np.empty(window + 1)
    pr_areas = np.empty(window + 1)
    for length in range(window + 1):
        half = length // 2
        if half != maxima.half:
            existence = _existence_fractions(ranges, maxima.grow_to(half), half, thresholds)
        soft = _buffer_labels(nearest, second, length)
        buffer_mass = np.concatenate(([0.0], np.cumsum(soft)))[buffer_cut]
        true_pos = anomalies_flagged + buffer_mass
        positives = n_anomalies + buffer_mass / 2.0
        tpr = np.minimum(true_pos / positives, 1.0) * existence
        fpr = (flagged - true_pos) / (n - positives)
        precision = true_pos / flagged
        roc_x = np.concatenate(([0.0], fpr, [1.0]))
        roc_y = np.concatenate(([0.0], tpr, [1.0]))
        roc_areas[length] = np.sum(np.diff(roc_x) * (roc_y[1:] + roc_y[:-1]) / 2.0)
        pr_areas[length] = np.sum(np.diff(tpr, prepend=0.0) * precision)
    return roc_areas, pr_areas


def _vus(y_true, scores, window, n_thresholds, name):
    y, s = _check_labels_and_scores(y_true, scores)
    _require_both_classes(y, name)
    window = _check_int(window, "window", 0)
    n_thresholds = _check_int(n_thresholds, "n_thresholds", 2)
    return _range_curve_areas(y, s, window, n_thresholds)


def vus_roc(y_true, scores, window=100, *, n_thresholds=250):
    r"""Volume Under the range-ROC Surface (VUS-ROC) of a time-series anomaly score.

    The threshold-free, lag-tolerant measure of Paparrizos et al. (VLDB 2022),
    recommended by the TSB-AD benchmark (Liu & Paparrizos, NeurIPS 2024). It is
    the mean, over buffer lengths ``l = 0, 1, ..., window``, of a range-based
    AUC-ROC in which every labelled anomaly range is widened by a soft buffer.

    **Soft labels.** For a buffer length ``l`` let ``h = l // 2``. A point at
    distance ``d`` from an anomaly range ``[s, e)`` (``d = s - i`` before it,
    ``d = i - e + 1`` after it) is in that range's buffer when ``1 <= d <= h``,
    where the range contributes :math:`\sqrt{1 - d / l}` (a sqrt-shaped ramp from
    about 1 down to :math:`\sqrt{1/2}`). The soft label :math:`\ell_i` is 1 inside
    a range, the clipped sum :math:`\min(1, \sum)` of the contributions in a
    buffer (so a point reached by two ranges gets 1), and 0 elsewhere.

    **Curve for one threshold.** With predictions :math:`p_i = [s_i \ge t]`,
    :math:`P = \sum_i y_i` the number of labelled anomaly points and
    :math:`B = \sum_{i: y_i = 0} \ell_i p_i` the label mass of the *flagged*
    buffer points:

    .. math::

        TP = \sum_i \ell_i p_i, \quad
        P_\ell = P + B / 2, \quad
        \mathrm{TPR} = \min(TP / P_\ell, 1) \cdot \frac{\#\text{detected events}}{\#\text{events}},

        \mathrm{FPR} = \frac{\sum_i p_i - TP}{n - P_\ell}, \quad
        \mathrm{Precision} = \frac{TP}{\sum_i p_i},

    where an *event* is an anomaly range grown by ``h`` points on each side
    (ranges whose grown extents overlap count as one event) and it is detected
    when it holds a flagged point: the existence reward of Tatbul et al. The
    paper takes as positives the mean of the hard and soft label masses, so
    that short anomalies are not swamped by their buffers; like TSB-AD, only the
    *flagged* buffer points enter :math:`P_\ell` here, so a score that flags
    exactly the labelled points is not penalised for leaving the buffers alone.

    **Areas.** The thresholds ``t_1 > ... > t_K`` are the scores at
    ``n_thresholds`` evenly spaced ranks (every score when
    ``n_thresholds >= n``). The range-AUC-ROC for ``l`` is the trapezoidal area
    under ``(0, 0), (FPR_k, TPR_k)_{k=1..K}, (1, 1)``; VUS-ROC is the mean of
    these ``window + 1`` areas. (The paper writes VUS as a volume under the
    surface over ``(l, FPR)``, with trapezoids along ``l`` too; the reference
    implementations, TSB-AD's included, take this plain mean over ``l``.)

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        0/1 or bool labels in time order, 1 = anomaly. Both classes must be
        present.
    scores : array-like of shape (n_samples,)
        Anomaly scores in time order, higher = more abnormal; must be finite.
    window : int, default=100
        Largest buffer length ``L``: buffers of ``l // 2`` points on each side of
        every range, for ``l = 0..L`` (so up to 50 points per side by default).
        TSB-AD sets ``L`` to twice the series' sliding-window length (its period
        estimate); pass ``window=2 * period`` to reproduce its tables. The
        default, 100, suits series whose period or anomaly length is some tens of
        points; ``window=0`` gives the range-AUC without buffer.
    n_thresholds : int, default=250
        Number of thresholds on the curve, as in the reference implementation.
        The cost is ``O(n log n + window * (n_buffer + n_thresholds))``, with
        ``n_buffer`` the number of points within ``window // 2`` of an anomaly.

    Returns
    -------
    vus_roc : float
        In [0, 1]. 1 when one of the thresholds flags exactly the labelled
        anomalies (a 0/1 score equal to ``y_true``, or any score that ranks them
        first once ``n_thresholds >= n``). A random score gets about 0.5 only
        when the buffers are short next to the anomalies (see Notes).

    See Also
    --------
    vus_pr : the precision-recall counterpart.
    auroc : the point-wise measure, which a score peaking a few points early or
        late loses much more of.

    Notes
    -----
    Definitions follow the TSB-AD evaluation code, with the same thresholds, so
    the numbers are comparable with its tables (on random cases, with ties and
    merged events, this function agrees with it to 1e-15). Three details differ
    from the first (TSB-UAD) implementation: the trailing buffer has the same
    ``l // 2`` points as the leading one (there it was one point shorter),
    :math:`P_\ell` counts only the flagged buffer points (there the whole
    buffer), and precision-recall uses step-wise, not trapezoidal, areas.

    With ``window=0`` and a single anomaly range the
    existence factor is 1 whenever the range has a flagged point, so
    ``vus_roc`` equals :func:`auroc` exactly once ``n_thresholds >= n``.

    VUS-ROC is not centred on 0.5 for an uninformative score. A flagged buffer
    point adds its soft label to ``TP`` in full but to :math:`P_\ell` only by
    half, which lifts a random score above 0.5 when the buffers hold much label
    mass next to the anomalies (in simulations, about 0.56 for 200-point
    anomalies and 0.67 for 50-point ones with ``window=100``); the existence
    factor pulls it below 0.5
    for very short anomalies (about 1/3 for isolated single points with
    ``window=0``). Compare detectors on the same labels and ``window``, not
    against 0.5.

    References
    ----------
    .. [1] J. Paparrizos, P. Boniol, T. Palpanas, R. S. Tsay, A. Elmore and
       M. J. Franklin. "Volume Under the Surface: A New Accuracy Evaluation
       Measure for Time-Series Anomaly Detection". PVLDB 15(11), 2022.
    .. [2] Q. Liu and J. Paparrizos. "The Elephant in the Room: Towards A
       Reliable Time-Series Anomaly Detection Benchmark". NeurIPS 2024
       (Datasets and Benchmarks).
    .. [3] N. Tatbul, T. J. Lee, S. Zdonik, M. Alam and J. Gottschlich.
       "Precision and Recall for Time Series". NeurIPS 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from skdiffad.metrics import auroc, vus_roc
    >>> y = np.zeros(200, dtype=int)
    >>> y[100:110] = 1
    >>> early = np.zeros(200)
    >>> early[96:106] = 1.0  # the detector fires 4 points early
    >>> round(auroc(y, early), 3), round(vus_roc(y, early, window=20), 3)
    (0.789, 0.879)
    """
    roc_areas, _ = _vus(y_true, scores, window, n_thresholds, "VUS-ROC")
    return float(roc_areas.mean())


def vus_pr(y_true, scores, window=100, *, n_thresholds=250):
    r"""Volume Under the range-precision-recall Surface (VUS-PR).

    The precision-recall counterpart of :func:`vus_roc`, and TSB-AD's headline
    measure: with the same soft labels, thresholds and range-based recall
    (:math:`\mathrm{TPR}` with the existence reward) and precision
    :math:`TP / \sum_i p_i`, the range-AUC-PR for a buffer length ``l`` is the
    step-wise area

    .. math::

        \sum_{k=1}^{K} (\mathrm{TPR}_k - \mathrm{TPR}_{k-1})\, \mathrm{Precision}_k,
        \qquad \mathrm{TPR}_0 = 0,

    and VUS-PR is its mean over ``l = 0..window``. See :func:`vus_roc` for the
    full definition of the soft labels, ``TPR`` and the thresholds.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        0/1 or bool labels in time order, 1 = anomaly. Both classes must be
        present.
    scores : array-like of shape (n_samples,)
        Anomaly scores in time order, higher = more abnormal; must be finite.
    window : int, default=100
        Largest buffer length (see :func:`vus_roc`; TSB-AD uses twice the
        series' period).
    n_thresholds : int, default=250
        Number of thresholds on the curve.

    Returns
    -------
    vus_pr : float
        In [0, 1]. 1 when one of the thresholds flags exactly the labelled
        anomalies; for a random score, about the anomaly rate (more with long
        buffers around short anomalies).

    See Also
    --------
    vus_roc, aupr

    Notes
    -----
    With ``window=0``, a single anomaly range and ``n_thresholds >= n``,
    ``vus_pr`` equals :func:`aupr` exactly.

    References
    ----------
    .. [1] J. Paparrizos, P. Boniol, T. Palpanas, R. S. Tsay, A. Elmore and
       M. J. Franklin. "Volume Under the Surface: A New Accuracy Evaluation
       Measure for Time-Series Anomaly Detection". PVLDB 15(11), 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from skdiffad.metrics import aupr, vus_pr
    >>> y = np.zeros(200, dtype=int)
    >>> y[100:110] = 1
    >>> early = np.zeros(200)
    >>> early[96:106] = 1.0
    >>> round(aupr(y, early), 3), round(vus_pr(y, early, window=20), 3)
    (0.38, 0.69)
    """
    _, pr_areas = _vus(y_true, scores, window, n_thresholds, "VUS-PR")
    return float(pr_areas.mean())


# ------------------------------------------------- range precision and recall
def _prefix_sums(flags):
    """Prefix sums of ``flags`` and of ``flags * position`` (length ``n + 1``)."""
    flags = flags.astype(np.int64)
    positions = np.arange(flags.size, dtype=np.int64)
    count = np.concatenate(([0], np.cumsum(flags)))
    moment = np.concatenate(([0], np.cumsum(flags * positions)))
    return count, moment


def _bias_pieces(ranges, bias):
    """Each range as pieces ``[a, b)`` on which the bias weight is ``c0 + c1 * position``.

    Position ``i = p - start + 1`` (1-based) of a range of length ``L`` weighs
    1 (flat), ``L - i + 1`` (front), ``i`` (back), or ``i`` up to ``L / 2`` and
    ``L - i + 1`` after it (middle).
    """
    starts, stops = ranges[:, 0], ranges[:, 1]
    ones = np.ones_like(starts)
    if bias == "flat":
        return [(starts, stops, ones, 0 * ones)]
    if bias == "front":
        return [(starts, stops, stops, -ones)]
    if bias == "back":
        return [(starts, stops, 1 - starts, ones)]
    middle = starts + (stops - starts) // 2
    return [(starts, middle, 1 - starts, ones), (middle, stops, stops, -ones)]


def _weighted_overlap(ranges, prefix, bias):
    """Sum of the bias weights of the flagged points in each range (exact integers)."""
    count, moment = prefix
    total = np.zeros(len(ranges), dtype=np.int64)
    for a, b, c0, c1 in _bias_pieces(ranges, bias):
        total += c0 * (count[b] - count[a]) + c1 * (moment[b] - moment[a])
    return total


def _overlap_sizes(ranges, prefix, full_prefix, bias):
    """Tatbul's positional overlap ``omega`` of each range: flagged weight / total weight."""
    return _weighted_overlap(ranges, prefix, bias) / _weighted_overlap(ranges, full_prefix, bias)


def _n_overlapping(ranges, others):
    """How many of the ranges ``others`` (sorted, disjoint) overlap each range."""
    begun = np.searchsorted(others[:, 0], ranges[:, 1], side="left")  # others starting before stop
    ended = np.searchsorted(others[:, 1], ranges[:, 0], side="right")  # others ending by start
    return begun - ended


def _cardinality_factor(n_overlapping, cardinality):
    if cardinality == "one":
        return np.ones(n_overlapping.size)
    return 1.0 / np.maximum(n_overlapping, 1)


def _range_scores(true_ranges, true_prefix, y_pred, full_prefix, alpha, cardinality, bias):
    pred_ranges = anomaly_ranges(y_pred)
    true_hits = _n_overlapping(true_ranges, pred_ranges)
    overlap = _overlap_sizes(true_ranges, _prefix_sums(y_pred), full_prefix, bias)
    recall_each = (
        alpha * (true_hits > 0)
        + (1.0 - alpha) * _cardinality_factor(true_hits, cardinality) * overlap
    )
    recall = float(recall_each.mean())
    if len(pred_ranges) == 0:
        return 0.0, recall
    pred_hits = _n_overlapping(pred_ranges, true_ranges)
    precision_each = _cardinality_factor(pred_hits, cardinality) * _overlap_sizes(
        pred_ranges, true_prefix, full_prefix, bias
    )
    return float(precision_each.mean()), recall


def _harmonic_mean(precision, recall):
    return 0.0 if precision + recall == 0 else 2.0 * precision * recall / (precision + recall)


def _check_range_options(alpha, cardinality, bias):
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be a number in [0, 1]; got {alpha!r}.")
    _check_option(cardinality, "cardinality", CARDINALITIES)
    _check_option(bias, "bias", BIASES)


def range_precision_recall(y_true, y_pred, alpha=0.0, cardinality="one", bias="flat"):
    r"""Range-based precision and recall of Tatbul et al. (NeurIPS 2018).

    With real anomaly ranges :math:`R_1..R_{N_r}` (runs of 1s of ``y_true``) and
    predicted ranges :math:`P_1..P_{N_p}` (runs of 1s of ``y_pred``):

    .. math::

        \mathrm{Recall} = \frac{1}{N_r} \sum_i \Big[\alpha\, \mathrm{Existence}(R_i)
            + (1 - \alpha)\, \gamma(R_i)\, \omega(R_i, R_i \cap P)\Big],
        \qquad
        \mathrm{Precision} = \frac{1}{N_p} \sum_j \gamma(P_j)\, \omega(P_j, P_j \cap R),

    where :math:`\mathrm{Existence}(R_i)` is 1 when :math:`R_i` overlaps some
    predicted range, and the overlap size
    :math:`\omega(A, O) = \sum_{p \in O} \delta(p) / \sum_{p \in A} \delta(p)` weighs
    the positions ``i = 1..L`` of a range of length ``L`` by the positional bias
    :math:`\delta`: ``"flat"`` 1, ``"front"`` ``L - i + 1``, ``"back"`` ``i``,
    ``"middle"`` ``i`` for ``i <= L / 2`` and ``L - i + 1`` after. The
    cardinality factor :math:`\gamma` is 1 (``"one"``) or ``1 / x``
    (``"reciprocal"``), ``x`` being the number of ranges of the other side that
    overlap the range (1 when ``x <= 1``). Precision has no existence term.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        0/1 or bool labels in time order, 1 = anomaly; at least one anomaly.
    y_pred : array-like of shape (n_samples,)
        0/1 or bool predictions in time order.
    alpha : float, default=0.0
        Weight of the existence reward in recall, in [0, 1].
    cardinality : {"one", "reciprocal"}, default="one"
        Cardinality factor ``gamma``; ``"reciprocal"`` penalises a range split
        over several ranges of the other side.
    bias : {"flat", "front", "back", "middle"}, default="flat"
        Positional bias ``delta``, used for both precision and recall.

    Returns
    -------
    precision : float
        In [0, 1]; 0 when ``y_pred`` flags nothing (no predicted range).
    recall : float
        In [0, 1].

    Raises
    ------
    ValueError
        When ``y_true`` has no anomaly range (recall is then undefined).

    References
    ----------
    .. [1] N. Tatbul, T. J. Lee, S. Zdonik, M. Alam and J. Gottschlich.
       "Precision and Recall for Time Series". NeurIPS 2018.

    Examples
    --------
    >>> from skdiffad.metrics import range_precision_recall
    >>> y_true = [0, 1, 1, 1, 1, 0, 0, 0]
    >>> y_pred = [0, 1, 1, 0, 0, 0, 1, 0]
    >>> range_precision_recall(y_true, y_pred)
    (0.5, 0.5)
    >>> range_precision_recall(y_true, y_pred, bias="front")
    (0.5, 0.7)
    """
    y, p = _check_labels_and_predictions(y_true, y_pred)
    _check_range_options(alpha, cardinality, bias)
    true_ranges = anomaly_ranges(y)
    if len(true_ranges) == 0:
        raise ValueError(
            "Range precision and recall are undefined when y_true has no anomaly range (no 1)."
        )
    full_prefix = _prefix_sums(np.ones(y.size, dtype=bool))
    return _range_scores(
        true_ranges, _prefix_sums(y), p, full_prefix, float(alpha), cardinality, bias
    )


def range_f1(y_true, y_pred, alpha=0.0, cardinality="one", bias="flat"):
    """Harmonic mean of the range-based precision and recall of Tatbul et al.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        0/1 or bool labels in time order, 1 = anomaly; at least one anomaly.
    y_pred : array-like of shape (n_samples,)
        0/1 or bool predictions in time order.
    alpha : float, default=0.0
        Weight of the existence reward in recall.
    cardinality : {"one", "reciprocal"}, default="one"
        Cardinality factor.
    bias : {"flat", "front", "back", "middle"}, default="flat"
        Positional bias.

    Returns
    -------
    f1 : float
        ``2 P R / (P + R)`` with ``(P, R)`` from :func:`range_precision_recall`;
        0 when both are 0.

    Examples
    --------
    >>> from skdiffad.metrics import range_f1
    >>> range_f1([0, 1, 1, 1, 1, 0, 0, 0], [0, 1, 1, 0, 0, 0, 1, 0])
    0.5
    """
    precision, recall = range_precision_recall(y_true, y_pred, alpha, cardinality, bias)
    return _harmonic_mean(precision, recall)


def best_range_f1(y_true, scores, n_thresholds=100):
    """Best range-based F1 (flat bias, no existence reward) over score quantiles.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        0/1 or bool labels in time order, 1 = anomaly; at least one anomaly.
    scores : array-like of shape (n_samples,)
        Anomaly scores in time order, higher = more abnormal; must be finite.
    n_thresholds : int, default=100
        The thresholds are the scores at ``n_thresholds`` evenly spaced ranks
        (empirical quantiles; every score when ``n_thresholds >= n``).

    Returns
    -------
    f1 : float
        The largest :func:`range_f1` (``alpha=0``, ``cardinality="one"``,
        ``bias="flat"``) of the predictions ``scores >= t``.
    threshold : float
        The ``t`` reaching it (the highest one when several do).

    Examples
    --------
    >>> from skdiffad.metrics import best_range_f1
    >>> best_range_f1([0, 1, 1, 0, 0], [0.1, 0.9, 0.7, 0.8, 0.2])
    (0.8, 0.7)
    """
    y, s = _check_labels_and_scores(y_true, scores)
    n_thresholds = _check_int(n_thresholds, "n_thresholds", 1)
    true_ranges = anomaly_ranges(y)
    if len(true_ranges) == 0:
        raise ValueError("Range F1 is undefined when y_true has no anomaly range (no 1).")
    true_prefix = _prefix_sums(y)
    full_prefix = _prefix_sums(np.ones(y.size, dtype=bool))
    best, best_threshold = -1.0, None
    for threshold in _rank_thresholds(s, n_thresholds):
        precision, recall = _range_scores(
            true_ranges, true_prefix, s >= threshold, full_prefix, 0.0, "one", "flat"
        )
        f1 = _harmonic_mean(precision, recall)
        if f1 > best:
            best, best_threshold = f1, float(threshold)
    return best, best_threshold


# ------------------------------------------------------------ point adjustment
def point_adjusted_f1(y_true, y_pred):
    """Point-wise F1 after point adjustment (PA): a touched range counts as found.

    If ``y_pred`` flags any point of a labelled anomaly range, every point of that
    range is counted as flagged; the F1 of these adjusted predictions against
    ``y_true`` is returned.

    Warnings
    --------
    Point adjustment inflates scores and should not be used to rank detectors.
    Kim et al. (AAAI 2022) showed that a *random* anomaly score reaches a high
    PA-F1 on the usual benchmarks, often beating published deep detectors,
    because one lucky point in a long range earns the whole range. It is provided
    only to compare with papers that report it; prefer :func:`vus_pr`,
    :func:`range_f1` or :func:`best_f1`.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        0/1 or bool labels in time order, 1 = anomaly; at least one anomaly.
    y_pred : array-like of shape (n_samples,)
        0/1 or bool predictions in time order.

    Returns
    -------
    f1 : float
        ``2 TP / (2 TP + FP + FN)`` of the adjusted predictions.

    References
    ----------
    .. [1] H. Xu et al. "Unsupervised Anomaly Detection via Variational
       Auto-Encoder for Seasonal KPIs in Web Applications". WWW 2018 (the
       protocol).
    .. [2] S. Kim, K. Choi, H.-S. Choi, B. Lee and S. Yoon. "Towards a Rigorous
       Evaluation of Time-Series Anomaly Detection". AAAI 2022 (its flaw).

    Examples
    --------
    >>> from skdiffad.metrics import point_adjusted_f1
    >>> point_adjusted_f1([0, 1, 1, 1, 1, 0], [0, 0, 1, 0, 0, 1])
    0.8888888888888888
    """
    y, p = _check_labels_and_predictions(y_true, y_pred)
    _require_anomalies(y, "Point-adjusted F1")
    ranges = anomaly_ranges(y)
    flagged_before = np.concatenate(([0], np.cumsum(p)))
    touched = flagged_before[ranges[:, 1]] > flagged_before[ranges[:, 0]]
    true_pos = int(np.sum(ranges[touched, 1] - ranges[touched, 0]))
    false_pos = np.count_nonzero(p & ~y)
    return float(2.0 * true_pos / (true_pos + false_pos + np.count_nonzero(y)))


def best_point_adjusted_f1(y_true, scores):
    """Best point-adjusted F1 over all thresholds.

    Warnings
    --------
    Point adjustment inflates scores: Kim et al. (AAAI 2022) showed that a random
    score reaches a high best PA-F1, so this number says little about a detector.
    It is provided only for comparison with papers; see
    :func:`point_adjusted_f1`.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        0/1 or bool labels in time order, 1 = anomaly; at least one anomaly.
    scores : array-like of shape (n_samples,)
        Anomaly scores in time order, higher = more abnormal; must be finite.

    Returns
    -------
    f1 : float
        The largest :func:`point_adjusted_f1` of the predictions ``scores >= t``
        over every distinct score ``t``.
    threshold : float
        The ``t`` reaching it (the highest one when several do).

    References
    ----------
    .. [1] S. Kim, K. Choi, H.-S. Choi, B. Lee and S. Yoon. "Towards a Rigorous
       Evaluation of Time-Series Anomaly Detection". AAAI 2022.

    Examples
    --------
    >>> from skdiffad.metrics import best_point_adjusted_f1
    >>> best_point_adjusted_f1([0, 1, 1, 1, 1, 0], [0.1, 0.2, 0.9, 0.3, 0.2, 0.5])
    (1.0, 0.9)
    """
    y, s = _check_labels_and_scores(y_true, scores)
    _require_anomalies(y, "Point-adjusted F1")
    ranges = anomaly_ranges(y)
    thresholds = np.unique(s)[::-1]
    normal_scores = np.sort(s[~y])
    false_pos = normal_scores.size - np.searchsorted(normal_scores, thresholds, side="left")
    edges = np.column_stack([ranges[:, 0], ranges[:, 1]]).ravel()
    range_maxima = np.maximum.reduceat(np.append(s, -np.inf), edges)[::2]
    by_maximum = np.argsort(-range_maxima, kind="stable")
    lengths = (ranges[:, 1] - ranges[:, 0])[by_maximum]
    found_mass = np.concatenate(([0], np.cumsum(lengths)))
    n_found = range_maxima.size - np.searchsorted(np.sort(range_maxima), thresholds, side="left")
    true_pos = found_mass[n_found]
    f1 = 2.0 * true_pos / (true_pos + false_pos + np.count_nonzero(y))
    best = int(np.argmax(f1))
    return float(f1[best]), float(thresholds[best])
