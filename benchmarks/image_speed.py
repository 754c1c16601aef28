"""Speed of the default image detector against issue #11's CPU targets.

Run from the repository root, on an otherwise idle machine::

    python -m benchmarks.image_speed                   # one thread, then two
    python -m benchmarks.image_speed --threads 1 --repeats 3
    python -m benchmarks.image_speed --unet --threads 1  # few-step vs every-step restoration

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

``--unet`` measures the learned path's few-step scoring instead: one
``DiffusionImageDetector(denoiser="unet", random_state=0)`` is trained on 2000
of those training images, then the same test images (a stratified
``--unet-test`` of them, default 300) are scored twice by the same network
with the same scoring noise: with the default ``n_inference_steps=5`` DDIM
steps from each ``t0``, and with every step of the schedule from each ``t0``
(the "1000-step" DDPM-length restoration; the plan's step count is the only
change). It reports the AUROC and seconds of both (target: few-step at least
10x faster at no more than 1 point of AUROC lost), to
``<out>/image_speed_unet.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from benchmarks._common import RESULTS_DIR, resolve_data_dir, set_threads
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


def measure_unet(data_dir, threads, n_test, dataset="mnist0"):
    """AUROC and scoring time of few-step and every-step U-Net restoration."""
    import dataclasses

    from sklearn.model_selection import train_test_split

    from skdiffad.metrics import auroc

    set_threads(threads)
    X, y = load_one_class_images(dataset, data_dir)
    X = X.astype(np.float32) / 255.0
    X_train, X_test, y_test = semi_supervised_split(X, y, random_state=0, max_train=2000)
    X_test, _, y_test, _ = train_test_split(X_test, y_test, train_size=n_test, stratify=y_test,
                                            random_state=0)
    det = DiffusionImageDetector(denoiser="unet", random_state=0)
    start = time.perf_counter()
    det.fit(X_train)
    fit_s = time.perf_counter() - start
    plan = det.model_.plan_
    rows = []
    for label, steps in (("few-step (5 DDIM steps)", plan.n_inference_steps),
                         ("every step from t0", det.n_timesteps)):
        det.model_.plan_ = dataclasses.replace(plan, n_inference_steps=steps)
        start = time.perf_counter()
        scores = det.decision_function(X_test)
        rows.append({"scoring": label, "auroc": auroc(y_test, scores),
                     "score_s": time.perf_counter() - start})
    det.model_.plan_ = plan
    return fit_s, len(X_train), len(X_test), [int(t) for t in plan.timesteps], rows


def unet_table(fit_s, n_train, n_test, t0s, rows):
    base = rows[-1]
    lines = [f"U-Net (default settings) on mnist0: {n_train} training images, fit "
             f"{fit_s:.0f} s; {n_test} test images; t0 = {t0s}\n",
             "| restoration | AUROC | score s | images/s | speed-up | AUROC change |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['scoring']} | {r['auroc']:.3f} | {r['score_s']:.1f} "
              f"| {n_test / r['score_s']:.1f} | {base['score_s'] / r['score_s']:.1f}x "
              f"| {r['auroc'] - base['auroc']:+.3f} |" for r in rows]
    return "\n".join(lines) + "\n"


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
    parser.add_argument("--out", default=str(RESULTS_DIR))
    parser.add_argument("--unet", action="store_true",
                        help="few-step vs every-step U-Net restoration instead")
    parser.add_argument("--unet-test", type=int, default=300)
    args = parser.parse_args(argv)
    data_dir = resolve_data_dir(args.data_dir)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.unet:
        text = unet_table(*measure_unet(data_dir, int(args.threads.split(",")[0]),
                                        args.unet_test))
        print(text)
        (out / "image_speed_unet.md").write_text(text)
        return text
    rows = [measure(data_dir, int(t), args.repeats) for t in args.threads.split(",")]
    text = (f"Default DiffusionImageDetector on mnist0 (patch {rows[0]['patch_size']}), "
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"best of {args.repeats}:\n\n{table(rows)}\n")
    print(text)
    (out / "image_speed.md").write_text(text)
    return rows


if __name__ == "__main__":
    main()
