"""Tests of the image fidelity benchmark (benchmarks/generation_images.py) on synthetic images.

The CNN two-sample test is checked on samples it must and must not tell apart,
the baselines on what they promise, and the command line end to end on a fake
MNIST folder with a tiny U-Net, so the real data is not needed.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

try:
    import benchmarks.generation_images as gi
except ModuleNotFoundError:  # pytest's importlib mode leaves the repository root off sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import benchmarks.generation_images as gi

pytestmark = pytest.mark.benchmark


def _blobs(rng, n, side=12, bright=255.0):
    yy, xx = np.mgrid[:side, :side]
    centre = side / 2 + rng.normal(0, 0.7, size=(n, 2))
    blob = np.exp(-((yy - centre[:, :1, None]) ** 2 + (xx - centre[:, 1:, None]) ** 2) / 6)
    return np.clip(bright * blob + rng.normal(0, 6, size=(n, side, side)), 0, 255).astype(np.uint8)


def test_c2st_cnn_is_chance_on_one_distribution_and_one_on_another():
    rng = np.random.default_rng(0)
    same = gi.c2st_cnn(_blobs(rng, 150), _blobs(rng, 150), random_state=0, epochs=4)
    different = gi.c2st_cnn(_blobs(rng, 150), _blobs(rng, 150, bright=120.0),
                            random_state=0, epochs=4)
    assert abs(same - 0.5) < 0.15
    assert different > 0.95


def test_c2st_cnn_names_what_is_wrong():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="one size"):
        gi.c2st_cnn(_blobs(rng, 20), _blobs(rng, 20, side=10))
    with pytest.raises(ValueError, match="at least 5 images"):
        gi.c2st_cnn(_blobs(rng, 20), _blobs(rng, 3))


def test_fit_and_heldout_are_disjoint_seeded_and_capped():
    images = np.arange(50)[:, None, None] * np.ones((1, 2, 2), dtype=int)
    fit, heldout = gi.fit_and_heldout(images, seed=3, n_images=10)
    assert len(fit) == len(heldout) == 10
    assert not set(fit[:, 0, 0]) & set(heldout[:, 0, 0])
    again, _ = gi.fit_and_heldout(images, seed=3, n_images=10)
    np.testing.assert_array_equal(fit, again)
    half, rest = gi.fit_and_heldout(images, seed=0, n_images=1000)
    assert len(half) == len(rest) == 25  # never more than half each


def test_pca_mixture_draws_uint8_images_near_the_class():
    rng = np.random.default_rng(0)
    images = _blobs(rng, 200)
    sampler = gi.PCAGaussianMixture(seed=0, n_components=8).fit(images)
    drawn = sampler.sample(300, random_state=1)
    assert drawn.shape == (300, 12, 12) and drawn.dtype == np.uint8
    assert abs(drawn.mean() - images.mean()) < 3
    np.testing.assert_allclose(drawn.mean(axis=0), images.mean(axis=0), atol=12)
    np.testing.assert_array_equal(drawn, sampler.sample(300, random_state=1))


def test_copy_sampler_only_returns_fit_images():
    images = _blobs(np.random.default_rng(0), 30)
    drawn = gi.CopySampler(seed=0).fit(images).sample(40, random_state=0)
    flat = {im.tobytes() for im in images}
    assert all(im.tobytes() in flat for im in drawn)


class _Broken:
    def fit(self, X):
        raise RuntimeError("boom")


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    for collection, name in [("mnist", "mnist0"), ("mnist", "mnist1"), ("mnist", "mnist2"),
                             ("fashion_mnist", "fashion0")]:
        folder = tmp_path / "images" / collection
        folder.mkdir(parents=True, exist_ok=True)
        X = _blobs(rng, 40, side=28)
        y = np.r_[np.zeros(30), np.ones(10)]
        np.savez(folder / f"{name}.npz", x=X.reshape(40, -1), y=y[:, None])

    def tiny_diffusion(seed, device):
        return gi.DiffusionSampler(seed, device, widths=(4,), max_steps=3, n_steps=2)

    monkeypatch.setattr(gi, "GENERATORS", {"diffusion": tiny_diffusion,
                                           "pca-gmm": gi.GENERATORS["pca-gmm"],
                                           "copy": gi.GENERATORS["copy"],
                                           "broken": lambda seed, device: _Broken()})
    monkeypatch.setattr(gi, "CNN_EPOCHS", 1)
    return tmp_path


@pytest.mark.slow
def test_command_line_runs_default_sets_and_resumes(fake_mnist, capsys):
    out = fake_mnist / "out"
    argv = ["--data-dir", str(fake_mnist), "--out", str(out), "--n-images", "12"]
    text = gi.main(argv)
    runs = gi.read_runs(out / gi.CSV_NAME)
    assert sorted(set(runs["dataset"])) == ["fashion0", "mnist0"]  # the first per collection
    assert len(runs) == 2 * 4 and (runs["n_fit"] == 12).all()
    ok = runs[runs["generator"] != "broken"]
    assert (ok["error"] == "").all(), ok["error"].tolist()
    assert ok["c2st_auroc"].between(0, 1).all() and (ok["fit_s"] >= 0).all()
    broken = runs[runs["generator"] == "broken"]
    assert broken["c2st_auroc"].isna().all() and broken["error"].str.contains("boom").all()
    assert "| mnist0 / 0 |" in text and "diffusion below pca-gmm on" in text
    assert (out / gi.SUMMARY_NAME).read_text() == text

    capsys.readouterr()
    gi.main(argv + ["--resume"])
    assert len(gi.read_runs(out / gi.CSV_NAME)) == len(runs)
    assert " seed 0 " not in capsys.readouterr().out.split("# Image fidelity")[0]


def test_command_line_rejects_too_few_images(fake_mnist):
    with pytest.raises(SystemExit):
        gi.main(["--data-dir", str(fake_mnist), "--n-images", "2"])
