"""Tests of skdiffad.metrics: hand-computed values, agreement with scikit-learn and
with slow by-the-definition versions, the properties VUS is meant to have, and the
input errors."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    auc,
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from skdiffad import metrics
from skdiffad.metrics import (
    anomaly_ranges,
    aupr,
    auroc,
    best_f1,
    best_point_adjusted_f1,
    best_range_f1,
    point_adjusted_f1,
    range_f1,
    range_precision_recall,
    top_score_hit,
    vus_pr,
    vus_roc,
)


def _labels_with_ranges(n, ranges):
    y = np.zeros(n, dtype=int)
    for start, stop in ranges:
        y[start:stop] = 1
    return y


def _random_ranges(rng, n, max_ranges, max_length):
    y = np.zeros(n, dtype=int)
    for _ in range(int(rng.integers(1, max_ranges + 1))):
        start = int(rng.integers(0, n))
        y[start : start + int(rng.integers(1, max_length + 1))] = 1
    return y


# ------------------------------------------------------------------ anomaly_ranges
def test_anomaly_ranges_finds_runs_including_edges():
    ranges = anomaly_ranges([1, 1, 0, 0, 1, 0, 1, 1, 1])
    assert ranges.tolist() == [[0, 2], [4, 5], [6, 9]]
    assert ranges.dtype == np.int64


def test_anomaly_ranges_of_no_anomaly_is_empty_with_two_columns():
    assert anomaly_ranges(np.zeros(5, dtype=bool)).shape == (0, 2)


def test_anomaly_ranges_accepts_bool_and_series():
    y = [False, True, True, False]
    assert anomaly_ranges(pd.Series(y)).tolist() == anomaly_ranges(np.array(y)).tolist() == [[1, 3]]


# ------------------------------------------------------------------ point-wise
def test_auroc_by_hand():
    # pairs (anomaly, normal): 0.35 > 0.1, 0.35 < 0.4, 0.8 > both -> 3 of 4
    assert auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    # ties count one half: anomalies {1, 2}, normals {1, 0}: 0.5 + 1 + 1 + 1 = 3.5 of 4
    assert auroc([0, 1, 0, 1], [1, 1, 0, 2]) == 0.875


def test_aupr_by_hand():
    # by decreasing score: 0.8 (anomaly) P=1 R=1/2; 0.4 (normal) R unchanged;
    # 0.35 (anomaly) P=2/3 R=1 -> AP = 1/2 * 1 + 1/2 * 2/3 = 5/6
    assert aupr([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(5 / 6, abs=1e-15)


@pytest.mark.parametrize("seed", range(20))
def test_auroc_and_aupr_equal_sklearn_on_random_scores_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 2000))
    y = rng.random(n) < rng.uniform(0.01, 0.6)
    y[rng.choice(n, 2, replace=False)] = [False, True]  # both classes
    decimals = int(rng.integers(0, 3))  # 0 decimals: a handful of values, heavy ties
    scores = np.round(rng.normal(size=n) + rng.uniform(0, 2) * y, decimals)
    assert auroc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    assert aupr(y, scores) == pytest.approx(average_precision_score(y, scores), abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_auroc_is_the_mann_whitney_statistic_with_ties_counting_half(seed):
    rng = np.random.default_rng(seed)
    y = rng.random(300) < 0.2
    scores = np.round(rng.normal(size=300) + y, 1)  # rounding makes many ties
    assert len(np.unique(scores)) < 100
    anomalous, normal = scores[y][:, None], scores[~y][None, :]
    expected = np.mean((anomalous > normal) + 0.5 * (anomalous == normal))
    assert auroc(y, scores) == pytest.approx(expected, abs=1e-12)


def test_auroc_and_aupr_of_a_constant_score():
    y = [0, 1, 0, 0, 1]
    assert auroc(y, np.zeros(5)) == 0.5
    assert aupr(y, np.zeros(5)) == pytest.approx(0.4, abs=1e-15)  # the anomaly rate


def test_auroc_and_aupr_accept_integer_and_boolean_scores():
    y = [0, 1, 1, 0, 0, 1]
    flags = [False, True, False, False, True, True]
    as_float = np.array(flags, dtype=float)
    assert auroc(y, flags) == auroc(y, as_float) == roc_auc_score(y, as_float)
    assert aupr(y, np.array(flags, dtype=int)) == aupr(y, as_float)


def test_best_f1_by_hand():
    # thresholds 0.8, 0.4, 0.35, 0.1 give F1 2/3, 1/2, 4/5, 2/3
    assert best_f1([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == (0.8, 0.35)


@pytest.mark.parametrize("seed", range(3))
def test_best_f1_equals_sklearn_curve_maximum_and_its_threshold_reproduces_it(seed):
    rng = np.random.default_rng(seed)
    y = rng.random(400) < 0.1
    scores = np.round(rng.normal(size=400) + 1.5 * y, 1)
    precision, recall, _ = precision_recall_curve(y, scores)
    with np.errstate(invalid="ignore"):
        expected = np.nanmax(2 * precision * recall / (precision + recall))
    f1, threshold = best_f1(y, scores)
    assert f1 == pytest.approx(expected, abs=1e-12)
    flagged = scores >= threshold
    tp = np.sum(flagged & y)
    assert 2 * tp / (flagged.sum() + y.sum()) == pytest.approx(f1, abs=1e-15)


# ------------------------------------------------------------------ VUS
def _vus_by_definition(y, scores, window, n_thresholds):
    """Slow VUS-ROC / VUS-PR written straight from the docstring formulas."""
    y = np.asarray(y, dtype=bool)
    n = y.size
    ranges = anomaly_ranges(y)
    ranked = np.sort(scores)[::-1]
    thresholds = ranked[np.linspace(0, n - 1, n_thresholds).astype(int)]
    roc_areas, pr_areas = [], []
    for length in range(window + 1):
        half = length // 2
        soft = y.astype(float)
        for start, stop in ranges:
            for d in range(1, half + 1):
                for i in (start - d, stop - 1 + d):
                    if 0 <= i < n and not y[i]:
                        soft[i] += np.sqrt(1 - d / length)
        soft = np.minimum(soft, 1.0)
        events = []
        for start, stop in ranges:
            lo, hi = max(start - half, 0), min(stop + half, n)
            if events and lo < events[-1][1]:
                events[-1][1] = hi
            else:
                events.append([lo, hi])
        tpr, fpr, precision = [], [], []
        for t in thresholds:
            flagged = scores >= t
            tp = np.sum(soft * flagged)
            positives = y.sum() + np.sum(soft * flagged * ~y) / 2
            detected = sum(flagged[lo:hi].any() for lo, hi in events)
            tpr.append(min(tp / positives, 1.0) * detected / len(events))
            fpr.append((flagged.sum() - tp) / (n - positives))
            precision.append(tp / flagged.sum())
        xs, ys = [0.0] + fpr + [1.0], [0.0] + tpr + [1.0]
        roc_areas.append(
            sum((xs[k + 1] - xs[k]) * (ys[k + 1] + ys[k]) / 2 for k in range(len(xs) - 1))
        )
        steps = np.diff([0.0] + tpr)
        pr_areas.append(float(np.dot(steps, precision)))
    return np.mean(roc_areas), np.mean(pr_areas)


@pytest.mark.parametrize("seed", range(8))
def test_vus_equals_the_slow_definition(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(40, 120))
    y = _random_ranges(rng, n, max_ranges=4, max_length=8)  # may touch an end, or merge
    if y.all() or not y.any():
        y[0], y[-1] = 0, 1
    scores = np.round(rng.normal(size=n) + 1.5 * np.convolve(y, np.ones(3) / 3, "same"), 1)
    window = int(rng.integers(0, 14))
    n_thresholds = int(rng.choice([250, 17]))  # all scores, or a coarse grid
    expected_roc, expected_pr = _vus_by_definition(y, scores, window, n_thresholds)
    assert vus_roc(y, scores, window, n_thresholds=n_thresholds) == pytest.approx(
        expected_roc, abs=1e-12
    )
    assert vus_pr(y, scores, window, n_thresholds=n_thresholds) == pytest.approx(
        expected_pr, abs=1e-12
    )


@pytest.mark.parametrize("gap", [3, 4, 5])
def test_vus_merges_two_ranges_into_one_event_only_when_their_buffers_overlap(gap):
    # window 4 -> buffers of up to 2 points: ranges 3 apart share buffer points
    # (one event), 4 apart just touch (two events), 5 apart do not meet.
    y = _labels_with_ranges(30, [(10, 12), (12 + gap, 14 + gap)])
    scores = np.zeros(30)
    scores[10:12] = 1.0  # only the first range is found
    scores[3] = 0.5
    expected_roc, expected_pr = _vus_by_definition(y, scores, 4, 250)
    assert vus_roc(y, scores, 4) == pytest.approx(expected_roc, abs=1e-14)
    assert vus_pr(y, scores, 4) == pytest.approx(expected_pr, abs=1e-14)


def test_vus_by_hand_on_a_detection_one_point_early():
    # y = [0 0 1 0 0], the score fires at index 1; thresholds 1 and 0.
    y, scores = [0, 0, 1, 0, 0], [0, 1, 0, 0, 0]
    # l = 0 and l = 1 (no buffer): t=1 gives TPR 0 (range missed), FPR 1/4;
    # t=0 gives (1, 1).  ROC area = 3/4 * 1/2 = 0.375 (= AUROC); AP = 1 * 1/5.
    # l = 2: buffer of one point on each side, label b = sqrt(1 - 1/2).
    b = np.sqrt(0.5)
    #   t=1: TP = b, P_l = 1 + b/2, event [1, 4) detected -> TPR = b / (1 + b/2),
    #        FPR = (1 - b) / (5 - 1 - b/2), precision b.
    tpr1, fpr1 = b / (1 + b / 2), (1 - b) / (4 - b / 2)
    #   t=0: TP = 1 + 2b, P_l = 1 + b -> TPR 1, FPR = (4 - 2b) / (4 - b), precision (1 + 2b)/5.
    fpr2 = (4 - 2 * b) / (4 - b)
    roc_2 = fpr1 * tpr1 / 2 + (fpr2 - fpr1) * (tpr1 + 1) / 2 + (1 - fpr2)
    pr_2 = tpr1 * b + (1 - tpr1) * (1 + 2 * b) / 5
    assert vus_roc(y, scores, window=2) == pytest.approx((0.375 + 0.375 + roc_2) / 3, abs=1e-14)
    assert vus_pr(y, scores, window=2) == pytest.approx((0.2 + 0.2 + pr_2) / 3, abs=1e-14)
    assert vus_roc(y, scores, window=2) == pytest.approx(0.50744, abs=1e-5)


@pytest.mark.parametrize("window", [0, 7, 100])
def test_vus_of_a_perfect_score_is_one(window):
    y = _labels_with_ranges(1000, [(100, 130), (500, 502), (990, 1000)])
    assert vus_roc(y, y, window) == 1.0
    assert vus_pr(y, y, window) == 1.0


def test_vus_without_buffer_on_one_range_equals_auroc_and_aupr():
    # One range: the existence factor is 1 as soon as TP > 0, and 0 when TP = 0,
    # so TPR is the point-wise recall; with every score a threshold the curves match.
    rng = np.random.default_rng(4)
    y = _labels_with_ranges(200, [(80, 110)])
    scores = np.round(rng.normal(size=200) + y, 1)
    assert vus_roc(y, scores, window=0) == pytest.approx(auroc(y, scores), abs=1e-12)
    assert vus_pr(y, scores, window=0) == pytest.approx(aupr(y, scores), abs=1e-12)


def test_vus_without_buffer_on_single_point_anomalies_squares_the_recall():
    # Every range is one point, so the fraction of detected events is the recall
    # itself and TPR = recall ** 2 at each threshold (FPR is the point-wise one).
    rng = np.random.default_rng(5)
    y = np.zeros(200, dtype=int)
    y[rng.choice(200, 12, replace=False)] = 1
    y[np.flatnonzero(y[:-1] & y[1:])] = 0  # keep the anomalies isolated
    scores = np.round(rng.normal(size=200) + y, 1)
    fpr, recall, _ = roc_curve(y, scores, drop_intermediate=False)
    expected = auc(fpr, recall**2)
    assert vus_roc(y, scores, window=0) == pytest.approx(expected, abs=1e-12)
    assert vus_roc(y, scores, window=0) < auroc(y, scores) - 0.05


def test_vus_is_invariant_to_strictly_increasing_transforms():
    rng = np.random.default_rng(6)
    y = _labels_with_ranges(3000, [(400, 450), (1200, 1210), (2500, 2600)])
    scores = rng.normal(size=3000) + y
    for transformed in (np.exp(scores), 3.0 * scores - 7.0, np.arctan(scores)):
        assert vus_roc(y, transformed) == vus_roc(y, scores)
        assert vus_pr(y, transformed) == vus_pr(y, scores)


def test_vus_roc_of_a_random_score_is_about_one_half_with_short_buffers():
    y = _labels_with_ranges(20_000, [(s, s + 200) for s in range(1000, 19_000, 4000)])
    values = [
        vus_roc(y, np.random.default_rng(seed).random(20_000), window=20) for seed in range(3)
    ]
    assert np.all(np.abs(np.array(values) - 0.5) < 0.03)


def test_vus_roc_of_a_random_score_is_lifted_by_long_buffers_around_short_ranges():
    # The documented caveat: flagged buffer points count fully in TP but half in P_l.
    y = _labels_with_ranges(20_000, [(s, s + 50) for s in range(1000, 19_000, 2000)])
    value = vus_roc(y, np.random.default_rng(0).random(20_000), window=100)
    assert 0.6 < value < 0.75


@pytest.mark.parametrize("shift", [3, 5, 10])
def test_an_early_detection_loses_less_under_vus_than_under_auroc(shift):
    y = _labels_with_ranges(2000, [(1000, 1040)])
    scores = 0.3 * np.random.default_rng(0).normal(size=2000)
    scores[1000 - shift : 1040 - shift] += 1.5
    assert vus_roc(y, scores) > auroc(y, scores) + 0.03
    assert vus_pr(y, scores) > aupr(y, scores) + 0.1


def test_vus_grows_with_the_buffer_for_an_early_detection():
    y = _labels_with_ranges(2000, [(1000, 1040)])
    scores = np.zeros(2000)
    scores[990:1030] = 1.0  # 10 points early
    values = [vus_pr(y, scores, window) for window in (0, 10, 20, 40)]
    assert values == sorted(values)
    assert values[-1] > values[0] + 0.1


@pytest.mark.parametrize("bad", [-1, 1.5, True, "100"])
def test_vus_rejects_a_bad_window(bad):
    with pytest.raises(ValueError, match="window must be an integer >= 0"):
        vus_roc([0, 1, 0], [0.1, 0.9, 0.2], window=bad)


def test_vus_rejects_a_bad_number_of_thresholds():
    with pytest.raises(ValueError, match="n_thresholds must be an integer >= 2"):
        vus_pr([0, 1, 0], [0.1, 0.9, 0.2], n_thresholds=1)


# ------------------------------------------------------------------ Tatbul et al.
def _tatbul_by_definition(y_true, y_pred, alpha, cardinality, bias):
    """Slow range precision/recall written from Tatbul et al.'s formulas."""
    real = [list(range(a, b)) for a, b in anomaly_ranges(y_true)]
    predicted = [list(range(a, b)) for a, b in anomaly_ranges(y_pred)]

    def delta(i, length):
        if bias == "flat":
            return 1
        if bias == "front":
            return length - i + 1
        if bias == "back":
            return i
        return i if i <= length / 2 else length - i + 1

    def omega(points, hits):
        length = len(points)
        mine = sum(delta(i + 1, length) for i, p in enumerate(points) if p in hits)
        return mine / sum(delta(i, length) for i in range(1, length + 1))

    def gamma(points, others):
        x = sum(1 for other in others if set(points) & set(other))
        return 1.0 if cardinality == "one" or x <= 1 else 1.0 / x

    flagged = set(np.flatnonzero(y_pred))
    anomalous = set(np.flatnonzero(y_true))
    recall = np.mean(
        [
            alpha * bool(set(r) & flagged) + (1 - alpha) * gamma(r, predicted) * omega(r, flagged)
            for r in real
        ]
    )
    precision = (
        np.mean([gamma(q, real) * omega(q, anomalous) for q in predicted]) if predicted else 0.0
    )
    return precision, recall


