"""DiffusionTSDetector: PyOD's time-series contract, quality floors, gaps, errors."""

import copy
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

import skdiffad._encoders.series as series_encoding
from skdiffad import DiffusionTSDetector
from skdiffad._encoders.series import auto_lengths, dominant_period
from skdiffad._reductions import covering_window_mean, max_window_mean

FAST = {"denoiser": "unet", "window_size": 16, "widths": (8, 16), "kernel_size": 3, "n_timesteps": 1000,
        "n_inference_steps": 5, "n_stripes": 4, "random_state": 0,
        "device": "cpu"}


def fast(steps=150, **kwargs):
    return DiffusionTSDetector(**{**FAST, "max_steps": steps, **kwargs})  # a tiny budget


def sine_series(n=1200, channels=1, period=40, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None]
    phases = np.linspace(0, np.pi, channels)[None]
    return np.sin(2 * np.pi * t / period + phases) + noise * rng.normal(size=(n, channels))


def with_anomalies(X):
    X = X.copy()
    y = np.zeros(len(X), dtype=int)
    X[300:306, 0] += 2.5          # spike burst
    y[300:306] = 1
    X[700:740, 0] = np.sin(np.arange(40) * 2 * np.pi / 8)  # a burst at 5x the frequency
    y[700:740] = 1
    return X, y


# ------------------------------------------------------------------ quality
@pytest.mark.slow
@pytest.mark.parametrize("scoring, floor", [("imputation", 0.95), ("reconstruction", 0.75)])
def test_planted_anomalies_score_highest(scoring, floor):
    train = sine_series(800, seed=1)
    test, y = with_anomalies(sine_series(1000, seed=2))
    det = fast(scoring=scoring, steps=300).fit(train)
    scores = det.decision_function(test)
    assert scores.shape == (1000,) and np.all(np.isfinite(scores))
    assert roc_auc_score(y, scores) > floor
    # the short burst is found by both paradigms
    assert np.median(scores[300:306]) > np.quantile(scores[y == 0], 0.95)
    assert det.decision_scores_.shape == (800,)
    assert set(np.unique(det.predict(test))) <= {0, 1}


@pytest.mark.slow
def test_channel_scores_point_at_the_channel_that_broke():
    train = sine_series(800, channels=3, seed=1)
    test = sine_series(600, channels=3, seed=2)
    test[300:310, 2] += 3.0
    for aggregation in ("step", "window", "window_mean"):
        det = fast(aggregation=aggregation).fit(train)
        per_channel = det.channel_scores(test)
        assert per_channel.shape == (600, 3)
        burst = per_channel[300:310].mean(axis=0)
        assert np.argmax(burst) == 2 and burst[2] > 3 * max(burst[0], burst[1])
    # step by step, the score is the mean of the channels' errors
    det = fast(aggregation="step").fit(train)
    np.testing.assert_allclose(det.channel_scores(test).mean(axis=1), det.decision_function(test))


# ---------------------------------------------------------------- contract
@pytest.mark.slow
def test_univariate_inputs_of_every_kind_agree():
    train, test = sine_series(500)[:, 0], sine_series(300, seed=3)[:, 0]
    det = fast().fit(train)
    ref = det.decision_function(test)
    np.testing.assert_array_equal(det.decision_function(test.reshape(-1, 1)), ref)
    np.testing.assert_array_equal(det.decision_function(pd.Series(test)), ref)
    np.testing.assert_array_equal(det.decision_function(list(test)), ref)
    assert det.n_features_in_ == 1


def test_dataframe_channels_are_named_and_checked():
    frame = pd.DataFrame(sine_series(500, channels=2), columns=["temp", "load"])
    det = fast().fit(frame)
    assert list(det.feature_names_in_) == ["temp", "load"]
    with pytest.raises(ValueError, match="feature names"):
        det.decision_function(frame[["load", "temp"]].rename(columns={"load": "x", "temp": "y"}))


@pytest.mark.slow
def test_same_seed_same_scores_other_seed_other_scores():
    train, test = sine_series(500), sine_series(300, seed=3)
    a = fast().fit(train).decision_function(test)
    b = fast().fit(train).decision_function(test)
    c = fast(random_state=1).fit(train).decision_function(test)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.slow
@pytest.mark.parametrize("aggregation, reach",
                         [("step", 16), ("window", 32), ("window_mean", 32)])
def test_a_steps_score_depends_only_on_nearby_steps(aggregation, reach):
    det = fast(stride=16, aggregation=aggregation).fit(sine_series(500))
    test = sine_series(640, seed=3)
    changed = test.copy()
    changed[600:] += 1.0
    a, b = det.decision_function(test), det.decision_function(changed)
    # windows start every 16 steps; a step's errors come from windows covering
    # it, and "window" adds the windows covering those
    np.testing.assert_array_equal(a[: 600 - reach], b[: 600 - reach])
    assert not np.allclose(a[600:], b[600:])


