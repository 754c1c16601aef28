"""AnomalyGenerator: labelled anomalies drawn with a detector's denoiser (issue #13)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from skdiffad import (
    AnomalyGenerator,
    DiffusionImageDetector,
    DiffusionTSDetector,
    TabDiffusionDetector,
)
from skdiffad.generation import IMAGE_KINDS, SERIES_KINDS, TABLE_KINDS

FAST = {"n_timesteps": 100, "device": "cpu"}


def table_detector(**params):
    return TabDiffusionDetector(denoiser="mlp", scoring="reconstruction", widths=(32, 32),
                                max_steps=300,
                                **FAST, **params)


@pytest.fixture(scope="module")
def normal_rows():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(700, 1))
    return np.hstack([z, z + 0.2 * rng.normal(size=(700, 1)), rng.normal(size=(700, 2))])


@pytest.fixture(scope="module")
def table_generator(normal_rows):
    return AnomalyGenerator(table_detector(), random_state=0, n_steps=50).fit(
        normal_rows[:500], anomalies=normal_rows[:4] + [4.0, -4.0, 0.0, 0.0])


def nearest_distance(A, B):
    return np.sqrt(((A[:, None, :] - B[None, :, :]) ** 2).sum(-1)).min(1)


@pytest.mark.parametrize("kind", ["local", "global", "clustered"])
def test_stronger_anomalies_lie_further_from_the_normal_rows(table_generator, normal_rows, kind):
    held_out = nearest_distance(normal_rows[500:600], normal_rows[:500]).mean()
    far = [nearest_distance(table_generator.generate(100, kind=kind, strength=s)[0],
                            normal_rows[:500]).mean() for s in (0.5, 2.0)]
    assert held_out < far[0] < far[1], (held_out, far)


def test_every_kind_gives_labelled_rows(table_generator):
    for kind in TABLE_KINDS:
        X, y = table_generator.generate(12, kind=kind)
        assert X.shape == (12, 4) and np.isfinite(X).all()
        np.testing.assert_array_equal(y, np.ones(12, dtype=int))
    X, y = table_generator.generate(10)  # every kind, fewshot included: anomalies were given
    assert X.shape == (10, 4) and y.sum() == 10


def test_dependency_breaks_the_correlation_but_keeps_the_marginals(table_generator, normal_rows):
    X, _ = table_generator.generate(400, kind="dependency", strength=1.6)
    assert np.corrcoef(normal_rows[:, 0], normal_rows[:, 1])[0, 1] > 0.95
    assert np.corrcoef(X[:, 0], X[:, 1])[0, 1] < 0.85
    low, high = np.percentile(normal_rows, [0.5, 99.5], axis=0)
    inside = ((X >= low - 0.5) & (X <= high + 0.5)).mean()
    assert inside > 0.95


def test_fewshot_rows_stay_near_the_real_anomalies(table_generator, normal_rows):
    anomalies = normal_rows[:4] + [4.0, -4.0, 0.0, 0.0]
    X, _ = table_generator.generate(100, kind="fewshot")
    to_anomalies = nearest_distance(X, anomalies)
    to_normal = nearest_distance(X, normal_rows[:500])
    assert (to_anomalies < to_normal).mean() > 0.9
    assert to_anomalies.mean() > 0.05  # variations, not copies
    closer = nearest_distance(table_generator.generate(100, kind="fewshot", strength=4.0)[0],
                              anomalies)
    assert closer.mean() < to_anomalies.mean()


def test_generation_is_seeded(table_generator, normal_rows):
    a, _ = table_generator.generate(9, kind=("local", "global"))
    b, _ = table_generator.generate(9, kind=("local", "global"))
    np.testing.assert_array_equal(a, b)
    other = AnomalyGenerator(table_generator.detector_, random_state=1, n_steps=50).fit(
        normal_rows[:500])
    assert not np.allclose(other.generate(9, kind=("local", "global"))[0], a)


@pytest.mark.slow
def test_a_fitted_detector_is_reused_and_an_unfitted_one_cloned(normal_rows):
    fitted = table_detector(random_state=0).fit(normal_rows[:300])
    scores = fitted.decision_scores_
    gen = AnomalyGenerator(fitted, random_state=0).fit(normal_rows[:300])
    assert gen.detector_ is fitted and gen.detector_.decision_scores_ is scores
    blank = table_detector()
    gen = AnomalyGenerator(blank, random_state=0).fit(normal_rows[:300])
    assert gen.detector_ is not blank and not hasattr(blank, "decision_scores_")


def test_frames_come_back_as_frames():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=300), "n": rng.integers(0, 9, 300),
                          "c": pd.Categorical(rng.choice(["p", "q", "r"], 300))})
    gen = AnomalyGenerator(table_detector(), random_state=0, n_steps=20).fit(frame)
    X, y = gen.generate(8, kind=("dependency", "global"))
    assert isinstance(X, pd.DataFrame) and list(X.columns) == ["x", "n", "c"]
    assert X.dtypes.to_dict() == frame.dtypes.to_dict() and len(y) == 8


@pytest.mark.parametrize("params, match", [
    ({"kind": "wobble"}, "kind must be one of"), ({"kind": ()}, "at least one kind"),
    ({"strength": 0}, "strength"), ({"strength": -1.0}, "strength"),
    ({"strength": float("nan")}, "strength"), ({"strength": "big"}, "strength"),
    ({"kind": "spike"}, "kind must be one of"),
])
def test_bad_kind_or_strength_is_named(table_generator, params, match):
    with pytest.raises(ValueError, match=match):
        table_generator.generate(3, **params)


@pytest.mark.slow
def test_bad_requests_and_settings_are_named(normal_rows):
    gen = AnomalyGenerator(table_detector(), random_state=0).fit(normal_rows[:200])
    for n in (0, -1, 2.5):
        with pytest.raises(ValueError, match="n_samples"):
            gen.generate(n)
    with pytest.raises(ValueError, match="fewshot' needs real anomalies"):
        gen.generate(3, kind="fewshot")
    with pytest.raises(NotFittedError):
        AnomalyGenerator().generate(3)
    with pytest.raises(ValueError, match="scoring='density'"):
        AnomalyGenerator(TabDiffusionDetector()).fit(normal_rows[:200])
    with pytest.raises(ValueError, match="scoring='density'"):
        AnomalyGenerator(TabDiffusionDetector(**FAST).fit(normal_rows[:200])).fit(normal_rows)
    with pytest.raises(ValueError, match="data='images' does not match"):
        AnomalyGenerator(table_detector(), data="images").fit(normal_rows[:200])
    with pytest.raises(ValueError, match="data must be one of"):
        AnomalyGenerator(data="video").fit(normal_rows[:200])
    with pytest.raises(TypeError, match="detector must be"):
        AnomalyGenerator(detector="knn").fit(normal_rows[:200])
    with pytest.raises(ValueError, match="n_steps"):
        AnomalyGenerator(n_steps=0).fit(normal_rows[:200])
    with pytest.raises(ValueError, match="anomaly_masks were given without anomalies"):
        AnomalyGenerator(table_detector()).fit(normal_rows[:200], anomaly_masks=np.ones((1, 2)))


# ------------------------------------------------------------------ series
@pytest.fixture(scope="module")
def series():
    rng = np.random.default_rng(0)
    t = np.arange(900)
    return np.column_stack([np.sin(2 * np.pi * t / 20), np.cos(2 * np.pi * t / 30)]) \
        + 0.05 * rng.normal(size=(900, 2))


@pytest.fixture(scope="module")
def series_generator(series):
    det = DiffusionTSDetector(denoiser="unet", window_size=32, widths=(16, 32), max_steps=150,
                              **FAST)
    return AnomalyGenerator(det, random_state=0, n_steps=20).fit(series)


def test_series_anomalies_are_shaped_spans_in_a_real_context(series_generator, series):
    windows, labels = series_generator.generate(len(SERIES_KINDS) * 4)
    assert windows.shape == (20, 32, 2) and labels.shape == (20, 32)
    for w, y in zip(windows, labels):
        span = np.flatnonzero(y)
        assert len(span) and np.all(np.diff(span) == 1)  # one span
        # outside the span the window is a window of the training series
        outside = np.flatnonzero(y == 0)
        errors = [np.abs(series[s:s + 32][outside] - w[outside]).max()
                  for s in range(len(series) - 31)]
        assert min(errors) < 1e-4
    flat, y = series_generator.generate(4, kind="flatline")
    for w, labels_ in zip(flat, y):
        span = w[labels_ == 1]
        assert np.ptp(span, axis=0).min() == 0  # the planted channel is held
    spikes, y = series_generator.generate(6, kind="spike", strength=3.0)
    assert (y.sum(1) <= 3).all()
    assert np.abs(spikes[y == 1]).max() > 3  # 14 window-sds from a unit-amplitude cycle


def test_series_refuse_anomalies_and_name_their_kinds(series_generator, series):
    with pytest.raises(ValueError, match="kind must be one of"):
        series_generator.generate(2, kind="local")
    with pytest.raises(ValueError, match="anomalies are for tables and images"):
        AnomalyGenerator(series_generator.detector_).fit(series, anomalies=series[:40])


def test_one_dimensional_input_is_a_series():
    x = np.sin(np.arange(400) / 3.0)
    gen = AnomalyGenerator(random_state=0, n_steps=5)
    assert gen._data_kind(x) == "timeseries"
    assert gen._data_kind(x.reshape(-1, 1)) == "table"
    assert AnomalyGenerator(data="timeseries")._data_kind(x.reshape(-1, 1)) == "timeseries"
    assert gen._data_kind(np.zeros((3, 8, 8))) == "images"


# ------------------------------------------------------------------ images
def test_image_anomalies_come_with_masks_of_what_changed():
    rng = np.random.default_rng(0)
    images = (rng.random((24, 16, 16)) * 40 + 100).astype(np.uint8)
    det = DiffusionImageDetector(denoiser="unet", widths=(8, 16), max_steps=20, **FAST)
    masks = np.zeros((2, 16, 16), dtype=bool)
    masks[:, 4:9, 4:9] = True
    defects = images[:2].copy()
    defects[masks] = 250
    gen = AnomalyGenerator(det, random_state=0, n_steps=10).fit(
        images, anomalies=defects, anomaly_masks=masks)
    for kind in IMAGE_KINDS:
        drawn, y = gen.generate(5, kind=kind)
        assert drawn.shape == (5, 16, 16) and drawn.dtype == np.uint8
        assert y.shape == (5, 16, 16) and (y.reshape(5, -1).sum(1) > 0).all()
        for image, mask in zip(drawn, y.astype(bool)):
            # outside the mask the image is a training image, to the pixel
            assert min(np.abs(image[~mask].astype(int) - im[~mask]).max() for im in images) == 0
    drawn, y = gen.generate(5, kind="fewshot", strength=5.0)
    np.testing.assert_array_equal(y[0], masks[0])
    assert drawn[y == 1].mean() > 180  # the bright defect, harmonised but kept
    with pytest.raises(ValueError, match="anomaly_masks must have shape"):
        AnomalyGenerator(gen.detector_).fit(images, anomalies=defects, anomaly_masks=masks[:1])
    with pytest.raises(ValueError, match="fewshot' needs real anomalies: fit with anomalies= "
                                         "and anomaly_masks="):
        AnomalyGenerator(gen.detector_).fit(images, anomalies=defects).generate(2, kind="fewshot")


def test_inject_plants_labelled_spans_into_a_series(series_generator, series):
    future = series[:400] + 0.0
    planted, y = series_generator.inject(future, 5, kind=("level_shift", "flatline"))
    assert planted.shape == future.shape and y.shape == (400,)
    changed = np.abs(planted - future).max(axis=1) > 1e-4
    assert changed.any() and not changed[y == 0].any()  # nothing moves outside the spans
    starts = np.flatnonzero(np.diff(np.r_[0, y]) == 1)
    assert len(starts) == 5
    again = series_generator.inject(future, 5, kind=("level_shift", "flatline"))
    np.testing.assert_array_equal(planted, again[0])
    with pytest.raises(ValueError, match="room for 12 non-overlapping"):
        series_generator.inject(future, 13)
    with pytest.raises(ValueError, match="n_anomalies"):
        series_generator.inject(future, 0)


def test_inject_is_for_series(table_generator, normal_rows):
    with pytest.raises(ValueError, match="inject plants anomalies into a series"):
        table_generator.inject(normal_rows, 2)


def test_the_segmentation_head_can_learn_from_generated_defects():
    rng = np.random.default_rng(0)
    images = (rng.random((16, 16, 16)) * 40 + 100).astype(np.uint8)
    params = dict(denoiser="unet", scoring="discriminative", widths=(8, 16), head_widths=(4,),
                  max_steps=4, n_scoring_timesteps=1, n_inference_steps=2, random_state=0,
                  **FAST)
    generated = DiffusionImageDetector(head_defects="generated", **params).fit(images)
    plain = DiffusionImageDetector(**params).fit(images)
    assert generated.model_.paradigm.head_defects == "generated"
    maps = generated.anomaly_map(images[:2])
    assert np.isfinite(maps).all() and maps.shape == (2, 16, 16)
    assert not np.allclose(maps, plain.anomaly_map(images[:2]))
    with pytest.raises(ValueError, match="head_defects='generated' is for the segmentation head"):
        DiffusionImageDetector(denoiser="unet", head_defects="generated", **FAST).fit(images)
    with pytest.raises(ValueError, match="needs noise='gaussian'"):
        DiffusionImageDetector(head_defects="generated", noise="simplex",
                               **{**params, "max_steps": 1}).fit(images)
    with pytest.raises(ValueError, match="head_defects"):
        DiffusionImageDetector(head_defects="perlin", **params).fit(images)


def test_a_fitted_generator_pickles_and_clones(table_generator):
    import pickle

    from sklearn.base import clone

    again = pickle.loads(pickle.dumps(table_generator))
    np.testing.assert_array_equal(again.generate(6, kind="local")[0],
                                  table_generator.generate(6, kind="local")[0])
    fresh = clone(table_generator)
    assert not hasattr(fresh, "detector_")
    assert fresh.get_params()["n_steps"] == 50


def test_float32_data_gives_float32_anomalies(table_generator, normal_rows, series_generator,
                                              series):
    """Float32 normal data in, float32 anomalies out; float64 stays float64 (issue #29)."""
    single = normal_rows[:300].astype(np.float32)
    generator = AnomalyGenerator(table_generator.detector_, kind="local", random_state=0,
                                 n_steps=5).fit(single)
    rows, _ = generator.generate(4)
    assert rows.dtype == np.float32
    rows64, _ = generator.fit(single.astype(np.float64)).generate(4)
    assert rows64.dtype == np.float64
    np.testing.assert_allclose(rows, rows64, rtol=1e-6)
    planted, _ = series_generator.inject(series[:400].astype(np.float32), 2, kind="spike")
    assert planted.dtype == np.float32
    assert series_generator.inject(series[:400], 2, kind="spike")[0].dtype == np.float64
