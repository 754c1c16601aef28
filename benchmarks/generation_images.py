"""Image fidelity of ``DiffusionImageDetector.sample`` (issue #13): a CNN two-sample test.

Run from the repository root::

    python -m benchmarks.generation_images                          # default sets, seed 0
    python -m benchmarks.generation_images --sets mnist3,fashion7 --seeds 0,1
    python -m benchmarks.generation_images --generators pca-gmm,copy   # the baselines only

Data: the one-class MNIST / Fashion-MNIST sets of ``<data-dir>/images`` (read
with :func:`skdiffad.datasets.load_one_class_images`; only the normal class is
used). By default the first :data:`SETS_PER_COLLECTION` sets of each collection
(``mnist0`` and ``fashion0``): a rule, not a pick.

Per set and seed the normal images are shuffled with the seed and split into a
*fit* part and a *held-out* part of ``--n-images`` images each (default 1000).
Each generator of :data:`GENERATORS` is fitted on the fit part and draws as many
images as the held-out part holds:

- ``diffusion``: ``DiffusionImageDetector(denoiser="unet", widths=WIDTHS,
  max_steps=MAX_STEPS).sample(n, sampler="ddim", n_steps=DDIM_STEPS)``, the
  settings of the guide's image figure;
- ``pca-gmm``: a full-covariance Gaussian mixture (1-10 components by BIC) on
  the first :data:`PCA_COMPONENTS` principal components of the pixels, sampled
  and mapped back to pixels, clipped to 0-255 and rounded (the pixel-space
  analogue of the tabular study's GMM; a mixture on all 784 pixels is singular
  with 1000 images);
- ``copy``: fit images drawn with replacement, the reference for what two real
  samples of the class score.

Metric: C2ST AUROC, the mean over 5 stratified folds of the AUROC of a small
CNN (:func:`c2st_cnn`: two 3x3 convolutions with pooling and a linear head,
:data:`CNN_EPOCHS` epochs of Adam) telling generated from held-out images on the
other folds; 0.5 = indistinguishable. Also the mean grey level's absolute error
and fit / sample seconds.

Output (``--out``, default ``benchmarks/results/generation``):
``generation_images.csv`` (one row per set, seed and generator, appended as each
ends; ``--resume`` skips those there) and ``generation_images.md``, a table per
set and seed plus each generator's mean. A generator that raises does not stop
the run: its metrics are NaN and the error text is kept.

Torch and BLAS use one thread unless ``--threads`` says more.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from benchmarks._common import (
    RESULTS_DIR,
    add_run_arguments,
    append_row,
    command_line,
    elapsed_text,
    environment_notes,
    error_message,
    markdown_table,
    resolve_data_dir,
    select_from,
    set_threads,
    start_runs_csv,
)
from benchmarks.generation import TEXT_COLUMNS, fit_bic_gmm, read_runs
from skdiffad.datasets import list_images, load_one_class_images

COLLECTIONS = ("mnist", "fashion_mnist")
SETS_PER_COLLECTION = 1
N_IMAGES = 1000
WIDTHS = (32, 64)
MAX_STEPS = 3000
DDIM_STEPS = 50
PCA_COMPONENTS = 50
CNN_EPOCHS = 8
CNN_BATCH = 64
CSV_NAME = "generation_images.csv"
SUMMARY_NAME = "generation_images.md"
COLUMNS = ["dataset", "seed", "generator", "n_fit", "n_heldout", "c2st_auroc",
           "mean_grey_error", "fit_s", "sample_s", "error"]


# ---------------------------------------------------------------- generators
class DiffusionSampler:
    """``DiffusionImageDetector(denoiser="unet")`` fitted on the images, sampled by DDIM."""

    def __init__(self, seed, device="cpu", widths=WIDTHS, max_steps=MAX_STEPS,
                 n_steps=DDIM_STEPS):
        self.seed, self.device, self.widths = seed, device, widths
        self.max_steps, self.n_steps = max_steps, n_steps

    def fit(self, X):
        from skdiffad import DiffusionImageDetector

        self.detector_ = DiffusionImageDetector(
            denoiser="unet", widths=self.widths, max_steps=self.max_steps,
            random_state=self.seed, device=self.device).fit(X)
        return self

    def sample(self, n, random_state):
        return self.detector_.sample(n, random_state=random_state, sampler="ddim",
                                     n_steps=self.n_steps)


class PCAGaussianMixture:
    """A BIC-chosen Gaussian mixture on the leading principal components of the pixels."""

    def __init__(self, seed, n_components=PCA_COMPONENTS):
        self.seed, self.n_components = seed, n_components

    def fit(self, X):
        flat = X.reshape(len(X), -1).astype(np.float64)
        self.shape_ = X.shape[1:]
        self.pca_ = PCA(n_components=min(self.n_components, *flat.shape),
                        random_state=self.seed).fit(flat)
        self.gmm_ = fit_bic_gmm(self.pca_.transform(flat), random_state=self.seed)
        return self

    def sample(self, n, random_state):
        self.gmm_.random_state = random_state
        codes = self.gmm_.sample(n)[0]
        rng = np.random.default_rng(random_state)
        codes = codes[rng.permutation(n)]  # sklearn returns the draws sorted by component
        pixels = self.pca_.inverse_transform(codes)
        return np.clip(np.rint(pixels), 0, 255).astype(np.uint8).reshape(n, *self.shape_)


class CopySampler:
    """Fit images drawn with replacement: what two real samples of the class score."""

    def __init__(self, seed):
        self.seed = seed

    def fit(self, X):
        self.images_ = np.asarray(X)
        return self

    def sample(self, n, random_state):
        rng = np.random.default_rng(random_state)
        return self.images_[rng.integers(0, len(self.images_), n)]


#: name -> factory(seed, device) of an object with ``fit(X)`` and ``sample(n, random_state)``.
GENERATORS = {
    "diffusion": lambda seed, device: DiffusionSampler(seed, device),
    "pca-gmm": lambda seed, device: PCAGaussianMixture(seed),
    "copy": lambda seed, device: CopySampler(seed),
}


# ---------------------------------------------------------------- the test
def _cnn(height, width):
    flat = 32 * (height // 4) * (width // 4)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(flat, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))


def _train_and_score(X_train, y_train, X_test, seed, epochs=CNN_EPOCHS):
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    net = _cnn(*X_train.shape[2:])
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    X_train, y_train = torch.from_numpy(X_train), torch.from_numpy(y_train)
    for _ in range(epochs):
        order = torch.randperm(len(X_train), generator=generator)
        for start in range(0, len(order), CNN_BATCH):
            batch = order[start:start + CNN_BATCH]
            optimiser.zero_grad()
            loss_fn(net(X_train[batch]).squeeze(1), y_train[batch]).backward()
            optimiser.step()
    with torch.no_grad():
        return net(torch.from_numpy(X_test)).squeeze(1).numpy()


def c2st_cnn(real, generated, random_state=0, n_splits=5, epochs=CNN_EPOCHS):
    """Mean over stratified folds of a small CNN's AUROC telling ``generated`` from ``real``.

    Both are ``(n, H, W)`` grey images, 0-255; 0.5 means the CNN cannot tell them apart.
    """
    real, generated = np.asarray(real), np.asarray(generated)
    if real.ndim != 3 or generated.shape[1:] != real.shape[1:]:
        raise ValueError(f"C2ST needs two stacks of (n, H, W) images of one size, got "
                         f"{real.shape} and {generated.shape}")
    if min(len(real), len(generated)) < n_splits:
        raise ValueError(f"C2ST needs at least {n_splits} images in each sample")
    X = (np.concatenate([real, generated]).astype(np.float32) / 255.0)[:, None]
    y = np.r_[np.zeros(len(real)), np.ones(len(generated))].astype(np.float32)
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    aurocs = [roc_auc_score(y[test], _train_and_score(X[train], y[train], X[test],
                                                      random_state + fold, epochs))
              for fold, (train, test) in enumerate(folds.split(X, y))]
    return float(np.mean(aurocs))


def fit_and_heldout(images, seed, n_images=N_IMAGES):
    """The seed's shuffle of the normal images, cut into a fit and a held-out part."""
    order = np.random.default_rng(seed).permutation(len(images))
    n = min(n_images, len(images) // 2)
    return images[order[:n]], images[order[n:2 * n]]


def evaluate(make_sampler, X_fit, X_heldout, seed, device="cpu"):
    """Fit one generator, draw ``len(X_heldout)`` images, test them; never raise."""
    result = {"c2st_auroc": np.nan, "mean_grey_error": np.nan, "fit_s": np.nan,
              "sample_s": np.nan, "error": ""}
    try:
        sampler = make_sampler(seed, device)
        start = time.perf_counter()
        sampler.fit(X_fit)
        result["fit_s"] = time.perf_counter() - start
        start = time.perf_counter()
        drawn = np.asarray(sampler.sample(len(X_heldout), random_state=seed))
        result["sample_s"] = time.perf_counter() - start
        if drawn.shape != X_heldout.shape:
            raise ValueError(f"sample returned shape {drawn.shape}, expected {X_heldout.shape}")
        result["mean_grey_error"] = float(abs(drawn.mean() - X_heldout.mean()))
        result["c2st_auroc"] = c2st_cnn(X_heldout, drawn, random_state=seed)
    except Exception as exc:  # noqa: BLE001 - one generator must not end the benchmark
        result["error"] = error_message(exc)
    return result


def run(sets, generators, seeds=(0,), *, data_dir=None, n_images=N_IMAGES, device="cpu",
        csv_path=None, resume=False, verbose=True):
    """Every (set, seed, generator) run; returns the runs (earlier ones kept on ``resume``)."""
    csv_path, previous = start_runs_csv(csv_path, resume, COLUMNS, TEXT_COLUMNS)
    done = {(str(r["dataset"]), int(r["seed"]), str(r["generator"]))
            for r in previous.to_dict("records")}
    rows = []
    for name in sets:
        X, y = load_one_class_images(name, data_dir)
        for seed in seeds:
            X_fit, X_heldout = fit_and_heldout(X[y == 0], seed, n_images)
            for generator, make_sampler in generators.items():
                if (name, seed, generator) in done:
                    continue
                row = {"dataset": name, "seed": seed, "generator": generator,
                       "n_fit": len(X_fit), "n_heldout": len(X_heldout),
                       **evaluate(make_sampler, X_fit, X_heldout, seed, device)}
                rows.append(row)
                append_row(csv_path, row, COLUMNS)
                if verbose:
                    print(f"{name} seed {seed} {generator}: " + (
                        f"FAILED {row['error'][:100]}" if row["error"] else
                        f"C2ST {row['c2st_auroc']:.3f}, fit {row['fit_s']:.0f} s, "
                        f"sample {row['sample_s']:.0f} s"), flush=True)
    return pd.concat([previous, pd.DataFrame(rows, columns=COLUMNS)], ignore_index=True)


def summarise(runs, notes=()):
    """Markdown: C2ST per set and seed (a column per generator) and each generator's means."""
    ok = runs[runs["error"] == ""]
    lines = ["# Image fidelity: CNN two-sample test on the normal class", "",
             ("C2ST AUROC of a small CNN telling generated from held-out real images "
              "(0.5 = indistinguishable; lower is better)."), ""]
    if len(ok):
        table = ok.pivot_table(index=["dataset", "seed"], columns="generator",
                               values="c2st_auroc")
        order = [g for g in GENERATORS if g in table.columns]
        table = table[order]
        table.index = [f"{name} / {seed}" for name, seed in table.index]
        lines += [markdown_table(table, "set / seed"), ""]
        means = ok.groupby("generator")[["c2st_auroc", "mean_grey_error", "fit_s",
                                         "sample_s"]].mean()
        lines += ["Means over the runs (grey-level error in 0-255 units, seconds):", "",
                  markdown_table(means.reindex(order), "generator"), ""]
        if {"diffusion", "pca-gmm"} <= set(table.columns):
            both = table[["diffusion", "pca-gmm"]].dropna()
            wins = int((both["diffusion"] < both["pca-gmm"]).sum())
            lines += [f"diffusion below pca-gmm on {wins} of {len(both)} runs.", ""]
    failed = runs[runs["error"] != ""]
    for row in failed.to_dict("records"):
        lines.append(f"- FAILED {row['dataset']} seed {row['seed']} {row['generator']}: "
                     f"{row['error']}")
    lines += ["", *[f"- {note}" for note in notes]]
    return "\n".join(lines).rstrip() + "\n"


def default_sets(data_dir):
    """The first :data:`SETS_PER_COLLECTION` sets of each collection found."""
    return [name for collection in COLLECTIONS
            for name in list_images(collection, data_dir)[:SETS_PER_COLLECTION]]


def main(argv=None):
    """Command-line entry point; see ``python -m benchmarks.generation_images --help``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.generation_images",
        description="Image fidelity of DiffusionImageDetector.sample: CNN C2ST vs a "
                    "PCA Gaussian mixture on MNIST / Fashion-MNIST.")
    parser.add_argument("--sets", default=None,
                        help="comma list of one-class sets, e.g. mnist3,fashion0 (default: "
                             f"the first {SETS_PER_COLLECTION} of each collection)")
    parser.add_argument("--seeds", default="0", help="comma list (default: %(default)s)")
    parser.add_argument("--generators", default=None,
                        help=f"comma list of {', '.join(GENERATORS)} (default: all)")
    parser.add_argument("--n-images", type=int, default=N_IMAGES,
                        help="images in the fit part and in the held-out part "
                             "(default: %(default)s)")
    add_run_arguments(parser, data="images/", devices="the diffusion model", device="cpu",
                      out=RESULTS_DIR / "generation")
    parser.add_argument("--resume", action="store_true",
                        help=f"keep {CSV_NAME} in --out and skip the runs it holds")
    args = parser.parse_args(argv)
    if args.n_images < 5:
        parser.error(f"--n-images must be at least 5, got {args.n_images}")
    set_threads(args.threads)
    data_dir = resolve_data_dir(args.data_dir)
    sets = ([s.strip() for s in args.sets.split(",") if s.strip()] if args.sets
            else default_sets(data_dir))
    if not sets:
        raise SystemExit(f"no MNIST / Fashion-MNIST sets under {data_dir / 'images'}")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    generators = select_from(GENERATORS, args.generators)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    run(sets, generators, seeds, data_dir=data_dir, n_images=args.n_images,
        device=args.device, csv_path=out / CSV_NAME, resume=args.resume)
    elapsed = time.perf_counter() - start
    notes = [*environment_notes(command_line("benchmarks.generation_images", argv),
                                args.threads, args.device),
             (f"diffusion: widths {WIDTHS}, {MAX_STEPS} training steps, DDIM {DDIM_STEPS} "
              f"steps; pca-gmm: {PCA_COMPONENTS} components; CNN: {CNN_EPOCHS} epochs."),
             f"Wall time of the last invocation: {elapsed_text(elapsed)}."]
    text = summarise(read_runs(out / CSV_NAME), notes)
    (out / SUMMARY_NAME).write_text(text)
    print("\n" + text, flush=True)
    return text


if __name__ == "__main__":
    main()
