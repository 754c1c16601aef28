"""Speed of the default image detector against issue #11's CPU targets.

Run from the repository root, on an otherwise idle machine::

    python -m benchmarks.image_speed                   # one thread, then two
    python -m benchmarks.image_speed --threads 1 --repeats 3

What it measures, for ``DiffusionImageDetector(random_state=0)`` exactly as a
user gets it, on MNIST class 0 (:func:`skdiffad.datasets.load_one_class_images`):

- ``fit_s``: :meth:`fit` on a random half of the class's normal images, *not*
  capped (about 3460 images; the target is at most 5 minutes on a 2-core CPU);
  fit includes scoring every training image (two-fold), which sets
  ``threshold_`` and the per-pixel normalisation;
- ``images_per_s``: :meth:`decision_function` on the other images of the split
  (the rest of the normals and every anomaly; target at least 100 MNIST images
  per second), and ``maps_per_s`` for :meth:`anomaly_map` on the same images;
- the same for PyOD's ``KNN`` on the flattened pixels, in the same process, as
  the yardstick: ratios to it are meaningful on any machine, absolute times
  only on this one.

Each timing is the best of ``--repeats`` runs (``time.perf_counter``). The
table goes to stdout and ``<out>/image_speed.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from benchmarks.tabular import resolve_data_dir, set_threads
from skdiffad import DiffusionImageDetector
from skdiffad.datasets import load_one_class_images, semi_supervised_split


def _best(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def measure(data_dir, threads, repeats, dataset="mnist0"):
    """One row of the table: fit and scoring speed of the default and of KNN."""
    from pyod.models.knn import KNN

    set_threads(threads)
    X, y = load_one_class_images(dataset, data_dir)
    X = X.astype(np.float32) / 255.0
    X_train, X_test, y_test = semi_supervised_split(X, y, random_state=0)
    det = DiffusionImageDetector(random_state=0)
    fit_s, _ = _best(lambda: det.fit(X_train), repeats)
    score_s, _ = _best(lambda: det.decision_function(X_test), repeats)
    map_s, _ = _best(lambda: det.anomaly_map(X_test), repeats)
    flat_train, flat_test = X_train.reshape(len(X_train), -1), X_test.reshape(len(X_test), -1)
    knn = KNN()
    knn_fit_s, _ = _best(lambda: knn.fit(flat_train), repeats)
    knn_score_s, _ = _best(lambda: knn.decision_function(flat_test), repeats)
    return {
        "threads": threads, "n_train": len(X_train), "n_test": len(X_test),
        "fit_s": fit_s, "images_per_s": len(X_test) / score_s, "maps_per_s": len(X_test) / map_s,
        "knn_fit_s": knn_fit_s, "knn_images_per_s": len(X_test) / knn_score_s,
        "patch_size": det.patch_size_,
    }


def table(rows):
    head = ("| threads | train images | fit s (target <= 300) | images/s (target >= 100) "
            "| maps/s | KNN fit s | KNN images/s |\n|---:|---:|---:|---:|---:|---:|---:|")
    lines = [head] + [
        f"| {r['threads']} | {r['n_train']} | {r['fit_s']:.1f} | {r['images_per_s']:.0f} "
        f"| {r['maps_per_s']:.0f} | {r['knn_fit_s']:.2f} | {r['knn_images_per_s']:.0f} |"
        for r in rows]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--threads", default="1,2", help="comma list (default: 1,2)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    data_dir = resolve_data_dir(args.data_dir)
    rows = [measure(data_dir, int(t), args.repeats) for t in args.threads.split(",")]
    text = (f"Default DiffusionImageDetector on mnist0 (patch {rows[0]['patch_size']}), "
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"best of {args.repeats}:\n\n{table(rows)}\n")
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "image_speed.md").write_text(text)
    return rows


if __name__ == "__main__":
    main()
