"""Cost of ``novelty=False``: fit and scoring time and peak memory against PyOD's KNN.

``TabDiffusionDetector(novelty=False)`` looks at ``ceil(contamination x n_stored)``
neighbours per row (1000 at the defaults), and its fit scores every training
row. Each detector runs in a fresh process on ``n x d`` standard-normal rows:
fit on all of them, then score the first 10 000; reported are the seconds and
the growth of the process's peak resident memory over the fit and scoring
(imports and data are loaded first, so their memory is not counted).

Usage::

    python -m benchmarks.outlier_cost                 # 20 000 x 5
    python -m benchmarks.outlier_cost --rows 60000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

DETECTORS = ("novelty=False", "default", "KNN")


def _child(name, rows, features):
    from pyod.models.knn import KNN

    from skdiffad import TabDiffusionDetector

    X = np.random.default_rng(0).normal(size=(rows, features))
    det = {"novelty=False": lambda: TabDiffusionDetector(novelty=False, random_state=0,
                                                         device="cpu"),
           "default": lambda: TabDiffusionDetector(random_state=0, device="cpu"),
           "KNN": KNN}[name]()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    det.fit(X)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    det.decision_function(X[:10_000])
    score_s = time.perf_counter() - start
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024.0  # KiB
    print(json.dumps({"detector": name, "fit_s": fit_s, "score_s": score_s,
                      "peak_rss_growth_mib": grown}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--features", type=int, default=5)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.rows, args.features)
        return 0
    print(f"{args.rows} x {args.features} rows; fit on all, score 10 000\n")
    print("| detector | fit s | score s | peak RSS growth MiB |\n|---|---:|---:|---:|")
    for name in DETECTORS:
        out = subprocess.run([sys.executable, "-m", "benchmarks.outlier_cost", "--child", name,
                              "--rows", str(args.rows), "--features", str(args.features)],
                             capture_output=True, text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {name} | {row['fit_s']:.2f} | {row['score_s']:.2f} | "
              f"{row['peak_rss_growth_mib']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