def test_range_recall_by_hand_for_each_bias():
    # One real range of length 4, [1, 5); the prediction covers its first 2 points.
    y_true = [0, 1, 1, 1, 1, 0, 0, 0]
    y_pred = [0, 1, 1, 0, 0, 0, 0, 0]
    recall = {bias: range_precision_recall(y_true, y_pred, bias=bias)[1] for bias in metrics.BIASES}
    assert recall["flat"] == 0.5  # 2 / 4
    assert recall["front"] == pytest.approx(0.7, abs=1e-15)  # (4 + 3) / (4 + 3 + 2 + 1)
    assert recall["back"] == pytest.approx(0.3, abs=1e-15)  # (1 + 2) / 10
    assert recall["middle"] == pytest.approx(0.5, abs=1e-15)  # weights 1 2 2 1: (1 + 2) / 6


def test_range_recall_middle_bias_rewards_the_centre():
    # Length 5, weights 1 2 3 2 1; the prediction covers positions 2..4: (2 + 3 + 2) / 9
    _, recall = range_precision_recall([1, 1, 1, 1, 1, 0], [0, 1, 1, 1, 0, 0], bias="middle")
    assert recall == pytest.approx(7 / 9, abs=1e-15)


def test_existence_reward():
    y_true = [0, 1, 1, 1, 1, 0, 0, 0]
    y_pred = [0, 1, 1, 0, 0, 0, 0, 0]
    assert range_precision_recall(y_true, y_pred, alpha=1.0)[1] == 1.0  # the range is touched
    assert range_precision_recall(y_true, y_pred, alpha=0.5)[1] == 0.75  # 1/2 * 1 + 1/2 * 1/2


