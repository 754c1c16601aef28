"""FusionDetector: fusion arithmetic, missing modalities, inputs, pandas out, the contract."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from pyod.models.iforest import IForest
from pyod.models.knn import KNN
from sklearn.base import clone
from sklearn.metrics import make_scorer, roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold

import skdiffad.fusion as fusion_module
from skdiffad import DiffusionImageDetector, FusionDetector, TabDiffusionDetector

FAST = TabDiffusionDetector._unit_test_params()


def _calibrate(det, name, scores):
    """A member's calibrated scores under ``det``'s fitted state."""
    return fusion_module._calibrate(det._state(), name, scores)


def _outside(det, name, block):
    """How far ``block`` lies outside the modality's training range."""
    return fusion_module._outside(det._state(), name, block)


@pytest.fixture(scope="module")
def two_groups():
    """600 normal rows of two independent groups (2 and 3 columns) and a test set with
    20 anomalies in each group alone."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 5))
    X[:, 1] = X[:, 0] + 0.3 * X[:, 1]  # group a: two correlated columns
    test = rng.normal(size=(200, 5))
    test[:, 1] = test[:, 0] + 0.3 * test[:, 1]
    y = np.zeros(200, dtype=int)
    test[:20, 1] = -test[:20, 0]  # group a breaks its correlation
    test[20:40, 2:] += 3.0          # group b shifts
    y[:40] = 1
    return X, test, y


def _forest(seed=0):
    return IForest(n_estimators=50, random_state=seed)


def _late(**kwargs):
    return FusionDetector([("a", KNN(), [0, 1]), ("b", _forest(), [2, 3, 4])], **kwargs)


# ------------------------------------------------------------------ arithmetic
def test_late_fusion_finds_anomalies_of_either_modality(two_groups):
    X, test, y = two_groups
    fused = roc_auc_score(y, _late().fit(X).decision_function(test))
    only_a = roc_auc_score(y, KNN().fit(X[:, :2]).decision_function(test[:, :2]))
    only_b = roc_auc_score(y, _forest().fit(X[:, 2:]).decision_function(test[:, 2:]))
    assert fused > max(only_a, only_b) + 0.1
    assert fused > 0.9


def test_standardised_scores_are_z_scores_of_the_member_training_scores(two_groups):
    X, test, _ = two_groups
    det = _late().fit(X)
    forest = det.members_["b"]
    # IForest's training scores are its decision_function on the training rows
    z = det.modality_scores(X)["b"]
    assert abs(z.mean()) < 1e-9 and abs(z.std(ddof=0) - 1) < 1e-9
    raw = forest.decision_function(test[:, 2:])
    np.testing.assert_allclose(
        det.modality_scores(test)["b"],
        (raw - forest.decision_scores_.mean()) / forest.decision_scores_.std())


def test_tail_calibration_is_empirical_then_an_exponential_tail(two_groups):
    X, test, _ = two_groups
    det = _late(calibration="tail").fit(X)
    training = np.sort(det.members_["b"].decision_scores_)
    n = len(training)
    threshold = np.quantile(training, 0.9)
    excess = training[training > threshold] - threshold
    low = np.array([training[0] - 1.0, training[10], np.median(training)])
    above = n - np.searchsorted(training, low, side="left")
    np.testing.assert_allclose(_calibrate(det, "b", low), -np.log((1.0 + above) / (n + 1)))
    # beyond every training score the surprisal keeps growing, by 1 per mean excess
    high = training[-1] + np.array([1.0, 2.0]) * excess.mean()
    surprisal = _calibrate(det, "b", high)
    assert surprisal[0] >= np.log(n + 1) - 1e-9
    assert surprisal[1] - surprisal[0] == pytest.approx(1.0)
    np.testing.assert_allclose(surprisal, -np.log(len(excess) / n)
                               + (high - threshold) / excess.mean())
    scores = det.modality_scores(test).to_numpy()
    assert (scores >= 0).all() and np.isfinite(scores).all()


def test_fisher_combination_of_tail_surprisals(two_groups):
    from scipy.stats import chi2

    X, test, _ = two_groups
    det = _late(calibration="tail", combine="sum").fit(X)
    per = det.modality_scores(test).to_numpy()
    np.testing.assert_allclose(det.decision_function(test),
                               -chi2.logsf(2 * per.sum(axis=1), 4))
    far = test[:3] + 50.0  # tail probabilities far below float range: still finite and ranked
    assert np.all(np.isfinite(det.decision_function(far)))


@pytest.mark.parametrize("combine", ["mean", "max", "sum"])
def test_combine_reduces_the_modality_scores(two_groups, combine):
    X, test, _ = two_groups
    det = _late(combine=combine).fit(X)
    per = det.modality_scores(test).to_numpy()
    expected = {"mean": per.mean(axis=1), "max": per.max(axis=1),
                "sum": per.sum(axis=1) / np.sqrt(2)}  # Stouffer
    np.testing.assert_allclose(det.decision_function(test), expected[combine])
    training = np.column_stack([_calibrate(det, m, det.members_[m].decision_scores_)
                                for m in ("a", "b")])
    np.testing.assert_allclose(det.decision_scores_,
                               {"mean": training.mean(axis=1), "max": training.max(axis=1),
                                "sum": training.sum(axis=1) / np.sqrt(2)}[combine])
    assert abs(det.labels_.mean() - det.contamination) < 0.01
    np.testing.assert_array_equal(det.predict(test),
                                  (det.decision_function(test) > det.threshold_).astype(int))


def test_dynamic_fusion_damps_a_modality_far_outside_its_training_range(two_groups):
    X, test, _ = two_groups
    normal = test[40:].copy()
    broken = normal.copy()
    broken[:, 2:] = np.random.default_rng(1).normal(0, 20, size=broken[:, 2:].shape)
    late, dynamic = _late().fit(X), _late(fusion="dynamic").fit(X)
    assert set(dynamic.ranges_) == {"a", "b"} and dynamic.ranges_["b"].shape == (2, 3)
    # inside the training range the weights are equal: dynamic is the plain mean
    inside = np.all((normal >= X.min(axis=0)) & (normal <= X.max(axis=0)), axis=1)
    inside &= np.all(np.abs(normal) < 2.0, axis=1)
    np.testing.assert_allclose(dynamic.decision_function(normal[inside]),
                               late.decision_function(normal[inside]))
    # a modality gone to noise raises late fusion's scores of normal rows far more
    late_rise = np.median(late.decision_function(broken) - late.decision_function(normal))
    dynamic_rise = np.median(dynamic.decision_function(broken)
                             - dynamic.decision_function(normal))
    assert dynamic_rise < 0.6 * late_rise
    per = dynamic.modality_scores(broken)
    outside = _outside(dynamic, "b", broken[:, 2:])
    weights = np.column_stack([1 / (1 + _outside(dynamic, "a", broken[:, :2])), 1 / (1 + outside)])
    np.testing.assert_allclose(dynamic.decision_function(broken),
                               (weights * per.to_numpy()).sum(1)
                               / np.sqrt(2 * (weights ** 2).sum(1)))


def test_early_fusion_is_one_detector_on_the_joined_modalities(two_groups):
    X, test, _ = two_groups
    det = FusionDetector([("a", None, [0, 1]), ("b", None, [4, 2])], fusion="early",
                         early_detector=KNN()).fit(X)
    direct = KNN().fit(X[:, [0, 1, 4, 2]])
    np.testing.assert_allclose(det.decision_function(test),
                               direct.decision_function(test[:, [0, 1, 4, 2]]))
    np.testing.assert_allclose(det.decision_scores_, direct.decision_scores_)
    assert not hasattr(det, "members_")
    with pytest.raises(ValueError, match="early fusion .* no per-modality score"):
        det.modality_scores(test)
    default = FusionDetector([("a", None, [0, 1]), ("b", None, [2])], fusion="early").fit(X)
    assert isinstance(default.early_detector_, TabDiffusionDetector)
    # a detector that keeps no training scores is scored on its training data
    plain = FusionDetector([("a", None, [0, 1])], fusion="early",
                           early_detector=_DistanceToMean()).fit(X)
    np.testing.assert_allclose(plain.decision_scores_, np.linalg.norm(X[:, :2] - X[:, :2].mean(0),
                                                                      axis=1))


class _DistanceToMean:
    """A minimal detector without ``decision_scores_``."""

    def get_params(self, deep=True):
        return {}

    def set_params(self, **params):
        return self

    def fit(self, X):
        self.mean_ = X.mean(axis=0)
        return self

    def decision_function(self, X):
        return np.linalg.norm(X - self.mean_, axis=1)


# ------------------------------------------------------------------ missing modalities
def test_a_missing_modality_gets_weight_zero(two_groups):
    X, test, _ = two_groups
    holed = test.copy()
    holed[:30, 2:] = np.nan
    for fusion in ("late", "dynamic"):
        det = _late(fusion=fusion).fit(X)
        per = det.modality_scores(holed)
        assert per["b"].isna().sum() == 30 and not per["a"].isna().any()
        scores = det.decision_function(holed)
        # the present modality alone, scaled to the spread of a mean of two
        np.testing.assert_allclose(scores[:30], per["a"][:30] / np.sqrt(2))
        np.testing.assert_allclose(scores[30:], det.decision_function(test[30:]))
    summed = _late(combine="sum").fit(X)
    np.testing.assert_allclose(summed.decision_function(holed)[:30],
                               summed.modality_scores(holed)["a"][:30])  # Stouffer, k = 1


def test_rows_missing_a_modality_at_fit_are_left_out_of_its_member(two_groups):
    X, _, _ = two_groups
    holed = X.copy()
    holed[:100, 2:] = np.nan
    det = _late().fit(holed)
    assert len(det.members_["b"].decision_scores_) == 500  # IForest never sees NaN
    assert len(det.members_["a"].decision_scores_) == 600
    assert np.isfinite(det.decision_scores_).all()
    # the fused training score of a row without modality b is modality a's alone
    np.testing.assert_allclose(
        det.decision_scores_[:100],
        _calibrate(det, "a", det.members_["a"].decision_scores_[:100]) / np.sqrt(2))
    # a member that takes NaN (skdiffad's) sees every row; its missing rows are not scored
    mixed = FusionDetector([("a", KNN(), [0, 1]),
                            ("b", TabDiffusionDetector(**FAST), [2, 3, 4])]).fit(holed)
    assert len(mixed.members_["b"].decision_scores_) == 600
    assert len(mixed.calibration_["b"]) == 500


def test_every_modality_missing_is_an_error(two_groups):
    X, test, _ = two_groups
    det = _late().fit(X)
    blank = test.copy()
    blank[5] = np.nan
    with pytest.raises(ValueError, match="every modality is missing for 1 samples .* position 5"):
        det.decision_function(blank)
    dead = X.copy()
    dead[:, 2:] = np.nan
    with pytest.raises(ValueError, match="modality 'b' has no observed sample"):
        _late().fit(dead)


# ------------------------------------------------------------------ inputs
def test_frames_select_columns_by_name_and_keep_the_index(two_groups):
    X, test, _ = two_groups
    columns = ["p", "q", "r", "s", "t"]
    frame = pd.DataFrame(X, columns=columns)
    det = FusionDetector([("a", KNN(), ["p", "q"]), ("b", _forest(), ["r", "s", "t"])]).fit(frame)
    np.testing.assert_array_equal(det.feature_names_in_, columns)
    by_position = _late().fit(X)
    np.testing.assert_allclose(det.decision_function(pd.DataFrame(test, columns=columns)),
                               by_position.decision_function(test))
    per = det.modality_scores(pd.DataFrame(test[:3], columns=columns, index=[7, 8, 9]))
    assert per.index.tolist() == [7, 8, 9] and per.columns.tolist() == ["a", "b"]


def test_column_selections_of_every_kind_agree(two_groups):
    X, test, _ = two_groups
    mask = np.array([False, False, True, True, True])
    reference = _late().fit(X).decision_function(test)
    for a, b in [(slice(0, 2), slice(2, None)), (~mask, mask),
                 (lambda X: [0, 1], lambda X: [-3, -2, -1])]:
        det = FusionDetector([("a", KNN(), a), ("b", _forest(), b)]).fit(X)
        np.testing.assert_allclose(det.decision_function(test), reference)


def test_dict_input_fuses_images_with_a_table():
    rng = np.random.default_rng(0)
    images = rng.normal(0.5, 0.05, size=(80, 8, 8)).clip(0, 1)
    table = rng.normal(size=(80, 3))
    image_det = DiffusionImageDetector(**DiffusionImageDetector._unit_test_params())
    det = FusionDetector([("image", image_det, None), ("table", KNN(), None)])
    det.fit({"image": images, "table": table})
    assert not hasattr(det, "n_features_in_")
    test_images, test_table = images[:10].copy(), table[:10].copy()
    test_images[0, 2:6, 2:6] = 1.0   # a bright square on image 0
    test_table[1] += 6.0             # row 1 far away in the table
    per = det.modality_scores({"image": test_images, "table": test_table})
    assert per["image"].idxmax() == 0 and per["table"].idxmax() == 1
    scores = det.decision_function({"table": test_table, "image": test_images})  # any key order
    assert set(np.argsort(scores)[-2:]) == {0, 1}
    test_images[3] = np.nan  # the image of sample 3 is missing: the table scores it alone
    with_hole = det.modality_scores({"image": test_images, "table": test_table})
    assert np.isnan(with_hole.loc[3, "image"])
    assert det.decision_function({"image": test_images, "table": test_table})[3] == \
        pytest.approx(with_hole.loc[3, "table"] / np.sqrt(2))


@pytest.mark.parametrize("modalities, X, match", [
    ([("a", KNN(), ["p", "q"]), ("b", KNN(), ["q", "r"])], "frame",
     "column 'q' is in modalities 'a' and 'b'"),
    ([("a", KNN(), ["p", "zz"])], "frame", "modality 'a': column 'zz' is not in X"),
    ([("a", KNN(), ["p"])], "array", "column 'p' is a name, but X is an array"),
    ([("a", KNN(), [0, 9])], "array", "column 9 is out of range for X with 5 columns"),
    ([("a", KNN(), [True, False])], "array", "boolean mask must have 5 entries"),
    ([("a", KNN(), slice(7, None))], "array", "selects no column of X"),
    ([("a", KNN(), None)], "array", "columns is None, which only a dict X allows"),
    ([("a", KNN(), [0]), ("a", KNN(), [1])], "array", r"unique; repeated: \['a'\]"),
    ([("a__b", KNN(), [0])], "array", "without '__'"),
    ([("a", KNN())], "array", r"\(name, detector, columns\) tuple"),
    ([], "array", "at least one"),
    ([("a", "knn", [0])], "array", "must have fit and decision_function"),
    ([("a", KNN(), [0])], "dict", "with a dict X, columns must be None"),
    ([("a", KNN(), None), ("b", KNN(), None)], "dict", "modality 'b' is missing from X at fit"),
])
def test_bad_modalities_and_inputs_name_what_is_wrong(two_groups, modalities, X, match):
    data = two_groups[0]
    inputs = {"frame": pd.DataFrame(data, columns=list("pqrst")), "array": data,
              "dict": {"a": data[:, :2]}}
    with pytest.raises((ValueError, TypeError), match=match):
        FusionDetector(modalities).fit(inputs[X])


def test_scoring_input_must_match_fit(two_groups):
    X, test, _ = two_groups
    det = _late().fit(X)
    with pytest.raises(ValueError, match="X has 4 features, but FusionDetector is expecting 5"):
        det.decision_function(test[:, :4])
    with pytest.raises(ValueError, match="fitted on a table"):
        det.decision_function({"a": test[:, :2], "b": test[:, 2:]})
    on_dict = FusionDetector([("a", KNN(), None), ("b", KNN(), None)]).fit(
        {"a": X[:, :2], "b": X[:, 2:]})
    with pytest.raises(ValueError, match="fitted on a dict"):
        on_dict.decision_function(test)
    with pytest.raises(ValueError, match="modality 'b' is missing from X at scoring"):
        on_dict.decision_function({"a": test[:, :2]})
    with pytest.raises(ValueError, match="same samples: 'b' has 5, the first has 200"):
        on_dict.decision_function({"a": test[:, :2], "b": test[:5, 2:]})
    with pytest.raises(ValueError, match="fusion"):
        _late(fusion="middle").fit(X)


# ------------------------------------------------------------------ contract
def test_member_parameters_through_get_and_set_params(two_groups):
    det = _late()
    params = det.get_params()
    assert params["a"] is det.modalities[0][1] and params["b__n_estimators"] == 50
    det.set_params(a__n_neighbors=3, b=KNN(n_neighbors=7), fusion="dynamic")
    assert det.modalities[0][1].n_neighbors == 3 and det.modalities[1][1].n_neighbors == 7
    assert det.modalities[1][2] == [2, 3, 4] and det.fusion == "dynamic"
    twin = clone(det)
    assert twin.modalities[0][1] is not det.modalities[0][1]
    assert twin.get_params()["a__n_neighbors"] == 3


def test_grid_search_over_a_member_parameter(two_groups):
    X, test, y = two_groups
    data = np.vstack([X[:300], test])
    labels = np.r_[np.zeros(300, dtype=int), y]
    auroc = make_scorer(roc_auc_score, response_method="decision_function")
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(_late(), {"a__n_neighbors": [1, 50], "combine": ["mean", "max"]},
                          scoring=auroc, cv=folds).fit(data, labels)
    assert len(search.cv_results_["params"]) == 4
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_score_ > 0.8
    assert search.best_estimator_.members_["a"].n_neighbors in (1, 50)


def test_fitted_detector_pickles_and_refits_from_scratch(two_groups):
    X, test, _ = two_groups
    det = FusionDetector([("a", TabDiffusionDetector(**FAST), [0, 1]), ("b", _forest(), [2, 3, 4])],
                         fusion="dynamic").fit(X)
    back = pickle.loads(pickle.dumps(det))
    np.testing.assert_array_equal(back.decision_function(test), det.decision_function(test))
    np.testing.assert_array_equal(back.predict(test), det.predict(test))
    det.set_params(fusion="early", early_detector=KNN()).fit(X)
    assert not hasattr(det, "members_") and not hasattr(det, "ranges_")
    probabilities = _late().fit(X).predict_proba(test)
    assert probabilities.shape == (200, 2) and np.allclose(probabilities.sum(1), 1)


def test_fit_predict_is_fit_then_labels_without_a_warning(two_groups):
    X = two_groups[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        labels = _late().fit_predict(X)
    assert type(labels) is np.ndarray
    np.testing.assert_array_equal(labels, _late().fit(X).labels_)
    assert set(np.unique(labels)) <= {0, 1} and labels.sum() > 0


# ------------------------------------------------------------------ pandas in, pandas out
COLUMNS = ["p", "q", "r", "s", "t"]
_NAMED = [("a", ["p", "q"]), ("b", ["r", "s", "t"])]
_PLACED = [("a", [0, 1]), ("b", [2, 3, 4])]


def _fusion(fusion, layout):
    """Late fusion of KNN and a forest, or early fusion by one KNN, over ``layout``."""
    members = {"a": KNN(), "b": _forest()}
    return FusionDetector([(name, members[name], columns) for name, columns in layout],
                          fusion=fusion, early_detector=KNN())


def _check_series(out, index, name, values):
    assert isinstance(out, pd.Series) and out.name == name
    pd.testing.assert_index_equal(out.index, index)
    np.testing.assert_array_equal(out.to_numpy(), values)


def _check_like_arrays(det, X, expected, index):
    """Every output of ``det`` for the pandas-holding ``X`` is pandas on ``index`` with the
    values that ``expected`` (the same detector fitted on arrays) gives ``arrays``."""
    (reference, arrays) = expected
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for method in ("decision_function", "score_samples", "predict", "predict_confidence"):
            _check_series(getattr(det, method)(X), index, method,
                          getattr(reference, method)(arrays))
        labels, confidence = det.predict(X, return_confidence=True)
        _check_series(labels, index, "predict", reference.predict(arrays))
        assert labels.dtype.kind == "i"
        _check_series(confidence, index, "predict_confidence",
                      reference.predict_confidence(arrays))
        for method in ("linear", "unify"):
            proba, confidence = det.predict_proba(X, method=method, return_confidence=True)
            assert isinstance(proba, pd.DataFrame) and list(proba.columns) == [0, 1]
            pd.testing.assert_index_equal(proba.index, index)
            np.testing.assert_array_equal(proba.to_numpy(),
                                          reference.predict_proba(arrays, method=method))
            _check_series(confidence, index, "predict_confidence",
                          reference.predict_confidence(arrays))


@pytest.mark.parametrize("fusion", ["late", "early"])
def test_a_frame_gets_its_fused_results_on_its_index(two_groups, fusion):
    X, test, _ = two_groups
    when = pd.date_range("2026-03-01", periods=len(test), freq="h", name="when")
    frame = pd.DataFrame(test, columns=COLUMNS, index=when)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        det = _fusion(fusion, _NAMED).fit(pd.DataFrame(X, columns=COLUMNS))
    reference = _fusion(fusion, _PLACED).fit(X)
    np.testing.assert_array_equal(det.decision_scores_, reference.decision_scores_)
    _check_like_arrays(det, frame, (reference, test), when)
    if fusion == "late":
        pd.testing.assert_index_equal(det.modality_scores(frame).index, when)


@pytest.mark.parametrize("fusion", ["late", "early"])
def test_fit_predict_on_a_frame_labels_its_index(two_groups, fusion):
    X = two_groups[0]
    frame = pd.DataFrame(X, columns=COLUMNS, index=[f"pump-{i}" for i in range(len(X))])
    det = _fusion(fusion, _NAMED)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        labels = det.fit_predict(frame)
    _check_series(labels, frame.index, "predict", det.labels_)
    assert type(det.labels_) is np.ndarray and type(det.decision_scores_) is np.ndarray
    np.testing.assert_array_equal(labels, _fusion(fusion, _PLACED).fit(X).labels_)


@pytest.mark.parametrize("fusion", ["late", "early"])
def test_a_dict_takes_the_index_of_its_first_modality(two_groups, fusion):
    X, test, _ = two_groups
    layout = [("a", None), ("b", None)]
    det = _fusion(fusion, layout).fit({"a": pd.DataFrame(X[:, :2], columns=["p", "q"]),
                                       "b": X[:, 2:]})
    reference = _fusion(fusion, layout).fit({"a": X[:, :2], "b": X[:, 2:]})
    labels = pd.Index([f"part-{i}" for i in range(len(test))], name="part")
    # the first modality (in the fitted order, whatever the dict's) is a frame
    blocks = {"b": pd.DataFrame(test[:, 2:], index=labels),
              "a": pd.DataFrame(test[:, :2], columns=["p", "q"], index=labels)}
    _check_like_arrays(det, blocks, (reference, {"a": test[:, :2], "b": test[:, 2:]}), labels)
    # a pandas block after an array one leaves the results arrays
    mixed = {"a": test[:, :2], "b": blocks["b"]}
    for out in (det.decision_function(mixed), det.predict(mixed), det.predict_proba(mixed),
                det.predict_confidence(mixed), det.score_samples(mixed)):
        assert type(out) is np.ndarray


@pytest.mark.parametrize("fusion", ["late", "early"])
def test_arrays_stay_arrays(two_groups, fusion):
    X, test, _ = two_groups
    det = _fusion(fusion, _PLACED).fit(X)
    by_dict = _fusion(fusion, [("a", None), ("b", None)]).fit({"a": X[:, :2], "b": X[:, 2:]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        outputs = [det.decision_function(test), det.score_samples(test), det.predict(test),
                   det.predict_proba(test), det.predict_confidence(test),
                   *det.predict(test, return_confidence=True),
                   *det.predict_proba(test, return_confidence=True),
                   det.decision_function(test.tolist()),
                   by_dict.predict_proba({"a": test[:, :2], "b": test[:, 2:]}),
                   _fusion(fusion, _PLACED).fit_predict(X)]
    assert all(type(out) is np.ndarray for out in outputs)
    assert outputs[3].shape == (len(test), 2)
