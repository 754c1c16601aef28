"""The main job in five minutes: diffusion detectors against PyOD baselines.

Run from the repository root (``make demo`` does the same)::

    python -m benchmarks.demo

No download is needed. The datasets are built from data scikit-learn ships and
from :func:`skdiffad.datasets.make_tabular_anomalies`:

- ``sklearn_breast_cancer``: benign tumours are normal; malignant ones, subsampled
  to 10% of the rows, are the anomalies;
- ``sklearn_wine_1``, ``sklearn_digits_0``: one class (wine cultivar 1, the digit 0)
  is normal and a random 10% of rows from the other classes are the anomalies;
- ``synthetic_dependency``: anomalies that keep every feature's distribution but
  break the correlations, from the generator (1000 rows, 8 features).

When the ADBench files are found (under ``--data-dir``, else ``$SKDIFFAD_DATA``,
else the ``shared/data`` folder next to the checkout, found from this file's
location: :func:`benchmarks.tabular.resolve_data_dir`), four small ADBench sets are
added (:data:`DEMO_ADBENCH`); without them the demo runs on the rest.
The whole demo takes about four minutes on one CPU core.

A second, shorter part runs :class:`~skdiffad.DiffusionTSDetector` against PyOD's
windowed time-series detectors on three generated machines (1, 3 and 8 sensors,
:func:`synthetic_series`), with the protocol of :mod:`benchmarks.timeseries`;
its table goes to ``benchmarks/results/demo_timeseries_*``.

Every detector is run under the semi-supervised (one-class) protocol of
:mod:`benchmarks.tabular`, seed 0: train on half of the normal rows, test on the
rest plus every anomaly. Each ``Diffusion-<scoring>`` row is
``TabDiffusionDetector(scoring=...)`` with every other setting at its default; the
row of the default ``scoring`` is the detector exactly as a user gets it. The table and the runs go to ``benchmarks/results/demo_*``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.tabular import (
    add_run_arguments,
    environment_notes,
    resolve_data_dir,
    run_benchmark,
    select_detectors,
    set_threads,
    summarise,
)
from skdiffad import TabDiffusionDetector
from skdiffad.datasets import (
    list_adbench,
    load_adbench,
    make_tabular_anomalies,
    make_timeseries_anomalies,
)

DEMO_DETECTORS = [
    "Diffusion-nonparametric", "Diffusion-time", "Diffusion-reconstruction", "Diffusion-density", "Diffusion-score",
    "IForest", "KNN", "LOF", "ECOD", "OCSVM", "HBOS",
]
# A diffusion fit costs about the same on any small table (a fixed step budget), so
# the demo's time is set by the number of datasets: eight keep it under five
# minutes on one CPU core. Left out: 42_WBC and synthetic_local (every detector
# scores close to 1.0 on them) and 45_wine (the UCI wine data of sklearn_wine_1).
DEMO_ADBENCH = ["4_breastw", "6_cardio", "14_glass", "47_yeast"]
ANOMALY_SHARE = 0.10
TS_DEMO_DETECTORS = ["Diffusion-default", "Diffusion-imputation", "TSOD-IForest", "TSOD-KNN",
                     "TSOD-LOF", "SpectralResidual"]


def _one_class(X, target, normal_class, rng, share=ANOMALY_SHARE):
    """``normal_class`` rows are normal; other rows, subsampled to ``share`` of the total, are anomalies."""
    normal = np.flatnonzero(target == normal_class)
    others = np.flatnonzero(target != normal_class)
    n_anomalies = int(round(share / (1 - share) * len(normal)))
    anomalies = rng.choice(others, size=min(n_anomalies, len(others)), replace=False)
    rows = np.sort(np.concatenate([normal, anomalies]))
    return X[rows].astype(np.float64), (target[rows] != normal_class).astype(int)


def sklearn_datasets(random_state=0):
    """Anomaly-detection sets made from scikit-learn's bundled data and the generator.

    Parameters
    ----------
    random_state : int, default=0
        Seeds which anomaly rows are kept and the synthetic tables.

    Returns
    -------
    datasets : dict
        Name -> ``(X, y)``, ``y`` = 1 for anomalies.
    """
    from sklearn.datasets import load_breast_cancer, load_digits, load_wine

    rng = np.random.default_rng(random_state)
    cancer, wine, digits = load_breast_cancer(), load_wine(), load_digits()
    datasets = {
        # target 1 = benign, so benign is the normal class
        "sklearn_breast_cancer": _one_class(cancer.data, cancer.target, 1, rng),
        "sklearn_wine_1": _one_class(wine.data, wine.target, 1, rng),
        "sklearn_digits_0": _one_class(digits.data, digits.target, 0, rng),
    }
    # Correlations broken, marginals kept: invisible to per-feature detectors.
    datasets["synthetic_dependency"] = make_tabular_anomalies(
        n_samples=1000, n_features=8, contamination=0.05, kind="dependency",
        random_state=random_state)
    return datasets


def adbench_datasets(data_dir=None, names=DEMO_ADBENCH):
    """The small ADBench sets of the demo that exist under ``data_dir`` (may be none).

    ``data_dir=None`` uses :func:`benchmarks.tabular.resolve_data_dir`'s default.
    """
    data_dir = resolve_data_dir(data_dir)
    available = set(list_adbench(data_dir))
    return {name: load_adbench(name, data_dir) for name in names if name in available}


def synthetic_series(random_state=0):
    """Three generated machines (1, 3 and 8 sensors) for the time-series part.

    Each is :func:`~skdiffad.datasets.make_timeseries_anomalies` with 8 anomalies
    over 8000 steps; the detectors train on the first 3000 steps of the same
    machine generated without anomalies (normal operation) and score the rest.
    """
    out = {}
    for k, channels in enumerate((1, 3, 8)):
        seed = random_state + k
        X, y = make_timeseries_anomalies(8000, channels, n_anomalies=8, random_state=seed)
        normal, _ = make_timeseries_anomalies(8000, channels, n_anomalies=0, random_state=seed)
        out[("synthetic", f"machine_{channels}ch")] = {
            "X_train": normal[:3000], "X_test": X[3000:], "y_test": y[3000:]}
    return out


def timeseries_demo(out, device, command, threads):
    """Time-series part: DiffusionTSDetector against PyOD's windowed detectors."""
    from benchmarks import timeseries

    runs = timeseries.run_benchmark(synthetic_series(), TS_DEMO_DETECTORS, seeds=[0],
                                    device=device, csv_path=out / "demo_timeseries_runs.csv")
    notes = [command, f"{threads} thread(s)",
             "Diffusion-default is DiffusionTSDetector() as a user gets it; "
             "Diffusion-imputation changes only `scoring`. Baselines use PyOD defaults."]
    text = timeseries.summarise(runs, title="skdiffad demo: time series", notes=notes)
    (out / "demo_timeseries_summary.md").write_text(text + "\n")
    print("\n" + text, flush=True)
    return runs


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.demo",
        description="Diffusion detectors vs fast PyOD baselines on small tables, no download.")
    add_run_arguments(parser)  # the ADBench sets under --data-dir are used when present
    parser.add_argument("--no-adbench", action="store_true",
                        help="use only the datasets built from scikit-learn's data")
    return parser.parse_args(argv)