def test_range_precision_by_hand():
    # Predicted ranges [1, 3) (inside the real range: 1) and [6, 7) (outside: 0).
    precision, recall = range_precision_recall([0, 1, 1, 1, 1, 0, 0, 0], [0, 1, 1, 0, 0, 0, 1, 0])
    assert (precision, recall) == (0.5, 0.5)
    assert range_f1([0, 1, 1, 1, 1, 0, 0, 0], [0, 1, 1, 0, 0, 0, 1, 0]) == 0.5


def test_reciprocal_cardinality_halves_a_range_split_in_two():
    # The real range [1, 5) is hit by two predicted ranges, [1, 2) and [3, 4).
    y_true = [0, 1, 1, 1, 1, 0]
    y_pred = [0, 1, 0, 1, 0, 0]
    assert range_precision_recall(y_true, y_pred, cardinality="one") == (1.0, 0.5)
    assert range_precision_recall(y_true, y_pred, cardinality="reciprocal") == (1.0, 0.25)


def test_reciprocal_cardinality_on_the_precision_side():
    # One predicted range [0, 5) spans the two real ranges [0, 2) and [3, 5): 4 of 5 points.
    y_true = [1, 1, 0, 1, 1, 0]
    y_pred = [1, 1, 1, 1, 1, 0]
    assert range_precision_recall(y_true, y_pred, cardinality="one") == (0.8, 1.0)
    assert range_precision_recall(y_true, y_pred, cardinality="reciprocal") == (0.4, 1.0)