@pytest.mark.slow
def test_pickle_round_trip_scores_identically():
    det = fast().fit(sine_series(500))
    test = sine_series(300, seed=3)
    again = pickle.loads(pickle.dumps(det))
    np.testing.assert_array_equal(again.decision_function(test), det.decision_function(test))


@pytest.mark.slow
def test_training_scores_and_threshold_follow_contamination():
    det = fast(contamination=0.05, aggregation="step").fit(sine_series(800))
    assert det.labels_.mean() == pytest.approx(0.05, abs=0.01)
    # window maxima come in plateaus: ties at the threshold are not flagged
    plateaus = fast(contamination=0.05).fit(sine_series(800))
    assert 0.02 <= plateaus.labels_.mean() <= 0.05
    np.testing.assert_allclose(det.decision_scores_, det.decision_function(sine_series(800)))


@pytest.mark.parametrize("denoiser", ["unet", "exact"])
def test_first_and_last_steps_are_scored(denoiser):
    det = fast(stride=16, aggregation="step", denoiser=denoiser).fit(sine_series(500))
    test = sine_series(333, seed=4)  # not a multiple of the stride
    test[:3, 0] += 4.0
    test[-3:, 0] -= 4.0
    scores = det.decision_function(test)
    assert scores[:3].min() > np.median(scores) * 5
    assert scores[-3:].min() > np.median(scores) * 5


@pytest.mark.slow
def test_a_million_step_series_scores_in_blocks():
    det = fast(steps=5, window_size=64, stride=64, widths=(4,), n_inference_steps=1, n_stripes=2)
    det.fit(sine_series(2000)[:, 0])
    long = np.sin(np.arange(1_000_000) / 7.0)
    scores = det.decision_function(long)
    assert scores.shape == (1_000_000,) and np.all(np.isfinite(scores))


# ---------------------------------------------------------------- gaps
# floors sit a few points under what a 300-step U-Net reaches here (0.85 and 0.75)
@pytest.mark.slow
@pytest.mark.parametrize("scoring, floor", [("imputation", 0.8), ("reconstruction", 0.7)])
def test_missing_values_are_masked_not_crashed_on(scoring, floor):
    rng = np.random.default_rng(5)
    train = sine_series(800, channels=2, seed=1)
    train[rng.random(train.shape) < 0.1] = np.nan
    test, y = with_anomalies(sine_series(1000, channels=2, seed=2))
    test[rng.random(test.shape) < 0.1] = np.nan
    test[500:520, :] = np.nan  # a gap in every channel
    det = fast(scoring=scoring, steps=300, aggregation="step").fit(train)
    assert det.model_.members[0].mask_input_
    scores = det.decision_function(test)
    assert np.all(np.isfinite(scores))
    assert roc_auc_score(y, scores) > floor
    per_channel = det.channel_scores(test)
    assert np.all(np.isnan(per_channel[np.isnan(test)]))
    assert np.all(np.isfinite(per_channel[~np.isnan(test)]))
    # a step with no observed channel takes its neighbours' scores
    assert scores[510] >= min(scores[499], scores[520]) - 1e-12
    assert scores[510] <= max(scores[499], scores[520]) + 1e-12


# ---------------------------------------------------------------- errors
def test_window_longer_than_the_series_is_named():
    with pytest.raises(ValueError, match="window_size=16"):
        fast().fit(np.zeros(10))
    det = fast().fit(sine_series(200))
    with pytest.raises(ValueError, match="window_size=16"):
        det.decision_function(sine_series(12))


@pytest.mark.slow
def test_wrong_channel_count_at_scoring_is_named():
    det = fast().fit(sine_series(300, channels=2))
    with pytest.raises(ValueError, match="3 features.*expecting 2"):
        det.decision_function(sine_series(300, channels=3))
    with pytest.raises(ValueError, match="1 features.*expecting 2"):
        det.decision_function(sine_series(300))
    with pytest.raises(ValueError, match="1-D .*fitted on 2 channels"):
        det.decision_function(sine_series(300)[:, 0])


@pytest.mark.parametrize("where", ["fit", "score"])
def test_infinite_values_are_rejected(where):
    X = sine_series(300)
    bad = X.copy()
    bad[17, 0] = np.inf
    if where == "fit":
        with pytest.raises(ValueError, match="infinity"):
            fast().fit(bad)
    else:
        with pytest.raises(ValueError, match="infinity"):
            fast().fit(X).decision_function(bad)


