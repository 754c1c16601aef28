"""``sample``: new normal data drawn from a detector's trained denoiser (issue #13)."""

import pickle

import numpy as np
import pandas as pd
import pytest

from skdiffad import DiffusionImageDetector, DiffusionTSDetector, TabDiffusionDetector

FAST = {"n_timesteps": 100, "device": "cpu", "random_state": 0}


@pytest.fixture(scope="module")
def correlated():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(600, 1))
    return np.hstack([z, 0.95 * z + 0.3 * rng.normal(size=(600, 1))]) * [1.0, 3.0] + [5.0, -2.0]


@pytest.fixture(scope="module")
def table_detector(correlated):
    return TabDiffusionDetector(denoiser="mlp", scoring="density", widths=(64, 64), max_steps=800,
                                **FAST).fit(correlated)


def test_rows_follow_the_training_table(table_detector, correlated):
    rows = table_detector.sample(2000, random_state=0)
    assert rows.shape == (2000, 2) and rows.dtype == np.float64 and np.isfinite(rows).all()
    assert np.all(np.abs(rows.mean(0) - correlated.mean(0)) < 0.25 * correlated.std(0))
    np.testing.assert_allclose(rows.std(0), correlated.std(0), rtol=0.25)
    assert np.corrcoef(rows.T)[0, 1] > 0.8  # 0.95 in the data, 0 if the columns were drawn apart


def test_sampling_is_seeded_and_leaves_the_detector_alone(table_detector, correlated):
    before = table_detector.decision_function(correlated[:20])
    state = pickle.dumps(table_detector)
    a = table_detector.sample(7, random_state=3)
    b = table_detector.sample(7, random_state=3, sampler="ddpm")
    c = table_detector.sample(7, random_state=4)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert pickle.dumps(table_detector) == state
    np.testing.assert_array_equal(table_detector.decision_function(correlated[:20]), before)
    clone = pickle.loads(state)
    np.testing.assert_array_equal(clone.sample(7, random_state=3), a)


def test_ddim_takes_fewer_steps(table_detector):
    few = table_detector.sample(500, random_state=0, sampler="ddim", n_steps=5)
    many = table_detector.sample(500, random_state=0, sampler="ddim", n_steps=50)
    # a strided chain drops the posterior variance of each step
    assert few.std(0).sum() < many.std(0).sum()
    assert not np.allclose(table_detector.sample(5, random_state=0, sampler="ddim"),
                           table_detector.sample(5, random_state=0, sampler="ddpm"))


def test_frames_come_back_as_they_were_given():
    rng = np.random.default_rng(1)
    n = 400
    frame = pd.DataFrame({
        "size": rng.normal(10, 2, n),
        "count": rng.integers(0, 6, n),
        "colour": pd.Categorical(rng.choice(["red", "blue"], n)),
        "shop": rng.choice(["a", "b", "c"], n).astype(object),
        "flag": rng.random(n) < 0.3,
    })
    frame.loc[rng.random(n) < 0.2, "size"] = np.nan
    det = TabDiffusionDetector(denoiser="mlp", scoring="reconstruction", widths=(32,),
                               max_steps=100, **FAST).fit(frame)
    rows = det.sample(1000, random_state=0, sampler="ddim")
    assert list(rows.columns) == list(frame.columns)
    assert rows.dtypes.to_dict() == frame.dtypes.to_dict()
    assert not rows.isna().any().any()
    assert set(rows["colour"].unique()) <= {"red", "blue"}
    assert set(rows["shop"].unique()) <= {"a", "b", "c"}
    assert set(rows["flag"].unique()) <= {True, False}
    # a briefly trained net overshoots; a sampled count still is one of 0..5
    assert set(rows["count"].unique()) <= set(range(6))
    holed = det.sample(2000, random_state=0, sampler="ddim", missing=True)
    rate = holed["size"].isna().mean()
    assert abs(rate - frame["size"].isna().mean()) < 0.04
    assert not holed.drop(columns="size").isna().any().any()
    np.testing.assert_array_equal(holed["count"].to_numpy(),
                                  det.sample(2000, random_state=0, sampler="ddim")["count"])


