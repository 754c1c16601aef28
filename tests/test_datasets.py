"""Tests of skdiffad.datasets: the generator, the split protocol and the loaders."""

import numpy as np
import pandas as pd
import pytest

from skdiffad.datasets import (
    default_data_dir,
    list_adbench,
    load_adbench,
    make_tabular_anomalies,
    semi_supervised_split,
)

KINDS = ["clusters", "local", "dependency"]


# ----------------------------------------------------------------- generator
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n_features", [2, 8])
def test_generator_shapes_and_rate(kind, n_features):
    X, y = make_tabular_anomalies(n_samples=400, n_features=n_features,
                                  contamination=0.1, kind=kind, random_state=0)
    assert X.shape == (400, n_features)
    assert X.dtype == np.float64 and np.isfinite(X).all()
    assert y.shape == (400,) and set(np.unique(y)) == {0, 1}
    assert y.sum() == 40


@pytest.mark.parametrize("kind", KINDS)
def test_generator_is_deterministic(kind):
    X1, y1 = make_tabular_anomalies(n_samples=300, kind=kind, random_state=7)
    X2, y2 = make_tabular_anomalies(n_samples=300, kind=kind, random_state=7)
    X3, _ = make_tabular_anomalies(n_samples=300, kind=kind, random_state=8)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.allclose(X1, X3)


def test_generator_shuffles_anomalies_among_normals():
    _, y = make_tabular_anomalies(n_samples=1000, contamination=0.1, random_state=0)
    # Not all at the end: the first half holds a fair share of the anomalies.
    assert 20 < y[:500].sum() < 80


def test_generator_without_anomalies():
    X, y = make_tabular_anomalies(n_samples=50, contamination=0.0, random_state=0)
    assert X.shape == (50, 8) and y.sum() == 0


def test_planted_anomalies_are_detectable():
    """A plain distance score separates the global anomalies from the normal rows."""
    X, y = make_tabular_anomalies(n_samples=600, contamination=0.05, random_state=0)
    centred = (X - X[y == 0].mean(axis=0)) / X[y == 0].std(axis=0)
    distance = np.linalg.norm(centred, axis=1)
    normal, anomalous = distance[y == 0], distance[y == 1]
    auroc = (anomalous[:, None] > normal[None, :]).mean()
    assert auroc > 0.8


def test_generator_frame_has_mixed_types_and_missing_values():
    frame, y = make_tabular_anomalies(n_samples=500, n_features=4, random_state=0,
                                      return_frame=True)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["x0", "x1", "x2", "x3", "color", "site"]
    assert isinstance(frame["color"].dtype, pd.CategoricalDtype)
    assert frame["site"].dtype == object
    numeric = frame[["x0", "x1", "x2", "x3"]]
    assert 0 < numeric.isna().to_numpy().mean() < 0.05
    assert frame["site"].isna().any()
    assert y.shape == (500,) and y.sum() == 25
    again, _ = make_tabular_anomalies(n_samples=500, n_features=4, random_state=0,
                                      return_frame=True)
    pd.testing.assert_frame_equal(frame, again)


def test_frame_matches_array_values_where_observed():
    X, y = make_tabular_anomalies(n_samples=200, n_features=3, random_state=3)
    frame, y_frame = make_tabular_anomalies(n_samples=200, n_features=3, random_state=3,
                                            return_frame=True)
    np.testing.assert_array_equal(y, y_frame)
    numeric = frame[["x0", "x1", "x2"]].to_numpy()
    observed = ~np.isnan(numeric)
    np.testing.assert_allclose(numeric[observed], X[observed])


@pytest.mark.parametrize(
    "params, match",
    [
        ({"kind": "weird"}, "kind"),
        ({"contamination": 0.7}, "contamination"),
        ({"n_features": 1}, "n_features"),
        ({"n_samples": 1}, "n_samples"),
    ],
)
def test_generator_rejects_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        make_tabular_anomalies(**params)