def test_bad_shapes_and_types_are_named():
    with pytest.raises(ValueError, match=r"shape \(10, 3, 2\)"):
        fast().fit(np.zeros((10, 3, 2)))
    frame = pd.DataFrame({"v": np.arange(100.0), "tag": ["a"] * 100})
    with pytest.raises(TypeError, match="'tag'"):
        fast().fit(frame)
    X = sine_series(300, channels=2)
    X[:, 1] = np.nan
    with pytest.raises(ValueError, match="channel 1 has no observed value"):
        fast().fit(X)
    det = fast().fit(sine_series(300))
    with pytest.raises(ValueError, match="every entry is NaN"):
        det.decision_function(np.full(100, np.nan))


@pytest.mark.parametrize("params, match", [
    ({"scoring": "density"}, "scoring"),
    ({"window_size": 1}, "window_size"),
    ({"stride": 0}, "stride"),
    ({"stride": 40}, "stride=40 is larger than window_size=16"),
    ({"widths": ()}, "widths"),
    ({"widths": (8, 0)}, "widths"),
    ({"kernel_size": 4}, "kernel_size must be odd"),
    ({"n_stripes": 1}, "n_stripes"),
])
def test_bad_parameters_are_named(params, match):
    with pytest.raises(ValueError, match=match):
        fast(**params).fit(sine_series(300))


def test_unfitted_detector_says_so():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        DiffusionTSDetector().decision_function(np.zeros(100))


# ---------------------------------------------------------------- exact denoiser
def exact(**kwargs):
    return DiffusionTSDetector(**{"window_size": 16, "random_state": 0, **kwargs})


@pytest.mark.parametrize("scoring", ["reconstruction", "imputation"])
@pytest.mark.parametrize("aggregation", ["window", "step"])
def test_exact_denoiser_finds_planted_anomalies(scoring, aggregation):
    train = sine_series(800, seed=1)
    test, y = with_anomalies(sine_series(1000, seed=2))
    det = exact(scoring=scoring, aggregation=aggregation).fit(train)
    assert det.network_ is None and det.model_.members[0].stored_.shape == (785, 1, 16)
    assert roc_auc_score(y, det.decision_function(test)) > 0.95


def test_exact_training_scores_are_two_fold_and_calibrate_the_threshold():
    from skdiffad.datasets import make_timeseries_anomalies

    # three sines of unrelated periods: the series drifts slowly through its
    # phases, so a window's neighbours in time are closer twins than any window
    # of new data finds in the training series
    X, _ = make_timeseries_anomalies(n_timestamps=8000, n_channels=3, n_anomalies=0,
                                     random_state=0)
    det = exact(window_size=64, contamination=0.1).fit(X[:3000])
    # scored as new data, every training window finds itself: errors vanish
    assert det.decision_function(X[:3000]).max() < 1e-10
    # restored from the other half only, the training scores look like new data's
    new = det.decision_function(X[3000:])
    assert 0.5 < np.median(det.decision_scores_) / np.median(new) < 2
    assert 0.05 < det.predict(X[3000:]).mean() < 0.2


def test_a_training_series_too_short_for_the_two_fold_rule_is_named():
    """With 127 steps and 64-step windows every window overlaps every other: no
    window can be restored as new data would be. Before, such windows were
    silently restored from stored window 0, so the training scores (hence
    threshold_) meant nothing; now fit says why it cannot set the threshold."""
    X = sine_series(3000, channels=2)
    with pytest.raises(ValueError, match=r"too short.*at least 191 steps.*window_size \(now 64\)"):
        exact(window_size=64).fit(X[:127])
    # the shortest series the rule always serves: honest training scores
    det = exact(window_size=64, aggregation="step", contamination=0.1).fit(X[:191])
    assert len(np.unique(det.decision_scores_)) > 100  # not all equal
    assert 0.05 <= det.labels_.mean() <= 0.15
    assert det.predict(X[1000:1600]).mean() < 0.25
    # the U-Net has no exclusion rule and fits the short series
    assert exact(window_size=64, denoiser="unet", max_steps=2, widths=(4,)).fit(X[:127])


def test_exact_stores_a_seeded_sample_of_at_most_max_samples_windows():
    train = sine_series(2000, seed=1)
    a = exact(max_samples=300).fit(train)
    b = exact(max_samples=300).fit(train)
    c = exact(max_samples=300, random_state=1).fit(train)
    (a, b, c) = (det.model_.members[0] for det in (a, b, c))  # one length: one member
    assert a.stored_.shape == (300, 1, 16)
    np.testing.assert_array_equal(a.positions_, b.positions_)
    assert not np.array_equal(a.positions_, c.positions_)


def test_exact_pickles_and_handles_gaps():
    rng = np.random.default_rng(5)
    train = sine_series(800, channels=2, seed=1)
    train[rng.random(train.shape) < 0.1] = np.nan
    test, y = with_anomalies(sine_series(1000, channels=2, seed=2))
    test[rng.random(test.shape) < 0.1] = np.nan
    det = exact(scoring="imputation").fit(train)
    scores = det.decision_function(test)
    assert np.all(np.isfinite(scores)) and roc_auc_score(y, scores) > 0.9
    again = pickle.loads(pickle.dumps(det))
    np.testing.assert_array_equal(again.decision_function(test), scores)


