"""Scale benchmark: the default detector on the largest ADBench sets, uncapped.

Each (dataset, detector) runs in a fresh process so that its peak memory is its
own. The semi-supervised protocol is used at full size (no row caps): fit on half
of the normal rows, score the other half and every anomaly. Reported per run:
AUROC, AUPR, fit and score seconds, scoring throughput (rows per second) and the
process's peak resident memory above what the loaded data already used.

Usage::

    python -m benchmarks.scale                       # 11_donors and 16_http
    python -m benchmarks.scale --datasets 11_donors --detectors Diffusion-nonparametric
    python -m benchmarks.scale --throughput          # rows, windows, patches per second

``--throughput`` (issue #28) measures the exact model's search instead: the
scoring throughput of each search (``search="exact"`` and ``"ivf"``) against
PyOD's IForest and KNN, every (kind, size, detector) in a fresh process with its
peak memory, on seeded synthetic data without structure (the hardest case for
an index: no clusters to find):

* rows -- 20 features, 10 000 rows fitted (all stored, as PyOD KNN does), 100k, 1M and 10M
  scored; the 10M run goes through Dask (1M-row chunks) for the diffusion
  detectors, and chunk by chunk for PyOD's;
* windows -- ``benchmarks.timeseries``' 25-channel speed series, the first
  10 000 steps fitted and 100k (1M: the diffusion detectors only, PyOD's
  windowed detectors would hold 1M x 1250 floats) scored, per step;
* patches -- 28 x 28 images of smooth random blobs, 1000 fitted (9 patches
  each), 100k patches scored; PyOD's detectors read the flat pixels.

Data: ``<data-dir>/tabular/adbench``; without ``--data-dir``,
:func:`benchmarks._common.resolve_data_dir` picks ``$SKDIFFAD_DATA`` or the
``shared/data`` folder next to the checkout, and every child process is given
that folder explicitly.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks._common import (
    add_run_arguments,
    command_line,
    environment_notes,
    resolve_data_dir,
    set_threads,
    summary_lines,
)
from benchmarks.tabular import DETECTORS, prepare, select_detectors

DEFAULT_DATASETS = ("11_donors", "16_http")
#: ``--throughput``: kind -> sizes scored (rows, steps, patches).
THROUGHPUT_SIZES = {"rows": (100_000, 1_000_000, 10_000_000), "windows": (100_000, 1_000_000),
                    "patches": (100_000,)}
THROUGHPUT_DETECTORS = ("Diffusion-exact", "Diffusion-ivf", "IForest", "KNN")
# PyOD's windowed detectors hold size x 50 x 25 float64 values: not past this many steps
_MAX_WINDOWED_STEPS = 100_000
_ROW_FEATURES, _ROWS_FITTED, _CHUNK = 20, 10_000, 1_000_000
_IMAGES_FITTED, _PATCHES_PER_IMAGE = 1000, 9
DEFAULT_DETECTORS = ("Diffusion-nonparametric", "KNN", "IForest")


def _peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def run_one(dataset, detector, data_dir, device, threads, seed=0):
    """Fit and score one detector on one full-size dataset; returns a result dict."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    from skdiffad.datasets import load_adbench

    set_threads(threads)
    X, y = load_adbench(dataset, data_dir=data_dir)
    run = prepare(X, y, "semi", seed, max_train=None, max_test=None, name=dataset)
    del X, y
    make = select_detectors([detector])[detector]
    det = make(seed, run["X_train"].shape[1], device)
    base = _peak_rss_mib()
    start = time.perf_counter()
    det.fit(run["X_train"])
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    scores = det.decision_function(run["X_test"])
    score_s = time.perf_counter() - start
    n_test = len(run["y_test"])
    return {
        "dataset": dataset, "detector": detector,
        "n_train": int(run["X_train"].shape[0]), "n_test": int(n_test),
        "d": int(run["X_train"].shape[1]),
        "auroc": float(roc_auc_score(run["y_test"], scores)),
        "aupr": float(average_precision_score(run["y_test"], scores)),
        "fit_s": fit_s, "score_s": score_s, "rows_per_s": n_test / score_s,
        "peak_rss_mib": _peak_rss_mib(), "peak_above_data_mib": _peak_rss_mib() - base,
    }


# ---------------------------------------------------------------- throughput
def _rows(n, seed):
    return np.random.default_rng(seed).standard_normal((n, _ROW_FEATURES), dtype=np.float32)


def _row_chunks(size):
    """The scored rows, in 1M-row chunks each drawn from its own seed."""
    return [(1000 + i, min(_CHUNK, size - start)) for i, start in enumerate(range(0, size, _CHUNK))]


