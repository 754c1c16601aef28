"""Tests of the fusion benchmark (benchmarks/fusion.py) on synthetic data.

The view builder, the corruptions and PyOD's combiners are checked against what they
promise; the command line runs end to end on fake collections with PyOD's KNN as the
member, so neither the real data nor the diffusion members are needed.
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

try:
    import benchmarks.fusion as bf
except ModuleNotFoundError:  # pytest's importlib mode leaves the repository root off sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import benchmarks.fusion as bf

pytestmark = pytest.mark.benchmark


def test_gradient_histograms_put_an_edge_in_its_orientation_bin():
    image = np.zeros((1, 16, 16))
    image[0, :, 8:] = 1.0  # a vertical edge: the gradient points along x (orientation 0)
    features = bf.gradient_histograms(image, cells=4, bins=8)
    assert features.shape == (1, 128)
    np.testing.assert_allclose(features.sum(axis=1), 1.0)
    cells = features.reshape(4, 4, 8)
    assert cells[..., 0].sum() == pytest.approx(1.0)        # every bit of mass in bin 0
    assert cells[:, [1, 2], 0].sum() == pytest.approx(1.0)  # in the cells along the edge
    blank = bf.gradient_histograms(np.zeros((2, 8, 8)))
    assert np.all(blank == 0)  # no gradient, no mass, no NaN


@pytest.mark.parametrize("kind", ["noise", "flatline", "missing"])
def test_corrupt_touches_only_the_chosen_columns_on_one_stretch(kind):
    rng = np.random.default_rng(0)
    X_train = rng.normal(size=(100, 4))
    X = rng.normal(size=(50, 4))
    out, rows = bf.corrupt(X, [1, 3], kind, np.random.default_rng(1), X_train, series=True)
    assert rows.sum() == 15 and np.all(np.diff(np.flatnonzero(rows)) == 1)  # contiguous
    np.testing.assert_array_equal(out[:, [0, 2]], X[:, [0, 2]])
    np.testing.assert_array_equal(out[~rows], X[~rows])
    changed = out[rows][:, [1, 3]]
    if kind == "missing":
        assert np.isnan(changed).all()
    elif kind == "flatline":
        np.testing.assert_array_equal(changed, np.broadcast_to(changed[0], changed.shape))
        np.testing.assert_array_equal(changed[0], X[np.flatnonzero(rows)[0]][[1, 3]])
    else:
        step = changed - X[rows][:, [1, 3]]
        assert 2.0 < step.std() < 4.5  # NOISE_SCALE training standard deviations
    spread, rows = bf.corrupt(X, [0], "flatline", np.random.default_rng(1), X_train,
                              series=False)
    assert np.diff(np.flatnonzero(rows)).max() > 1  # images: random rows
    np.testing.assert_allclose(spread[rows, 0], np.median(X_train[:, 0]))
    with pytest.raises(ValueError, match="unknown corruption"):
        bf.corrupt(X, [0], "static", np.random.default_rng(1), X_train)


def test_pyod_combinations_are_the_combiners_of_standardised_scores():
    pytest.importorskip("combo")
    rng = np.random.default_rng(0)
    singles = [{"train": rng.normal(2, 3, 200), "test": rng.normal(2, 3, 50)},
               {"train": rng.normal(-1, 0.5, 200), "test": rng.normal(-1, 0.5, 50)}]
    combined = bf.pyod_combinations(singles)
    z = np.column_stack([(s["test"] - s["train"].mean()) / s["train"].std() for s in singles])
    np.testing.assert_allclose(combined["pyod-average"], z.mean(axis=1))
    np.testing.assert_allclose(combined["pyod-maximization"], z.max(axis=1))
    np.testing.assert_allclose(combined["pyod-median"], np.median(z, axis=1))
    assert set(combined) == {f"pyod-{c}" for c in bf.PYOD_COMBINERS}


def _fake_unit(seed, n_train=300, n_test=120):
    rng = np.random.default_rng(seed)
    X_train = rng.normal(size=(n_train, 5))
    X_test = rng.normal(size=(n_test, 5))
    y = np.zeros(n_test, dtype=int)
    X_test[:10, :2] += 4   # anomalies in modality a
    X_test[10:20, 2:] += 4  # and in modality b
    y[:20] = 1
    return {"X_train": X_train, "X_test": X_test, "y_test": y,
            "groups": {"a": [0, 1], "b": slice(2, None)}, "kind": "table"}


@pytest.fixture
def fake_collections(monkeypatch):
    from pyod.models.knn import KNN

    pytest.importorskip("combo")
    units = {"SKAB": {"s1": lambda seed: _fake_unit(1 + seed), "s2": lambda seed: _fake_unit(3)},
             "mnist": {"m1": lambda seed: _fake_unit(5)}}
    monkeypatch.setattr(bf, "collection_units", lambda c, data_dir, max_units=None: units[c])
    monkeypatch.setattr(bf, "member", lambda kind, seed, device: KNN())


@pytest.mark.slow
def test_command_line_runs_every_arm_and_condition_and_resumes(fake_collections, tmp_path,
                                                                capsys):
    out = tmp_path / "out"
    argv = ["--collections", "SKAB,mnist", "--out", str(out), "--data-dir", str(tmp_path)]
    text = bf.main(argv)
    runs = pd.read_csv(out / bf.CSV_NAME)
    arms = 2 + 1 + len(bf.FUSION_ARMS) + 1 + len(bf.PYOD_COMBINERS)
    assert len(runs) == 3 * len(bf.CONDITIONS) * arms
    clean = runs[runs["condition"] == "clean"]
    assert clean["error"].isna().all(), clean["error"].dropna().tolist()
    by_arm = clean.groupby("arm")["metric"].mean()
    assert by_arm["late"] > max(by_arm["single:a"], by_arm["single:b"]) + 0.1
    np.testing.assert_allclose(by_arm["early"], by_arm["concat"])  # the same KNN on all columns
    assert set(runs.loc[runs["collection"] == "SKAB", "split"]) == {"tuning"}
    assert set(runs.loc[runs["collection"] == "mnist", "split"]) == {"evaluation"}
    # units rotate the corrupted modality; KNN cannot take the missing rows
    corrupted = runs[runs["condition"] != "clean"].groupby("unit")["corrupted"].first()
    assert corrupted.to_dict() == {"s1": "a", "s2": "b", "m1": "a"}
    missing = runs[runs["condition"] == "missing"].set_index(["unit", "arm"])["error"]
    assert missing[("s1", "concat")].startswith("ValueError")
    assert pd.isna(missing[("s1", "late")])  # fusion leaves the missing modality out
    for heading in ("best single", "| SKAB (2) |", "Mean drop of the metric", "Median seconds"):
        assert heading in text
    assert (out / bf.SUMMARY_NAME).read_text() == text
    assert (out / bf.FIGURE_NAME).stat().st_size > 10_000

    capsys.readouterr()
    bf.main(argv + ["--resume"])
    assert len(pd.read_csv(out / bf.CSV_NAME)) == len(runs)
    assert "seed 0:" not in capsys.readouterr().out
    again = bf.main(["--summarise", str(out), "--out", str(tmp_path / "summary")])
    assert again.split("- Command")[0] == text.split("- Command")[0]


def test_command_line_rejects_an_unknown_collection(tmp_path):
    with pytest.raises(SystemExit):
        bf.main(["--collections", "KDD99", "--out", str(tmp_path)])