@pytest.mark.parametrize("scaling", ["robust", "standard", "minmax", "none"])
def test_scaling_puts_channels_on_the_stated_scale(scaling):
    X = sine_series(600, channels=2) * np.array([1.0, 100.0]) + np.array([0.0, 50.0])
    det = exact(scaling=scaling).fit(X)
    Z = (X - det.center_) / det.scale_
    if scaling == "robust":
        np.testing.assert_allclose(np.median(Z, axis=0), 0.0, atol=1e-12)
        q1, q99 = np.percentile(Z, [1, 99], axis=0)
        np.testing.assert_allclose(q99 - q1, 2 * 2.3263478740408408)
    elif scaling == "standard":
        np.testing.assert_allclose(Z.std(axis=0), 1.0)
    elif scaling == "minmax":
        np.testing.assert_allclose(Z.min(axis=0), -1.0)
        np.testing.assert_allclose(Z.max(axis=0), 1.0)
    else:
        np.testing.assert_array_equal(Z, X)
    assert not det.two_valued_.any()


def test_robust_scaling_ignores_outliers_in_training():
    rng = np.random.default_rng(0)
    clean = rng.normal(3.0, 2.0, size=(4000, 1))
    dirty = clean.copy()
    dirty[rng.choice(4000, 20, replace=False)] = 1e6  # 0.5% wild values
    a, b = exact().fit(clean), exact().fit(dirty)
    np.testing.assert_allclose(a.center_, [3.0], atol=0.15)
    np.testing.assert_allclose(a.scale_, [2.0], rtol=0.1)
    np.testing.assert_allclose(b.center_, a.center_, atol=0.05)
    np.testing.assert_allclose(b.scale_, a.scale_, rtol=0.05)
    assert exact(scaling="standard").fit(dirty).scale_[0] > 1e4  # what it guards against


@pytest.mark.parametrize("scaling", ["robust", "standard"])
def test_two_valued_channels_become_unit_apart_switches(scaling):
    rng = np.random.default_rng(0)
    n = 2000
    flag = np.where(rng.random(n) < 0.01, 5.0, 3.0)           # a rare switch: 3 or 5
    sensor = rng.normal(10.0, 4.0, n)
    steps = np.arange(n)
    nearly = (steps % 500 == 0) + 1.0 * (steps % 1000 == 0)   # mostly 0, a few 1s and 2s
    X = np.column_stack([flag, sensor, nearly])
    X[::97, 0] = np.nan                                       # gaps do not count as a value
    det = exact(scaling=scaling).fit(X)
    np.testing.assert_array_equal(det.two_valued_, [True, False, False])
    Z = (X - det.center_) / det.scale_
    np.testing.assert_allclose(np.unique(Z[~np.isnan(Z[:, 0]), 0]), [-0.5, 0.5])
    assert 2.5 < det.scale_[1] < 5.5
    # coinciding percentiles (a mostly-constant channel): the standard deviation is used
    np.testing.assert_allclose(det.scale_[2], np.std(nearly))
    # a switch flipping at test time weighs like a one-sigma move, not 1/sqrt(p) sigmas
    test = X[:400].copy()
    test[np.isnan(test)] = 3.0
    test[:, 0] = 3.0
    test[200:230, 0] = 5.0
    scores = det.decision_function(test)
    assert scores[200:230].max() < 2.0


# ---------------------------------------------------------------- multi-scale
def test_default_is_multiscale_and_a_single_length_tuple_is_an_int():
    assert DiffusionTSDetector().window_size == "auto"
    train, test = sine_series(800, seed=1), with_anomalies(sine_series(900, seed=2))[0]
    one = exact(window_size=(16,)).fit(train)
    # one length is a one-member ensemble whose scores are not divided
    assert len(one.model_.members) == 1 and one.reduction_["scales"].tolist() == [1.0]
    assert one.window_sizes_ == (16,) and one.stride_ == (8,)
    np.testing.assert_array_equal(one.decision_function(test),
                                  exact(window_size=16).fit(train).decision_function(test))


def _tail_scaled(det, X):
    scores = det.decision_function(X)
    return scores / np.percentile(det.decision_scores_, 99)