def _blobs(n, seed):
    """``n`` 28 x 28 images of three smooth random blobs each."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28].astype(np.float32)
    images = np.zeros((n, 28, 28), dtype=np.float32)
    for _ in range(3):
        cy, cx = rng.uniform(6, 22, (2, n, 1, 1)).astype(np.float32)
        width = rng.uniform(2, 5, (n, 1, 1)).astype(np.float32)
        images += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width ** 2))
    return images


def _throughput_detector(kind, name, seed):
    from pyod.models.iforest import IForest
    from pyod.models.knn import KNN

    from skdiffad import DiffusionImageDetector, DiffusionTSDetector, TabDiffusionDetector

    if name.startswith("Diffusion-"):
        cls = {"rows": TabDiffusionDetector, "windows": DiffusionTSDetector,
               "patches": DiffusionImageDetector}[kind]
        return cls(random_state=seed, device="cpu", search=name[len("Diffusion-"):])
    inner = {"IForest": lambda: IForest(random_state=seed), "KNN": KNN}[name]()
    if kind == "windows":
        from pyod.models.ts_od import TimeSeriesOD

        return TimeSeriesOD(detector=inner)
    return inner


def run_throughput(kind, size, detector, threads, seed=0):
    """Fit one detector and score ``size`` rows, steps or patches; a result dict."""
    set_threads(threads)
    det = _throughput_detector(kind, detector, seed)
    diffusion = detector.startswith("Diffusion-")
    if kind == "rows":
        fit_data = _rows(_ROWS_FITTED, seed)
    elif kind == "windows":
        from benchmarks.timeseries import SPEED_ANOMALIES
        from skdiffad.datasets import make_timeseries_anomalies

        series, _ = make_timeseries_anomalies(n_timestamps=size, n_channels=25,
                                              n_anomalies=SPEED_ANOMALIES, random_state=seed)
        fit_data = series[:10_000]
    else:
        fit_data = _blobs(_IMAGES_FITTED, seed)
        test = _blobs(size // _PATCHES_PER_IMAGE, seed + 1)
    if kind == "patches" and not diffusion:
        fit_data = fit_data.reshape(len(fit_data), -1)
        test = test.reshape(len(test), -1)
    base = _peak_rss_mib()
    start = time.perf_counter()
    det.fit(fit_data)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    if kind == "rows" and diffusion and size > _CHUNK:
        import dask
        import dask.array as da

        chunks = [da.from_delayed(dask.delayed(_rows)(n, s), (n, _ROW_FEATURES), np.float32)
                  for s, n in _row_chunks(size)]
        with dask.config.set(scheduler="synchronous"):
            scores = np.asarray(det.decision_function(da.concatenate(chunks)).compute())
    elif kind == "rows":
        scores = np.concatenate([det.decision_function(_rows(n, s)) for s, n in _row_chunks(size)])
    elif kind == "windows":
        scores = det.decision_function(series)
    else:
        scores = det.decision_function(test)
    score_s = time.perf_counter() - start
    n_scored = size if kind != "patches" else len(test) * _PATCHES_PER_IMAGE
    if len(scores) != (size if kind != "patches" else len(test)) or not np.isfinite(scores).all():
        raise RuntimeError(f"{detector}: {len(scores)} scores, finite: {np.isfinite(scores).all()}")
    return {"kind": kind, "size": int(size), "detector": detector, "fit_s": fit_s,
            "score_s": score_s, "per_s": n_scored / score_s,
            "peak_rss_mib": _peak_rss_mib(), "peak_above_data_mib": _peak_rss_mib() - base}


def _throughput_table(rows):
    lines = ["| kind | scored | detector | fit s | score s | scored per s | "
             "ratio to IForest | peak RSS MiB | peak above data MiB |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    reference = {(r["kind"], r["size"]): r["per_s"] for r in rows
                 if r.get("detector") == "IForest" and "error" not in r}
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['kind']} | {r['size']:,} | {r['detector']} | failed: "
                         f"{r['error']} |")
            continue
        ref = reference.get((r["kind"], r["size"]))
        ratio = f"{r['per_s'] / ref:.2f}x" if ref else "-"
        lines.append(f"| {r['kind']} | {r['size']:,} | {r['detector']} | {r['fit_s']:.2f} | "
                     f"{r['score_s']:.2f} | {r['per_s']:,.0f} | {ratio} | "
                     f"{r['peak_rss_mib']:.0f} | {r['peak_above_data_mib']:.0f} |")
    return "\n".join(lines)


def _child(args, data_dir):
    return [sys.executable, "-m", "benchmarks.scale", "--device", args.device,
            "--threads", str(args.threads), "--data-dir", str(data_dir)]


def _run_child(cmd, row):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return {**row, "error": tail}
    return json.loads(lines[-1][len("RESULT "):])


def throughput(args, data_dir):
    """Every (kind, size, detector) of ``--throughput`` in its own process."""
    kinds = args.kinds.split(",")
    detectors = args.detectors.split(",") if args.detectors else THROUGHPUT_DETECTORS
    sizes = [int(v) for v in args.sizes.split(",")] if args.sizes else None
    rows = []
    for kind in kinds:
        for size in sizes or THROUGHPUT_SIZES[kind]:
            for detector in detectors:
                if (kind == "windows" and not detector.startswith("Diffusion-")
                        and size > _MAX_WINDOWED_STEPS):
                    continue
                row = {"kind": kind, "size": size, "detector": detector}
                cmd = _child(args, data_dir) + ["--one-throughput", kind, str(size), detector]
                rows.append(_run_child(cmd, row))
                print(_throughput_table(rows).splitlines()[-1], flush=True)
    return rows


def _table(rows):
    lines = ["| dataset | detector | rows fitted | rows scored | d | AUROC | AUPR | fit s | "
             "score s | scored rows/s | peak RSS MiB | peak above data MiB |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['dataset']} | {r['detector']} | failed: {r['error']} |")
            continue
        lines.append(
            f"| {r['dataset']} | {r['detector']} | {r['n_train']} | {r['n_test']} | {r['d']} | "
            f"{r['auroc']:.3f} | {r['aupr']:.3f} | {r['fit_s']:.2f} | {r['score_s']:.2f} | "
            f"{r['rows_per_s']:,.0f} | {r['peak_rss_mib']:.0f} | {r['peak_above_data_mib']:.0f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser)
    parser.set_defaults(threads=2)
    parser.add_argument("--datasets", default=",".join(DEFAULT_DATASETS))
    parser.add_argument("--detectors", default=None,
                        help=f"comma list from: {', '.join(DETECTORS)} (default: "
                             f"{','.join(DEFAULT_DETECTORS)}); with --throughput from "
                             f"{','.join(THROUGHPUT_DETECTORS)} (default: all)")
    parser.add_argument("--throughput", action="store_true",
                        help="the search throughput of issue #28 instead (module docs)")
    parser.add_argument("--kinds", default="rows,windows,patches",
                        help="--throughput: comma list of rows, windows, patches")
    parser.add_argument("--sizes", default=None,
                        help="--throughput: comma list of sizes scored (default per kind)")
    parser.add_argument("--one-throughput", nargs=3, metavar=("KIND", "SIZE", "DETECTOR"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--one", nargs=2, metavar=("DATASET", "DETECTOR"),
                        help=argparse.SUPPRESS)  # internal: run one in this process
    args = parser.parse_args(argv)
    data_dir = resolve_data_dir(args.data_dir)
    if args.one:
        result = run_one(*args.one, data_dir, args.device, args.threads)
        print("RESULT " + json.dumps(result))
        return 0
    if args.one_throughput:
        kind, size, detector = args.one_throughput
        print("RESULT " + json.dumps(run_throughput(kind, int(size), detector, args.threads)))
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.throughput:
        rows = throughput(args, data_dir)
        notes = environment_notes(command_line("benchmarks.scale", argv), args.threads,
                                  args.device)
        text = "\n".join(summary_lines("Search throughput", notes)) + "\n\n" \
            + _throughput_table(rows) + "\n"
        (out / "throughput_summary.md").write_text(text)
        (out / "throughput_runs.json").write_text(json.dumps(rows, indent=1))
        print(f"wrote {out / 'throughput_summary.md'}")
        return 0
    rows = []
    for dataset in args.datasets.split(","):
        for detector in (args.detectors or ",".join(DEFAULT_DETECTORS)).split(","):
            cmd = [sys.executable, "-m", "benchmarks.scale", "--one", dataset, detector,
                   "--device", args.device, "--threads", str(args.threads),
                   "--data-dir", str(data_dir)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode or not lines:
                tail = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
                row = {"dataset": dataset, "detector": detector, "error": tail}
            else:
                row = json.loads(lines[-1][len("RESULT "):])
            rows.append(row)
            print(_table([row]).splitlines()[-1], flush=True)
    notes = environment_notes(command_line("benchmarks.scale", argv), args.threads,
                              args.device)
    text = "\n".join(summary_lines("Scale benchmark", notes)) + "\n\n" + _table(rows) + "\n"
    (out / "scale_summary.md").write_text(text)
    (out / "scale_runs.json").write_text(json.dumps(rows, indent=1))
    print(f"wrote {out / 'scale_summary.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