def test_no_predicted_range_gives_zero_precision_and_f1():
    assert range_precision_recall([0, 1, 1, 0], [0, 0, 0, 0]) == (0.0, 0.0)
    assert range_f1([0, 1, 1, 0], [0, 0, 0, 0]) == 0.0


def test_no_real_range_is_an_error():
    with pytest.raises(ValueError, match="undefined when y_true has no anomaly range"):
        range_precision_recall([0, 0, 0], [0, 1, 0])
    with pytest.raises(ValueError, match="undefined when y_true has no anomaly range"):
        best_range_f1([0, 0, 0], [0.1, 0.5, 0.2])


@pytest.mark.parametrize("seed", range(6))
def test_range_precision_recall_equal_the_slow_definition(seed):
    rng = np.random.default_rng(seed)
    y_true = _random_ranges(rng, 60, max_ranges=5, max_length=9)
    y_pred = _random_ranges(rng, 60, max_ranges=6, max_length=7)
    for bias in metrics.BIASES:
        for cardinality in metrics.CARDINALITIES:
            for alpha in (0.0, 0.3):
                expected = _tatbul_by_definition(y_true, y_pred, alpha, cardinality, bias)
                got = range_precision_recall(y_true, y_pred, alpha, cardinality, bias)
                assert got == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("alpha", 1.5, "alpha must be a number in"),
        ("cardinality", "udf", "cardinality must be one of"),
        ("bias", "end", "bias must be one of"),
    ],
)
def test_range_metrics_reject_bad_options(option, value, message):
    with pytest.raises(ValueError, match=message):
        range_f1([0, 1, 0], [0, 1, 0], **{option: value})


