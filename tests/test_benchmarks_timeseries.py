"""End-to-end tests of the time-series benchmark harness on a tiny synthetic collection.

The data hook (``collection_series``) and the metrics (``score_metrics``) are
replaced, so these tests need neither the benchmark data nor ``skdiffad.metrics``;
the harness's own logic (CSV, resume, failures, summary, shards, speed) is what
they check. One test runs the real metrics when that module is importable, and
one reads the real SKAB files from the ``shared_data`` fixture (tests/conftest.py).
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

try:
    import benchmarks.timeseries as bt
except ModuleNotFoundError:  # pytest's importlib mode leaves the repository root off sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import benchmarks.timeseries as bt

from skdiffad.datasets import make_timeseries_anomalies

pytestmark = pytest.mark.benchmark

CHEAP = "TSOD-KNN,SpectralResidual"


def _toy_series(seed, n_channels):
    X, y = make_timeseries_anomalies(n_timestamps=500, n_channels=n_channels,
                                     n_anomalies=2, random_state=seed)
    clean, _ = make_timeseries_anomalies(n_timestamps=200, n_channels=n_channels,
                                         n_anomalies=0, random_state=seed)
    return {"X_train": clean, "X_test": X, "y_test": y, "y_train": np.zeros(200, int),
            "timestamps_test": None}


TOY = {"NAB": {"toy/a": (0, 1), "toy/b": (1, 1)},
       "SKAB": {"run/1": (2, 3), "run/2": (3, 3), "run/3": (4, 3)}}


def _stand_in_metrics(y, scores, window=None):
    """Cheap, deterministic numbers with the real metrics' names (``vus_pr_tsb``: the
    protocol window the harness passed, in thousands)."""
    return {"vus_pr": average_precision_score(y, scores), "vus_roc": roc_auc_score(y, scores),
            "aupr": average_precision_score(y, scores), "auroc": roc_auc_score(y, scores),
            "range_f1": 0.5, "top_hit": float(np.argmax(scores) in np.flatnonzero(y)),
            "vus_pr_tsb": np.nan if window is None else window / 1000}


class _Broken:
    def fit(self, X):
        raise RuntimeError("boom")


class _NaNScores:
    def fit(self, X):
        return self

    def decision_function(self, X):
        scores = np.zeros(len(X))
        scores[:2] = np.nan
        return scores


@pytest.fixture
def toy(monkeypatch):
    """Stand-ins for the data and the metrics; returns the data roots the harness asked for."""
    data_dirs = []

    def collection_series(collection, data_dir=None):
        data_dirs.append(data_dir)
        return {name: (lambda s=seed, c=channels: _toy_series(s, c))
                for name, (seed, channels) in TOY.get(collection, {}).items()}

    monkeypatch.setattr(bt, "collection_series", collection_series)
    monkeypatch.setattr(bt, "score_metrics", _stand_in_metrics)
    monkeypatch.setitem(bt.DETECTORS, "Broken", lambda seed, c, device: _Broken())
    monkeypatch.setitem(bt.DETECTORS, "NaNScores", lambda seed, c, device: _NaNScores())
    return data_dirs


def _main(out, *extra):
    return bt.main(["--collections", "NAB,SKAB", "--out", str(out), *extra])


def test_end_to_end_csv_summary_and_figure(toy, tmp_path):
    runs = _main(tmp_path, "--detectors", CHEAP + ",Broken,NaNScores")
    csv = pd.read_csv(tmp_path / "timeseries_runs.csv")
    assert list(csv.columns) == bt.RUN_COLUMNS
    assert len(csv) == len(runs) == 5 * 4
    assert set(csv["detector"]) == {"TSOD-KNN", "SpectralResidual", "Broken", "NaNScores"}
    skab = csv[csv["collection"] == "SKAB"]
    assert (skab["n_channels"] == 3).all() and (skab["n_train"] == 200).all()
    assert (skab["n_test"] == 500).all()

    ok = csv[csv["detector"].isin(["TSOD-KNN", "SpectralResidual"])]
    assert ok["error"].isna().all() and ok[list(bt.METRICS)].notna().all().all()
    assert (ok["fit_s"] >= 0).all() and (ok["score_s"] >= 0).all()
    broken = csv[csv["detector"] == "Broken"]
    assert broken["error"].str.startswith("RuntimeError: boom").all()
    assert broken["vus_pr"].isna().all()
    nan_rows = csv[csv["detector"] == "NaNScores"]
    assert nan_rows["error"].str.contains("2 non-finite scores").all()

    summary = pd.read_csv(tmp_path / "timeseries_summary.csv")
    for (collection, detector), group in ok.groupby(["collection", "detector"]):
        row = summary[(summary["collection"] == collection)
                      & (summary["detector"] == detector)].iloc[0]
        assert row["mean VUS-PR"] == pytest.approx(group["vus_pr"].mean())
        assert row["mean AUROC"] == pytest.approx(group["auroc"].mean())
        assert row["median fit s"] == pytest.approx(group["fit_s"].median())
        assert row["series ok"] == len(group) and row["failed"] == 0
    failed = summary[summary["detector"] == "Broken"]
    assert failed["failed"].tolist() == [2, 3] and failed["series ok"].tolist() == [0, 0]
    nab = summary[summary["collection"] == "NAB"]
    assert nab["mean VUS-PR"].dropna().is_monotonic_decreasing

    text = (tmp_path / "timeseries_summary.md").read_text()
    assert "## NAB" in text and "## SKAB" in text and "RuntimeError: boom" in text
    assert (tmp_path / "timeseries_examples.png").stat().st_size > 0
    assert sorted(p.name for p in (tmp_path / "timeseries_scores").iterdir()) == [
        "NAB.npz", "SKAB.npz"]
    with np.load(tmp_path / "timeseries_scores" / "SKAB.npz") as stored:
        assert str(stored["series"]) == "run/1"  # the collection's first series
        assert {"TSOD-KNN", "SpectralResidual"} <= set(stored.files)
        assert stored["TSOD-KNN"].shape == (500,)
        assert stored["TSOD-KNN"].min() == 0 and stored["TSOD-KNN"].max() == 1


def test_resume_skips_runs_already_done(toy, tmp_path, monkeypatch):
    _main(tmp_path, "--detectors", "TSOD-KNN")
    first = pd.read_csv(tmp_path / "timeseries_runs.csv")
    # Were TSOD-KNN run again, it would now fail.
    monkeypatch.setitem(bt.DETECTORS, "TSOD-KNN", lambda seed, c, device: _Broken())
    runs = _main(tmp_path, "--detectors", CHEAP, "--resume")
    second = pd.read_csv(tmp_path / "timeseries_runs.csv")
    assert len(second) == len(runs) == 2 * len(first)
    knn = second[second["detector"] == "TSOD-KNN"].reset_index(drop=True)
    pd.testing.assert_frame_equal(knn, first)
    assert second[second["detector"] == "SpectralResidual"]["error"].isna().all()

    _main(tmp_path, "--detectors", "TSOD-KNN")  # without --resume: started afresh
    assert (tmp_path / "timeseries_runs.csv.bak").exists()
    assert pd.read_csv(tmp_path / "timeseries_runs.csv")["error"].notna().all()


def test_shards_cover_every_series_once_and_merge(toy, tmp_path):
    _main(tmp_path / "s1", "--detectors", "SpectralResidual", "--shard", "1/2")
    _main(tmp_path / "s2", "--detectors", "SpectralResidual", "--shard", "2/2")
    parts = [pd.read_csv(tmp_path / s / "timeseries_runs.csv") for s in ("s1", "s2")]
    assert [len(p) for p in parts] == [3, 2]
    merged = bt.main(["--summarise", str(tmp_path / "s1"), str(tmp_path / "s2"),
                      "--out", str(tmp_path / "all")])
    assert len(merged) == 5 and not merged.duplicated(["collection", "series"]).any()
    assert (tmp_path / "all" / "timeseries_summary.md").exists()
    assert (tmp_path / "all" / "timeseries_examples.png").exists()
    with pytest.raises(SystemExit, match="more than one"):
        bt.main(["--summarise", str(tmp_path / "s1"), str(tmp_path / "s1"),
                 "--out", str(tmp_path / "dup")])


def test_max_series_picks_evenly():
    assert bt.pick_evenly(list("abcdefg"), 3) == ["a", "d", "g"]
    assert bt.pick_evenly(list("ab"), 5) == ["a", "b"]


def test_matrix_profile_not_applicable_on_constant_stretch(toy):
    series = _toy_series(0, 1)
    result = bt.evaluate(bt.DETECTORS["MatrixProfile"], series, seed=0)
    assert result["error"] == "" and np.isfinite(result["scores"]).all()
    flat = {**series, "X_test": series["X_test"].copy()}
    flat["X_test"][100:180] = 1.0
    result = bt.evaluate(bt.DETECTORS["MatrixProfile"], flat, seed=0)
    assert result["error"].startswith("not applicable: channel 0")
    runs = pd.DataFrame([{"collection": "NAB", "series": "toy", "seed": 0,
                          "detector": "MatrixProfile", "n_train": 1, "n_test": 1,
                          "n_channels": 1, **{m: np.nan for m in bt.METRICS},
                          "fit_s": 0.0, "score_s": np.nan, "error": result["error"]}])
    table = bt.collection_table(runs)
    assert table.loc["MatrixProfile", ["series ok", "failed", "n/a"]].tolist() == [0, 0, 1]


def test_speed_mode_reports_ratio_to_reference(toy, tmp_path):
    speed = bt.main(["--speed", "--speed-size", "600,3,200", "--detectors", "TSOD-KNN",
                     "--out", str(tmp_path)])
    assert list(speed["detector"]) == ["TSOD-IForest", "TSOD-KNN"]
    assert speed["score_ratio_to_TSOD-IForest"].iloc[0] == pytest.approx(1.0)
    assert (speed["rows_per_s"] > 0).all() and (speed["n_test"] == 600).all()
    assert (tmp_path / "speed.csv").exists() and "TSOD-KNN" in (tmp_path / "speed.md").read_text()


def test_real_metrics_on_a_toy_series():
    pytest.importorskip("skdiffad.metrics")
    result = bt.evaluate(bt.DETECTORS["TSOD-KNN"], _toy_series(0, 2), seed=0)
    assert result["error"] == ""
    for name in bt.METRICS:
        assert 0.0 <= result[name] <= 1.0


def test_data_dir_option_reaches_the_loaders(toy, tmp_path):
    _main(tmp_path / "out", "--detectors", "SpectralResidual", "--data-dir", str(tmp_path))
    assert toy and all(data_dir == tmp_path for data_dir in toy)


def test_real_collection_series(shared_data):
    loaders = bt.collection_series("SKAB", shared_data)
    if not loaders:
        pytest.skip(f"SKAB not found under {shared_data}")
    assert len(loaders) == 34
    series = loaders["valve1/0"]()
    assert series["X_train"].shape == (400, 8) and series["collection"] == "SKAB"


def test_tuning_and_evaluation_splits():
    assert bt.split_of("NAB", "realKnownCause/nyc_taxi") == bt.TUNING
    assert bt.split_of("SMAP_MSL", "MSL_C-1") == bt.TUNING
    assert bt.split_of("SMD", "machine-1-8") == bt.TUNING
    assert bt.split_of("SMD", "machine-2-3") == bt.split_of("SMD", "machine-3-10") == bt.EVALUATION
    assert bt.split_of("UCR_KDD21", "001_x") == bt.split_of("MGAB", "1") == bt.EVALUATION
    assert bt.group_label("SMD", "machine-1-2") == "SMD (tuning)"
    assert bt.group_label("SMD", "machine-3-2") == "SMD (evaluation)"
    assert bt.group_label("NAB", "x/y") == "NAB"
    assert bt.group_parts("SMD (evaluation)") == ("SMD", bt.EVALUATION)
    assert bt.group_parts("NAB") == ("NAB", bt.TUNING)
    assert bt.group_parts("MGAB") == ("MGAB", bt.EVALUATION)


def test_summary_splits_smd_and_heads_the_overview_by_split():
    rows = []
    for collection, series, value in [("SMD", "machine-1-2", 0.9), ("SMD", "machine-2-3", 0.2),
                                      ("MGAB", "1", 0.4), ("NAB", "a/b", 0.7)]:
        for detector, shift in (("A", 0.0), ("B", 0.1)):
            rows.append({"collection": collection, "series": series, "seed": 0,
                         "detector": detector, "n_train": 1, "n_test": 1, "n_channels": 1,
                         **{m: value + shift for m in bt.METRICS}, "fit_s": 0.0,
                         "score_s": 0.0, "error": ""})
    tables = bt.summary_tables(pd.DataFrame(rows))
    assert list(tables) == ["NAB", "SMD (tuning)", "SMD (evaluation)", "MGAB"]
    assert tables["SMD (evaluation)"].loc["A", "mean VUS-PR"] == pytest.approx(0.2)
    overview = bt.split_overview(tables)
    assert list(overview.columns) == ["tuning: NAB", "tuning: SMD", "evaluation: SMD",
                                      "evaluation: MGAB"]
    assert list(overview.index) == ["B", "A"]  # by the mean over the evaluation columns
    assert overview.loc["A", "evaluation: MGAB"] == pytest.approx(0.4)
    text = bt.summarise(pd.DataFrame(rows))
    assert "## Mean VUS-PR by collection and split" in text and "## SMD (evaluation)" in text


def _summary_row(collection, series, detector, value, error=""):
    return {"collection": collection, "series": series, "seed": 0, "detector": detector,
            "n_train": 1, "n_test": 1, "n_channels": 1,
            **{m: (np.nan if error else value) for m in bt.METRICS}, "fit_s": 0.0,
            "score_s": 0.0, "error": error}


def test_paired_overview_compares_every_detector_on_the_same_series():
    rows = [_summary_row("UCR_KDD21", s, d, v) for s, d, v in [
        ("1", "Diffusion-default", 0.9), ("2", "Diffusion-default", 0.1),
        ("3", "Diffusion-default", 0.5),
        ("1", "K", 0.6), ("2", "K", 0.2), ("3", "K", 0.4),
        ("1", "MP", 0.3)]]  # MP: not applicable to 2, not run on 3
    rows.append(_summary_row("UCR_KDD21", "2", "MP", 0, error=bt.NOT_APPLICABLE + ": long"))
    rows.append(_summary_row("UCR_KDD21", "3", "F", 0, error="ValueError: boom"))
    rows += [_summary_row("UCR_KDD21", s, "F", 0.8) for s in ("1", "2")]
    runs = pd.DataFrame(rows)
    overview = bt.paired_overview(runs)
    column = "evaluation: UCR_KDD21 (3)"
    assert list(overview.columns) == [column]
    assert overview.loc["Diffusion-default", column] == pytest.approx(0.5)
    assert overview.loc["K", column] == pytest.approx(0.4)
    # F failed on series 3 and MP scored only series 1: each is shown next to the
    # reference on the series it scored
    assert overview.loc["F", column] == pytest.approx(0.8)
    assert overview.loc["(Diffusion-default on the 2 series of F)", column] == pytest.approx(0.5)
    assert overview.loc["MP", column] == pytest.approx(0.3)
    assert overview.loc["(Diffusion-default on the 1 series of MP)", column] == pytest.approx(0.9)
    assert bt.collection_table(runs).loc["K", "mean VUS-PR"] == pytest.approx(0.4)
    text = bt.summarise(runs)
    assert "## Paired mean VUS-PR" in text and "## Paired top-score hit rate" in text


def test_paired_differences_average_seeds_then_bootstrap_over_series():
    ref = bt.PAIRED_REFERENCE
    rows = [_summary_row("NAB", s, ref, v) for s, v in zip("abcd", (0.9, 0.8, 0.7, 0.6))]
    # "Up" trails by 0.1 on every series; "Mixed" by +-0.2 in turn: level
    rows += [_summary_row("NAB", s, "Up", v - 0.1) for s, v in zip("abcd", (0.9, 0.8, 0.7, 0.6))]
    rows += [_summary_row("NAB", s, "Mixed", v + d)
             for s, v, d in zip("abcd", (0.9, 0.8, 0.7, 0.6), (0.2, -0.2, 0.2, -0.2))]
    # a stochastic detector: two seeds per series, averaged per series first
    for seed, shift in ((0, 0.3), (1, -0.1)):
        rows += [{**_summary_row("NAB", s, "Seeds", v + shift), "seed": seed}
                 for s, v in zip("abcd", (0.9, 0.8, 0.7, 0.6))]
    # "Part" scored only two series (one failed): compared on those two only
    rows += [_summary_row("NAB", "a", "Part", 0.5), _summary_row("NAB", "b", "Part", 0.4),
             _summary_row("NAB", "c", "Part", 0, error="ValueError: boom")]
    diffs = bt.paired_differences(pd.DataFrame(rows)).set_index("detector")
    assert diffs.loc["Up", "difference"] == pytest.approx(0.1)
    assert diffs.loc["Up", ["low", "high"]].tolist() == pytest.approx([0.1, 0.1])
    assert diffs.loc["Up", "verdict"] == "above"
    assert diffs.loc["Mixed", "difference"] == pytest.approx(0.0)
    assert diffs.loc["Mixed", "low"] < 0 < diffs.loc["Mixed", "high"]
    assert diffs.loc["Mixed", "verdict"] == "level"
    assert diffs.loc["Seeds", "difference"] == pytest.approx(-0.1)  # mean shift +0.1
    assert diffs.loc["Seeds", "verdict"] == "below"
    assert diffs.loc["Part", "series"] == 2
    assert diffs.loc["Part", "reference"] == pytest.approx(0.85)
    assert diffs.loc["Part", "difference"] == pytest.approx(0.4)
    # two series are too few for an interval: no verdict rather than a sure "above"
    assert np.isnan(diffs.loc["Part", "low"]) and np.isnan(diffs.loc["Part", "high"])
    assert diffs.loc["Part", "verdict"] == "too few series"
    # rows run from the reference's largest shortfall to its largest lead
    assert list(diffs.index) == ["Seeds", "Mixed", "Up", "Part"]
    # seeded per comparison: the same runs, or more detectors, give the same interval
    again = bt.paired_differences(pd.DataFrame(rows)).set_index("detector")
    assert again.loc["Mixed", "low"] == diffs.loc["Mixed", "low"]
    more = rows + [_summary_row("NAB", s, "Extra", 0.5) for s in "abcd"]
    wider = bt.paired_differences(pd.DataFrame(more)).set_index("detector")
    bounds = ["low", "high"]
    assert wider.loc["Mixed", bounds].tolist() == diffs.loc["Mixed", bounds].tolist()
    text = bt.summarise(pd.DataFrame(rows))
    assert f"## Paired differences from {ref}" in text
    assert "| NAB | Up | 4 | 0.750 | 0.650 | +0.100 | [+0.100, +0.100] | above |" in text
    assert "| NAB | Part | 2 | 0.850 | 0.450 | +0.400 | – | too few series |" in text
    with pytest.raises(ValueError, match="level"):
        bt.paired_differences(pd.DataFrame(rows), level=1.0)
    with pytest.raises(ValueError, match="n_bootstrap"):
        bt.paired_differences(pd.DataFrame(rows), n_bootstrap=0)
    assert bt.paired_differences(pd.DataFrame(rows), reference="absent").empty


# ---------------------------------------------------------------- generated collections
def test_generated_collections_need_no_data_and_are_evaluation_only(tmp_path):
    from benchmarks import demo, synthetic_series

    machines = bt.collection_series("GENERATED", tmp_path)  # an empty data folder
    assert len(machines) == 12
    assert all(bt.split_of("GENERATED", name) == bt.EVALUATION for name in machines)
    # make demo's three machines are the seed 0-2 ones, value for value
    for (_, name), series in demo.synthetic_series().items():
        channels = name.split("_")[1][:-2]
        ours = machines[f"machine_{channels}ch_seed{'138'.index(channels)}"]()
        for key in ("X_train", "X_test", "y_test"):
            np.testing.assert_array_equal(ours[key], series[key])
    beats = bt.collection_series("ECG_LIKE", tmp_path)
    assert list(beats) == [f"period_{p}" for p in synthetic_series.ECG_PERIODS]
    with pytest.raises(ValueError, match="unknown generated collection"):
        synthetic_series.synthetic_collection("ECG")


def test_holdout_collections_are_other_series_of_the_same_kinds(tmp_path):
    from benchmarks import synthetic_series

    held = bt.collection_series("GENERATED_HOLDOUT", tmp_path)
    seen = bt.collection_series("GENERATED", tmp_path)
    assert len(held) == 12 and not set(held) & set(seen)
    assert all(bt.split_of("GENERATED_HOLDOUT", name) == bt.EVALUATION for name in held)
    one = held["machine_3ch_seed41"]()
    assert one["X_train"].shape == (3000, 3) and one["X_test"].shape == (5000, 3)
    assert not np.array_equal(one["X_test"], seen["machine_3ch_seed1"]()["X_test"])
    beats = bt.collection_series("ECG_LIKE_HOLDOUT", tmp_path)
    assert list(beats) == [f"period_{p}" for p in synthetic_series.HOLDOUT_PERIODS]
    assert not set(synthetic_series.HOLDOUT_PERIODS) & set(synthetic_series.ECG_PERIODS)
    series = beats["period_140"]()
    assert series["X_test"].shape == (synthetic_series.ECG_STEPS, 1)
    assert 0 < series["y_test"].mean() < 0.2


def test_server_like_series_have_normal_bursts_and_six_labelled_faults(tmp_path):
    from benchmarks import synthetic_series as ss

    servers = bt.collection_series("SERVER_LIKE", tmp_path)
    assert list(servers) == [f"server_{k}" for k in ss.SERVER_SEEDS]
    assert all(bt.split_of("SERVER_LIKE", name) == bt.EVALUATION for name in servers)
    one = servers["server_3"]()
    X, y = one["X_test"], one["y_test"]
    assert one["X_train"].shape == (ss.SERVER_TRAIN, len(ss.SERVER_CHANNELS))
    assert X.shape == (ss.SERVER_TEST, len(ss.SERVER_CHANNELS)) and np.isfinite(X).all()
    edges = np.flatnonzero(np.diff(np.r_[0, y, 0]))
    starts, ends = edges[::2], edges[1::2]
    assert len(starts) == ss.SERVER_ANOMALIES and (ends - starts >= 40).all()
    assert starts.min() >= 100 and ends.max() <= ss.SERVER_TEST - 100
    # the load's bursts are normal: the training stretch has them (disk I/O follows them)
    disk = one["X_train"][:, ss.SERVER_CHANNELS.index("disk_io")]
    assert disk.max() > 10 * np.median(disk)
    # every fault kind once; the frozen network counter holds one value over exactly
    # one fault, and never in training
    assert ss.SERVER_ANOMALIES == len(ss.SERVER_FAULTS)
    out = X[:, ss.SERVER_CHANNELS.index("net_out")]
    assert sum(np.ptp(out[s:e]) == 0 for s, e in zip(starts, ends)) == 1
    assert (np.diff(one["X_train"][:, ss.SERVER_CHANNELS.index("net_out")]) != 0).all()
    again = servers["server_3"]()
    np.testing.assert_array_equal(again["X_test"], X)


def _protocol(x, split=None):
    x = np.asarray(x, dtype=float)
    x = x[:, None] if x.ndim == 1 else x
    split = len(x) // 3 if split is None else split
    return bt.protocol_window({"X_train": x[:split], "X_test": x[split:]})


def test_protocol_window_is_the_first_channels_period_within_tsb_ads_bounds():
    t = np.arange(6000)
    noise = 0.1 * np.random.default_rng(0).normal(size=len(t))
    assert _protocol(np.sin(2 * np.pi * t / 50) + noise) == 50
    # the training and test parts are read as one series
    assert _protocol(np.sin(2 * np.pi * t / 50) + noise, split=5900) == 50
    assert _protocol(np.sin(2 * np.pi * t / 120) + noise) == 120
    # only the first channel counts
    two = np.column_stack([np.sin(2 * np.pi * t / 80), np.sin(2 * np.pi * t / 30)])
    assert _protocol(two) == 80 and _protocol(two[:, ::-1]) == 30
    fallback = bt.PROTOCOL_FALLBACK
    assert _protocol(np.sin(2 * np.pi * t / 350) + noise) == fallback  # above 303 steps
    assert _protocol(np.sin(2 * np.pi * t / 4)) == fallback  # below 6 steps
    assert _protocol(np.ones(6000)) == fallback  # no maximum
    assert _protocol(np.sin(2 * np.pi * t[:300] / 50)) == fallback  # fewer steps than lags
    # missing values are dropped (as TSB-AD drops rows with one), not read as numbers
    clean = np.sin(2 * np.pi * t / 50) + noise
    gappy = clean.copy()
    gappy[::97] = np.nan
    assert _protocol(gappy, split=2000) == _protocol(np.delete(clean, np.s_[::97]))
    assert _protocol(gappy) in (49, 50)
    # only the first 20 000 steps count: a period that starts later is not seen
    late = np.concatenate([np.sin(2 * np.pi * np.arange(20_000) / 40),
                           np.sin(2 * np.pi * np.arange(20_000) / 90)])
    assert _protocol(late) == 40


def test_protocol_window_matches_tsb_ads_own_rule():
    """Against ``find_length_rank`` of tsb-ad 1.5 where it runs (it needs statsmodels,
    which the test set-up does not install; 607 series matched when it was checked)."""
    slidingWindows = pytest.importorskip("TSB_AD.utils.slidingWindows",
                                         exc_type=ImportError)
    rng = np.random.default_rng(1)
    for k in range(40):
        n = int(rng.integers(500, 25_000))
        t = np.arange(n)
        x = (np.sin(2 * np.pi * t / rng.uniform(4, 450)) * (k % 2)
             + rng.uniform(0.1, 2) * rng.normal(size=n))
        assert _protocol(x) == slidingWindows.find_length_rank(x[:, None], rank=1)


def test_score_metrics_reads_vus_pr_at_the_protocol_window():
    from skdiffad import metrics

    y = np.zeros(2000, int)
    y[900:960] = 1
    scores = np.random.default_rng(0).random(2000) + np.convolve(y, np.ones(200), "same") / 50
    got = bt.score_metrics(y, scores, window=250)
    assert got["vus_pr_tsb"] == metrics.vus_pr(y, scores, window=250)
    assert got["vus_pr"] == metrics.vus_pr(y, scores, window=bt.VUS_WINDOW)
    assert got["vus_pr_tsb"] > got["vus_pr"]  # a wider buffer forgives the spread score
    assert np.isnan(bt.score_metrics(y, scores)["vus_pr_tsb"])
    assert set(got) == set(bt.METRICS)


def test_runs_made_before_the_protocol_window_resume_and_summarise(toy, tmp_path):
    _main(tmp_path, "--detectors", "TSOD-KNN")
    path = tmp_path / "timeseries_runs.csv"
    runs = pd.read_csv(path)
    assert runs["vus_pr_tsb"].notna().all()
    runs.drop(columns="vus_pr_tsb").to_csv(path, index=False)  # as written before
    merged = bt.main(["--summarise", str(tmp_path), "--out", str(tmp_path / "sum")])
    assert merged["vus_pr_tsb"].isna().all()
    text = (tmp_path / "sum" / "timeseries_summary.md").read_text()
    assert "Paired mean VUS-PR, TSB-AD's window" not in text
    _main(tmp_path, "--detectors", CHEAP, "--resume")
    again = pd.read_csv(path)
    assert list(again.columns) == bt.RUN_COLUMNS
    knn = again["detector"] == "TSOD-KNN"
    assert again.loc[knn, "vus_pr_tsb"].isna().all()
    assert again.loc[~knn, "vus_pr_tsb"].notna().all()
    assert "Paired mean VUS-PR, TSB-AD's window" in (
        tmp_path / "timeseries_summary.md").read_text()


def test_ecg_rhythm_keeps_wave_durations_and_labels_premature_beats(tmp_path):
    from benchmarks import synthetic_series as ss

    rhythms = bt.collection_series("ECG_RHYTHM", tmp_path)
    assert list(rhythms) == [f"ecg_{fs}hz_{bpm}bpm" for fs, bpm in ss.RHYTHMS]
    assert all(bt.split_of("ECG_RHYTHM", name) == bt.EVALUATION for name in rhythms)
    one = rhythms["ecg_250hz_72bpm"]()
    X, y = one["X_test"], one["y_test"]
    assert one["X_train"].shape == X.shape == (ss.RHYTHM_STEPS, 1)
    edges = np.flatnonzero(np.diff(np.r_[0, y, 0]))
    starts, ends = edges[::2], edges[1::2]
    # 12 abnormal beats, each labelled over 0.6 s (150 steps at 250 Hz), none touching
    assert len(starts) == ss.RHYTHM_ANOMALIES
    assert np.all(np.abs((ends - starts) - 150) <= 1)
    # normal R peaks: the rate varies (beat-to-beat intervals spread) around 72 a minute
    train = one["X_train"][:, 0]
    peaks = np.flatnonzero((train[1:-1] > 0.7) & (train[1:-1] >= train[:-2])
                           & (train[1:-1] >= train[2:])) + 1
    rr = np.diff(peaks) / 250.0
    assert abs(60 / rr.mean() - 72) < 4 and 0.02 < rr.std() / rr.mean() < 0.2
    # the QRS keeps its width whatever the rate: the R wave above half height lasts
    # about 2 * 1.18 * 10 ms (6 steps at 250 Hz) in every beat
    widths = [np.sum(train[p - 10:p + 10] > train[p] / 2) for p in peaks[1:-1]]
    assert max(widths) - min(widths) <= 2
    np.testing.assert_array_equal(rhythms["ecg_250hz_72bpm"]()["X_test"], X)
    held = bt.collection_series("ECG_RHYTHM_HOLDOUT", tmp_path)
    assert len(held) == 6 and not set(held) & set(rhythms)
    assert not set(ss.HOLDOUT_RHYTHMS) & set(ss.RHYTHMS)


def test_ecg_like_series_label_whole_abnormal_beats():
    from benchmarks.synthetic_series import ECG_ANOMALIES, ECG_STEPS, ecg_like

    series = ecg_like(200)
    assert series["X_train"].shape == series["X_test"].shape == (ECG_STEPS, 1)
    y = series["y_test"]
    edges = np.flatnonzero(np.diff(np.r_[0, y, 0]))
    lengths = edges[1::2] - edges[::2]
    # ten abnormal beats, each labelled over a beat (a wide beat is 70 % of one);
    # two may touch and read as one range
    assert ECG_ANOMALIES - 2 <= len(lengths) <= ECG_ANOMALIES
    assert lengths.min() >= int(0.7 * 0.95 * 200) and lengths.max() <= 2 * 1.05 * 200
    # the training part is all normal beats: one every 190-210 steps
    x = series["X_train"][:, 0]
    peaks = np.flatnonzero((x[1:-1] > 0.7) & (x[1:-1] >= x[:-2]) & (x[1:-1] >= x[2:]))
    gaps = np.diff(peaks)
    assert 180 <= np.median(gaps) <= 220
    np.testing.assert_array_equal(ecg_like(200)["X_test"], series["X_test"])  # seeded


def test_generated_collections_are_accepted_on_the_command_line(tmp_path):
    out = tmp_path / "out"
    runs = bt.main(["--collections", "ECG_LIKE", "--series", "period_120", "--detectors",
                    "SpectralResidual", "--out", str(out)])
    assert list(runs["collection"]) == ["ECG_LIKE"] and list(runs["series"]) == ["period_120"]
    assert runs["error"].fillna("").eq("").all() and (runs["vus_pr"] > 0).all()
    assert (out / "timeseries_runs.csv").exists()
    with pytest.raises(SystemExit, match="unknown collection"):
        bt.main(["--collections", "ECG", "--out", str(out)])


def test_training_units_min_max_each_channel_on_the_training_part():
    X_train = np.array([[0.0, 5.0, np.nan, 1.0],
                        [2.0, 5.0, np.nan, np.nan],
                        [4.0, 5.0, np.nan, 3.0]])
    X_test = np.array([[8.0, 6.0, 1.0, 2.0],
                       [np.nan, 4.0, 2.0, 5.0]])
    series = {"X_train": X_train, "X_test": X_test, "y_test": np.array([0, 1]), "extra": "kept"}
    out = bt.training_units(series)
    assert out["extra"] == "kept" and out["y_test"] is series["y_test"]
    # varying channels span [0, 1] in training; the test part may leave it
    np.testing.assert_allclose(out["X_train"][:, 0], [0.0, 0.5, 1.0])
    np.testing.assert_allclose(out["X_test"][:, 0], [2.0, np.nan])
    np.testing.assert_allclose(out["X_train"][:, 3], [0.0, np.nan, 1.0])
    np.testing.assert_allclose(out["X_test"][:, 3], [0.5, 2.0])
    # constant in training: only shifted; unobserved in training: left as it is
    np.testing.assert_allclose(out["X_train"][:, 1], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(out["X_test"][:, 1], [1.0, -1.0])
    assert np.isnan(out["X_train"][:, 2]).all()
    np.testing.assert_allclose(out["X_test"][:, 2], [1.0, 2.0])
    # the input is not modified
    assert X_train[2, 0] == 4.0 and X_test[0, 0] == 8.0
    # a univariate series given as 1-D comes back as one channel
    uni = bt.training_units({"X_train": np.array([1.0, 3.0]), "X_test": np.array([5.0])})
    np.testing.assert_allclose(uni["X_test"], [[2.0]])
    with pytest.raises(ValueError, match="X_train has 4 channels and X_test 2"):
        bt.training_units({"X_train": X_train, "X_test": X_test[:, :2]})


def test_training_units_leave_the_default_detectors_scores_unchanged():
    # the diffusion default scales each channel from its training data (robust
    # percentiles), so a per-channel affine change of units moves no score
    from skdiffad import DiffusionTSDetector

    series = _toy_series(5, 3)
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.01, 100, 3), rng.uniform(-50, 50, 3)
    given = {**series, "X_train": series["X_train"] * a + b, "X_test": series["X_test"] * a + b}
    moved = bt.training_units(given)
    scores = [DiffusionTSDetector(window_size=(16, 32), random_state=0, device="cpu")
              .fit(s["X_train"]).decision_function(s["X_test"]) for s in (given, moved)]
    np.testing.assert_allclose(scores[0], scores[1], rtol=1e-6, atol=1e-9)


class _RangeProbe:
    """Scores each test step by its largest channel value: shows the units it was given."""

    seen = []

    def fit(self, X):
        _RangeProbe.seen.append((float(np.nanmin(X)), float(np.nanmax(X))))
        return self

    def decision_function(self, X):
        return np.nanmax(np.asarray(X, float).reshape(len(X), -1), axis=1)


def test_units_option_feeds_every_detector_training_units(toy, tmp_path, monkeypatch):
    monkeypatch.setitem(bt.DETECTORS, "Probe", lambda seed, c, device: _RangeProbe())
    _RangeProbe.seen.clear()
    _main(tmp_path / "given", "--detectors", "Probe")
    given = list(_RangeProbe.seen)
    _RangeProbe.seen.clear()
    _main(tmp_path / "training", "--detectors", "Probe", "--units", "training")
    assert len(_RangeProbe.seen) == len(given) == 5
    assert all(lo == pytest.approx(0.0) and hi == pytest.approx(1.0)
               for lo, hi in _RangeProbe.seen)
    assert not all(lo == pytest.approx(0.0) and hi == pytest.approx(1.0) for lo, hi in given)
    assert "--units training" in (tmp_path / "training" / "timeseries_summary.md").read_text()
    assert "--units training" not in (tmp_path / "given" / "timeseries_summary.md").read_text()
    with pytest.raises(SystemExit):
        _main(tmp_path / "bad", "--units", "physical")


def test_units_are_recorded_and_runs_of_different_units_never_mix(toy, tmp_path):
    _main(tmp_path / "g1", "--detectors", "SpectralResidual", "--shard", "1/2")
    _main(tmp_path / "t1", "--detectors", "SpectralResidual", "--shard", "1/2",
          "--units", "training")
    _main(tmp_path / "t2", "--detectors", "SpectralResidual", "--shard", "2/2",
          "--units", "training")
    assert bt.units_of(tmp_path / "g1") == "given"
    assert bt.units_of(tmp_path / "t1") == bt.units_of(tmp_path / "t2") == "training"
    assert bt.units_of(tmp_path / "nowhere") == "given"  # runs from before the option

    with pytest.raises(SystemExit, match="different units"):
        bt.main(["--summarise", str(tmp_path / "g1"), str(tmp_path / "t2"),
                 "--out", str(tmp_path / "mixed")])
    merged = bt.main(["--summarise", str(tmp_path / "t1"), str(tmp_path / "t2"),
                      "--out", str(tmp_path / "both")])
    assert len(merged) == 5
    assert bt.units_of(tmp_path / "both") == "training"
    assert "--units training" in (tmp_path / "both" / "timeseries_summary.md").read_text()

    # resuming in other units than the runs already there is refused, before any run
    with pytest.raises(SystemExit, match="holds runs made with --units training"):
        _main(tmp_path / "t1", "--detectors", "SpectralResidual", "--shard", "1/2",
              "--resume")
    assert len(pd.read_csv(tmp_path / "t1" / "timeseries_runs.csv")) == 3  # 3 of 5 series
    resumed = _main(tmp_path / "t1", "--detectors", "SpectralResidual", "--shard", "1/2",
                    "--units", "training", "--resume")
    assert len(resumed) == 3

    (tmp_path / "g1" / bt.UNITS_FILE).write_text("metric\n")
    with pytest.raises(SystemExit, match="expected one of"):
        bt.units_of(tmp_path / "g1")
