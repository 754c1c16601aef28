"""Threshold calibration from generated anomalies, on SKAB (issue #13, series).

A detector's ``threshold_`` comes from ``contamination``: the share of anomalies
the user expects, which is rarely known. A labelled series lets a threshold be
chosen instead -- and :meth:`skdiffad.AnomalyGenerator.inject` makes one from
normal data. This study asks whether that threshold beats ``contamination``.

Run from the repository root::

    python -m benchmarks.calibration                     # the 34 SKAB runs
    python -m benchmarks.calibration --max-series 5      # a quick look

Protocol, per SKAB run (the data README; its first 400 rows are normal
operation, the rest is scored, as in :mod:`benchmarks.timeseries`):

1. The detector (``DiffusionTSDetector`` with its defaults) is fitted on rows
   0-199; rows 200-399, unseen by it, are the calibration series.
2. ``AnomalyGenerator`` (a ``DiffusionTSDetector(denoiser="unet",
   window_size=32)``, every series kind, strength 1) is fitted on rows 0-399
   (normal data only) and plants :data:`N_PLANTED` anomalies into the
   calibration series.
3. Arms, all with the same fitted detector and its scores of the test part:

   - ``contamination``: ``predict`` (PyOD's threshold at the training scores'
     ``1 - contamination`` quantile, ``contamination=0.1``);
   - ``generated``: the threshold of the best range-F1 on the calibration
     series with its planted anomalies (:func:`skdiffad.metrics.best_range_f1`);
   - ``oracle``: the best range-F1 on the test part itself (an upper bound no
     threshold rule can pass).

Metric: range-F1 (Tatbul et al., flat bias, no existence reward) of the test
part, and the rate of flagged steps. Written to ``<out>/calibration.csv`` and
``<out>/calibration_summary.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._common import RESULTS_DIR, command_line, resolve_data_dir, set_threads
from skdiffad import AnomalyGenerator, DiffusionTSDetector
from skdiffad.datasets import list_timeseries, load_timeseries
from skdiffad.metrics import best_range_f1, range_f1

#: Anomalies planted into the 200-step calibration series (6 windows of 32 fit).
N_PLANTED = 3
#: Rows of the detector's training part; the next ones up to 400 calibrate.
DETECTOR_ROWS = 200
ARMS = ("contamination", "generated", "oracle")


def calibrate(series, seed=0):
    """The three arms on one SKAB run: a list of result dicts."""
    X_train, X_test, y_test = series["X_train"], series["X_test"], series["y_test"]
    start = time.perf_counter()
    detector = DiffusionTSDetector(random_state=seed).fit(X_train[:DETECTOR_ROWS])
    fit_s = time.perf_counter() - start
    scores = detector.decision_function(X_test)
    start = time.perf_counter()
    generator = AnomalyGenerator(
        DiffusionTSDetector(denoiser="unet", window_size=32), random_state=seed
    ).fit(X_train)
    planted, y_planted = generator.inject(X_train[DETECTOR_ROWS:], N_PLANTED)
    gen_s = time.perf_counter() - start
    _, threshold = best_range_f1(y_planted, detector.decision_function(planted))
    predictions = {
        # predict() would score X_test again: PyOD's rule on the scores at hand
        "contamination": (scores > detector.threshold_).astype(int),
        "generated": (scores >= threshold).astype(int),
    }
    rows = []
    for arm in ARMS:
        if arm == "oracle":
            f1, _ = best_range_f1(y_test, scores)
            flagged = np.nan
        else:
            f1 = range_f1(y_test, predictions[arm])
            flagged = float(predictions[arm].mean())
        rows.append({"series": series["name"], "seed": seed, "arm": arm, "range_f1": f1,
                     "flagged": flagged, "anomaly_rate": float(y_test.mean()),
                     "fit_s": fit_s, "gen_s": gen_s})
    return rows


def summarise(runs, command):
    table = runs.pivot_table(index="series", columns="arm", values="range_f1")
    mean = table.mean()
    wins = int((table["generated"] > table["contamination"]).sum())
    ties = int((table["generated"] == table["contamination"]).sum())
    flagged = runs.pivot_table(index="series", columns="arm", values="flagged").mean()
    lines = [
        "# Threshold calibration from generated anomalies (SKAB)", "",
        f"- Command: `{command}`",
        (f"- {len(table)} SKAB runs; detector: `DiffusionTSDetector()` fitted on rows "
         f"0-{DETECTOR_ROWS - 1}; generator: `AnomalyGenerator(DiffusionTSDetector("
         f"denoiser='unet', window_size=32))` on rows 0-399, {N_PLANTED} anomalies planted "
         f"into rows {DETECTOR_ROWS}-399."),
        (f"- Mean generator time per run: {runs['gen_s'].mean():.1f} s; detector fit "
         f"{runs['fit_s'].mean():.1f} s (CPU)."), "",
        "| arm | mean range-F1 | mean share of steps flagged |",
        "|---|---:|---:|",
    ]
    for arm in ARMS:
        lines.append(f"| {arm} | {mean[arm]:.3f} | "
                     + ("-" if arm == "oracle" else f"{flagged[arm]:.3f}") + " |")
    lines += ["", (f"`generated` beats `contamination` on {wins} of {len(table)} runs "
                   f"({ties} ties); mean test anomaly rate "
                   f"{runs.groupby('series')['anomaly_rate'].first().mean():.3f}."), ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.calibration",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--max-series", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(RESULTS_DIR / "calibration"))
    args = parser.parse_args(argv)
    set_threads(args.threads)
    data_dir = resolve_data_dir(args.data_dir)
    names = list_timeseries("SKAB", data_dir)
    if args.max_series:
        names = names[:: max(1, len(names) // args.max_series)][: args.max_series]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in names:
        result = calibrate(load_timeseries("SKAB", name, data_dir), args.seed)
        rows += result
        print(name, " ".join(f"{r['arm']}={r['range_f1']:.3f}" for r in result), flush=True)
        pd.DataFrame(rows).to_csv(out / "calibration.csv", index=False)
    text = summarise(pd.DataFrame(rows), command_line("benchmarks.calibration", argv))
    (out / "calibration_summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
