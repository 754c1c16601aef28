"""Point-wise, threshold-free ranking metrics: AUROC and AUPR.

Both hand the numbers to scikit-learn once the inputs are checked here, so that
a single class or a non-finite score gets this package's error naming the
argument, not scikit-learn's warning and NaN or 0.
"""

from __future__ import annotations

from sklearn.metrics import average_precision_score, roc_auc_score

from ._validation import check_labels_and_scores, require_anomalies, require_both_classes


def auroc(y_true, scores):
    """Area under the ROC curve, ties counted by midranks.

    Equals the probability that a random anomaly scores higher than a random
    normal point, a tie counting one half (the Mann-Whitney statistic): it is
    ``sklearn.metrics.roc_auc_score``, after the checks below.

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

    Raises
    ------
    ValueError
        When ``y_true`` is not 0/1, holds a single class, or ``scores`` holds a
        NaN or infinite value.

    Examples
    --------
    >>> from skdiffad.metrics import auroc
    >>> auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    y, s = check_labels_and_scores(y_true, scores)
    require_both_classes(y, "AUROC")
    return float(roc_auc_score(y, s))


def aupr(y_true, scores):
    """Average precision: the step-wise area under the precision-recall curve.

    ``AP = sum_k (R_k - R_{k-1}) P_k`` over the distinct thresholds in decreasing
    order, with ``R_0 = 0``: ``sklearn.metrics.average_precision_score`` (no
    interpolation), after the checks below.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        0/1 or bool labels, 1 = anomaly; at least one anomaly. When every point
        is an anomaly the result is 1.
    scores : array-like of shape (n_samples,)
        Anomaly scores, higher = more abnormal; must be finite.

    Returns
    -------
    aupr : float
        In (0, 1]; a random score gets about the anomaly rate.

    Raises
    ------
    ValueError
        When ``y_true`` is not 0/1 or holds no anomaly, or ``scores`` holds a
        NaN or infinite value.

    Examples
    --------
    >>> from skdiffad.metrics import aupr
    >>> round(aupr([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 4)
    0.8333
    """
    y, s = check_labels_and_scores(y_true, scores)
    require_anomalies(y, "AUPR")
    return float(average_precision_score(y, s))