def test_best_range_f1_by_hand():
    # Thresholds 0.9, 0.8, 0.7, 0.2, 0.1 give range F1 2/3, 1/2, 4/5, 2/3, 4/7.
    assert best_range_f1([0, 1, 1, 0, 0], [0.1, 0.9, 0.7, 0.8, 0.2]) == (0.8, 0.7)


def test_best_range_f1_is_the_best_range_f1_over_all_scores():
    rng = np.random.default_rng(8)
    y = _random_ranges(rng, 150, max_ranges=5, max_length=12)
    scores = np.round(rng.normal(size=150) + y, 1)
    f1, threshold = best_range_f1(y, scores, n_thresholds=150)
    assert f1 == max(range_f1(y, scores >= t) for t in np.unique(scores))
    assert range_f1(y, scores >= threshold) == f1


# ------------------------------------------------------------------ point adjustment
def test_point_adjusted_f1_by_hand():
    # One flagged point adjusts the whole range: TP 4, FP 1, FN 0 -> 8 / 9.
    assert point_adjusted_f1([0, 1, 1, 1, 1, 0], [0, 0, 1, 0, 0, 1]) == pytest.approx(
        8 / 9, abs=1e-15
    )
    # A prediction that touches no range gains nothing: TP 0 -> F1 0.
    assert point_adjusted_f1([0, 1, 1, 1, 1, 0], [0, 0, 0, 0, 0, 1]) == 0.0


