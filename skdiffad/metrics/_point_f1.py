"""Point-wise F1 over thresholds, and the point-adjusted F1 kept for comparisons.

Point adjustment (Xu et al., WWW 2018) counts a whole labelled range as found
once any of its points is flagged. It inflates scores (Kim et al., AAAI 2022)
and is here only so that numbers can be compared with papers that report it.
"""

from __future__ import annotations

import numpy as np

from ._series import anomaly_ranges, range_maxima
from ._validation import (
    check_labels_and_predictions,
    check_labels_and_scores,
    require_anomalies,
)


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
    y, s = check_labels_and_scores(y_true, scores)
    require_anomalies(y, "F1")
    tp, fp, thresholds = _counts_at_distinct_thresholds(y, s)
    f1 = 2.0 * tp / (tp + fp + np.count_nonzero(y))
    best = int(np.argmax(f1))
    return float(f1[best]), float(thresholds[best])


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
    y, p = check_labels_and_predictions(y_true, y_pred)
    require_anomalies(y, "Point-adjusted F1")
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
    y, s = check_labels_and_scores(y_true, scores)
    require_anomalies(y, "Point-adjusted F1")
    ranges = anomaly_ranges(y)
    thresholds = np.unique(s)[::-1]
    normal_scores = np.sort(s[~y])
    false_pos = normal_scores.size - np.searchsorted(normal_scores, thresholds, side="left")
    maxima = range_maxima(s, ranges)
    by_maximum = np.argsort(-maxima, kind="stable")
    lengths = (ranges[:, 1] - ranges[:, 0])[by_maximum]
    found_mass = np.concatenate(([0], np.cumsum(lengths)))
    n_found = maxima.size - np.searchsorted(np.sort(maxima), thresholds, side="left")
    true_pos = found_mass[n_found]
    f1 = 2.0 * true_pos / (true_pos + false_pos + np.count_nonzero(y))
    best = int(np.argmax(f1))
    return float(f1[best]), float(thresholds[best])
