"""GPU check: every detector's CUDA path against its CPU path, in one short run.

For each configuration (both detectors, exact and learned models) the script
fits on generated data (nothing is downloaded) on the CPU and on CUDA and
reports, side by side: AUROC on each device, the largest relative difference
between the CPU and CUDA scores, fit and score seconds on each device and their
ratio, whether CUDA scoring is bit-for-bit repeatable, whether a CUDA-fitted
detector pickles with CPU tensors and scores identically after loading, and
bfloat16 against float32 training (``mixed_precision``). PyOD's KNN and IForest
(CPU) are timed in the same process as the baselines. The table is printed as
Markdown and, with ``--out``, written there.

Usage (on a machine with a CUDA build of PyTorch)::

    python -m benchmarks.gpu_check               # the table
    python -m benchmarks.gpu_check --quick       # smaller data, a smoke run
    make gpu-check                               # tests/test_cuda.py, then this

Exits with status 1 when a check fails (scores too far from the CPU's, CUDA
scoring not repeatable, a pickle that does not round-trip), 2 without CUDA.
"""

from __future__ import annotations

import argparse
import io
import pickle
import sys
import time

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from skdiffad import DiffusionTSDetector, TabDiffusionDetector
from skdiffad.datasets import make_tabular_anomalies, make_timeseries_anomalies

# Relative CPU-CUDA score difference accepted (float32 rounding through TF32-free
# kernels; learned models trained in bfloat16 differ more, see the table).
EXACT_TOLERANCE = 1e-4

CONFIGS = [
    ("tab-nonparametric", TabDiffusionDetector, {}),
    ("tab-nonparametric-outlier", TabDiffusionDetector, {"novelty": False}),
    ("tab-density", TabDiffusionDetector, {"scoring": "density"}),
    ("tab-time", TabDiffusionDetector, {"scoring": "time"}),
    ("ts-exact-reconstruction", DiffusionTSDetector, {}),
    ("ts-exact-imputation", DiffusionTSDetector, {"scoring": "imputation"}),
    ("ts-unet-reconstruction", DiffusionTSDetector, {"denoiser": "unet"}),
    ("ts-unet-imputation", DiffusionTSDetector, {"denoiser": "unet", "scoring": "imputation"}),
]


def _data(quick):
    n_rows = 4000 if quick else 40_000
    X, y = make_tabular_anomalies(n_samples=n_rows, n_features=16, contamination=0.05,
                                  random_state=0)
    n_train = n_rows // 2
    tab = (X[:n_train][y[:n_train] == 0], X[n_train:], y[n_train:])
    steps = 4000 if quick else 40_000
    S, s = make_timeseries_anomalies(n_timestamps=2 * steps, n_channels=8, n_anomalies=0,
                                     random_state=0)
    T, t = make_timeseries_anomalies(n_timestamps=steps, n_channels=8, n_anomalies=12,
                                     random_state=1)
    ts = (S[:steps], T, t)
    return tab, ts


def _timed(fn):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def _run(cls, params, train, test, device, **extra):
    det = cls(random_state=0, device=device, **params, **extra)
    _, fit_s = _timed(lambda: det.fit(train))
    scores, score_s = _timed(lambda: det.decision_function(test))
    return det, scores, fit_s, score_s


def _check_config(name, cls, params, data):
    train, test, y = data
    rows = {}
    cpu, cpu_scores, cpu_fit, cpu_score = _run(cls, params, train, test, "cpu")
    gpu, gpu_scores, gpu_fit, gpu_score = _run(cls, params, train, test, "cuda")
    again = gpu.decision_function(test)
    restored = pickle.loads(pickle.dumps(gpu))
    saved_on_cpu = all(t.device.type == "cpu" for t in _tensors(gpu.model_.__getstate__()))
    rel = float(np.max(np.abs(gpu_scores - cpu_scores)) / max(np.max(np.abs(cpu_scores)), 1e-12))
    learned = gpu.network_ is not None
    rows.update(
        config=name, auroc_cpu=roc_auc_score(y, cpu_scores),
        auroc_cuda=roc_auc_score(y, gpu_scores),
        max_rel_diff=rel, fit_cpu_s=cpu_fit, fit_cuda_s=gpu_fit, score_cpu_s=cpu_score,
        score_cuda_s=gpu_score, repeatable=bool(np.array_equal(again, gpu_scores)),
        pickle_ok=bool(np.array_equal(restored.decision_function(test), gpu_scores)
                       and restored.device_.type == "cuda" and saved_on_cpu),
    )
    rows["ok"] = rows["repeatable"] and rows["pickle_ok"] and (learned or rel < EXACT_TOLERANCE)
    if learned:
        _, fp32, fit32, _ = _run(cls, params, train, test, "cuda", mixed_precision=False)
        rows["auroc_cuda_fp32"] = roc_auc_score(y, fp32)
        rows["fit_cuda_fp32_s"] = fit32
    return rows


def _tensors(state):
    if isinstance(state, torch.Tensor):
        yield state
    elif isinstance(state, dict):
        for value in state.values():
            yield from _tensors(value)
    elif isinstance(state, (list, tuple)):
        for value in state:
            yield from _tensors(value)


def _baselines(data):
    from pyod.models.iforest import IForest
    from pyod.models.knn import KNN

    train, test, y = data
    rows = []
    for name, det in (("KNN (PyOD, CPU)", KNN()), ("IForest (PyOD, CPU)", IForest(random_state=0))):
        _, fit_s = _timed(lambda: det.fit(train))
        scores, score_s = _timed(lambda: det.decision_function(test))
        rows.append({"config": name, "auroc_cpu": roc_auc_score(y, scores),
                     "fit_cpu_s": fit_s, "score_cpu_s": score_s})
    return rows


def _markdown(rows):
    cols = ["config", "auroc_cpu", "auroc_cuda", "auroc_cuda_fp32", "max_rel_diff", "fit_cpu_s",
            "fit_cuda_s", "fit_cuda_fp32_s", "score_cpu_s", "score_cuda_s", "repeatable",
            "pickle_ok", "ok"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        cells = []
        for c in cols:
            v = row.get(c, "")
            cells.append(f"{v:.4g}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data: a smoke run")
    parser.add_argument("--out", default=None, help="also write the Markdown table here")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device visible: nothing to check", file=sys.stderr)
        return 2
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}, "
          f"{torch.cuda.device_count()} device(s)")
    tab, ts = _data(args.quick)
    rows = []
    for name, cls, params in CONFIGS:
        data = tab if cls is TabDiffusionDetector else ts
        try:
            rows.append(_check_config(name, cls, params, data))
        except Exception as exc:  # report and go on: one table for the whole run
            rows.append({"config": name, "ok": f"error: {type(exc).__name__}: {exc}"})
        print(_markdown(rows[-1:]).splitlines()[-1], flush=True)
    rows += _baselines(tab)
    table = _markdown(rows)
    print("\n" + table)
    if args.out:
        with io.open(args.out, "w") as fh:
            fh.write(table + "\n")
    return 0 if all(r.get("ok", True) is True for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