def main(argv=None):
    """Build the datasets, run the detectors, print and write the tables."""
    start = time.perf_counter()
    args = _parse_args(argv)
    set_threads(args.threads)
    datasets = sklearn_datasets()
    data_dir = resolve_data_dir(args.data_dir)
    if not args.no_adbench:
        found = adbench_datasets(data_dir)
        datasets.update(found)
        print(f"ADBench sets from {data_dir}: {', '.join(found) or 'none found'}", flush=True)
    detectors = select_detectors(DEMO_DETECTORS)
    print(f"{len(datasets)} datasets x {len(detectors)} detectors, semi-supervised "
          "protocol, seed 0", flush=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = run_benchmark(datasets, detectors, protocols=["semi"], seeds=[0],
                         device=args.device, csv_path=out / "demo_runs.csv")
    elapsed = time.perf_counter() - start
    command = "python -m benchmarks.demo " + " ".join(sys.argv[1:] if argv is None else argv)
    notes = environment_notes(command.strip(), args.threads, args.device,
                              deep_baselines=False) + [
        f"Diffusion-{TabDiffusionDetector().scoring} is TabDiffusionDetector() with its "
        "default settings; the other Diffusion rows change only `scoring`. Baselines "
        "use PyOD defaults.",
        f"Wall time: {elapsed:.0f} s (data, warm-up and all runs).",
    ]
    text = summarise(runs, title="skdiffad demo: diffusion detectors vs PyOD baselines",
                     notes=notes)
    (out / "demo_summary.md").write_text(text + "\n")
    print("\n" + text, flush=True)
    print(f"\nwrote {out / 'demo_runs.csv'} and {out / 'demo_summary.md'} "
          f"in {elapsed:.0f} s", flush=True)
    timeseries_demo(out, args.device, command.strip(), args.threads)
    print(f"wrote {out / 'demo_timeseries_runs.csv'} and {out / 'demo_timeseries_summary.md'}; "
          f"demo done in {time.perf_counter() - start:.0f} s", flush=True)
    return runs


if __name__ == "__main__":
    main()