@pytest.mark.parametrize("kwargs, match", [
    ({"n_samples": 0}, "n_samples"), ({"n_samples": -2}, "n_samples"),
    ({"n_samples": 2.5}, "n_samples"), ({"n_samples": True}, "n_samples"),
    ({"sampler": "euler"}, "sampler"), ({"n_steps": 0}, "n_steps"),
])
def test_bad_requests_name_the_parameter(table_detector, kwargs, match):
    with pytest.raises(ValueError, match=match):
        table_detector.sample(**{"n_samples": 2, **kwargs})
    with pytest.raises(TypeError, match="missing"):
        table_detector.sample(2, missing="yes")


@pytest.mark.parametrize("denoiser, match", [
    ("exact", "denoiser='mlp' and scoring='density'"), ("mlp", "time classifier")])
def test_models_without_a_denoiser_say_what_to_fit(correlated, denoiser, match):
    det = TabDiffusionDetector(denoiser=denoiser, scoring="time",
                               **{**FAST, "max_steps": 1}).fit(correlated)
    with pytest.raises(ValueError, match=match):
        det.sample(3)


def test_sampling_needs_a_fitted_detector():
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        TabDiffusionDetector(denoiser="mlp", scoring="density").sample(2)


# ------------------------------------------------------------------ series
@pytest.fixture(scope="module")
def sine():
    rng = np.random.default_rng(0)
    t = np.arange(1500)
    return np.column_stack([np.sin(2 * np.pi * t / 24), np.cos(2 * np.pi * t / 24)]) \
        * [2.0, 1.0] + [10.0, 0.0] + 0.05 * rng.normal(size=(1500, 2))


@pytest.fixture(scope="module")
def series_detector(sine):
    return DiffusionTSDetector(denoiser="unet", window_size=(16, 24), widths=(16, 32),
                               max_steps=300, **FAST).fit(sine)


@pytest.mark.slow  # series_detector's fit (about 4 s) serves only this test and the next
def test_windows_are_drawn_in_the_series_units(series_detector, sine):
    windows = series_detector.sample(64, random_state=0, sampler="ddim", n_steps=20)
    assert windows.shape == (64, 24, 2)
    assert abs(windows[..., 0].mean() - 10.0) < 0.7 and abs(windows[..., 1].mean()) < 0.5
    short = series_detector.sample(3, random_state=0, sampler="ddim", n_steps=20, window_size=16)
    assert short.shape == (3, 16, 2)
    with pytest.raises(ValueError, match="window_size must be one of the fitted lengths"):
        series_detector.sample(2, window_size=32)


@pytest.mark.slow
def test_continuations_follow_the_context(series_detector, sine):
    context, future = sine[:1200], sine[1200:1230]
    drawn = series_detector.sample(8, random_state=0, sampler="ddim", n_steps=20,
                                   context=context, horizon=30)
    assert drawn.shape == (8, 30, 2)
    # the drawn steps keep the cycle's phase: closer to the true future than the
    # same steps half a period out of phase
    error = np.abs(drawn.mean(0) - future).mean()
    shifted = np.abs(drawn.mean(0) - sine[1212:1242]).mean()
    assert error < 0.5 * shifted, (error, shifted)
    with pytest.raises(ValueError, match="context must end with 24 fully observed steps"):
        series_detector.sample(2, context=sine[:10])
    with pytest.raises(ValueError, match="horizon needs a context"):
        series_detector.sample(2, horizon=5)
    with pytest.raises(ValueError, match="horizon"):
        series_detector.sample(2, context=context, horizon=0)


def test_series_detectors_without_a_network_say_what_to_fit(sine):
    for params in ({}, {"denoiser": "unet", "scoring": "imputation", "max_steps": 2}):
        det = DiffusionTSDetector(window_size=16, widths=(8,), **FAST, **params).fit(sine[:400])
        with pytest.raises(ValueError, match="denoiser='unet' and scoring='reconstruction'"):
            det.sample(2)


