"""Scale benchmark: the default detector on the largest ADBench sets, uncapped.

Each (dataset, detector) runs in a fresh process so that its peak memory is its
own. The semi-supervised protocol is used at full size (no row caps): fit on half
of the normal rows, score the other half and every anomaly. Reported per run:
AUROC, AUPR, fit and score seconds, scoring throughput (rows per second) and the
process's peak resident memory above what the loaded data already used.

Usage::

    python -m benchmarks.scale                       # 11_donors and 16_http
    python -m benchmarks.scale --datasets 11_donors --detectors Diffusion-nonparametric

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


from benchmarks._common import (add_run_arguments, command_line, environment_notes,
                                resolve_data_dir, set_threads, summary_lines)
from benchmarks.tabular import DETECTORS, prepare, select_detectors

DEFAULT_DATASETS = ("11_donors", "16_http")
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
    parser.add_argument("--detectors", default=",".join(DEFAULT_DETECTORS),
                        help=f"comma list from: {', '.join(DETECTORS)}")
    parser.add_argument("--one", nargs=2, metavar=("DATASET", "DETECTOR"),
                        help=argparse.SUPPRESS)  # internal: run one in this process
    args = parser.parse_args(argv)
    data_dir = resolve_data_dir(args.data_dir)
    if args.one:
        result = run_one(*args.one, data_dir, args.device, args.threads)
        print("RESULT " + json.dumps(result))
        return 0
    rows = []
    for dataset in args.datasets.split(","):
        for detector in args.detectors.split(","):
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
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    notes = environment_notes(command_line("benchmarks.scale", argv), args.threads,
                              args.device)
    text = "\n".join(summary_lines("Scale benchmark", notes)) + "\n\n" + _table(rows) + "\n"
    (out / "scale_summary.md").write_text(text)
    (out / "scale_runs.json").write_text(json.dumps(rows, indent=1))
    print(f"wrote {out / 'scale_summary.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
