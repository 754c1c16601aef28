"""Regenerate the figures of the image user guide (``doc/image.rst``) into ``doc/_static/``.

Run from the repository root::

    python doc/figures_image.py

The maps are real: the default :class:`~skdiffad.DiffusionImageDetector` is
fitted on good images of two data sets the benchmark uses, read from
``$SKDIFFAD_DATA`` (else the ``shared/data`` folder next to the checkout):

* ``image_tile_maps.png`` -- fitted on 450 defect-free magnetic tiles (128x128);
  one defective tile of each of the five defect classes, one more defective
  tile and one held-out good tile, all drawn at random with a fixed seed (not
  picked for looking good);
* ``image_mnist_maps.png`` -- fitted on 450 images of the digit 0; six other
  digits (anomalies) and two held-out zeros, drawn the same way.

Everything runs on one CPU thread with ``random_state=0`` and takes a minute or
two. The figures show what the maps look like; the benchmark
(``benchmarks/RESULTS_image.md``) says how good they are.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from skdiffad import DiffusionImageDetector  # noqa: E402
from skdiffad.datasets import load_magnetic_tile, load_one_class_images  # noqa: E402

OUT = Path(__file__).resolve().parent / "_static"
SEED = 0
N_TRAIN = 450
DPI = 100
TILE_CLASSES = ("MT_Blowhole", "MT_Break", "MT_Crack", "MT_Fray", "MT_Uneven")

plt.rcParams.update({"font.size": 8, "axes.titlesize": 8, "figure.dpi": DPI})


def data_dir():
    """``$SKDIFFAD_DATA``, else the ``shared/data`` folder next to the checkout."""
    env = os.environ.get("SKDIFFAD_DATA")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def save(fig, name):
    path = OUT / name
    fig.savefig(path, dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    print(f"  wrote {path.relative_to(OUT.parent.parent)} ({path.stat().st_size / 1024:.0f} KB)")


def fit_default(X_train):
    tic = time.perf_counter()
    det = DiffusionImageDetector(random_state=SEED, device="cpu").fit(X_train)
    print(f"  fitted the default detector on {len(X_train)} images "
          f"(patch_size_={det.patch_size_}) in {time.perf_counter() - tic:.1f} s")
    return det


def draw_rows(det, images, titles, masks=None):
    """One column per image; rows: image, ground truth (if any), map, predicted mask."""
    tic = time.perf_counter()
    scores = det.decision_function(images)
    maps = det.anomaly_map(images)
    predicted = det.predict_mask(images)
    print(f"  scored {len(images)} images in {time.perf_counter() - tic:.1f} s")
    rows = ["image"] + (["ground truth"] if masks is not None else []) + [
        "anomaly_map", "predict_mask"]
    n = len(images)
    fig, axes = plt.subplots(len(rows), n, figsize=(1.45 * n + 0.9, 1.4 * len(rows)),
                             squeeze=False)
    # one colour scale for every map: from the training maps' typical level up to
    # twice the threshold (or the largest shown value, if lower)
    vmax = min(float(np.max(maps)), 2.0 * det.threshold_)
    vmin = min(0.0, float(np.min(maps)))
    shown = None
    for j in range(n):
        flagged = "flagged" if scores[j] > det.threshold_ else "not flagged"
        axes[0, j].set_title(f"{titles[j]}\nscore {scores[j]:.1f}, {flagged}")
        column = [("image", images[j])]
        if masks is not None:
            column.append(("mask", masks[j]))
        column += [("map", maps[j]), ("mask", predicted[j])]
        for i, (kind, picture) in enumerate(column):
            ax = axes[i, j]
            if kind == "image":
                ax.imshow(picture, cmap="gray", vmin=0, vmax=255)
            elif kind == "mask":
                ax.imshow(picture, cmap="gray", vmin=0, vmax=1)
            else:
                shown = ax.imshow(picture, cmap="magma", vmin=vmin, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
    for i, label in enumerate(rows):
        axes[i, 0].set_ylabel(label)
    fig.tight_layout(rect=(0, 0, 0.93, 1))
    bar = fig.add_axes((0.94, 0.3, 0.012, 0.4))
    fig.colorbar(shown, cax=bar)
    bar.axhline(det.threshold_, color="tab:cyan", lw=1.5)
    bar.set_title("threshold_\n(cyan)", fontsize=7)
    return fig


def figure_tiles(root):
    tic = time.perf_counter()
    tiles = load_magnetic_tile(data_dir=root, size=(128, 128))
    print(f"  read {len(tiles['X'])} tiles in {time.perf_counter() - tic:.1f} s")
    X, masks, classes = tiles["X"], tiles["masks"], tiles["class"]
    rng = np.random.default_rng(SEED)
    good = rng.permutation(np.flatnonzero(classes == "MT_Free"))
    train, held_out = good[:N_TRAIN], good[N_TRAIN]
    # one random defective tile with a marked defect per class, and one more of any class
    marked = np.array([m.any() for m in masks])
    picks = [rng.choice(np.flatnonzero((classes == c) & marked)) for c in TILE_CLASSES]
    rest = np.setdiff1d(np.flatnonzero((classes != "MT_Free") & marked), picks)
    picks += [rng.choice(rest), held_out]
    det = fit_default(X[train])
    titles = [str(classes[k]).removeprefix("MT_") + (" (good)" if k == held_out else "")
              for k in picks]
    fig = draw_rows(det, X[picks], titles, masks=masks[picks])
    save(fig, "image_tile_maps.png")


def figure_mnist(root):
    X, y = load_one_class_images("mnist0", data_dir=root)
    rng = np.random.default_rng(SEED)
    normal = rng.permutation(np.flatnonzero(y == 0))
    train, held_out = normal[:N_TRAIN], normal[N_TRAIN:N_TRAIN + 2]
    anomalies = rng.choice(np.flatnonzero(y == 1), size=6, replace=False)
    det = fit_default(X[train])
    picks = np.concatenate([anomalies, held_out])
    titles = ["anomaly"] * len(anomalies) + ["normal (a 0)"] * len(held_out)
    fig = draw_rows(det, X[picks], titles)
    save(fig, "image_mnist_maps.png")


def main():
    torch.set_num_threads(1)
    OUT.mkdir(exist_ok=True)
    root = data_dir()
    started = time.perf_counter()
    print(f"magnetic tiles (data: {root})")
    figure_tiles(root)
    print("mnist0")
    figure_mnist(root)
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
