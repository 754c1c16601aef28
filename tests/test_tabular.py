"""Behaviour of TabDiffusionDetector: quality, contract, mixed types, errors."""

import io
import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from pyod.models.base import BaseDetector
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skdiffad import TabDiffusionDetector

SCORINGS = ("time", "reconstruction", "density", "score")
# 600 training rows in batches of 256: 120 steps are 40 epochs
FAST = dict(denoiser="mlp", scoring="density", widths=(32, 32), max_steps=120, n_timesteps=200,
            n_scoring_timesteps=4,
            n_inference_steps=3, device="cpu", random_state=0)


def planted(n_train=600, n_test=200, n_anom=20, d=5, seed=0):
    """Correlated Gaussian normals (mean 10) and two kinds of anomaly.

    The first half sits far out on every feature; the second half are normal rows
    pushed 5 units perpendicular to the correlation ridge (about 4.5 standard
    deviations of the ridge's thin directions), so every feature stays inside its
    normal marginal range. The true density separates both kinds almost perfectly.
    """
    rng = np.random.default_rng(seed)
    cov = 0.7 * np.ones((d, d)) + 0.3 * np.eye(d)
    L = np.linalg.cholesky(cov)
    X_train = rng.normal(size=(n_train, d)) @ L.T * 2 + 10
    normal = rng.normal(size=(n_test, d)) @ L.T * 2 + 10
    anom = rng.normal(size=(n_anom, d)) @ L.T * 2 + 10
    anom[: n_anom // 2] += rng.choice([-6.0, 6.0], size=(n_anom // 2, d))
    off = rng.normal(size=(n_anom - n_anom // 2, d))
    off -= off.mean(axis=1, keepdims=True)  # orthogonal to the ridge direction (1, ..., 1)
    anom[n_anom // 2 :] += 5.0 * off / np.linalg.norm(off, axis=1, keepdims=True)
    X_test = np.vstack([normal, anom])
    y_test = np.r_[np.zeros(n_test), np.ones(n_anom)].astype(int)
    return X_train, X_test, y_test


@pytest.fixture(scope="module")
def data():
    return planted()


@pytest.fixture(scope="module")
def fitted(data):
    return TabDiffusionDetector(**FAST).fit(data[0])


# ---------------------------------------------------------------- quality
@pytest.mark.parametrize("scoring", SCORINGS)
def test_detects_planted_anomalies(data, scoring):
    X_train, X_test, y_test = data
    det = TabDiffusionDetector(**{**FAST, "scoring": scoring}).fit(X_train)
    auc = roc_auc_score(y_test, det.decision_function(X_test))
    assert auc > 0.9, f"{scoring}: AUROC {auc:.3f}"


@pytest.mark.parametrize("scoring", ["density", "reconstruction"])
def test_scores_keep_growing_with_distance(data, scoring):
    # a bounded network would saturate: 10 and 1000 sd out would score alike
    X_train = data[0]
    det = TabDiffusionDetector(**{**FAST, "scoring": scoring}).fit(X_train)
    centre, spread = X_train.mean(axis=0), X_train.std(axis=0)
    far = np.array([centre + k * spread for k in (3.0, 10.0, 100.0, 1000.0)])
    scores = det.decision_function(far)
    assert np.all(np.diff(scores) > 0), scores
    assert scores[-1] > 100 * scores[1]


def test_beats_chance_on_off_manifold_anomalies_only(data):
    # anomalies inside the marginal ranges but off the correlation ridge
    X_train, X_test, y_test = data
    keep = np.r_[np.arange(200), 200 + np.arange(10, 20)]
    det = TabDiffusionDetector(**{**FAST, "scoring": "density"}).fit(X_train)
    auc = roc_auc_score(y_test[keep], det.decision_function(X_test[keep]))
    assert auc > 0.8


# ---------------------------------------------------------------- PyOD contract
def test_pyod_contract(fitted, data):
    X_train, X_test, _ = data
    assert isinstance(fitted, BaseDetector)
    assert fitted.decision_scores_.shape == (len(X_train),)
    assert set(np.unique(fitted.labels_)) <= {0, 1}
    assert abs(fitted.labels_.mean() - fitted.contamination) < 0.02
    assert fitted.threshold_ == pytest.approx(np.percentile(fitted.decision_scores_, 90))
    labels = fitted.predict(X_test)
    scores = fitted.decision_function(X_test)
    np.testing.assert_array_equal(labels, (scores > fitted.threshold_).astype(int))
    proba = fitted.predict_proba(X_test)
    assert proba.shape == (len(X_test), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.all((proba >= 0) & (proba <= 1))
    conf = fitted.predict_confidence(X_test)
    assert conf.shape == (len(X_test),) and np.all((conf >= 0) & (conf <= 1))
    np.testing.assert_array_equal(fitted.score_samples(X_test), -scores)
    assert scores.dtype == np.float64


def test_fitted_attributes(fitted, data):
    assert fitted.n_features_in_ == data[0].shape[1]
    assert fitted.n_iter_ == len(fitted.loss_curve_) == 40
    assert fitted.validation_loss_curve_ == []  # early stopping is off by default
    assert fitted.history_["n_steps"] == 40 * 3  # 600 rows in batches of 256
    assert fitted.device_ == torch.device("cpu")
    assert not fitted.model_.mask_input_
    assert fitted.loss_curve_[-1] < fitted.loss_curve_[0]


def test_early_stopping_stops_before_the_budget(data):
    det = TabDiffusionDetector(**{**FAST, "max_steps": 1200, "n_iter_no_change": 3,
                                  "early_stopping": True}).fit(data[0])
    assert det.history_["stopped_early"] and det.n_iter_ < 400
    assert len(det.validation_loss_curve_) == det.n_iter_


@pytest.mark.slow
@pytest.mark.parametrize("n_rows", [40, 700])
def test_max_steps_is_a_fixed_step_budget(n_rows):
    X = np.random.default_rng(0).normal(size=(n_rows, 2))
    det = TabDiffusionDetector(denoiser="mlp", scoring="density", widths=(4,), n_timesteps=20,
                               device="cpu", random_state=0).fit(X)
    assert det.history_["n_steps"] == 1000
    assert det.n_iter_ == -(-1000 // -(-n_rows // min(256, n_rows)))


# ---------------------------------------------------------------- determinism
def test_same_seed_same_scores_and_global_rng_untouched(data):
    X_train, X_test, _ = data
    torch_state, np_state = torch.random.get_rng_state(), np.random.get_state()
    a = TabDiffusionDetector(**FAST).fit(X_train).decision_function(X_test)
    b = TabDiffusionDetector(**FAST).fit(X_train).decision_function(X_test)
    np.testing.assert_array_equal(a, b)
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state[1])
    c = TabDiffusionDetector(**{**FAST, "random_state": 1}).fit(X_train).decision_function(X_test)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("scoring", ["reconstruction", "density"])
def test_row_score_independent_of_batch(data, scoring):
    X_train, X_test, _ = data
    det = TabDiffusionDetector(**{**FAST, "scoring": scoring}).fit(X_train)
    full = det.decision_function(X_test)
    single = np.array([det.decision_function(X_test[i : i + 1])[0] for i in range(0, 220, 37)])
    np.testing.assert_array_equal(single, full[::37])
    perm = np.random.default_rng(0).permutation(len(X_test))
    np.testing.assert_array_equal(det.decision_function(X_test[perm]), full[perm])
    np.testing.assert_array_equal(det.decision_function(X_test), full)


# ---------------------------------------------------------------- persistence
def test_pickle_and_joblib_round_trip(fitted, data):
    X_test = data[1]
    expected = fitted.decision_function(X_test)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.decision_function(X_test), expected)
    buffer = io.BytesIO()
    joblib.dump(fitted, buffer)
    buffer.seek(0)
    restored = joblib.load(buffer)
    np.testing.assert_array_equal(restored.decision_function(X_test), expected)
    np.testing.assert_array_equal(restored.predict(X_test), fitted.predict(X_test))


@pytest.mark.parametrize("denoiser, scoring", [("exact", "time"), ("mlp", "density")])
def test_model_fitted_on_gpu_loads_on_cpu(denoiser, scoring, data):
    # Simulate what a fit on the second GPU leaves behind; on a CPU-only machine it
    # must load on the CPU with a warning and score identically.
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    fitted = TabDiffusionDetector(**{**FAST, "denoiser": denoiser, "scoring": scoring,
                                      "max_steps": 6}).fit(data[0])
    expected = fitted.decision_function(data[1])
    fitted.model_.device_ = fitted.device_ = torch.device("cuda", 1)
    blob = pickle.dumps(fitted)
    with pytest.warns(UserWarning, match="fitted on cuda:1 but CUDA is not available"):
        restored = pickle.loads(blob)
    assert restored.device_ == restored.model_.device_ == torch.device("cpu")
    np.testing.assert_array_equal(restored.decision_function(data[1]), expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fit_scores_close_to_cpu_and_pickles(data):
    X_train, X_test, y_test = data
    det = TabDiffusionDetector(**{**FAST, "device": "cuda"}).fit(X_train)
    assert det.device_.type == "cuda"
    assert roc_auc_score(y_test, det.decision_function(X_test)) > 0.9
    restored = pickle.loads(pickle.dumps(det))
    np.testing.assert_allclose(restored.decision_function(X_test), det.decision_function(X_test))


# ---------------------------------------------------------------- scikit-learn
def test_set_params_on_a_clone_leaves_the_original_alone():
    det = TabDiffusionDetector(denoiser="mlp", scoring="density", widths=(8,))
    copy = clone(det).set_params(max_steps=7, widths=(4, 4))
    assert copy.max_steps == 7 and copy.widths == (4, 4)
    assert det.max_steps == 1000 and det.widths == (8,)


def test_pipeline_and_column_transformer(data):
    X_train, X_test, y_test = data
    pipe = make_pipeline(StandardScaler(), TabDiffusionDetector(**FAST)).fit(X_train)
    assert roc_auc_score(y_test, pipe.decision_function(X_test)) > 0.9
    frame = pd.DataFrame(X_train, columns=list("abcde")).assign(kind="x")
    ct = ColumnTransformer([("num", StandardScaler(), list("abcde")),
                            ("cat", OneHotEncoder(handle_unknown="ignore"), ["kind"])])
    pipe = make_pipeline(ct, TabDiffusionDetector(**FAST)).fit(frame)
    test_frame = pd.DataFrame(X_test, columns=list("abcde")).assign(kind="x")
    assert roc_auc_score(y_test, pipe.decision_function(test_frame)) > 0.9
    assert set(np.unique(pipe.predict(test_frame))) <= {0, 1}


@pytest.mark.slow
def test_grid_search_selects_by_auroc(data):
    X_train, X_test, y_test = data
    X = np.vstack([X_train[:200], X_test])
    y = np.r_[np.zeros(200, dtype=int), y_test]
    grid = {"scoring": ["time", "density"], "max_steps": [1, 40]}
    search = GridSearchCV(TabDiffusionDetector(**{**FAST, "denoiser": "mlp",
                                                   "early_stopping": False}), grid,
                          scoring="roc_auc", cv=StratifiedKFold(3, shuffle=True, random_state=0))
    search.fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(scores))
    assert search.best_score_ == pytest.approx(scores.max())
    assert search.best_params_["max_steps"] == 40  # one step cannot have learnt the ridge
    # the scorer is the AUROC of decision_function on the held-out fold
    det = clone(search.best_estimator_)
    train, test = next(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    det.fit(X[train])
    best = search.best_index_
    assert search.cv_results_["split0_test_score"][best] == pytest.approx(
        roc_auc_score(y[test], det.decision_function(X[test])))


# ---------------------------------------------------------------- mixed types and NaN
def mixed_frame(n=600, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    frame = pd.DataFrame({
        "x": x,
        # y depends on the colour: a (colour, y) mismatch is a contextual anomaly
        "y": np.select([colour == "red", colour == "green"], [5.0, 0.0], -5.0) + 0.3 * rng.normal(size=n),
        "colour": pd.Categorical(colour),
        "shape": rng.choice(["round", "square"], size=n).astype(object),
        "flag": rng.random(n) < 0.5,
        "count": rng.integers(0, 5, size=n),
    })
    return frame


def test_mixed_types_with_missing_values():
    frame = mixed_frame()
    frame.loc[::7, "x"] = np.nan
    frame.loc[::11, "shape"] = None
    det = TabDiffusionDetector(**{**FAST, "scoring": "density"}).fit(frame)
    assert list(det.feature_names_in_) == list(frame.columns)
    assert det.model_.mask_input_
    scores = det.decision_function(frame)
    assert np.all(np.isfinite(scores))
    test = mixed_frame(seed=1).iloc[:40].copy()
    normal_scores = det.decision_function(test)
    swapped = test.copy()
    swapped["y"] = -swapped["y"] + np.where(swapped["colour"] == "green", 5.0, 0.0)
    swapped = swapped[np.abs(swapped["y"] - test["y"]) > 3]
    assert len(swapped) > 10
    anomalous = det.decision_function(swapped)
    y = np.r_[np.zeros(len(normal_scores)), np.ones(len(anomalous))]
    assert roc_auc_score(y, np.r_[normal_scores, anomalous]) > 0.9


def test_unseen_category_is_scored_not_rejected():
    frame = mixed_frame()
    det = TabDiffusionDetector(**{**FAST, "scoring": "density"}).fit(frame)
    row = frame.iloc[:5].copy()
    known = det.decision_function(row)
    row["shape"] = "triangle"
    unseen = det.decision_function(row)
    assert np.all(np.isfinite(unseen))
    assert np.all(unseen > known)


def test_missing_entry_is_masked_not_imputed(data):
    # Feature means are 10: a missing value read as a raw 0 would be 5 sd out.
    X_train, X_test, _ = data
    det = TabDiffusionDetector(**FAST).fit(X_train)
    complete = np.median(det.decision_function(X_test[:50]))
    rows = X_test[:50].copy()
    rows[:, 0] = np.nan
    scores = det.decision_function(rows)
    assert np.all(np.isfinite(scores))
    zeros = X_test[:50].copy()
    zeros[:, 0] = 0.0
    imputed = np.median(det.decision_function(zeros))
    assert imputed > det.threshold_
    # the masked rows score far closer to the complete rows than to the
    # zero-imputed ones (the gap is marginalised only approximately: it enters
    # the model at the feature's mean, which ignores its correlation)
    assert (np.median(scores) - complete) < 0.35 * (imputed - complete)


def test_training_with_missing_values_uses_mask(data):
    X_train, X_test, y_test = data
    rng = np.random.default_rng(0)
    holed = X_train.copy()
    holed[rng.random(holed.shape) < 0.2] = np.nan
    det = TabDiffusionDetector(**FAST).fit(holed)
    assert det.model_.mask_input_
    assert roc_auc_score(y_test, det.decision_function(X_test)) > 0.85


def test_frame_column_order_and_names(data):
    X_train, X_test, _ = data
    cols = list("abcde")
    det = TabDiffusionDetector(**FAST).fit(pd.DataFrame(X_train, columns=cols))
    expected = det.decision_function(pd.DataFrame(X_test, columns=cols))
    reordered = pd.DataFrame(X_test, columns=cols)[cols[::-1]]
    np.testing.assert_array_equal(det.decision_function(reordered), expected)
    with pytest.raises(ValueError, match="missing the columns.*'e'"):
        det.decision_function(pd.DataFrame(X_test[:, :4], columns=cols[:4]))
    with pytest.warns(UserWarning, match="feature names"):
        np.testing.assert_array_equal(det.decision_function(X_test), expected)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("params, match", [
    ({"scoring": "magic"}, "scoring"),
    ({"n_timesteps": 0}, "n_timesteps"),
    ({"beta_schedule": "quadratic"}, "beta_schedule"),
    ({"widths": ()}, "widths"),
    ({"widths": (16, 0)}, "widths"),
    ({"hidden_dims": (16, 0)}, "hidden_dims"),  # 0.1's spelling is checked under its name
    ({"learning_rate": -1.0}, "learning_rate"),
    ({"contamination": 0.7}, "contamination"),
    ({"validation_fraction": 1.5}, "validation_fraction"),
    ({"ema_decay": 1.0}, "ema_decay"),
    ({"device": "tpu"}, "device"),
    ({"batch_size": 0}, "batch_size"),
])
def test_bad_parameters_name_the_parameter(params, match, data):
    with pytest.raises((ValueError, TypeError), match=match):
        TabDiffusionDetector(**{**FAST, **params}).fit(data[0][:50])


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda():
    with pytest.raises(ValueError, match="CUDA is not available"):
        TabDiffusionDetector(**{**FAST, "device": "cuda"}).fit(np.random.rand(20, 2))


def test_bad_input_raises_clear_errors(fitted, data):
    X_train = data[0]
    with pytest.raises(ValueError, match="infinity"):
        TabDiffusionDetector(**FAST).fit(np.vstack([X_train[:20], [[np.inf] * 5]]))
    with pytest.raises(ValueError, match="X has 3 features, but TabDiffusionDetector is expecting 5"):
        fitted.decision_function(X_train[:, :3])
    with pytest.raises(ValueError, match="0 sample"):
        TabDiffusionDetector(**FAST).fit(np.empty((0, 5)))
    with pytest.raises(ValueError, match="1 sample"):
        TabDiffusionDetector(**FAST).fit(X_train[:1])
    with pytest.raises(ValueError, match="numeric.*could not convert string to float: 'a'"):
        TabDiffusionDetector(**FAST).fit(np.array([[1.0, 2.0], [3.0, "a"]], dtype=object))
    with pytest.raises(ValueError, match="infinity"):
        fitted.decision_function(np.full((2, 5), np.inf))
    with pytest.raises(ValueError, match="0 sample"):
        fitted.decision_function(np.empty((0, 5)))


def test_bad_frame_input_names_the_column():
    frame = mixed_frame(n=50)
    bad = frame.assign(x=np.where(np.arange(50) == 3, np.inf, frame["x"]))
    with pytest.raises(ValueError, match="infinity in column 'x'"):
        TabDiffusionDetector(**FAST).fit(bad)
    with pytest.raises(ValueError, match="column 'x' has no observed value"):
        TabDiffusionDetector(**FAST).fit(frame.assign(x=np.nan))
    det = TabDiffusionDetector(**FAST).fit(frame)
    with pytest.raises(ValueError, match="column 'count' must be numeric"):
        det.decision_function(frame.assign(count="many"))


def test_unfitted_raises_not_fitted():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        TabDiffusionDetector().decision_function(np.zeros((2, 2)))


def test_verbose_shows_progress(capsys, data):
    TabDiffusionDetector(**{**FAST, "max_steps": 2, "verbose": 1}).fit(data[0][:100])
    assert "training" in capsys.readouterr().err


def test_nan_loss_raises_clear_error(data):
    X = data[0][:100] * 1e30  # standardised away; force divergence through the lr
    det = TabDiffusionDetector(**{**FAST, "learning_rate": 1e12, "max_steps": 20})
    with pytest.raises(FloatingPointError, match="learning_rate"):
        det.fit(X)


def test_float32_tables_and_blocks_of_rows_score_as_one_float64_table(monkeypatch):
    from skdiffad._encoders import tabular as tabular_encoder

    rng = np.random.default_rng(11)
    X = rng.normal(size=(600, 5)).astype(np.float32)
    X_new = rng.normal(size=(900, 5)).astype(np.float32) * 2
    X_new[rng.random(X_new.shape) < 0.01] = np.nan  # gaps in some blocks, none in others
    X_new[:100] = np.nan_to_num(X_new[:100])
    det = TabDiffusionDetector(random_state=0).fit(X)
    whole = det.decision_function(X_new.astype(np.float64))
    monkeypatch.setattr(tabular_encoder, "_ENCODE_ROWS", 64)
    assert np.array_equal(det.decision_function(X_new), whole)
    Z = det.encoder_.transform(X_new).samples.values
    assert Z.dtype == np.float32 and np.isfinite(Z).all()
