"""Smoke test of the video benchmark (benchmarks/video.py) on the real UCSD Ped1 file.

``--quick`` (2 training clips, 3 test clips) with the default diffusion detector,
motion energy and KNN; skipped when the data file is absent (the ``shared_data``
fixture of tests/conftest.py finds the data root).
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

try:
    import benchmarks.video as bv
except ModuleNotFoundError:  # pytest's importlib mode leaves the repository root off sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import benchmarks.video as bv

pytestmark = pytest.mark.benchmark

CHOSEN = ["Diffusion-default", "Motion energy", "KNN (PyOD)"]


def test_quick_run_on_ped1(shared_data, tmp_path):
    if not (shared_data / bv.DATA_FILE).exists():
        pytest.skip(f"UCSD Ped1 not found at {shared_data / bv.DATA_FILE}")
    runs = bv.main(["--quick", "--data-dir", str(shared_data), "--out", str(tmp_path),
                    "--device", "cpu", "--only", ",".join(CHOSEN)])

    csv = pd.read_csv(tmp_path / bv.CSV_NAME)
    assert list(csv.columns) == bv.RUN_COLUMNS
    assert sorted(csv["detector"]) == sorted(CHOSEN) == sorted(runs["detector"])
    assert csv["error"].isna().all(), csv["error"].tolist()
    assert (csv["n_train_clips"] == 2).all() and (csv["n_test_clips"] == 3).all()
    assert (csv["n_eval_clips"] == 2).all()  # quick: clip 1 (tune), clips 13 and 14 (eval)
    aurocs = csv[[f"auroc_{kind}_{split}" for kind in ("raw", "clipnorm")
                  for split in bv.SPLITS]].to_numpy()
    assert np.isfinite(aurocs).all() and ((aurocs >= 0) & (aurocs <= 1)).all()
    timing = csv[["fit_s", "score_s", "frames_per_s"]].to_numpy()
    assert np.isfinite(timing).all() and (timing >= 0).all()

    with np.load(tmp_path / bv.SCORES_DIR / "Motion_energy.npz") as scores:
        assert sorted(scores.files) == ["test_01", "test_13", "test_14"]
        assert scores["test_13"].shape == (200,)
    summary = (tmp_path / bv.SUMMARY_NAME).read_text()
    assert "| detector | eval AUROC raw |" in summary and "--quick smoke run" in summary
    assert (tmp_path / bv.FIGURE_NAME).stat().st_size > 0


def test_metrics_and_selection():
    labels = {"a": np.array([0, 0, 1, 1]), "b": np.array([0, 1, 1, 1])}
    scores = {"a": np.array([0.0, 1.0, 2.0, 3.0]), "b": np.array([10.0, 12.0, 13.0, 14.0])}
    result = bv.split_metrics(scores, labels, {"a": "tune", "b": "eval"})
    assert result["auroc_raw_tune"] == result["auroc_clipnorm_eval"] == 1.0
    # raw: b's normal frame (10) outscores a's anomalies; clip-norm puts both on [0, 1]
    assert result["auroc_raw_all"] == pytest.approx(1 - 2 / 15)
    assert result["auroc_clipnorm_all"] == pytest.approx(1.0)
    assert bv.clip_normalised(np.ones(3)).tolist() == [0.0, 0.0, 0.0]
    assert list(bv.select_detectors("knn,Diffusion-default")) == ["Diffusion-default",
                                                                   "KNN (PyOD)"]
    assert len(bv.select_detectors("unet")) == 3
    with pytest.raises(ValueError, match="unknown detector"):
        bv.select_detectors("nope")
