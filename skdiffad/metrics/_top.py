"""The UCR anomaly archive's own measure: does the top score fall in the anomaly?"""

from __future__ import annotations

import numpy as np

from ._series import anomaly_ranges
from ._validation import check_int, check_labels_and_scores, require_anomalies


def top_score_hit(y_true, scores, tolerance=100):
    """Whether the highest score lies in an anomaly, give or take ``tolerance`` steps.

    The measure of the UCR / KDD-Cup-2021 time-series anomaly archive (Wu &
    Keogh, TKDE 2021), whose series hold one anomaly each: a detector *solves* a
    series when its single most anomalous step lies inside the anomaly or
    within ``tolerance`` steps of it (100 is the archive's usual choice).
    Averaged over series it is the share of series solved.

    Ties are not given the benefit of the doubt: when several steps share the
    highest score, the series counts as solved only if *every* one of them lies
    in an anomaly's tolerance zone, so a constant score solves nothing (unless
    the zone covers the whole series).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        0/1 labels, 1 = anomaly; at least one anomaly.
    scores : array-like of shape (n_samples,)
        Finite anomaly scores, higher = more abnormal.
    tolerance : int, default=100
        Steps on each side of every anomaly range that still count as a hit.

    Returns
    -------
    hit : float
        1.0 when the top score is a hit, else 0.0.

    Raises
    ------
    ValueError
        For labels and scores the other metrics reject (not 1-D, unequal
        lengths, non-0/1 labels, non-finite scores), for labels without an
        anomaly, and for a negative or non-integer ``tolerance``.

    Examples
    --------
    >>> from skdiffad.metrics import top_score_hit
    >>> y = [0] * 300 + [1] * 5 + [0] * 300
    >>> top_score_hit(y, [0.0] * 250 + [1.0] + [0.0] * 354)   # 50 steps before it
    1.0
    >>> top_score_hit(y, [0.0] * 100 + [1.0] + [0.0] * 504)   # 200 steps before it
    0.0
    """
    y, s = check_labels_and_scores(y_true, scores)
    require_anomalies(y, "top_score_hit")
    tolerance = check_int(tolerance, "tolerance", 0)
    zone = np.zeros(len(y) + 1, dtype=np.int64)
    for start, stop in anomaly_ranges(y):
        zone[max(start - tolerance, 0)] += 1
        zone[min(stop + tolerance, len(y))] -= 1
    in_zone = np.cumsum(zone[:-1]) > 0
    top = s == s.max()
    return float(in_zone[top].all())