# --------------------------------------------------------------------- split
@pytest.mark.parametrize("seed", [0, 1])
def test_semi_supervised_split_protocol(seed):
    X, y = make_tabular_anomalies(n_samples=500, n_features=3, contamination=0.1,
                                  random_state=0)
    row_id = np.arange(len(y), dtype=float)
    X_with_id = np.column_stack([X, row_id])
    X_train, X_test, y_test = semi_supervised_split(X_with_id, y, random_state=seed)
    train_ids = X_train[:, -1].astype(int)
    test_ids = X_test[:, -1].astype(int)

    assert (y[train_ids] == 0).all()  # no anomaly in training
    assert np.intersect1d(train_ids, test_ids).size == 0  # disjoint
    assert np.union1d(train_ids, test_ids).size == len(y)  # nothing dropped
    np.testing.assert_array_equal(y_test, y[test_ids])
    assert y_test.sum() == y.sum()  # every anomaly is in the test set
    assert len(train_ids) == round(0.5 * (y == 0).sum())


def test_semi_supervised_split_is_seeded_and_accepts_frames():
    frame, y = make_tabular_anomalies(n_samples=200, random_state=0, return_frame=True)
    a_train, a_test, a_y = semi_supervised_split(frame, y, random_state=5)
    b_train, _, b_y = semi_supervised_split(frame, y, random_state=5)
    c_train, _, _ = semi_supervised_split(frame, y, random_state=6)
    assert isinstance(a_train, pd.DataFrame) and isinstance(a_test, pd.DataFrame)
    pd.testing.assert_frame_equal(a_train, b_train)
    np.testing.assert_array_equal(a_y, b_y)
    assert not a_train.index.equals(c_train.index)


def test_semi_supervised_split_train_fraction_and_errors():
    X, y = make_tabular_anomalies(n_samples=300, contamination=0.1, random_state=0)
    X_train, _, _ = semi_supervised_split(X, y, random_state=0, train_fraction=0.2)
    assert len(X_train) == round(0.2 * 270)
    with pytest.raises(ValueError, match="train_fraction"):
        semi_supervised_split(X, y, random_state=0, train_fraction=1.0)
    with pytest.raises(ValueError, match="lengths"):
        semi_supervised_split(X, y[:-1], random_state=0)


# ------------------------------------------------------------------- loaders
def test_default_data_dir_honours_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SKDIFFAD_DATA", str(tmp_path))
    assert default_data_dir() == tmp_path


def test_default_data_dir_without_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("SKDIFFAD_DATA", raising=False)
    monkeypatch.chdir(tmp_path)  # no ../shared/data next to it: falls back to the repo
    path = default_data_dir()
    assert path.parts[-2:] == ("shared", "data")
    assert path.is_absolute()


def test_loaders_on_a_missing_directory(tmp_path):
    assert list_adbench(tmp_path) == []
    with pytest.raises(FileNotFoundError, match="SKDIFFAD_DATA"):
        load_adbench("4_breastw", data_dir=tmp_path)


def test_loaders_on_a_fake_directory(tmp_path):
    folder = tmp_path / "tabular" / "adbench"
    folder.mkdir(parents=True)
    for name in ["10_b", "2_a", "1_c"]:
        np.savez(folder / f"{name}.npz", X=np.arange(6, dtype=np.uint8).reshape(3, 2),
                 y=np.array([0, 0, 1], dtype=np.int32))
    assert list_adbench(tmp_path) == ["1_c", "2_a", "10_b"]
    X, y = load_adbench("2_a.npz", data_dir=tmp_path)
    assert X.dtype == np.float64 and X.shape == (3, 2)
    assert y.tolist() == [0, 0, 1]


@pytest.fixture(scope="module")
def adbench_dir():
    names = list_adbench()
    if not names:
        pytest.skip(f"ADBench data not found under {default_data_dir()} "
                    "(set SKDIFFAD_DATA to run these tests)")
    return default_data_dir()


def test_real_adbench_listing(adbench_dir):
    names = list_adbench(adbench_dir)
    assert "4_breastw" in names
    prefixes = [int(name.split("_")[0]) for name in names]
    assert prefixes == sorted(prefixes)


@pytest.mark.parametrize("name", ["4_breastw", "45_wine"])
def test_real_adbench_loading(adbench_dir, name):
    if name not in list_adbench(adbench_dir):
        pytest.skip(f"{name} not present")
    X, y = load_adbench(name, data_dir=adbench_dir)
    assert X.dtype == np.float64 and X.ndim == 2 and len(X) == len(y)
    assert set(np.unique(y)) == {0, 1}
    assert 0 < y.mean() < 0.5
    X_train, X_test, y_test = semi_supervised_split(X, y, random_state=0)
    assert len(X_train) + len(X_test) == len(X)
    assert y_test.sum() == y.sum()
