"""Tests of the image benchmark harness (benchmarks/image.py) on tiny fake image sets.

The fake sets are written in ``tmp_path`` in the files' own formats (one-class
``.npz`` files, magnetic-tile jpg/png with a ``labels.csv``), so the real loaders
read them; the harness's logic (registry, CSV, resume, failures, summary, shards,
figure) is what these tests check, with the cheap detectors. One smoke test reads
a real MNIST class from the ``shared_data`` fixture (tests/conftest.py).
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

try:
    import benchmarks.image as bi
except ModuleNotFoundError:  # pytest's importlib mode leaves the repository root off sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import benchmarks.image as bi

from skdiffad import DiffusionImageDetector
from skdiffad.metrics import auroc

pytestmark = pytest.mark.benchmark

Image = pytest.importorskip("PIL.Image")

CHEAP = "Diffusion-default,KNN,PatchNN"
TILE_CLASSES = {"MT_Free": 16, "MT_Crack": 4, "MT_Blowhole": 4}


class _Broken:
    def fit(self, X):
        raise RuntimeError("boom")


def _digit_like(rng, n, side=28):
    """Blurry blobs around the centre, grey levels 0-255."""
    yy, xx = np.mgrid[:side, :side]
    centre = side / 2 + rng.normal(0, 1, size=(n, 2))
    blob = np.exp(-((yy - centre[:, :1, None]) ** 2 + (xx - centre[:, 1:, None]) ** 2) / 30)
    return np.clip(255 * blob + rng.normal(0, 10, size=(n, side, side)), 0, 255)


def _write_one_class(folder, name, seed, n_normal=60, n_anomalies=12):
    rng = np.random.default_rng(seed)
    X = _digit_like(rng, n_normal + n_anomalies)
    X[n_normal:, 3:9, 3:9] = 255  # anomalies: a bright corner square
    y = np.r_[np.zeros(n_normal), np.ones(n_anomalies)].astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / f"{name}.npz", x=X.astype(np.uint8).reshape(len(X), -1), y=y[:, None])


def _write_tiles(folder, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for cls, count in TILE_CLASSES.items():
        (folder / cls / "Imgs").mkdir(parents=True, exist_ok=True)
        for i in range(count):
            height, width = (40, 56) if i % 2 else (48, 44)  # sizes vary, as in the real set
            image = np.clip(rng.normal(120, 12, size=(height, width)), 0, 255)
            mask = np.zeros((height, width), np.uint8)
            if cls != "MT_Free":
                top, left = rng.integers(4, 24, size=2)
                mask[top:top + 10, left:left + 10] = 255
                image[mask > 0] = 250 if cls == "MT_Blowhole" else 10
            stem = f"{cls}/Imgs/exp_{i}"
            Image.fromarray(image.astype(np.uint8)).save(folder / f"{stem}.jpg", quality=95)
            Image.fromarray(mask).save(folder / f"{stem}.png")
            rows.append({"image": f"{stem}.jpg", "mask": f"{stem}.png", "class": cls,
                         "label": int(cls != "MT_Free")})
    pd.DataFrame(rows).to_csv(folder / "labels.csv", index=False)


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory):
    """A data root with mnist0, mnist1, fashion0 and a 24-image magnetic-tile set."""
    root = tmp_path_factory.mktemp("data")
    images = root / "images"
    _write_one_class(images / "mnist", "mnist0", 0)
    _write_one_class(images / "mnist", "mnist1", 1)
    _write_one_class(images / "fashion_mnist", "fashion0", 2)
    _write_tiles(images / "magnetic_tile")
    return root


def _main(data, out, *extra):
    return bi.main(["--quick", "--data-dir", str(data), "--out", str(out), *extra])


# ------------------------------------------------------------------ registry
def test_registry_builds_every_detector():
    assert [n for n in bi.DETECTORS if n.startswith("Diffusion")] == [
        "Diffusion-default", "Diffusion-ivf", "Diffusion-position-free-centred",
        "Diffusion-position-free", "Diffusion-exact-p8", "Diffusion-exact-p8-raw",
        "Diffusion-unet",
        "Diffusion-unet-full", "Diffusion-unet-simplex", "Diffusion-unet-ddad",
        "Diffusion-unet-feature", "Diffusion-unet-discriminative",
        "Diffusion-unet-discriminative-generated", "Diffusion-unet-small-discriminative",
        "Diffusion-unet-small-discriminative-generated", "Diffusion-unet-density"]
    assert {"ConvAE", "PatchNN", "KNN", "IForest", "PCA", "LOF", "AutoEncoder",
            "DeepSVDD"} <= set(bi.DETECTORS)
    built = {name: make(3, (28, 28), "cpu") for name, make in bi.DETECTORS.items()}
    default = built["Diffusion-default"]
    expected = {**DiffusionImageDetector().get_params(), "random_state": 3, "device": "cpu"}
    assert default.get_params() == expected  # as a user gets it
    assert bi.SMOOTHING == default.smoothing  # the baselines' maps are smoothed alike
    assert built["Diffusion-ivf"].get_params() == {**expected, "search": "ivf"}
    assert built["Diffusion-exact-p8"].patch_size == 8
    # issue #29's variants: the default's parameters, the search and the maps of before
    X = np.random.default_rng(0).random((8, 12, 12))
    for name, per_site, reduced in (("Diffusion-default", True, {"scale"}),
                                    ("Diffusion-position-free-centred", False, {"mean", "scale"}),
                                    ("Diffusion-position-free", False, {"scale"})):
        assert built[name].get_params() == expected
        fitted = built[name].fit(X)
        assert fitted.model_.per_site == per_site and set(fitted.reduction_) == reduced
    assert not built["Diffusion-exact-p8-raw"].pixel_normalisation
    params = {name: built[f"Diffusion-unet-{name}"].get_params() for name in (
        "full", "simplex", "ddad", "feature", "discriminative", "density")}
    assert params["full"]["n_inference_steps"] == 1000
    assert params["simplex"]["noise"] == "simplex" and params["ddad"]["guidance"] > 0
    assert {name: p["scoring"] for name, p in params.items()} == {
        "full": "reconstruction", "simplex": "reconstruction", "ddad": "reconstruction",
        "feature": "feature", "discriminative": "discriminative", "density": "density"}
    pair = {name: built[f"Diffusion-unet-{name}"].get_params() for name in (
        "discriminative-generated", "small-discriminative", "small-discriminative-generated")}
    assert {name: (p["scoring"], p["head_defects"], p["widths"]) for name, p in pair.items()} == {
        "discriminative-generated": ("discriminative", "generated", (32, 64)),
        "small-discriminative": ("discriminative", "synthetic", (16, 32)),
        "small-discriminative-generated": ("discriminative", "generated", (16, 32))}
    for name in ("KNN", "IForest", "PCA", "LOF", "AutoEncoder", "DeepSVDD"):
        assert isinstance(built[name], bi.Flattened) and not hasattr(built[name], "anomaly_map")
    assert built["DeepSVDD"].detector.n_features == 28 * 28
    assert built["AutoEncoder"].detector.epoch_num == bi.AUTOENCODER_EPOCHS
    assert built["IForest"].detector.random_state == 3
    for name in ("ConvAE", "PatchNN"):
        assert hasattr(built[name], "anomaly_map") and built[name].random_state == 3
    assert list(bi.select_detectors("patchnn,KNN")) == ["PatchNN", "KNN"]
    with pytest.raises(ValueError, match="unknown detector"):
        bi.select_detectors("nope")


def test_budget_cut_reaches_nested_and_own_parameters():
    cut = {name: bi.with_budget(make, 7, 2)(0, (16, 16), "cpu")
           for name, make in bi.select_detectors("Diffusion-unet,ConvAE,AutoEncoder,"
                                                 "DeepSVDD,KNN").items()}
    assert cut["Diffusion-unet"].max_steps == 7 and cut["ConvAE"].max_steps == 7
    assert cut["AutoEncoder"].detector.epoch_num == 2 and cut["DeepSVDD"].detector.epochs == 2
    assert cut["KNN"].get_params()["detector__n_neighbors"] == 5  # nothing to cut


def test_default_grid_and_shards_partition_the_units():
    mnist = [f"mnist{k}" for k in range(10)]
    grid = bi.default_grid("mnist", mnist)
    assert len(grid) == 16 and grid[:10] == [(n, 0) for n in mnist]
    assert sorted(grid[10:]) == [(n, s) for n in mnist[:3] for s in (1, 2)]
    assert bi.default_grid("magnetic_tile", ["magnetic_tile"]) == [
        ("magnetic_tile", s) for s in (0, 1, 2)]
    units = [("mnist", n, s) for n, s in grid]
    shards = [bi.take_shard(units, (i, 3)) for i in (1, 2, 3)]
    assert sorted(sum(shards, [])) == sorted(units) and sum(map(len, shards)) == len(units)
    assert bi.parse_size("96") == (96, 96) and bi.parse_size("64x32") == (64, 32)
    with pytest.raises(ValueError, match="tile-size"):
        bi.parse_size("big")


def test_prepare_caps_and_aligns_masks():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(400, 8, 8)).astype(np.uint8)
    y = (np.arange(400) % 5 == 0).astype(int)  # 80 anomalies, 320 normal
    masks = rng.random((400, 8, 8)) < 0.1
    data = {"X": X, "y": y, "masks": masks, "class": np.where(y, "bad", "good")}
    run = bi.prepare(data, seed=0, name="toy", max_train=100, max_test=150)
    assert run["X_train"].shape == (100, 8, 8) and run["train_subsampled"]
    assert len(run["y_test"]) == 150 and run["test_subsampled"]
    assert run["y_test"].mean() == pytest.approx(80 / 300, abs=0.01)  # stratified
    np.testing.assert_array_equal(run["masks_test"], masks[run["test_index"]])
    np.testing.assert_array_equal(run["X_test"], X[run["test_index"]] / np.float32(255))
    assert run["X_train"].dtype == np.float32 and run["X_train"].max() <= 1
    for cap in (2000, 0):  # 0: no cap
        full = bi.prepare(data, seed=0, max_train=cap, max_test=0)
        assert len(full["X_train"]) == 160 and len(full["y_test"]) == 240
        assert not full["train_subsampled"] and not full["test_subsampled"]


# ------------------------------------------------------------------ baselines
@pytest.mark.parametrize("name", [pytest.param("ConvAE", marks=pytest.mark.slow), "PatchNN"])
def test_localisation_baselines_find_a_bright_square(name):
    rng = np.random.default_rng(0)
    good = rng.normal(0.5, 0.05, size=(60, 20, 20)).astype(np.float32)
    bad = rng.normal(0.5, 0.05, size=(6, 20, 20)).astype(np.float32)
    bad[:, 6:11, 6:11] = 1.0
    make = bi.with_budget(bi.DETECTORS[name], 150, 1)
    detector = make(0, (20, 20), "cpu").fit(good[:40])
    X = np.concatenate([good[40:], bad])
    scores = detector.decision_function(X)
    assert auroc(np.r_[np.zeros(20), np.ones(6)], scores) > 0.95
    maps = detector.anomaly_map(bad)
    assert maps.shape == (6, 20, 20)
    np.testing.assert_allclose(maps.reshape(6, -1).max(axis=1), scores[-6:])
    inside = maps[:, 6:11, 6:11].mean()
    assert inside > maps[:, 14:, 14:].mean()
    again = make(0, (20, 20), "cpu").fit(good[:40]).decision_function(X)
    np.testing.assert_array_equal(scores, again)  # seeded


def test_patch_corners_cover_every_pixel():
    starts, patch = bi._patch_corners(10, 4, 4)
    assert patch == 4 and starts.tolist() == [0, 4, 6]
    assert bi._patch_corners(3, 8, 4)[0].tolist() == [0]  # patch capped at the image


# ------------------------------------------------------------------ end to end
def test_quick_run_writes_csv_summary_and_figure(fake_data, tmp_path, monkeypatch):
    monkeypatch.setitem(bi.DETECTORS, "Broken", lambda seed, shape, device: _Broken())
    runs = _main(fake_data, tmp_path, "--detectors", CHEAP + ",Broken")
    csv = pd.read_csv(tmp_path / "image_runs.csv")
    assert list(csv.columns) == bi.RUN_COLUMNS
    assert len(csv) == len(runs) == 3 * 4  # mnist0, fashion0, magnetic_tile (quick: 1 each)
    assert set(csv["dataset"]) == {"mnist0", "fashion0", "magnetic_tile"}
    assert (csv["seed"] == 0).all()

    ok = csv[csv["detector"] != "Broken"]
    assert ok["error"].isna().all() and ok[["auroc", "aupr"]].notna().all().all()
    assert (ok["fit_s"] >= 0).all() and (ok["score_s"] >= 0).all()
    tile = ok[ok["collection"] == "magnetic_tile"].set_index("detector")
    assert (tile["height"] == 64).all() and (tile["width"] == 64).all()  # quick tile size
    assert tile.loc[["Diffusion-default", "PatchNN"], list(bi.PIXEL_METRICS)].notna().all().all()
    assert tile.loc["KNN", list(bi.PIXEL_METRICS)].isna().all()
    assert tile.loc["Diffusion-default", "map_s"] >= 0 and np.isnan(tile.loc["KNN", "map_s"])
    assert tile.loc["PatchNN", "auroc"] > 0.8  # the fake defects are plain to see
    one_class = ok[ok["collection"] != "magnetic_tile"]
    assert one_class[list(bi.PIXEL_METRICS) + ["map_s"]].isna().all().all()
    assert (one_class["n_train"] == 30).all()  # half of the 60 normal images
    broken = csv[csv["detector"] == "Broken"]
    assert broken["error"].str.startswith("RuntimeError: boom").all()

    text = (tmp_path / "image_summary.md").read_text()
    for heading in ("## MNIST", "## Fashion-MNIST", "## Magnetic tile",
                    "### MNIST: AUROC per class", "RuntimeError: boom", "--quick smoke run"):
        assert heading in text
    tile_section = text.split("## Magnetic tile")[1]
    assert "mean pixel AUROC" in tile_section and "n/a" in tile_section
    summary = pd.read_csv(tmp_path / "image_summary.csv")
    row = summary[(summary["collection"] == "mnist") & (summary["detector"] == "KNN")].iloc[0]
    assert row["mean AUROC"] == pytest.approx(
        ok[(ok["collection"] == "mnist") & (ok["detector"] == "KNN")]["auroc"].mean())
    assert (tmp_path / "image_tile_maps.png").stat().st_size > 0
    with np.load(tmp_path / "image_maps" / "magnetic_tile.npz") as stored:
        assert {"map__Diffusion-default", "map__PatchNN"} <= set(stored.files)
        assert "map__KNN" not in stored.files
        assert stored["images"].shape[1:] == (64, 64)
        assert list(stored["classes"]) == ["MT_Crack", "MT_Blowhole", "MT_Free"]
        assert stored["masks"][:2].any(axis=(1, 2)).all()


def test_resume_skips_runs_already_done(fake_data, tmp_path, monkeypatch):
    _main(fake_data, tmp_path, "--detectors", "KNN", "--collections", "mnist,magnetic_tile")
    first = pd.read_csv(tmp_path / "image_runs.csv")
    # Were KNN run again, it would now fail.
    monkeypatch.setitem(bi.DETECTORS, "KNN", lambda seed, shape, device: _Broken())
    runs = _main(fake_data, tmp_path, "--detectors", "KNN,PatchNN", "--collections",
                 "mnist,magnetic_tile", "--resume")
    second = pd.read_csv(tmp_path / "image_runs.csv")
    assert len(second) == len(runs) == 2 * len(first) == 4
    knn = second[second["detector"] == "KNN"].reset_index(drop=True)
    pd.testing.assert_frame_equal(knn, first)
    assert second[second["detector"] == "PatchNN"]["error"].isna().all()

    _main(fake_data, tmp_path, "--detectors", "KNN", "--collections", "mnist")  # afresh
    assert (tmp_path / "image_runs.csv.bak").exists()
    assert pd.read_csv(tmp_path / "image_runs.csv")["error"].notna().all()


def test_shards_cover_every_unit_once_and_merge(fake_data, tmp_path):
    common = ["--detectors", "KNN", "--seeds", "0,1", "--max-train", "20"]
    for i in (1, 2):
        bi.main(["--data-dir", str(fake_data), "--out", str(tmp_path / f"s{i}"),
                 "--shard", f"{i}/2", *common])
    parts = [pd.read_csv(tmp_path / s / "image_runs.csv") for s in ("s1", "s2")]
    assert [len(p) for p in parts] == [4, 4]  # 4 sets x 2 seeds, dealt round-robin
    units = [set(zip(p["dataset"], p["seed"])) for p in parts]
    assert not units[0] & units[1] and len(units[0] | units[1]) == 8
    merged = bi.main(["--summarise", str(tmp_path / "s1"), str(tmp_path / "s2"),
                      "--out", str(tmp_path / "all")])
    assert len(merged) == 8
    assert "## Magnetic tile" in (tmp_path / "all" / "image_summary.md").read_text()
    with pytest.raises(SystemExit, match="more than one"):
        bi.main(["--summarise", str(tmp_path / "s1"), str(tmp_path / "s1"),
                 "--out", str(tmp_path / "dup")])


def test_sets_option_keeps_the_grid_seeds(fake_data):
    units, example = bi.plan_units(["mnist", "magnetic_tile"], fake_data, (32, 32),
                                   sets="mnist1,magnetic")
    assert list(units) == [("mnist", "mnist1", 0), ("mnist", "mnist1", 1),
                           ("mnist", "mnist1", 2)] + [
        ("magnetic_tile", "magnetic_tile", s) for s in (0, 1, 2)]
    assert example == ("magnetic_tile", "magnetic_tile", 0)
    data = units[("magnetic_tile", "magnetic_tile", 0)]()
    assert data["X"].shape == (24, 32, 32) and data["masks"].shape == (24, 32, 32)


def test_real_mnist_smoke(shared_data):
    units, _ = bi.plan_units(["mnist"], shared_data, bi.TILE_SIZE, sets="mnist1", seeds=[0])
    if not units:
        pytest.skip(f"MNIST not found under {shared_data}")
    runs = bi.run_benchmark(units, "Diffusion-default,KNN", max_train=100, max_test=200,
                            device="cpu", verbose=False)
    assert runs["error"].eq("").all(), runs["error"].tolist()
    assert (runs["n_train"] == 100).all() and (runs["n_test"] == 200).all()
    assert (runs["auroc"] > 0.7).all(), runs[["detector", "auroc"]]


def _tiny_run(rng, side=20):
    good = rng.normal(0.5, 0.05, size=(40, side, side)).astype(np.float32)
    bad = rng.normal(0.5, 0.05, size=(6, side, side)).astype(np.float32)
    bad[:, 6:11, 6:11] = 1.0
    return {"X_train": good[:30], "X_test": np.concatenate([good[30:], bad]),
            "y_test": np.r_[np.zeros(10), np.ones(6)].astype(int), "masks_test": None}


def test_anomalib_missing_is_not_applicable_not_a_failure(monkeypatch):
    monkeypatch.setitem(sys.modules, "anomalib", None)  # imports fail as when not installed
    result = bi.evaluate(bi.DETECTORS["Anomalib-GANomaly"], _tiny_run(np.random.default_rng(0)),
                         seed=0, device="cpu")
    assert result["error"].startswith("not applicable: anomalib cannot be imported")
    assert np.isnan(result["auroc"])
    runs = pd.DataFrame([{"collection": "mnist", "dataset": "mnist0", "seed": 0,
                          "detector": "Anomalib-GANomaly", **result, "n_train": 30,
                          "n_test": 16, "n_test_anomalies": 6, "height": 20, "width": 20,
                          "train_subsampled": False, "test_subsampled": False}],
                        columns=bi.RUN_COLUMNS)
    table = bi.collection_table(runs)
    assert table.loc["Anomalib-GANomaly", ["failures", "n/a runs"]].tolist() == [0, 1]


def test_anomalib_ganomaly_runs_without_downloads():
    pytest.importorskip("anomalib", exc_type=ImportError)
    make = bi.with_budget(bi.DETECTORS["Anomalib-GANomaly"], 1, 3)
    result = bi.evaluate(make, _tiny_run(np.random.default_rng(0), side=28), seed=0,
                         device="cpu")
    assert result["error"] == "" and 0 <= result["auroc"] <= 1
