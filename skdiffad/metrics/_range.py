"""Range-based precision, recall and F1 of Tatbul et al. (NeurIPS 2018).

Overlaps are counted with prefix sums over the series, so each call is
``O(n + n_ranges log n_ranges)`` and the bias weights stay exact integers.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._series import anomaly_ranges, rank_thresholds
from ._validation import (
    check_int,
    check_labels_and_predictions,
    check_labels_and_scores,
    check_option,
)

BIASES = ("flat", "front", "back", "middle")
CARDINALITIES = ("one", "reciprocal")


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
    check_option(cardinality, "cardinality", CARDINALITIES)
    check_option(bias, "bias", BIASES)


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
        0/1 or bool labels in time order, 1 = anomaly: their runs of 1s are the
        real ranges :math:`R_i`, of which there must be at least one.
    y_pred : array-like of shape (n_samples,)
        0/1 or bool predictions in time order: their runs of 1s are the
        predicted ranges :math:`P_j`.
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
    y, p = check_labels_and_predictions(y_true, y_pred)
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

    The arguments are those of :func:`range_precision_recall`.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        0/1 or bool labels in time order (the real ranges).
    y_pred : array-like of shape (n_samples,)
        0/1 or bool predictions in time order (the predicted ranges).
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
        0/1 or bool labels in time order, 1 = anomaly: the real ranges, at
        least one.
    scores : array-like of shape (n_samples,)
        Finite anomaly scores in time order, higher = more abnormal; the runs
        of ``scores >= t`` are the predicted ranges at threshold ``t``.
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
    y, s = check_labels_and_scores(y_true, scores)
    n_thresholds = check_int(n_thresholds, "n_thresholds", 1)
    true_ranges = anomaly_ranges(y)
    if len(true_ranges) == 0:
        raise ValueError("Range F1 is undefined when y_true has no anomaly range (no 1).")
    true_prefix = _prefix_sums(y)
    full_prefix = _prefix_sums(np.ones(y.size, dtype=bool))
    best, best_threshold = -1.0, None
    for threshold in rank_thresholds(s, n_thresholds):
        precision, recall = _range_scores(
            true_ranges, true_prefix, s >= threshold, full_prefix, 0.0, "one", "flat"
        )
        f1 = _harmonic_mean(precision, recall)
        if f1 > best:
            best, best_threshold = f1, float(threshold)
    return best, best_threshold
