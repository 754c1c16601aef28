"""VUS-ROC and VUS-PR against TSB-AD's reference implementation (tsb-ad 1.5).

TSB-AD's ``get_metrics(score, labels, slidingWindow=W)`` takes its VUS numbers from
``generate_curve(labels.astype(int), score, W, version="opt", thre=250)``: the mean
over buffer lengths ``0..W`` with 250 thresholds. So ``vus_roc(y, s, window=W)`` and
``vus_pr(y, s, window=W)`` must give its numbers, up to the order of floating-point
sums. The reference is a test-only dependency, installed without its declared
dependencies (see the Makefile); these tests skip when it is absent.
"""

import numpy as np
import pandas as pd
import pytest

from skdiffad import DiffusionTSDetector
from skdiffad.datasets import load_timeseries
from skdiffad.metrics import vus_pr, vus_roc

reference = pytest.importorskip("TSB_AD.evaluation.basic_metrics")

#: Both sum the same terms in another order; the largest difference seen is 4.4e-16.
TOLERANCE = 1e-12


def _reference_vus(y, scores, window, n_thresholds=250, version="opt"):
    """(VUS-ROC, VUS-PR) as TSB-AD's ``get_metrics`` computes them."""
    *_, roc, pr = reference.generate_curve(
        np.asarray(y).astype(int), scores, window, version=version, thre=n_thresholds
    )
    return roc, pr


def _assert_same_as_reference(y, scores, window, n_thresholds=250):
    expected_roc, expected_pr = _reference_vus(y, scores, window, n_thresholds)
    assert vus_roc(y, scores, window, n_thresholds=n_thresholds) == pytest.approx(
        expected_roc, abs=TOLERANCE
    )
    assert vus_pr(y, scores, window, n_thresholds=n_thresholds) == pytest.approx(
        expected_pr, abs=TOLERANCE
    )


def _random_labels(rng, n):
    """One to five ranges, often of one point, often at the start or the end."""
    y = np.zeros(n, dtype=int)
    for _ in range(rng.integers(1, 6)):
        length = int(rng.choice([1, 1, 2, 3, rng.integers(1, n // 4 + 1)]))
        start = int(rng.choice([0, n - length, rng.integers(0, n - length + 1)]))
        y[start : start + length] = 1
    if y.all():
        y[rng.integers(n)] = 0
    return y


def _random_scores(rng, y, kind):
    n = y.size
    if kind == "uniform":
        return rng.random(n)
    if kind == "ties":
        return rng.integers(0, 5, n).astype(float)
    if kind == "constant":
        return np.full(n, 0.3)
    if kind == "binary":
        return rng.integers(0, 2, n).astype(float)
    if kind == "labels":
        return y.astype(float)
    # "shifted": a bump that starts a few points early or late, plus noise
    bump = np.convolve(y, np.ones(5) / 5, "same")
    return np.roll(bump, int(rng.integers(-6, 7))) + 0.3 * rng.random(n)


SCORE_KINDS = ("uniform", "ties", "constant", "binary", "labels", "shifted")


@pytest.mark.parametrize("window", [0, 1, 2, 3, 10])
def test_random_series_agree_with_the_reference(window):
    rng = np.random.default_rng(window)
    for case in range(30):
        n = int(rng.integers(20, 300))
        y = _random_labels(rng, n)
        scores = _random_scores(rng, y, SCORE_KINDS[case % len(SCORE_KINDS)])
        # 2 and 7: coarse grids; 1000 > n: every score is a threshold
        n_thresholds = int(rng.choice([2, 7, 50, 250, 1000]))
        _assert_same_as_reference(y, scores, window, n_thresholds)


def test_random_series_agree_with_the_reference_at_the_default_window():
    rng = np.random.default_rng(100)
    for kind in ("uniform", "ties", "shifted"):
        n = int(rng.integers(150, 250))
        y = _random_labels(rng, n)
        _assert_same_as_reference(y, _random_scores(rng, y, kind), window=100)


@pytest.mark.parametrize("window", [8, 9])
def test_ranges_merge_into_one_event_as_in_the_reference(window):
    # window 8 or 9 -> buffers of up to 4 points: ranges 0..9 apart cover the
    # gaps below, at and above 2 * 4, where their buffered events start to merge.
    rng = np.random.default_rng(window)
    for gap in range(10):
        y = np.zeros(60, dtype=int)
        y[20:23] = 1
        y[23 + gap] = 1
        y[30 + gap : 32 + gap] = 1
        _assert_same_as_reference(y, rng.random(60), window, n_thresholds=60)


@pytest.mark.parametrize(
    ("n", "window", "anomaly"),
    [(30, 100, 0), (30, 100, 29), (30, 100, 12), (5, 12, 2), (2, 10, 0), (2, 10, 1)],
)
def test_buffers_longer_than_the_series_agree_with_the_reference(n, window, anomaly):
    # window // 2 > n: every buffer runs past both ends of the series.
    y = np.zeros(n, dtype=int)
    y[anomaly] = 1
    scores = np.random.default_rng(n).random(n)
    _assert_same_as_reference(y, scores, window, n_thresholds=n)


def test_both_reference_versions_give_the_same_numbers():
    rng = np.random.default_rng(7)
    y = _random_labels(rng, 200)
    scores = _random_scores(rng, y, "ties")
    ours = vus_roc(y, scores, 10), vus_pr(y, scores, 10)
    for version in ("opt", "opt_mem"):
        assert _reference_vus(y, scores, 10, version=version) == pytest.approx(
            ours, abs=TOLERANCE
        )


def _rolling_zscore(X, length=50):
    """Distance of the first channel to the mean of the ``length`` steps before, in
    their standard deviations (0 for the first two steps)."""
    x = pd.Series(X[:, 0])
    past = x.shift(1).rolling(length, min_periods=2)
    return ((x - past.mean()).abs() / (past.std() + 1e-9)).fillna(0.0).to_numpy()


def _load_or_skip(collection, name, data_dir):
    try:
        return load_timeseries(collection, name, data_dir=data_dir)
    except FileNotFoundError:
        pytest.skip(f"{collection} {name} not found under {data_dir}")


@pytest.mark.parametrize(
    ("collection", "name", "window"),
    [
        ("NAB", "realKnownCause/nyc_taxi", 0),
        ("NAB", "realKnownCause/nyc_taxi", 10),
        ("SKAB", "other/1", 100),
        ("UCR_KDD21", "005_UCR_Anomaly_DISTORTEDCIMIS44AirTemperature1_4000_5391_5392", 100),
        ("SMAP_MSL", "MSL_C-1", 10),
    ],
)
def test_real_series_agree_with_the_reference(shared_data, collection, name, window):
    series = _load_or_skip(collection, name, shared_data)
    y, scores = series["y_test"], _rolling_zscore(series["X_test"])
    _assert_same_as_reference(y, scores, window)


def test_a_diffusion_detector_on_nyc_taxi_agrees_with_the_reference(shared_data):
    series = _load_or_skip("NAB", "realKnownCause/nyc_taxi", shared_data)
    detector = DiffusionTSDetector(random_state=0).fit(series["X_train"])
    _assert_same_as_reference(
        series["y_test"], detector.decision_function(series["X_test"]), window=10
    )
