"""The GPU check's CPU half (benchmarks/gpu.py): what runs where no GPU is lent."""

import numpy as np
import pytest
import torch

from benchmarks import gpu

pytestmark = pytest.mark.benchmark

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU half runs without CUDA")


@pytest.mark.slow
@pytest.mark.cluster  # the data-parallel row spawns two torch.distributed processes
@no_cuda
def test_cpu_half_checks_configurations_and_data_parallel_training(tmp_path, capsys):
    out = tmp_path / "gpu.md"
    code = gpu.main(["--quick", "--configs", "tab-density,ts-exact-reconstruction",
                     "--parts", "checks,ddp", "--out", str(out)])
    text = out.read_text()
    assert code == 0, text
    assert "no CUDA device visible: the CPU half only" in capsys.readouterr().out
    for name in ("tab-density", "ts-exact-reconstruction", "KNN (PyOD, CPU)",
                 "ddp-cpu-2-processes"):
        assert f"| {name} |" in text
    ddp = next(line for line in text.splitlines() if line.startswith("| ddp-cpu"))
    cells = [c.strip() for c in ddp.strip("|").split("|")]
    assert cells[1:3] == ["2", "True"] and cells[-1] == "True"  # world, ranks equal, ok
    assert "| video |" not in text


def _cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


@pytest.mark.slow
@no_cuda
def test_video_section_times_both_detectors_at_both_sizes_on_the_cpu_with_quick(tmp_path,
                                                                                 capsys):
    # an empty data root: synthetic clips made at 64x64 and at 158x238
    out = tmp_path / "gpu.md"
    code = gpu.main(["--quick", "--parts", "video", "--data-dir", str(tmp_path),
                     "--out", str(out)])
    text = out.read_text()
    assert code == 0, text
    assert "synthetic clips" in capsys.readouterr().out
    lines = text.splitlines()
    header = _cells(lines[0])
    assert header == gpu.VIDEO_COLUMNS
    rows = [dict(zip(header, _cells(line))) for line in lines[2:]]
    unet = f"unet-prediction-{gpu.QUICK_VIDEO_UNET['max_steps']}-steps"
    assert [(r["detector"], r["size"]) for r in rows] == [
        ("exact-default", "64x64"), (unet, "64x64"),
        ("exact-default", "158x238"), (unet, "158x238")]
    counts = gpu.QUICK_VIDEO_CLIPS
    for row in rows:
        assert row["video"] == "synthetic" and row["device"] == "cpu" and row["ok"] == "True"
        assert int(row["n_train_frames"]) == counts["train"] * counts["frames"]
        assert int(row["n_test_frames"]) == counts["test"] * counts["frames"]
        for column in ("fit_s", "score_s", "fit_frames_per_s", "frames_per_s"):
            assert float(row[column]) > 0
        assert 0 <= float(row["auroc"]) <= 1
        assert row["cuda_peak_gib"] == ""  # measured on CUDA only


def test_video_clips_come_from_ped1_when_its_file_is_there(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / gpu.VIDEO_FILE
    path.parent.mkdir(parents=True)

    def clip():
        return rng.integers(0, 256, size=(20, 64, 64), dtype=np.uint8)

    np.savez(path, train_01=clip(), train_02=clip(), train_03=clip(), test_01=clip(),
             test_02=clip(), label_test_01=np.r_[np.zeros(10), np.ones(10)].astype(np.uint8),
             label_test_02=np.zeros(20, dtype=np.uint8))
    sets = gpu._video_sets(tmp_path, quick=True)
    counts = gpu.QUICK_VIDEO_CLIPS
    assert [(s[0], s[1], s[5]) for s in sets] == [
        ("ucsd_ped1", (64, 64), {}), ("ucsd_ped1", (158, 238), {"image_size": (158, 238)})]
    for _, _, train, test, labels, _ in sets:
        assert len(train) == counts["train"] and len(test) == counts["test"]
        assert all(c.shape == (counts["frames"], 64, 64) and c.dtype == np.uint8
                   for c in train + test)
        assert labels.shape == (counts["test"] * counts["frames"],)
    full = gpu._video_sets(tmp_path, quick=False)[0]
    assert len(full[2]) == 3 and len(full[3]) == 2  # all there is, up to VIDEO_CLIPS
    np.testing.assert_array_equal(full[4], np.r_[np.zeros(10), np.ones(10), np.zeros(20)])


@pytest.mark.slow
def test_video_warm_up_fits_and_scores_each_configuration():
    # run on CUDA before each timed fit; here on the CPU, where it is not needed
    train, _ = gpu._moving_squares(2, 6, (64, 64), fast=False, seed=0)
    for _, params in gpu._video_detectors(quick=True):
        gpu._warm_up_video(params, train, "cpu")


@no_cuda
def test_video_section_needs_cuda_or_quick(capsys):
    assert gpu.main(["--parts", "video"]) == 0
    assert "video: skipped without CUDA" in capsys.readouterr().out


def test_unknown_configuration_is_rejected():
    with pytest.raises(SystemExit):
        gpu.main(["--configs", "tab-nothing"])


def test_unknown_part_is_rejected():
    with pytest.raises(SystemExit):
        gpu.main(["--parts", "video,nothing"])