def test_best_point_adjusted_f1_by_hand():
    assert best_point_adjusted_f1([0, 1, 1, 1, 1, 0], [0.1, 0.2, 0.9, 0.3, 0.2, 0.5]) == (1.0, 0.9)


@pytest.mark.parametrize("seed", range(4))
def test_best_point_adjusted_f1_is_the_best_over_all_thresholds_and_at_least_best_f1(seed):
    rng = np.random.default_rng(seed)
    y = _random_ranges(rng, 200, max_ranges=6, max_length=20)
    scores = np.round(rng.normal(size=200) + 0.5 * y, 1)
    f1, threshold = best_point_adjusted_f1(y, scores)
    assert f1 == pytest.approx(
        max(point_adjusted_f1(y, scores >= t) for t in np.unique(scores)), abs=1e-15
    )
    assert point_adjusted_f1(y, scores >= threshold) == f1
    assert f1 >= best_f1(y, scores)[0]


def test_point_adjustment_gives_a_random_score_a_high_f1():
    # Kim et al.'s point: 5 ranges of 200 points, a uniform random score.
    y = _labels_with_ranges(20_000, [(s, s + 200) for s in range(1000, 19_000, 4000)])
    scores = np.random.default_rng(0).random(20_000)
    assert best_f1(y, scores)[0] < 0.15
    assert best_point_adjusted_f1(y, scores)[0] > 0.75


@pytest.mark.parametrize("function", [point_adjusted_f1, best_point_adjusted_f1])
def test_point_adjustment_docstrings_warn_of_inflation(function):
    doc = function.__doc__
    assert "Warnings" in doc and "inflates" in doc and "Kim et al. (AAAI 2022)" in doc


# ------------------------------------------------------------------ top_score_hit
def test_top_score_hit_counts_the_tolerance_on_both_sides():
    y = np.zeros(1000, dtype=int)
    y[500:510] = 1  # the zone with tolerance 100 is 400..609
    for position, expected in ((399, 0.0), (400, 1.0), (505, 1.0), (609, 1.0), (610, 0.0)):
        scores = np.zeros(1000)
        scores[position] = 1.0
        assert top_score_hit(y, scores) == expected, position
        assert top_score_hit(y, scores, tolerance=0) == float(500 <= position < 510)


def test_top_score_hit_with_several_anomalies_and_at_the_edges():
    y = np.zeros(300, dtype=int)
    y[:3] = y[-2:] = 1
    scores = np.zeros(300)
    scores[-1] = 5.0
    assert top_score_hit(y, scores, tolerance=0) == 1.0
    scores[150] = 6.0
    assert top_score_hit(y, scores, tolerance=10) == 0.0
    assert top_score_hit(y, scores, tolerance=148) == 1.0  # 150 - 148 = 2 < 3


def test_top_score_hit_gives_ties_no_benefit_of_the_doubt():
    y = np.zeros(1000, dtype=int)
    y[500:510] = 1
    assert top_score_hit(y, np.ones(1000)) == 0.0  # a constant score solves nothing
    scores = np.zeros(1000)
    scores[[505, 900]] = 1.0
    assert top_score_hit(y, scores) == 0.0
    scores[900] = 0.5
    assert top_score_hit(y, scores) == 1.0
    assert top_score_hit(y, np.ones(1000), tolerance=500) == 1.0  # the zone is everything