@pytest.mark.parametrize("aggregation", ["window", "window_mean", "step"])
def test_multiscale_scores_are_the_mean_of_tail_scaled_single_scales(aggregation):
    """Each length scored as by a detector of its own (stride = its length), divided
    by the 99th percentile of its training scores, then averaged."""
    train = sine_series(900, channels=2, seed=1)
    test, y = with_anomalies(sine_series(1000, channels=2, seed=2))
    multi = exact(window_size=(8, 24), aggregation=aggregation).fit(train)
    assert multi.window_sizes_ == (8, 24) and multi.stride_ == (8, 24)
    singles = [exact(window_size=w, stride=w, aggregation=aggregation).fit(train)
               for w in (8, 24)]
    np.testing.assert_allclose(multi.reduction_["scales"],
                               [np.percentile(d.decision_scores_, 99) for d in singles])
    expected = np.mean([_tail_scaled(d, test) for d in singles], axis=0)
    np.testing.assert_allclose(multi.decision_function(test), expected, rtol=1e-12)
    np.testing.assert_allclose(  # training scores: two-fold, as each scale's own
        multi.decision_scores_,
        np.mean([d.decision_scores_ / np.percentile(d.decision_scores_, 99) for d in singles],
                 axis=0), rtol=1e-12)
    assert roc_auc_score(y, multi.decision_function(test)) > 0.95
    if aggregation == "step":  # per-channel scores still average to the step scores
        np.testing.assert_allclose(multi.channel_scores(test).mean(axis=1),
                                   multi.decision_function(test), rtol=1e-10)


def test_multiscale_leaves_out_lengths_a_series_is_too_short_for():
    train = sine_series(200, seed=1)
    det = exact(window_size=(16, 64, 128)).fit(train)  # 128 needs 383 training steps
    assert det.window_sizes_ == (16, 64) and len(det.reduction_["scales"]) == 2
    short = sine_series(40, seed=3)  # scored by the 16-step scale alone
    alone = exact(window_size=16, stride=16).fit(train)
    np.testing.assert_allclose(det.decision_function(short), _tail_scaled(alone, short),
                               rtol=1e-12)
    with pytest.raises(ValueError, match="window_size=16"):
        det.decision_function(sine_series(12))
    # too short for every length: the shortest is kept and the usual error names it
    with pytest.raises(ValueError, match="too short"):
        exact(window_size=(32, 64)).fit(train[:60])


@pytest.mark.parametrize("window_size, match", [
    ((16, 16), "repeats a length"),
    ((), "non-empty tuple"),
    ((16, 1), "ints >= 2"),
    ((16, 2.5), "ints >= 2"),
    ((16, True), "ints >= 2"),
])
def test_bad_window_tuples_are_named(window_size, match):
    with pytest.raises(ValueError, match=match):
        exact(window_size=window_size).fit(sine_series(300))
    with pytest.raises(ValueError, match="stride=12 is larger than the shortest window_size=8"):
        exact(window_size=(8, 16), stride=12).fit(sine_series(300))


def test_multiscale_unet_trains_one_network_per_length_and_pickles():
    train = sine_series(400, seed=1)
    test = sine_series(300, seed=2)
    det = fast(steps=4, window_size=(8, 16)).fit(train)
    assert isinstance(det.network_, tuple) and len(det.network_) == 2
    assert len(det.history_["members"]) == 2 and len(det.loss_curve_) >= 1
    again = pickle.loads(pickle.dumps(det))
    np.testing.assert_array_equal(again.decision_function(test), det.decision_function(test))


def test_a_tie_at_the_threshold_is_settled_towards_contamination():
    """Window aggregation gives the 64 steps of the worst window one score: on 600
    steps that block is 10.7% of them, so PyOD's rule (flag scores strictly above the
    90th percentile) flags nothing. The threshold moves below the block instead."""
    X = sine_series(600, noise=0.3, seed=1)
    det = exact(window_size=64, aggregation="window", contamination=0.1).fit(X)
    scores = det.decision_scores_
    pyod_threshold = np.percentile(scores, 90)
    assert (scores > pyod_threshold).sum() == 0 and (scores == scores.max()).sum() == 64
    assert det.labels_.sum() == 64 and np.array_equal(det.labels_, scores > det.threshold_)
    below = scores[scores < scores.max()].max()
    assert below < det.threshold_ < scores.max()
    new = sine_series(600, noise=0.3, seed=2)
    np.testing.assert_array_equal(det.predict(new), det.decision_function(new) > det.threshold_)
    # without a tie, PyOD's threshold stands
    det = exact(window_size=64, aggregation="step", contamination=0.1).fit(X)
    assert det.threshold_ == np.percentile(det.decision_scores_, 90)


