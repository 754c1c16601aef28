"""Tests of the demo's image part (benchmarks/demo.py): its digit sets and one quick run.

The run keeps two detectors (the diffusion default, which gives maps, and KNN,
which does not), so both metric paths of :mod:`benchmarks.image` are exercised in
a few seconds.
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

try:
    from benchmarks import demo
except ModuleNotFoundError:  # pytest's importlib mode leaves the repository root off sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks import demo

pytestmark = pytest.mark.benchmark


def test_plant_defect_changes_only_its_masked_region():
    rng = np.random.default_rng(0)
    image = np.zeros((8, 8))
    image[2:6, 3:5] = 16.0  # a stroke
    for _ in range(50):
        defective, mask = demo.plant_defect(image, rng)
        assert mask.any() and 2 <= mask.sum() <= 4
        assert np.array_equal(defective != image, mask)
        assert set(np.unique(defective[mask])) <= {0.0, 16.0}


def test_digit_units_have_ten_percent_anomalies_and_masks_on_defects_only():
    units = demo.digit_units()
    assert list(units) == [("sklearn_digits", "digits_0", 0), ("sklearn_digits", "digits_1", 0),
                           ("sklearn_digits_defects", "digits_defects", 0)]
    for (collection, _, _), loader in units.items():
        data = loader()
        assert data["X"].shape[1:] == (8, 8) and 0 <= data["X"].min() <= data["X"].max() <= 255
        assert data["y"].mean() == pytest.approx(0.1, abs=0.01)
        if collection == "sklearn_digits_defects":
            flagged = data["masks"].reshape(len(data["y"]), -1).any(axis=1)
            assert np.array_equal(flagged, data["y"] == 1)
    again = units[("sklearn_digits_defects", "digits_defects", 0)]()
    assert np.array_equal(demo.digit_units()[("sklearn_digits_defects", "digits_defects", 0)]()[
        "X"], again["X"])


def test_image_part_runs_and_diffusion_default_detects(tmp_path):
    runs = demo.image_demo(tmp_path, "cpu", "pytest", 1, detectors=["Diffusion-default", "KNN"])
    assert (runs["error"] == "").all()
    by = runs.set_index(["dataset", "detector"])
    # measured at seed 0: AUROC 0.999 on digits_0; pixel AUROC 0.931 on the defects
    assert by.loc[("digits_0", "Diffusion-default"), "auroc"] > 0.95
    assert by.loc[("digits_defects", "Diffusion-default"), "pixel_auroc"] > 0.85
    assert np.isnan(by.loc[("digits_defects", "KNN"), "pixel_auroc"])
    written = pd.read_csv(tmp_path / "demo_image_runs.csv")
    assert len(written) == len(runs) == 6
    summary = (tmp_path / "demo_image_summary.md").read_text()
    assert "## sklearn_digits_defects" in summary and "mean pixel AUROC" in summary


def test_unknown_part_is_refused():
    with pytest.raises(SystemExit, match="unknown part"):
        demo.main(["--parts", "images"])