# ------------------------------------------------------------------ images
def test_images_come_back_at_the_fitted_size_and_type():
    rng = np.random.default_rng(0)
    images = (rng.random((30, 12, 12)) * 80 + 90).astype(np.uint8)
    det = DiffusionImageDetector(denoiser="unet", widths=(8, 16), max_steps=20, **FAST).fit(images)
    drawn = det.sample(4, random_state=0, sampler="ddim", n_steps=10)
    assert drawn.shape == (4, 12, 12) and drawn.dtype == np.uint8
    assert abs(float(drawn.mean()) - float(images.mean())) < 25
    colour = rng.random((30, 12, 12, 3))
    det = DiffusionImageDetector(denoiser="unet", widths=(8, 16), max_steps=5, **FAST).fit(colour)
    drawn = det.sample(2, random_state=0, sampler="ddim", n_steps=5)
    assert drawn.shape == (2, 12, 12, 3) and drawn.dtype == np.float64
    assert 0 <= drawn.min() and drawn.max() <= 1


def test_image_detectors_without_a_gaussian_denoiser_say_what_to_fit():
    images = np.random.default_rng(0).random((10, 12, 12))
    for params, match in (({}, "denoiser='unet'"),
                          ({"denoiser": "unet", "noise": "simplex"}, "simplex noise")):
        det = DiffusionImageDetector(widths=(8, 16), max_steps=2, **FAST, **params).fit(images)
        with pytest.raises(ValueError, match=match):
            det.sample(1)


# ------------------------------------------------------------------ float32
def test_float32_data_samples_float32_and_float64_stays_float64(correlated):
    """As scikit-learn's transformers preserve float32 (issue #29): the samples are the
    float64 ones rounded, whatever kind of data the detector was fitted on."""
    single = correlated.astype(np.float32)
    quick = {"denoiser": "mlp", "scoring": "density", "widths": (8,), "max_steps": 5, **FAST}
    det32 = TabDiffusionDetector(**quick).fit(single)
    det64 = TabDiffusionDetector(**quick).fit(single.astype(np.float64))
    rows32, rows64 = det32.sample(5, random_state=0), det64.sample(5, random_state=0)
    assert rows32.dtype == np.float32 and rows64.dtype == np.float64
    np.testing.assert_allclose(rows32, rows64, rtol=1e-6)
    assert det32.sample(5, random_state=0, missing=True).dtype == np.float32

    sine = np.sin(np.arange(300) / 4).astype(np.float32)
    series = DiffusionTSDetector(denoiser="unet", window_size=16, widths=(8,), max_steps=3,
                                 **FAST).fit(sine)
    ddim = {"random_state": 0, "sampler": "ddim", "n_steps": 2}
    assert series.sample(2, **ddim).dtype == np.float32
    assert series.sample(2, context=sine[:40], horizon=4, **ddim).dtype == np.float32
    assert series.fit(pd.Series(sine)).sample(2, **ddim).dtype == np.float32
    assert series.fit(sine.astype(np.float64)).sample(2, **ddim).dtype == np.float64

    images = np.random.default_rng(0).random((12, 8, 8)).astype(np.float32)
    drawn = DiffusionImageDetector(denoiser="unet", widths=(4,), max_steps=3, **FAST) \
        .fit(images).sample(2, **ddim)
    assert drawn.dtype == np.float32


def test_a_frame_keeps_its_column_dtypes_when_sampled():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=200).astype(np.float32), "b": rng.normal(size=200)})
    det = TabDiffusionDetector(denoiser="mlp", scoring="density", widths=(8,), max_steps=5,
                               **FAST).fit(frame)
    assert dict(det.sample(3, random_state=0).dtypes) == dict(frame.dtypes)


def test_a_detector_saved_before_the_dtype_was_recorded_samples_float64(correlated, tmp_path):
    det = TabDiffusionDetector(denoiser="mlp", scoring="density", widths=(8,), max_steps=5,
                               **FAST).fit(correlated.astype(np.float32))
    del det._sample_dtype  # as a detector fitted by 0.2 is loaded
    assert det.sample(2, random_state=0).dtype == np.float64
    det.fit(correlated.astype(np.float32)).save(tmp_path / "det")
    loaded = TabDiffusionDetector.load(tmp_path / "det")
    assert loaded.sample(2, random_state=0).dtype == np.float32