# ---------------------------------------------------------------- period lengths
def _pulses(n, period, seed=0):
    """A heartbeat-like train: a sharp pulse every ``period`` steps, a little jitter."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    x = np.exp(-0.5 * ((t % period) - period / 3) ** 2 / 4.0) + 0.05 * rng.normal(size=n)
    return x[:, None]


@pytest.mark.parametrize("make, period", [
    (lambda: sine_series(3000, channels=3, period=40, noise=0.3), 40),
    (lambda: _pulses(6000, 75), 75),
    (lambda: sine_series(3000, period=300, noise=0.1), 300),
])
def test_dominant_period_finds_the_repeat(make, period):
    X = make()
    assert dominant_period(X) == period
    gappy = X.copy()
    gappy[np.random.default_rng(1).random(len(X)) < 0.1, 0] = np.nan
    gappy[500:540] = np.nan
    assert abs(dominant_period(gappy) - period) <= max(1, period // 100)  # broad peaks


def test_dominant_period_is_none_without_a_repeat():
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(4000, 2))
    smooth = np.cumsum(rng.normal(size=(4000, 2)), axis=0)          # a random walk
    # slowly decaying autocorrelation with small wiggles: no minimum worth the name
    ma = np.convolve(rng.normal(size=4100), np.ones(60) / 60, mode="valid")[:4000, None]
    for X in (noise, smooth, ma, np.ones((4000, 3)), noise[:40]):
        assert dominant_period(X) is None
    # a short sine: lags beyond a quarter of the series are not searched
    assert dominant_period(sine_series(120, period=40)) is None
    assert dominant_period(sine_series(200, period=40)) == 40
    # a channel without any observed value is left out, not an error
    X = sine_series(2000, channels=2, period=50)
    X[:, 1] = np.nan
    assert dominant_period(X) == 50


def test_dominant_period_reads_only_the_first_steps(monkeypatch):
    rng = np.random.default_rng(0)
    X = np.r_[sine_series(2000, period=40), 3 * rng.normal(size=(8000, 1))]
    assert dominant_period(X) is None          # the repeat is a small part of the whole
    monkeypatch.setattr(series_encoding, "PERIOD_STEPS", 2000)
    assert dominant_period(X) == 40


def test_auto_lengths_add_half_one_and_two_periods_clipped():
    assert auto_lengths(None) == (32, 64, 128)
    assert auto_lengths(40) == (20, 32, 40, 64, 80, 128)
    assert auto_lengths(64) == (32, 64, 128)
    assert auto_lengths(9) == (8, 9, 18, 32, 64, 128)
    assert auto_lengths(300) == (32, 64, 128, 150, 256)


def test_auto_window_size_follows_the_training_series_period():
    train = sine_series(2000, channels=2, period=40, seed=1)
    test, y = with_anomalies(sine_series(1200, channels=2, period=40, seed=2))
    det = DiffusionTSDetector(random_state=0).fit(train)
    assert det.period_ == 40 and det.window_sizes_ == (20, 32, 40, 64, 80, 128)
    assert det.stride_ == det.window_sizes_
    scores = det.decision_function(test)
    assert roc_auc_score(y, scores) > 0.95
    # the same as asking for those lengths
    explicit = DiffusionTSDetector(window_size=det.window_sizes_, random_state=0).fit(train)
    assert explicit.period_ is None
    np.testing.assert_array_equal(explicit.decision_function(test), scores)
    # no period: the fixed lengths, and the scores of asking for them
    noise = np.random.default_rng(0).normal(size=(2000, 2))
    plain = DiffusionTSDetector(random_state=0).fit(noise)
    assert plain.period_ is None and plain.window_sizes_ == (32, 64, 128)
    np.testing.assert_array_equal(
        plain.decision_function(noise[:300]),
        DiffusionTSDetector(window_size=(32, 64, 128), random_state=0).fit(noise)
        .decision_function(noise[:300]))


def test_auto_window_size_keeps_the_lengths_a_short_series_allows():
    train = sine_series(300, period=20)
    det = DiffusionTSDetector(random_state=0).fit(train)
    # 128 needs 383 steps (3 * 128 - 1): it is left out of a 300-step series
    assert det.period_ == 20 and det.window_sizes_ == (10, 20, 32, 40, 64)
    # a series to score may be as short as the shortest length in use
    assert det.decision_function(train[:12]).shape == (12,)
    with pytest.raises(ValueError, match="fewer than window_size=10"):
        det.decision_function(train[:9])


def test_auto_window_size_with_too_large_a_stride_says_so_at_fit():
    with pytest.raises(ValueError, match="stride=40 is larger"):
        DiffusionTSDetector(stride=40).fit(sine_series(800))
    with pytest.raises(ValueError, match=r"stride=16 is larger than the shortest window "
                                         r"length 10 of window_size='auto'.*period is 20"):
        DiffusionTSDetector(stride=16).fit(sine_series(1200, period=20))
    assert DiffusionTSDetector(stride=16).fit(sine_series(1200, period=40)).period_ == 40


def test_dominant_period_of_a_wide_series_is_found_channel_group_by_group(monkeypatch):
    """Many channels are transformed a group at a time (bounded memory): same period."""
    rng = np.random.default_rng(0)
    t = np.arange(3000)[:, None]
    X = np.sin(2 * np.pi * t / 77 + rng.uniform(0, 6, size=(1, 60))) \
        + 0.5 * rng.normal(size=(3000, 60))
    assert dominant_period(X) == 77
    monkeypatch.setattr(series_encoding, "_PERIOD_FFT_ELEMENTS", 6000 * 7)  # 7 channels
    assert dominant_period(X) == 77


# ---------------------------------------------------------------- window_mean
def _brute_covering_mean(errors, length):
    n = len(errors)
    means = [errors[s:s + length].mean() for s in range(n - length + 1)]
    return np.array([np.mean([means[s] for s in range(max(0, t - length + 1),
                                                      min(t, n - length) + 1)])
                     for t in range(n)])


@pytest.mark.parametrize("length", [1, 2, 7, 30])
def test_covering_window_mean_is_the_mean_over_the_covering_windows(length):
    errors = np.random.default_rng(length).gamma(1.0, size=30)
    np.testing.assert_allclose(covering_window_mean(errors, length),
                               _brute_covering_mean(errors, length), rtol=1e-12)


def test_covering_window_mean_tapers_where_the_window_maximum_stays_flat():
    errors = np.zeros(21)
    errors[10] = 4.0
    tent = covering_window_mean(errors, 4)
    flat = max_window_mean(errors, 4)
    # the same reach, 3 steps on each side; 1/4 of the error, then 3/4, 2/4, 1/4 of it
    np.testing.assert_array_equal(flat[7:14], np.ones(7))
    np.testing.assert_allclose(tent[7:14], np.array([1, 2, 3, 4, 3, 2, 1]) / 4)
    assert (tent[:7] == 0).all() and (tent[14:] == 0).all()


def test_covering_window_mean_of_a_stretch_is_bit_identical_to_the_whole_series():
    errors = np.random.default_rng(0).gamma(1.0, size=150_000)  # several chunks
    length, lo, hi = 64, 70_000, 140_000
    whole = covering_window_mean(errors, length)
    part = covering_window_mean(errors[lo - length + 1:hi + length - 1], length)
    np.testing.assert_array_equal(part[length - 1:length - 1 + hi - lo], whole[lo:hi])


@pytest.mark.slow
def test_window_mean_scores_the_neighbours_of_a_burst_lower_than_window():
    train = sine_series(900, seed=1)
    test = sine_series(600, seed=2)
    test[300:306] += 3.0
    flat = exact(window_size=32, aggregation="window").fit(train).decision_function(test)
    tent = exact(window_size=32, aggregation="window_mean").fit(train).decision_function(test)
    # both flag the burst above every step far from it; 25 steps away the window
    # maximum still lends the burst's window its full height, the covering mean a
    # fraction of it
    for scores in (flat, tent):
        assert scores[300:306].min() > scores[:250].max()
    assert tent[275] / tent[303] < 0.5 < flat[275] / flat[303]


# ---------------------------------------------------------------- aggregation_window
@pytest.mark.parametrize("aggregation, rule", [("window", max_window_mean),
                                               ("window_mean", covering_window_mean)])
def test_aggregation_window_aggregates_a_length_over_that_many_steps(aggregation, rule):
    train, test = sine_series(900, seed=1), sine_series(400, seed=2)
    test[200:203] += 3.0
    # one length: its scores are its step errors, aggregated (no training scale)
    errors = exact(window_size=32, aggregation="step").fit(train).decision_function(test)

    def scores(cap):
        det = exact(window_size=32, aggregation=aggregation, aggregation_window=cap)
        return det.fit(train).decision_function(test)

    np.testing.assert_array_equal(scores(8), rule(errors, 8))
    # a window at least as long as the length's changes nothing
    own = rule(errors, 32)
    for cap in (None, 32, 128):
        np.testing.assert_array_equal(scores(cap), own)
    # the burst reaches 7 steps to each side instead of 31
    capped = scores(8)
    assert capped[192:211].min() > 0 and (capped[:180] < capped[200]).all()
    assert capped[185] / capped[201] < 1 / 4 < own[185] / own[201]


def test_aggregation_window_caps_only_the_longer_lengths():
    train, test = sine_series(900, seed=1), sine_series(400, seed=2)
    both = exact(window_size=(8, 32), aggregation_window=8).fit(train)
    # the 8-step length is aggregated as before, the 32-step one over 8 steps
    short = exact(window_size=8, stride=8).fit(train)
    long = exact(window_size=32, stride=32, aggregation_window=8).fit(train)
    scales = both.reduction_["scales"]
    expected = (short.decision_function(test) / scales[0]
                + long.decision_function(test) / scales[1]) / 2
    np.testing.assert_allclose(both.decision_function(test), expected, rtol=1e-12)


def test_aggregation_window_must_be_a_positive_int():
    for bad in (0, -3, 2.5, "128"):
        with pytest.raises(ValueError, match="aggregation_window"):
            exact(aggregation_window=bad).fit(sine_series(300))


def test_a_detector_saved_before_aggregation_window_scores_as_it_did(tmp_path):
    """Detectors pickled or saved before the parameter existed aggregated each length
    over its own windows; loading one must not give it the new default's 128 steps."""
    train, test = sine_series(1500, seed=1), sine_series(600, seed=2)
    det = exact(window_size=(32, 160), aggregation="window",
                aggregation_window=None).fit(train)
    ref = det.decision_function(test)
    capped = exact(window_size=(32, 160), aggregation="window").fit(train)
    assert capped.aggregation_window == 128
    assert not np.allclose(capped.decision_function(test), ref)
    old = copy.deepcopy(det)
    del old.aggregation_window, old.modality_.aggregation_window  # as 0.2.0 wrote them
    _loads_with_none(old, "aggregation_window", test, ref, tmp_path)


