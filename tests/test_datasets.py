"""Tests of skdiffad.datasets: the generators, the split protocol, the data home and the loaders.

The tests on the real benchmark data get its folder from the ``shared_data``
fixture (tests/conftest.py) and pass it to the loaders explicitly.
"""

import json

import numpy as np
import pandas as pd
import pytest

from skdiffad.datasets import (
    TIMESERIES_COLLECTIONS,
    default_data_dir,
    get_data_home,
    list_adbench,
    list_timeseries,
    load_adbench,
    load_timeseries,
    make_tabular_anomalies,
    make_timeseries_anomalies,
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


# ----------------------------------------------------------------- data home
@pytest.fixture
def home(monkeypatch, tmp_path):
    """A fresh home directory (``~``) and no ``SKDIFFAD_DATA``."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SKDIFFAD_DATA", raising=False)
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


def test_data_home_argument_beats_environment_beats_default(home, monkeypatch, tmp_path):
    default, from_env, given = home / "skdiffad_data", tmp_path / "env", tmp_path / "given"
    for folder in (default, from_env, given):
        folder.mkdir()
    assert get_data_home() == default
    monkeypatch.setenv("SKDIFFAD_DATA", str(from_env))
    assert get_data_home() == from_env
    assert get_data_home(given) == given
    assert get_data_home(str(given)) == given
    monkeypatch.setenv("SKDIFFAD_DATA", "")  # empty counts as unset
    assert get_data_home() == default


def test_data_home_expands_the_user_directory(home, monkeypatch):
    (home / "data").mkdir()
    assert get_data_home("~/data") == home / "data"
    monkeypatch.setenv("SKDIFFAD_DATA", "~/data")
    assert get_data_home() == home / "data"


def test_data_home_ignores_the_working_directory(home, monkeypatch, tmp_path):
    """A ``../shared/data`` next to the working directory is not picked up."""
    decoy = tmp_path / "shared" / "data"
    (decoy / "tabular" / "adbench").mkdir(parents=True)
    np.savez(decoy / "tabular" / "adbench" / "1_decoy.npz", X=np.zeros((3, 2)), y=np.zeros(3))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    with pytest.raises(FileNotFoundError, match="skdiffad_data"):
        get_data_home()
    with pytest.raises(FileNotFoundError, match="skdiffad_data"):
        list_adbench()
    (home / "skdiffad_data").mkdir()
    assert get_data_home() == home / "skdiffad_data"
    assert list_adbench() == []


@pytest.mark.parametrize("source", ["argument", "environment", "default"])
def test_data_home_missing_folder_is_a_clear_error(home, monkeypatch, tmp_path, source):
    missing = {"argument": tmp_path / "nowhere", "environment": tmp_path / "typo",
               "default": home / "skdiffad_data"}[source]
    if source == "environment":
        monkeypatch.setenv("SKDIFFAD_DATA", str(missing))
    with pytest.raises(FileNotFoundError) as error:
        get_data_home(missing if source == "argument" else None)
    message = str(error.value)
    assert str(missing) in message
    assert "data_home=" in message and "SKDIFFAD_DATA" in message
    assert {"argument": "data_home argument", "environment": "environment variable",
            "default": "the default"}[source] in message
    assert not missing.exists()  # nothing is created


def test_default_data_dir_is_deprecated(home, monkeypatch, tmp_path):
    monkeypatch.setenv("SKDIFFAD_DATA", str(tmp_path / "not_yet"))
    with pytest.warns(FutureWarning, match="get_data_home"):
        assert default_data_dir() == tmp_path / "not_yet"  # unchecked, as before
    monkeypatch.delenv("SKDIFFAD_DATA")
    with pytest.warns(FutureWarning):
        assert default_data_dir() == home / "skdiffad_data"


def test_loaders_default_to_the_data_home(monkeypatch, tmp_path):
    folder = tmp_path / "tabular" / "adbench"
    folder.mkdir(parents=True)
    np.savez(folder / "7_x.npz", X=np.ones((2, 2)), y=np.array([0, 1]))
    monkeypatch.setenv("SKDIFFAD_DATA", str(tmp_path))
    assert list_adbench() == ["7_x"]
    np.testing.assert_array_equal(load_adbench("7_x")[1], [0, 1])
    assert list_timeseries("NAB") == []


# ------------------------------------------------------------------- loaders

def test_loaders_on_a_missing_directory(tmp_path):
    assert list_adbench(tmp_path) == []
    assert list_adbench(tmp_path / "absent") == []  # an explicit folder is not checked
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
def adbench_dir(shared_data):
    if not list_adbench(shared_data):
        pytest.skip(f"ADBench data not found under {shared_data}")
    return shared_data


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


# ------------------------------------------------------- time-series generator
def _label_runs(y):
    edges = np.diff(np.r_[0, y, 0])
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


@pytest.mark.parametrize("n_channels", [1, 4])
def test_timeseries_generator_shapes(n_channels):
    X, y = make_timeseries_anomalies(n_timestamps=1500, n_channels=n_channels,
                                     random_state=0)
    assert X.shape == (1500, n_channels) and X.dtype == np.float64
    assert np.isfinite(X).all()
    assert y.shape == (1500,) and set(np.unique(y)) == {0, 1}
    assert len(_label_runs(y)) == 4


def test_timeseries_generator_is_deterministic():
    X1, y1 = make_timeseries_anomalies(n_timestamps=800, n_channels=3, random_state=5)
    X2, y2 = make_timeseries_anomalies(n_timestamps=800, n_channels=3, random_state=5)
    X3, y3 = make_timeseries_anomalies(n_timestamps=800, n_channels=3, random_state=6)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.allclose(X1, X3)


@pytest.mark.parametrize("n_channels", [1, 3])
def test_timeseries_labels_mark_exactly_the_inserted_ranges(n_channels):
    """Same seed without anomalies = the normal signal: X differs exactly where y == 1."""
    kwargs = dict(n_timestamps=3000, n_channels=n_channels, random_state=1)
    X, y = make_timeseries_anomalies(n_anomalies=6, **kwargs)
    clean, y_clean = make_timeseries_anomalies(n_anomalies=0, **kwargs)
    assert y_clean.sum() == 0
    changed = X != clean
    np.testing.assert_array_equal(changed.any(axis=1), y == 1)
    runs = _label_runs(y)
    assert len(runs) == 6
    channels_touched = [changed[start:stop].any(axis=0).sum() for start, stop in runs]
    if n_channels == 1:
        assert channels_touched == [1] * 6
    else:  # n_anomalies // 2 ranges touch one channel only, the others all of them
        assert sorted(channels_touched) == [1, 1, 1, 3, 3, 3]


@pytest.mark.parametrize("kind", ["spike", "level_shift", "frequency", "noise"])
def test_timeseries_each_kind_changes_its_range(kind):
    kwargs = dict(n_timestamps=2000, anomaly_kinds=(kind,), random_state=2)
    X, y = make_timeseries_anomalies(n_anomalies=1, **kwargs)
    clean, _ = make_timeseries_anomalies(n_anomalies=0, **kwargs)
    (start, stop), = _label_runs(y)
    change = (X - clean)[start:stop, 0]
    scale = clean[:, 0].std()
    if kind == "spike":
        assert 1 <= stop - start <= 3
        assert np.abs(change).min() > 3 * scale
    else:
        assert 40 <= stop - start <= 80  # 2% to 4% of 2000 steps
    if kind == "level_shift":
        assert np.allclose(change, change[0]) and abs(change[0]) > scale
    if kind in ("frequency", "noise"):
        assert change.std() > 0.3 * scale


def test_timeseries_generator_cycles_through_kinds():
    X, y = make_timeseries_anomalies(n_timestamps=4000, anomaly_kinds="spike",
                                     n_anomalies=3, random_state=0)
    assert all(stop - start <= 3 for start, stop in _label_runs(y))
    assert len(_label_runs(y)) == 3


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_timestamps": 50}, "n_timestamps"),
        ({"n_timestamps": 1000.5}, "n_timestamps"),
        ({"n_channels": 0}, "n_channels"),
        ({"n_anomalies": -1}, "n_anomalies"),
        ({"anomaly_kinds": ("spike", "weird")}, "anomaly_kinds"),
        ({"anomaly_kinds": ()}, "anomaly_kinds"),
        ({"n_timestamps": 300, "n_anomalies": 30}, "too short"),
    ],
)
def test_timeseries_generator_rejects_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        make_timeseries_anomalies(**params)


# ------------------------------------------------------- time-series loaders
def _fake_timeseries_root(root):
    """A tiny data root with one labelled and one unlabelled series per collection."""
    nab = root / "timeseries" / "NAB"
    (nab / "data" / "groupA").mkdir(parents=True)
    (nab / "labels").mkdir()
    times = pd.date_range("2020-01-01", periods=100, freq="5min")
    for name in ("with_window", "no_window"):
        pd.DataFrame({"timestamp": times.strftime("%Y-%m-%d %H:%M:%S"),
                      "value": np.arange(100.0)}).to_csv(
            nab / "data" / "groupA" / f"{name}.csv", index=False)
    windows = {"groupA/with_window.csv": [[str(times[10]), str(times[12])],
                                          [str(times[50]), str(times[59]) + ".000000"]],
               "groupA/no_window.csv": []}
    (nab / "labels" / "combined_windows.json").write_text(json.dumps(windows))

    skab = root / "timeseries" / "SKAB" / "data"
    for folder in ("valve1", "anomaly-free"):
        (skab / folder).mkdir(parents=True)
    n = 450
    frame = pd.DataFrame({"datetime": pd.date_range("2020-03-09", periods=n, freq="s")
                          .strftime("%Y-%m-%d %H:%M:%S")})
    for j in range(8):
        frame[f"sensor{j}"] = np.arange(n) + j
    frame["anomaly"] = (np.arange(n) >= 420).astype(float)
    frame["changepoint"] = (np.arange(n) == 420).astype(float)
    for name in ("2", "10"):
        frame.to_csv(skab / "valve1" / f"{name}.csv", sep=";", index=False)
    frame.assign(anomaly=0.0).to_csv(skab / "valve1" / "3.csv", sep=";", index=False)
    frame.drop(columns=["anomaly", "changepoint"]).to_csv(
        skab / "anomaly-free" / "anomaly-free.csv", sep=";", index=False)

    smap = root / "timeseries" / "SMAP_MSL"
    smap.mkdir(parents=True)
    for name, labelled in (("MSL_C-1", 1), ("SMAP_A-1", 1), ("SMAP_A-2", 0)):
        np.savez(smap / f"{name}.npz", train=np.ones((30, 3), dtype=np.float32),
                 test=np.zeros((20, 3)), test_label=np.r_[np.zeros(15), np.full(5, labelled)]
                 .astype(np.int8))

    smd = root / "timeseries" / "SMD"
    smd.mkdir(parents=True)
    for name in ("machine-1-10", "machine-1-2"):
        np.savez(smd / f"{name}.npz", train=np.ones((40, 38), dtype=np.float32),
                 test=np.zeros((30, 38), dtype=np.float32),
                 test_label=(np.arange(30) >= 25).astype(np.uint8))

    ucr = root / "timeseries" / "UCR_KDD21"
    ucr.mkdir(parents=True)  # 1-D arrays, as in the archive
    np.savez(ucr / "002_UCR_Anomaly_toy_50_61_63.npz", train=np.arange(50, dtype=np.float32),
             test=np.arange(50, 80, dtype=np.float32),
             test_label=np.isin(np.arange(30), [10, 11, 12]).astype(np.uint8))

    mgab = root / "timeseries" / "MGAB"
    mgab.mkdir(parents=True)
    n = 30_000
    np.savez(mgab / "1.npz", value=np.arange(n, dtype=np.float32),
             is_anomaly=((np.arange(n) >= 29_000) & (np.arange(n) < 29_401)).astype(np.uint8),
             is_ignored=(np.arange(n) < 257).astype(np.uint8))


def test_timeseries_loaders_on_a_fake_directory(tmp_path):
    _fake_timeseries_root(tmp_path)
    assert list_timeseries("NAB", tmp_path) == ["groupA/with_window"]
    series = load_timeseries("NAB", "groupA/with_window.csv", data_dir=tmp_path)
    assert series["X_train"].shape == (15, 1) and series["X_test"].shape == (85, 1)
    assert series["X_train"].dtype == np.float64
    np.testing.assert_array_equal(series["X_test"][:, 0], np.arange(15.0, 100.0))
    expected = np.zeros(100, dtype=int)
    expected[10:13] = expected[50:60] = 1  # inclusive windows
    np.testing.assert_array_equal(series["y_test"], expected[15:])
    np.testing.assert_array_equal(series["y_train"], expected[:15])
    assert len(series["timestamps_test"]) == 85
    assert series["name"] == "groupA/with_window"
    unlisted = load_timeseries("NAB", "groupA/no_window", data_dir=tmp_path)
    assert unlisted["y_test"].sum() == 0

    assert list_timeseries("SKAB", tmp_path) == ["valve1/2", "valve1/10"]
    series = load_timeseries("SKAB", "valve1/10", data_dir=tmp_path)
    assert series["X_train"].shape == (400, 8) and series["X_test"].shape == (50, 8)
    assert series["y_test"].tolist() == [0] * 20 + [1] * 30
    np.testing.assert_array_equal(series["X_train"][0], np.arange(8.0))  # no label columns

    assert list_timeseries("SMAP_MSL", tmp_path) == ["MSL_C-1", "SMAP_A-1"]
    series = load_timeseries("SMAP_MSL", "SMAP_A-1", data_dir=tmp_path)
    assert series["X_train"].shape == (30, 3) and series["X_train"].dtype == np.float64
    assert series["y_test"].sum() == 5 and series["timestamps_test"] is None

    assert list_timeseries("SMD", tmp_path) == ["machine-1-2", "machine-1-10"]
    series = load_timeseries("SMD", "machine-1-2.npz", data_dir=tmp_path)
    assert series["X_train"].shape == (40, 38) and series["X_test"].dtype == np.float64
    assert series["y_test"].sum() == 5 and series["y_train"].sum() == 0

    series = load_timeseries("UCR_KDD21", "002_UCR_Anomaly_toy_50_61_63", data_dir=tmp_path)
    assert series["X_train"].shape == (50, 1) and series["X_test"].shape == (30, 1)
    assert np.flatnonzero(series["y_test"]).tolist() == [10, 11, 12]

    assert list_timeseries("MGAB", tmp_path) == ["1"]
    series = load_timeseries("MGAB", "1", data_dir=tmp_path)
    # warm-up dropped; steps 257..24999 train, 25000.. scored
    np.testing.assert_array_equal(series["X_train"][[0, -1], 0], [257.0, 24_999.0])
    np.testing.assert_array_equal(series["X_test"][[0, -1], 0], [25_000.0, 29_999.0])
    assert len(series["y_test"]) == 5_000
    assert np.flatnonzero(series["y_test"])[[0, -1]].tolist() == [4_000, 4_400]
    assert series["timestamps_test"] is None


def test_timeseries_loaders_on_a_missing_directory(tmp_path):
    for collection in TIMESERIES_COLLECTIONS:
        assert list_timeseries(collection, tmp_path) == []
    with pytest.raises(FileNotFoundError, match="SKDIFFAD_DATA"):
        load_timeseries("SMAP_MSL", "SMAP_A-1", data_dir=tmp_path)
    with pytest.raises(ValueError, match="collection"):
        list_timeseries("UCR", tmp_path)  # the collection is "UCR_KDD21"
    with pytest.raises(ValueError, match="collection"):
        load_timeseries("nab", "x", data_dir=tmp_path)


@pytest.fixture(scope="module")
def timeseries_dir(shared_data):
    if not list_timeseries("SKAB", shared_data):
        pytest.skip(f"time-series data not found under {shared_data}")
    return shared_data


@pytest.mark.parametrize("collection, n_series, n_channels",
                         [("NAB", 52, {1}), ("SKAB", 34, {8}), ("SMAP_MSL", 81, {25, 55}),
                          ("SMD", 11, {38}), ("UCR_KDD21", 101, {1}), ("MGAB", 10, {1})])
def test_real_timeseries_collections(timeseries_dir, collection, n_series, n_channels):
    names = list_timeseries(collection, timeseries_dir)
    assert len(names) == n_series and len(set(names)) == n_series
    for name in (names[0], names[-1]):
        series = load_timeseries(collection, name, data_dir=timeseries_dir)
        X_train, X_test, y_test = series["X_train"], series["X_test"], series["y_test"]
        assert X_train.dtype == np.float64 and X_test.dtype == np.float64
        assert X_train.shape[1] == X_test.shape[1] and X_train.shape[1] in n_channels
        assert len(y_test) == len(X_test) and set(np.unique(y_test)) == {0, 1}
        assert np.isfinite(X_train).all() and np.isfinite(X_test).all()


def test_real_timeseries_protocols(timeseries_dir):
    names = list_timeseries("NAB", timeseries_dir)
    assert not any(name.startswith("artificialNoAnomaly/") for name in names)
    taxi = load_timeseries("NAB", "realKnownCause/nyc_taxi", data_dir=timeseries_dir)
    n = len(taxi["X_train"]) + len(taxi["X_test"])
    assert len(taxi["X_train"]) == int(0.15 * n)
    assert taxi["timestamps_test"].dtype.kind == "M"

    skab = load_timeseries("SKAB", "valve1/0", data_dir=timeseries_dir)
    assert skab["X_train"].shape == (400, 8) and skab["y_train"].sum() == 0
    assert "anomaly-free/anomaly-free" not in list_timeseries("SKAB", timeseries_dir)

    smap = load_timeseries("SMAP_MSL", "SMAP_A-1", data_dir=timeseries_dir)
    assert smap["X_train"].shape[1] == 25 and smap["timestamps_test"] is None
