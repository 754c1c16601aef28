"""Regenerate the figures of the generation guide (``doc/generation.rst``) into ``doc/_static/``.

Run from the repository root::

    python doc/figures_generation.py

* ``generation_rows.png`` -- two interleaved half-moons (scikit-learn's
  ``make_moons``, 1000 normal rows): rows drawn by
  ``TabDiffusionDetector(denoiser="mlp", scoring="density").sample`` next to a Gaussian
  mixture's (BIC-chosen, as the benchmark's), and the anomalies of every table
  kind of :class:`~skdiffad.AnomalyGenerator` over the normal rows;
* ``generation_series.png`` -- a two-channel periodic series; one window of
  each series kind, its labelled span shaded;
* ``generation_images.png`` -- the digit 0 of MNIST (from ``$SKDIFFAD_DATA``,
  else the ``shared/data`` folder next to the checkout; skipped when absent):
  training images, ``DiffusionImageDetector(denoiser="unet").sample``, and
  ``"blend"`` and ``"inpaint"`` anomalies with their masks outlined.

Everything runs on one CPU thread with fixed seeds; nothing is picked for
looking good. The figures show what the samples look like; the benchmark
(``benchmarks/RESULTS_generation.md``) says what they are worth.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import make_moons
from sklearn.mixture import GaussianMixture

from skdiffad import (
    AnomalyGenerator,
    DiffusionImageDetector,
    DiffusionTSDetector,
    TabDiffusionDetector,
)
from skdiffad.generation import SERIES_KINDS, TABLE_KINDS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from figures_image import DPI, OUT, data_dir, save  # the shared helpers

SEED = 0
plt.rcParams.update({"font.size": 8, "axes.titlesize": 8, "figure.dpi": DPI})


def rows_figure():
    X, _ = make_moons(1000, noise=0.08, random_state=SEED)
    tic = time.perf_counter()
    det = TabDiffusionDetector(denoiser="mlp", scoring="density", max_steps=4000,
                               random_state=SEED, device="cpu").fit(X)
    drawn = det.sample(1000, random_state=SEED)
    gmm = min((GaussianMixture(k, random_state=SEED).fit(X) for k in range(1, 11)),
              key=lambda m: m.bic(X))
    mixture = gmm.sample(1000)[0]
    real = np.array([[0.0, 1.3], [2.3, -0.6], [-1.2, -0.3]])  # for kind="fewshot"
    generator = AnomalyGenerator(det, random_state=SEED).fit(X, anomalies=real)
    print(f"  moons: fitted and sampled in {time.perf_counter() - tic:.1f} s")
    panels = [("sample() (diffusion)", drawn, "tab:blue"),
              (f"GaussianMixture ({gmm.n_components} comp.)", mixture, "tab:green")]
    for kind in TABLE_KINDS:
        panels.append((f'kind="{kind}"', generator.generate(150, kind=kind)[0], "tab:red"))
    fig, axes = plt.subplots(1, len(panels), figsize=(2.1 * len(panels), 2.2), sharex=True,
                             sharey=True)
    for ax, (title, rows, colour) in zip(axes, panels):
        ax.scatter(X[:, 0], X[:, 1], s=2, c="0.7", label="real")
        ax.scatter(rows[:, 0], rows[:, 1], s=2, c=colour)
        if "fewshot" in title:
            ax.scatter(real[:, 0], real[:, 1], marker="x", c="k", s=30)
        ax.set_title(title)
        ax.set_xlim(-2.5, 3.5)
        ax.set_ylim(-2.0, 2.5)
        ax.set_xticks([])
        ax.set_yticks([])
    save(fig, "generation_rows.png")


def series_figure():
    rng = np.random.default_rng(SEED)
    t = np.arange(3000)
    series = np.column_stack([np.sin(2 * np.pi * t / 25), 0.6 * np.cos(2 * np.pi * t / 40)])
    series += 0.05 * rng.normal(size=series.shape)
    tic = time.perf_counter()
    generator = AnomalyGenerator(
        DiffusionTSDetector(denoiser="unet", window_size=64, device="cpu"),
        random_state=SEED).fit(series)
    print(f"  series: fitted in {time.perf_counter() - tic:.1f} s")
    fig, axes = plt.subplots(1, len(SERIES_KINDS), figsize=(2.6 * len(SERIES_KINDS), 1.9),
                             sharey=True)
    for ax, kind in zip(axes, SERIES_KINDS):
        windows, labels = generator.generate(1, kind=kind)
        ax.plot(windows[0], lw=1)
        span = np.flatnonzero(labels[0])
        ax.axvspan(span[0] - 0.5, span[-1] + 0.5, color="tab:red", alpha=0.2)
        ax.set_title(f'kind="{kind}"')
        ax.set_xticks([])
    save(fig, "generation_series.png")


def images_figure():
    from skdiffad.datasets import load_one_class_images

    try:
        X, y = load_one_class_images("mnist0", data_dir())
    except (FileNotFoundError, OSError) as exc:
        print(f"  images: skipped ({exc})")
        return
    images = X[y == 0][:2000]
    tic = time.perf_counter()
    det = DiffusionImageDetector(denoiser="unet", widths=(32, 64), max_steps=3000,
                                 random_state=SEED, device="cpu").fit(images)
    drawn = det.sample(6, random_state=SEED)
    generator = AnomalyGenerator(det, random_state=SEED).fit(images[:500])
    rows = [("training images", images[:6], None), ("sample()", drawn, None)]
    for kind in ("blend", "inpaint"):
        anomalous, masks = generator.generate(6, kind=kind)
        rows.append((f'kind="{kind}"', anomalous, masks))
    print(f"  images: fitted and drew in {time.perf_counter() - tic:.1f} s")
    fig, axes = plt.subplots(len(rows), 6, figsize=(6, 1.1 * len(rows)))
    for r, (title, pictures, masks) in enumerate(rows):
        for c in range(6):
            ax = axes[r, c]
            ax.imshow(pictures[c], cmap="gray", vmin=0, vmax=255)
            if masks is not None:
                ax.contour(masks[c], levels=[0.5], colors="tab:red", linewidths=0.8)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(title, rotation=0, ha="right", va="center")
    save(fig, "generation_images.png")


def main():
    torch.set_num_threads(1)
    OUT.mkdir(exist_ok=True)
    rows_figure()
    series_figure()
    images_figure()


if __name__ == "__main__":
    main()