def _loads_with_none(old, name, test, ref, tmp_path):
    """A detector written without parameter ``name`` comes back, pickled or saved, with
    ``None`` for it (detector and plug-in) and the scores ``ref`` of ``test``."""
    again = pickle.loads(pickle.dumps(old))
    assert again.get_params()[name] is None
    np.testing.assert_array_equal(again.decision_function(test), ref)
    old.save(tmp_path / "old")
    loaded = DiffusionTSDetector.load(tmp_path / "old")
    assert getattr(loaded, name) is None and getattr(loaded.modality_, name) is None
    np.testing.assert_array_equal(loaded.decision_function(test), ref)


# ---------------------------------------------------------------- spread_floor (#27 round 8)
def bursting_series(n=6000, seed=0, n_bursts=6):
    """A sine channel and a channel that is flat but for rare 8-step bursts of varied
    height (normal use): its robust spread is the flat part's, so a burst is hundreds
    of those deviations tall."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    X = np.c_[np.sin(t / 15) + 0.1 * rng.normal(size=n), 0.001 * rng.normal(size=n)]
    for start in rng.choice(np.arange(50, n - 50, 60), size=n_bursts, replace=False):
        X[start:start + 8, 1] += rng.uniform(0.2, 0.6)
    return X


def test_spread_floor_is_the_default_and_leaves_quiet_channels_to_the_bit():
    assert DiffusionTSDetector().get_params()["spread_floor"] == 300.0
    train, test = sine_series(1500, channels=2, seed=1), sine_series(600, channels=2, seed=2)
    test[300:306, 0] += 2.5
    det, plain = exact().fit(train), exact(spread_floor=None).fit(train)
    assert all(m._spread_cols is None for m in det.model_.members)  # nothing can spread
    np.testing.assert_array_equal(det.decision_scores_, plain.decision_scores_)
    np.testing.assert_array_equal(det.decision_function(test), plain.decision_function(test))


def test_spread_floor_measures_a_normal_burst_against_its_neighbours_spread():
    train, test = bursting_series(seed=0), bursting_series(n=1500, seed=1, n_bursts=0)
    test[300:308, 1] = 0.9       # a burst taller than any in training (normal use)
    test[900:930, 0] += 3.0      # a shift of the sine where no burst is
    errors = {floor: exact(aggregation="step", spread_floor=floor).fit(train)
              .decision_function(test) for floor in (None, 300.0)}
    burst, shift = slice(300, 308), slice(900, 930)
    # the burst's errors shrink several times over (it still stands out: it is 300
    # robust deviations above the tallest training burst), the shift's stay as they were
    assert 0 < errors[300.0][burst].max() < errors[None][burst].max() / 5
    np.testing.assert_allclose(errors[300.0][shift], errors[None][shift], rtol=1e-9)


@pytest.mark.parametrize("bad", [0, -1.0, "300", True])
def test_spread_floor_must_be_a_positive_number(bad):
    with pytest.raises(ValueError, match="spread_floor"):
        exact(spread_floor=bad).fit(sine_series(300))


def test_spread_floor_is_ignored_where_no_exact_reconstruction_scores():
    train = bursting_series(n=3000, seed=0, n_bursts=4)
    det = exact(scoring="imputation", n_stripes=4, spread_floor=1.0).fit(train)
    assert all(m.spread_floor is None for m in det.model_.members)


def test_a_detector_saved_before_spread_floor_scores_as_it_did(tmp_path):
    train, test = bursting_series(n=3000, seed=0, n_bursts=4), bursting_series(n=800, seed=1)
    det = exact(spread_floor=None).fit(train)
    ref = det.decision_function(test)
    old = copy.deepcopy(det)
    del old.spread_floor, old.modality_.spread_floor  # as 0.2.0 wrote them
    for member in old.model_.members:
        del member.spread_floor
    _loads_with_none(old, "spread_floor", test, ref, tmp_path)
