"""Tests of the demo's image and video parts (benchmarks/demo.py): their data and one
quick run each.

The image run keeps two detectors (the diffusion default, which gives maps, and
KNN, which does not), so both metric paths of :mod:`benchmarks.image` are exercised
in a few seconds. The video part is small enough to run whole (four detectors,
about a second), through ``main(["--parts", "video"])``; its generator,
:func:`skdiffad.datasets.make_walkway`, is tested here too.
"""

import functools
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
from skdiffad.datasets import make_walkway

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


def test_make_walkway_shapes_labels_and_seeds():
    clips, labels = make_walkway(n_clips=5, n_frames=40, size=24, n_anomalous=3,
                                 random_state=3)
    assert clips.shape == (5, 40, 24, 24) and labels.shape == (5, 40)
    assert 0.0 <= clips.min() <= clips.max() <= 1.0
    assert set(np.unique(labels)) == {0, 1} and labels.any(axis=1).sum() == 3
    for clip_labels in labels[labels.any(axis=1)]:  # one stretch a clip
        assert np.count_nonzero(np.diff(np.r_[0, clip_labels, 0])) == 2
    again, same = make_walkway(n_clips=5, n_frames=40, size=24, n_anomalous=3, random_state=3)
    assert np.array_equal(again, clips) and np.array_equal(same, labels)
    # the normal content comes first: without anomalies the quiet clips are unchanged
    normal, none = make_walkway(n_clips=5, n_frames=40, size=24, random_state=3)
    quiet = ~labels.any(axis=1)
    assert none.sum() == 0 and np.array_equal(normal[quiet], clips[quiet])
    changed = np.abs(clips - normal).max(axis=(2, 3)) > 0.05
    assert not changed[quiet].any() and changed[~quiet].any(axis=1).all()
    # one scene for every seed (a fixed camera), another view for another scene: compare
    # the views, each pixel's median over the frames (0.004 and 0.043 measured)
    other, _ = make_walkway(n_clips=5, n_frames=40, size=24, random_state=4)
    elsewhere, _ = make_walkway(n_clips=5, n_frames=40, size=24, random_state=4, scene=1)
    view = functools.partial(np.median, axis=(0, 1))
    assert np.abs(view(other) - view(normal)).mean() < 0.015 < np.abs(
        view(elsewhere) - view(other)).mean()


def test_make_walkway_kinds():
    _, fast = make_walkway(n_clips=4, n_anomalous=4, anomaly_kinds="cyclist", random_state=0)
    _, large = make_walkway(n_clips=4, n_anomalous=4, anomaly_kinds=("cart",), random_state=0)
    # a cyclist crosses a 32-pixel frame in about 15 frames; a cart at walking speed stays longer
    assert fast.sum(axis=1).max() <= 20 < large.sum(axis=1).min()
    for params, match in [({"n_anomalous": 7}, "at most n_clips"),
                          ({"n_frames": 10}, "n_frames must be"),
                          ({"anomaly_kinds": ("cyclist", "skater")}, "anomaly_kinds"),
                          ({"size": 8}, "size must be")]:
        with pytest.raises(ValueError, match=match):
            make_walkway(**params)


def test_video_part_runs_through_main(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "set_threads", lambda n: None)  # leave this process's pools alone
    runs = demo.main(["--parts", "video", "--out", str(tmp_path), "--device", "cpu"])["video"]
    assert "video" in demo.PARTS
    assert list(runs["detector"]) == ["Diffusion-default", "Diffusion-framelevel",
                                      "Motion energy", "KNN"]
    assert (runs["error"] == "").all(), runs["error"].tolist()
    assert (runs["n_test_frames"] == 360).all() and (runs["n_train_clips"] == 6).all()
    metrics = runs[["auroc", "aupr", "auroc_cyclist", "auroc_cart"]].to_numpy(dtype=float)
    assert np.isfinite(metrics).all() and ((metrics >= 0) & (metrics <= 1)).all()
    by = runs.set_index("detector")
    # measured at seeds 0 / 1: motion catches the cyclists (default 0.989), single
    # frames the carts (frame level 1.000, KNN 0.997), not the other way round
    assert by.loc["Diffusion-default", "auroc_cyclist"] > 0.9
    assert by.loc["Diffusion-framelevel", "auroc_cart"] > 0.9
    assert by.loc["Diffusion-framelevel", "auroc_cyclist"] < by.loc["Diffusion-default",
                                                                    "auroc_cyclist"]
    written = pd.read_csv(tmp_path / "demo_video_runs.csv")
    assert list(written.columns) == demo.VIDEO_RUN_COLUMNS and len(written) == 4
    summary = (tmp_path / "demo_video_summary.md").read_text()
    assert "| detector | frame AUROC | frame AUPR |" in summary and "make_walkway" in summary


def test_unknown_part_is_refused():
    with pytest.raises(SystemExit, match="unknown part"):
        demo.main(["--parts", "images"])
