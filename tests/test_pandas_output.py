"""pandas in, pandas out; arrays in, arrays out; ``fit_predict`` without a warning (issue #29).

A pandas input (a DataFrame of rows or of steps, a Series for a univariate series)
gets its scores, labels, probabilities and confidences back on its own index, with
the same values as the arrays of the same data; an array gets arrays (PyOD loops and
scikit-learn's checks need them). A Dask DataFrame is scored into the same names and
columns, lazily. The training attributes (``decision_scores_``, ``labels_``) stay
arrays, as PyOD has them.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from skdiffad import DiffusionImageDetector, DiffusionTSDetector, TabDiffusionDetector

dd = pytest.importorskip("dask.dataframe")

# the in-memory comparisons score the frames' values, which have no column names
pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")

SYNC = {"scheduler": "sync"}


def _series(n=700, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None]
    values = np.sin(2 * np.pi * t / 40 + np.array([[0.0, 1.0]])) + 0.05 * rng.normal(size=(n, 2))
    values[500:510, 1] += 3  # a burst in one channel
    return pd.DataFrame(values, columns=["temperature", "pressure"],
                        index=pd.date_range("2026-03-01", periods=n, freq="min", name="when"))


@pytest.fixture(scope="module")
def frame():
    return _series()


@pytest.fixture(scope="module")
def ts_detector(frame):
    return DiffusionTSDetector(window_size=16, random_state=0).fit(frame.iloc[:350])


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"amount": rng.lognormal(3, 1, 300), "age": rng.normal(40, 10, 300),
                      "country": pd.Categorical(rng.choice(["DE", "FR", "NL"], 300))},
                     index=pd.Index([f"order-{i}" for i in range(300)], name="order"))
    X.loc[X.index[-10:], "amount"] *= 50
    return X


@pytest.fixture(scope="module")
def tab_detector(table):
    return TabDiffusionDetector(random_state=0).fit(table.iloc[:200])


def _check_series(out, index, name, values):
    assert isinstance(out, pd.Series) and out.name == name
    pd.testing.assert_index_equal(out.index, index)
    np.testing.assert_array_equal(out.to_numpy(), values)


def test_a_time_indexed_frame_gets_its_scores_on_its_index(ts_detector, frame):
    test = frame.iloc[350:]
    arrays = test.to_numpy()
    _check_series(ts_detector.decision_function(test), test.index, "decision_function",
                  ts_detector.decision_function(arrays))
    _check_series(ts_detector.score_samples(test), test.index, "score_samples",
                  ts_detector.score_samples(arrays))
    labels = ts_detector.predict(test)
    _check_series(labels, test.index, "predict", ts_detector.predict(arrays))
    assert labels.dtype.kind == "i" and set(labels.unique()) == {0, 1}
    assert labels.loc["2026-03-01 08:20":"2026-03-01 08:29"].all()  # steps 500-509
    _check_series(ts_detector.predict_confidence(test), test.index, "predict_confidence",
                  ts_detector.predict_confidence(arrays))


def test_channel_scores_keep_the_index_and_the_columns(ts_detector, frame):
    test = frame.iloc[350:]
    per_channel = ts_detector.channel_scores(test)
    assert isinstance(per_channel, pd.DataFrame)
    pd.testing.assert_index_equal(per_channel.index, test.index)
    assert list(per_channel.columns) == ["temperature", "pressure"]
    np.testing.assert_array_equal(per_channel.to_numpy(),
                                  ts_detector.channel_scores(test.to_numpy()))
    assert per_channel.iloc[150:160]["pressure"].mean() > per_channel["temperature"].max()


def test_a_univariate_series_gets_a_series_and_one_named_column(frame):
    values = frame["pressure"]
    det = DiffusionTSDetector(window_size=16, random_state=0).fit(values.iloc[:350])
    _check_series(det.decision_function(values.iloc[350:]), values.index[350:],
                  "decision_function", det.decision_function(values.to_numpy()[350:]))
    per_channel = det.channel_scores(values.iloc[350:])
    assert list(per_channel.columns) == ["pressure"]
    unnamed = det.channel_scores(values.iloc[350:].rename(None))
    assert list(unnamed.columns) == [0]  # as Series.to_frame names it


def test_arrays_and_lists_stay_arrays(ts_detector, tab_detector, frame, table):
    arrays = frame.to_numpy()[350:]
    for out in (ts_detector.decision_function(arrays), ts_detector.predict(arrays),
                ts_detector.channel_scores(arrays), ts_detector.predict_proba(arrays),
                ts_detector.decision_function(arrays.tolist())):
        assert type(out) is np.ndarray
    numeric = TabDiffusionDetector(random_state=0).fit(table[["amount", "age"]].to_numpy())
    assert type(numeric.predict(table[["amount", "age"]].to_numpy())) is np.ndarray


def test_training_attributes_stay_arrays(ts_detector, tab_detector):
    for det in (ts_detector, tab_detector):
        assert type(det.decision_scores_) is np.ndarray
        assert type(det.labels_) is np.ndarray


def test_a_mixed_type_frame_of_rows_keeps_its_index(tab_detector, table):
    test = table.iloc[200:]
    scores = tab_detector.decision_function(test)
    assert isinstance(scores, pd.Series) and scores.index.equals(test.index)
    # a row's score is the same alone or among others, on a frame or on its values
    np.testing.assert_array_equal(tab_detector.decision_function(test.iloc[::-1]).loc[test.index],
                                  scores)
    labels = tab_detector.predict(test)
    assert labels.name == "predict" and labels.loc[test.index[-10:]].all()
    proba = tab_detector.predict_proba(test)
    assert isinstance(proba, pd.DataFrame) and list(proba.columns) == [0, 1]
    assert proba.index.equals(test.index)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    labels, confidence = tab_detector.predict(test, return_confidence=True)
    assert confidence.name == "predict_confidence" and confidence.index.equals(test.index)
    proba, confidence_too = tab_detector.predict_proba(test, method="unify",
                                                       return_confidence=True)
    pd.testing.assert_series_equal(confidence, confidence_too)


def test_a_frame_of_flat_images_gets_a_series_too():
    rng = np.random.default_rng(0)
    flat = pd.DataFrame(rng.random((30, 16)), index=np.arange(30) * 10)
    det = DiffusionImageDetector(patch_size=2, random_state=0).fit(flat.iloc[:20])
    _check_series(det.decision_function(flat.iloc[20:]), flat.index[20:], "decision_function",
                  det.decision_function(flat.to_numpy()[20:]))


@pytest.mark.parametrize("method", ["linear", "unify"])
def test_probabilities_and_confidences_are_pyods(tab_detector, table, method):
    """The shell computes them from one pass of scores; PyOD's own methods agree."""
    from pyod.models.base import BaseDetector

    X = table.iloc[200:][["amount", "age"]].to_numpy()
    det = TabDiffusionDetector(random_state=0).fit(table.iloc[:200][["amount", "age"]].to_numpy())
    np.testing.assert_allclose(det.predict_proba(X, method=method),
                               BaseDetector.predict_proba(det, X, method=method),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(det.predict_confidence(X), BaseDetector.predict_confidence(det, X),
                               rtol=0, atol=1e-12)
    np.testing.assert_array_equal(det.predict(X), BaseDetector.predict(det, X))
    with pytest.raises(ValueError, match="method must be 'linear' or 'unify'"):
        det.predict_proba(X, method="softmax")


def test_dask_frames_give_the_same_names_and_columns_lazily(ts_detector, tab_detector, frame,
                                                           table):
    test = frame.iloc[350:]
    lazy = dd.from_pandas(test, npartitions=3)
    pd.testing.assert_series_equal(ts_detector.decision_function(lazy).compute(**SYNC),
                                   ts_detector.decision_function(test), check_freq=False)
    pd.testing.assert_frame_equal(ts_detector.channel_scores(lazy).compute(**SYNC),
                                  ts_detector.channel_scores(test), check_freq=False)
    pd.testing.assert_series_equal(ts_detector.predict(lazy).compute(**SYNC),
                                   ts_detector.predict(test), check_freq=False)
    rows = table.iloc[200:]
    lazy_rows = dd.from_pandas(rows, npartitions=2)
    # (Dask stores a string index with its own string dtype: the labels are compared)
    for method in ("decision_function", "score_samples", "predict", "predict_confidence"):
        pd.testing.assert_series_equal(getattr(tab_detector, method)(lazy_rows).compute(**SYNC),
                                       getattr(tab_detector, method)(rows),
                                       check_index_type=False)
    pd.testing.assert_frame_equal(tab_detector.predict_proba(lazy_rows).compute(**SYNC),
                                  tab_detector.predict_proba(rows), check_index_type=False)


# ------------------------------------------------------------------ fit_predict
@pytest.mark.parametrize("make, X", [
    (lambda: TabDiffusionDetector(random_state=0), np.random.default_rng(0).normal(size=(200, 3))),
    (lambda: DiffusionTSDetector(window_size=16, random_state=0), _series().to_numpy()[:300]),
    (lambda: DiffusionImageDetector(patch_size=2, random_state=0),
     np.random.default_rng(0).random((20, 6, 6))),
], ids=["table", "series", "images"])
def test_fit_predict_is_fit_then_labels_without_a_warning(make, X):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        labels = make().fit_predict(X)
    assert type(labels) is np.ndarray
    np.testing.assert_array_equal(labels, make().fit(X).labels_)


def test_fit_predict_on_a_frame_labels_its_index(table):
    det = TabDiffusionDetector(random_state=0)
    labels = det.fit_predict(table)
    _check_series(labels, table.index, "predict", det.labels_)


def test_fit_predict_refuses_a_dask_table_whose_labels_are_a_sample(table):
    lazy = dd.from_pandas(table[["amount", "age"]], npartitions=2)
    with pytest.raises(TypeError, match=r"fit\(X\) and then predict\(X\)"):
        TabDiffusionDetector(random_state=0).fit_predict(lazy)


def test_fit_predict_labels_every_step_of_a_dask_series(frame):
    train = frame.iloc[:350]
    det = DiffusionTSDetector(window_size=16, random_state=0)
    labels = det.fit_predict(dd.from_pandas(train, npartitions=2))
    np.testing.assert_array_equal(labels, DiffusionTSDetector(window_size=16, random_state=0)
                                  .fit(train).labels_)