@pytest.mark.parametrize("tolerance", [-1, 1.5, True, "100"])
def test_top_score_hit_rejects_a_bad_tolerance(tolerance):
    with pytest.raises(ValueError, match="tolerance must be an integer >= 0"):
        top_score_hit([0, 1, 0], [0.0, 1.0, 0.0], tolerance=tolerance)


# ------------------------------------------------------------------ input validation
SCORE_METRICS = [auroc, aupr, best_f1, vus_roc, vus_pr, best_range_f1, best_point_adjusted_f1,
                 top_score_hit]
PREDICTION_METRICS = [range_precision_recall, range_f1, point_adjusted_f1]
ALL_METRICS = SCORE_METRICS + PREDICTION_METRICS


def _second_argument_name(function):
    return "scores" if function in SCORE_METRICS else "y_pred"


@pytest.mark.parametrize("function", ALL_METRICS)
def test_lists_arrays_and_series_give_the_same_value(function):
    y = [0, 1, 1, 0, 0, 1, 0, 0]
    second = [0.1, 0.8, 0.3, 0.2, 0.6, 0.9, 0.1, 0.4]
    if function in PREDICTION_METRICS:
        second = [int(v > 0.5) for v in second]
    from_list = function(y, second)
    assert function(np.array(y, dtype=bool), np.array(second)) == from_list
    assert function(pd.Series(y), pd.Series(second)) == from_list


@pytest.mark.parametrize("function", ALL_METRICS)
def test_labels_must_be_one_dimensional(function):
    with pytest.raises(ValueError, match=r"y_true must be 1-D; got an array of shape \(3, 1\)"):
        function([[0], [1], [0]], [0, 1, 0])


@pytest.mark.parametrize("function", ALL_METRICS)
def test_lengths_must_match(function):
    name = _second_argument_name(function)
    pattern = rf"y_true and {name} must have the same length; got shapes \(4,\) and \(3,\)"
    with pytest.raises(ValueError, match=pattern):
        function([0, 1, 1, 0], [0, 1, 0])


@pytest.mark.parametrize("function", ALL_METRICS)
def test_labels_must_be_binary(function):
    with pytest.raises(ValueError, match="y_true must hold only 0 and 1"):
        function([0, 2, 1, 0], [0, 1, 1, 0])


@pytest.mark.parametrize("function", PREDICTION_METRICS)
def test_predictions_must_be_binary(function):
    with pytest.raises(ValueError, match="y_pred must hold only 0 and 1"):
        function([0, 1, 1, 0], [0, 0.7, 1, 0])


@pytest.mark.parametrize("function", SCORE_METRICS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_scores_must_be_finite(function, bad):
    with pytest.raises(
        ValueError, match="scores must be finite; 2 of 5 values are NaN or infinite"
    ):
        function([0, 1, 1, 0, 0], [0.1, bad, 0.5, bad, 0.2])


@pytest.mark.parametrize("function", [auroc, vus_roc, vus_pr])
def test_metrics_needing_both_classes_reject_a_single_class(function):
    with pytest.raises(ValueError, match="undefined when y_true holds no anomaly"):
        function([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="undefined when y_true holds only anomalies"):
        function([1, 1, 1], [0.1, 0.2, 0.3])


@pytest.mark.parametrize("function", [aupr, best_f1, best_point_adjusted_f1])
def test_metrics_needing_anomalies_reject_labels_without_any(function):
    with pytest.raises(ValueError, match="undefined when y_true holds no anomaly"):
        function([0, 0, 0], [0.1, 0.2, 0.3])


def test_aupr_and_best_f1_are_one_when_everything_is_an_anomaly():
    assert aupr([1, 1, 1], [0.1, 0.2, 0.3]) == 1.0
    assert best_f1([1, 1, 1], [0.1, 0.2, 0.3]) == (1.0, 0.1)


def test_point_adjusted_f1_rejects_labels_without_anomaly():
    with pytest.raises(ValueError, match="undefined when y_true holds no anomaly"):
        point_adjusted_f1([0, 0, 0], [0, 1, 0])


def test_empty_input_is_an_error():
    with pytest.raises(ValueError, match="y_true is empty"):
        auroc([], [])
