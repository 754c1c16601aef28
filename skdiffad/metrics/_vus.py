"""Volume Under the Surface (Paparrizos et al., VLDB 2022): VUS-ROC and VUS-PR.

The curves are not scikit-learn's: their true-positive rate carries soft buffer
labels and an existence factor, and the positives change with the threshold, so
they are built here, vectorised over thresholds, one buffer length at a time.
"""

from __future__ import annotations

import numpy as np

from ._series import anomaly_ranges, range_maxima, rank_thresholds
from ._validation import check_int, check_labels_and_scores, require_both_classes


def _buffer_distances(y, ranges, max_half):
    """Normal points within ``max_half`` of an anomaly range, and how close they are.

    Returns ``(positions, nearest, second)``: the positions, their distance to
    the nearest range and to the second-nearest one (``max(n, max_half) + 1``,
    beyond every buffer, when there is none). The distance from a point before
    ``[start, stop)`` is ``start - p``, after it ``p - stop + 1``, so the
    neighbours of a range are at distance 1.
    """
    empty = np.empty(0, dtype=np.int64)
    if max_half == 0:
        return empty, empty, empty
    starts, stops = ranges[:, 0], ranges[:, 1]
    positions = np.flatnonzero(~y)
    far = max(y.size, max_half) + 1  # n + 1 alone is within reach once window > 2 * n

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
        self.maxima = range_maxima(scores, ranges)
        self.half = 0

    def grow_to(self, half):
        n = self.scores.size
        while self.half < half:
            self.half += 1
            for edge in (self.starts - self.half, self.stops - 1 + self.half):
                inside = (edge >= 0) & (edge < n)
                self.maxima[inside] = np.maximum(self.maxima[inside], self.scores[edge[inside]])
        return self.maxima


def _existence_fractions(ranges, maxima, half, thresholds):
    """Fraction of buffered events holding a flagged point, for each threshold.

    Ranges whose grown extents overlap (gap < 2 * half) form one event, as in
    the TSB-AD implementation.
    """
    gaps = ranges[1:, 0] - ranges[:-1, 1]
    first_of_event = np.concatenate(([0], np.flatnonzero(gaps >= 2 * half) + 1))
    event_maxima = np.sort(np.maximum.reduceat(maxima, first_of_event))
    detected = event_maxima.size - np.searchsorted(event_maxima, thresholds, side="left")
    return detected / event_maxima.size


def _range_curve_areas(y, scores, window, n_thresholds):
    """Range-AUC-ROC and range-AUC-PR for every buffer length ``l = 0..window``."""
    n = y.size
    ranges = anomaly_ranges(y)
    thresholds = rank_thresholds(scores, n_thresholds)
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
    y, s = check_labels_and_scores(y_true, scores)
    require_both_classes(y, name)
    window = check_int(window, "window", 0)
    n_thresholds = check_int(n_thresholds, "n_thresholds", 2)
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
        ``window=W`` gives the numbers of TSB-AD's
        ``get_metrics(score, labels, slidingWindow=W)`` (tsb-ad 1.5), whose
        scripts set ``W`` to the series' period estimate. The default, 100,
        suits series whose period or anomaly length is some tens of points;
        ``window=0`` gives the range-AUC without buffer.
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
    merged events, this function agrees with tsb-ad 1.5 to 1e-15). Three
    details differ from the first (TSB-UAD) implementation: the trailing buffer
    has the same ``l // 2`` points as the leading one (there it was one shorter),
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
        0/1 or bool labels in time order, as for :func:`vus_roc` (both classes).
    scores : array-like of shape (n_samples,)
        Finite anomaly scores in time order, as for :func:`vus_roc`.
    window : int, default=100
        Largest buffer length (see :func:`vus_roc`; TSB-AD's ``slidingWindow``,
        which its scripts set to the series' period).
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
    A detection four points late loses as little as one four points early
    (see :func:`vus_roc`), and much less than under :func:`aupr`:

    >>> import numpy as np
    >>> from skdiffad.metrics import aupr, vus_pr
    >>> y = (np.arange(200) // 10 == 10).astype(int)  # anomaly at 100..109
    >>> late = np.roll(y, 4).astype(float)
    >>> round(aupr(y, late), 3), round(vus_pr(y, late, window=20), 3)
    (0.38, 0.69)
    """
    _, pr_areas = _vus(y_true, scores, window, n_thresholds, "VUS-PR")
    return float(pr_areas.mean())
