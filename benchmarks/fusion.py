"""Fusion benchmark (issue #14): FusionDetector against one detector on all columns, the best
single modality and PyOD's score combiners, clean and with one modality corrupted.

Run from the repository root::

    python -m benchmarks.fusion                                  # every collection (minutes)
    python -m benchmarks.fusion --collections SKAB --max-units 5  # a quick look
    python -m benchmarks.fusion --summarise fusion_out            # tables from a finished run

Collections (``--collections``) and their modalities:

- ``SKAB`` (34 runs, the **tuning** split): the eight sensors in four physical groups,
  ``vibration`` (both accelerometers), ``electrical`` (current, voltage), ``flow``
  (pressure, volume flow) and ``temperature`` (temperature, thermocouple); each
  member is ``DiffusionTSDetector()``; fit on a run's first 400 steps, score the rest.
- ``SMAP_MSL`` (81 channels): the telemetry channel (``telemetry``, dimension 0) and the
  command one-hots (``commands``), each with ``DiffusionTSDetector()``; the files'
  ``train`` and ``test`` parts.
- ``mnist`` / ``fashion_mnist``: two-view tables built from every one-class set of each
  (ten MNIST digits, eight Fashion-MNIST classes in the data; :data:`IMAGE_SETS_PER_COLLECTION` caps them): ``pixels`` (the 784 grey levels
  / 255) and ``gradients`` (a histogram of gradient orientations, 8 bins in each of 4x4
  cells, weighted by gradient magnitude: :func:`gradient_histograms`), each with
  ``TabDiffusionDetector()``. Per seed: a random half of the normal images (at most
  :data:`MAX_TRAIN`) is fitted on; the other normal images and every anomaly are scored
  (at most :data:`MAX_TEST`, stratified).

Only SKAB's results may choose a default (fusion mode, combiner); SMAP/MSL and the two
image collections are the **evaluation** split and only report.

Arms (one row each per unit, seed and condition):

- ``single:<modality>``: the modality's member alone;
- ``concat``: the member's detector type on every modality's columns at once (the
  plain concatenation); ``early`` is ``FusionDetector(fusion="early")`` with the same
  detector type, which on these tables is that same concatenation;
- ``late`` (``FusionDetector()``, the default: z-scores, mean), ``late-max``,
  ``late-fisher`` (tail probabilities, ``combine="sum"``) and ``dynamic``;
- ``pyod-average``, ``pyod-maximization``, ``pyod-median``, ``pyod-aom``: PyOD's
  combiners (``pyod.models.combination``) over the single members' test scores,
  standardised with their training scores (``pyod.utils.utility.standardizer``);
- ``pyod-iforest``: PyOD's IForest on all columns (windowed by PyOD's
  ``TimeSeriesOD`` for series), the PyOD baseline detector.

Conditions: ``clean``, then the same fitted detectors on test data with one modality
corrupted (:func:`corrupt`) on :data:`CORRUPT_FRACTION` of the test rows (a contiguous
stretch of a series; random images): ``noise`` (Gaussian noise of
:data:`NOISE_SCALE` training standard deviations added), ``flatline`` (a series stuck
at the stretch's first value; an image view at its training median) or ``missing``
(NaN). Labels are unchanged: a corrupted modality is a nuisance, not an anomaly. The
corrupted modality rotates over the units (unit ``i`` corrupts modality ``i mod M``).

Metrics: series VUS-PR (the time-series benchmark's first metric, window 100) and
AUROC; images AUROC and AUPR; ``metric`` is the first of each pair. Output
(``--out``, default ``benchmarks/results/fusion``): ``fusion_runs.csv`` (a row per
unit, seed, condition and arm, appended as each unit ends; ``--resume`` skips units
already there) and ``fusion_summary.md``: mean ``metric`` per collection and arm
(clean), the mean over collections with the best single modality per collection, and
the mean drop under each corruption; ``fusion.png`` draws both for the main arms. An arm
that raises gets NaN and its error text.

Torch and BLAS use one thread unless ``--threads`` says more.
"""

from __future__ import annotations

import argparse
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._common import (
    RESULTS_DIR,
    add_run_arguments,
    append_row,
    command_line,
    elapsed_text,
    environment_notes,
    error_message,
    error_text,
    markdown_table,
    read_runs,
    resolve_data_dir,
    set_threads,
    start_runs_csv,
)

SKAB_GROUPS = {"vibration": [0, 1], "electrical": [2, 6], "flow": [3, 7],
               "temperature": [4, 5]}
SMAP_GROUPS = {"telemetry": [0], "commands": slice(1, None)}
IMAGE_COLLECTIONS = ("mnist", "fashion_mnist")
COLLECTIONS = ("SKAB", "SMAP_MSL", *IMAGE_COLLECTIONS)
TUNING = ("SKAB",)
IMAGE_SETS_PER_COLLECTION = None  # every set; an int keeps the first ones
MAX_TRAIN = 2000
MAX_TEST = 2000
CORRUPT_FRACTION = 0.3
NOISE_SCALE = 3.0
CONDITIONS = ("clean", "noise", "flatline", "missing")
FUSION_ARMS = {
    "late": {},
    "late-max": {"combine": "max"},
    "late-fisher": {"calibration": "tail", "combine": "sum"},
    "dynamic": {"fusion": "dynamic"},
    "early": {"fusion": "early"},
}
PYOD_COMBINERS = ("average", "maximization", "median", "aom")
CSV_NAME = "fusion_runs.csv"
SUMMARY_NAME = "fusion_summary.md"
FIGURE_NAME = "fusion.png"
FIGURE_ARMS = ("best single", "concat", "late", "late-max", "dynamic", "pyod-aom")
#: Columns of ``fusion_runs.csv`` read back as text (unit names may look like numbers).
TEXT_COLUMNS = ("unit",)
COLUMNS = ["collection", "split", "unit", "seed", "condition", "corrupted", "arm", "metric",
           "metric2", "fit_s", "score_s", "error"]


# ---------------------------------------------------------------- data
def gradient_histograms(images, cells=4, bins=8):
    """Per image, a histogram of gradient orientations in each of ``cells`` x ``cells``
    cells, weighted by the gradient magnitude and scaled to unit total per image."""
    images = np.asarray(images, dtype=np.float64)
    gy, gx = np.gradient(images, axis=(1, 2))
    magnitude = np.hypot(gx, gy)
    orientation = np.mod(np.arctan2(gy, gx), np.pi)  # unsigned, [0, pi)
    which = np.minimum((orientation / np.pi * bins).astype(int), bins - 1)
    n, height, width = images.shape
    rows = np.minimum(np.arange(height) * cells // height, cells - 1)
    cols = np.minimum(np.arange(width) * cells // width, cells - 1)
    cell = rows[:, None] * cells + cols[None, :]
    index = (cell[None] * bins + which).reshape(n, -1)
    features = np.zeros((n, cells * cells * bins))
    np.add.at(features, (np.repeat(np.arange(n), height * width), index.ravel()),
              magnitude.reshape(n, -1).ravel())
    return features / np.maximum(features.sum(axis=1, keepdims=True), 1e-12)


def _rng(*keys):
    return np.random.default_rng([zlib.crc32(str(k).encode()) for k in keys])


def image_unit(name, seed, data_dir):
    """Train and test tables (pixels, then gradient histograms) of one one-class set."""
    from skdiffad.datasets import load_one_class_images

    X, y = load_one_class_images(name, data_dir)
    rng = _rng("fusion", name, seed)
    normal, anomalies = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    normal = rng.permutation(normal)
    train, rest = normal[: len(normal) // 2][:MAX_TRAIN], normal[len(normal) // 2:]
    share = len(anomalies) / (len(anomalies) + len(rest))
    n_anomalies = min(len(anomalies), int(round(MAX_TEST * share)))
    test = np.r_[rng.choice(rest, min(len(rest), MAX_TEST - n_anomalies), replace=False),
                 rng.choice(anomalies, n_anomalies, replace=False)]

    def table(rows):
        images = X[rows].astype(np.float64) / 255.0
        return np.hstack([images.reshape(len(rows), -1), gradient_histograms(images)])

    d = X.shape[1] * X.shape[2]
    return {"X_train": table(train), "X_test": table(test), "y_test": y[test].astype(int),
            "groups": {"pixels": slice(0, d), "gradients": slice(d, None)}, "kind": "table"}


def series_unit(collection, name, data_dir):
    from skdiffad.datasets import load_timeseries

    series = load_timeseries(collection, name, data_dir)
    groups = SKAB_GROUPS if collection == "SKAB" else SMAP_GROUPS
    return {"X_train": series["X_train"], "X_test": series["X_test"],
            "y_test": series["y_test"].astype(int), "groups": groups, "kind": "series"}


def collection_units(collection, data_dir, max_units=None):
    """Unit name -> loader(seed) of every unit of a collection."""
    if collection in IMAGE_COLLECTIONS:
        from skdiffad.datasets import list_images

        names = list_images(collection, data_dir)[:IMAGE_SETS_PER_COLLECTION]
        units = {n: (lambda seed, n=n: image_unit(n, seed, data_dir)) for n in names}
    else:
        from skdiffad.datasets import list_timeseries

        names = list_timeseries(collection, data_dir)
        units = {n: (lambda seed, n=n: series_unit(collection, n, data_dir)) for n in names}
    if max_units:
        keep = np.unique(np.linspace(0, len(units) - 1, max_units).round().astype(int))
        units = {n: units[n] for i, n in enumerate(units) if i in set(keep)}
    return units


def corrupt(X, columns, kind, rng, X_train, series=True, fraction=CORRUPT_FRACTION):
    """A copy of ``X`` with ``columns`` corrupted on ``fraction`` of the rows.

    Returns the copy and the boolean mask of the corrupted rows.
    """
    X = np.array(X, dtype=np.float64)
    n = len(X)
    size = max(1, int(round(fraction * n)))
    rows = np.zeros(n, dtype=bool)
    if series:
        start = int(rng.integers(0, n - size + 1))
        rows[start:start + size] = True
    else:
        rows[rng.choice(n, size, replace=False)] = True
    block = X[:, columns]
    if kind == "noise":
        scale = NOISE_SCALE * np.maximum(np.nanstd(X_train[:, columns], axis=0), 1e-12)
        block[rows] += rng.normal(size=(size, block.shape[1])) * scale
    elif kind == "flatline":
        if series:
            block[rows] = block[np.flatnonzero(rows)[0]]
        else:
            block[rows] = np.nanmedian(X_train[:, columns], axis=0)
    elif kind == "missing":
        block[rows] = np.nan
    else:
        raise ValueError(f"unknown corruption {kind!r}")
    X[:, columns] = block
    return X, rows


# ---------------------------------------------------------------- detectors
def member(kind, seed, device):
    if kind == "series":
        from skdiffad import DiffusionTSDetector

        return DiffusionTSDetector(random_state=seed, device=device)
    from skdiffad import TabDiffusionDetector

    return TabDiffusionDetector(random_state=seed, device=device)


def pyod_baseline(kind, seed):
    from pyod.models.iforest import IForest

    if kind == "series":
        from pyod.models.ts_od import TimeSeriesOD

        return TimeSeriesOD(detector=IForest(random_state=seed))
    return IForest(random_state=seed)


def _positions(columns, n_columns):
    return list(range(n_columns))[columns] if isinstance(columns, slice) else list(columns)


def fitted_arms(unit, seed, device="cpu"):
    """Every arm's fitted detector (or the error that stopped it), with its fit seconds."""
    from skdiffad import FusionDetector

    kind, groups = unit["kind"], unit["groups"]
    X_train = unit["X_train"]
    n_columns = X_train.shape[1]
    used = sorted(set().union(*[_positions(c, n_columns) for c in groups.values()]))
    makers = {f"single:{name}": (lambda c=columns: (_Columns(member(kind, seed, device),
                                                             _positions(c, n_columns))))
              for name, columns in groups.items()}
    makers["concat"] = lambda: _Columns(member(kind, seed, device), used)
    for arm, params in FUSION_ARMS.items():
        makers[arm] = lambda p=params: FusionDetector(
            [(name, member(kind, seed, device), columns) for name, columns in groups.items()],
            early_detector=member(kind, seed, device), **p)
    makers["pyod-iforest"] = lambda: _Columns(pyod_baseline(kind, seed), used)
    fitted = {}
    for arm, make in makers.items():
        start = time.perf_counter()
        try:
            fitted[arm] = (make().fit(X_train), time.perf_counter() - start, "")
        except Exception as exc:  # noqa: BLE001 - one arm must not end the benchmark
            fitted[arm] = (None, np.nan, error_message(exc))
    return fitted


class _Columns:
    """A detector on some columns of a table (the single and concatenated arms)."""

    def __init__(self, detector, columns):
        self.detector, self.columns = detector, columns

    def fit(self, X):
        self.detector.fit(X[:, self.columns])
        self.decision_scores_ = np.asarray(self.detector.decision_scores_, dtype=np.float64)
        return self

    def decision_function(self, X):
        return self.detector.decision_function(X[:, self.columns])


def _metrics(kind, y, scores):
    from skdiffad import metrics

    if kind == "series":
        return (float(metrics.vus_pr(y, scores, window=100)), float(metrics.auroc(y, scores)))
    return float(metrics.auroc(y, scores)), float(metrics.aupr(y, scores))


def _scored(detector, X):
    scores = np.asarray(detector.decision_function(X), dtype=np.float64).ravel()
    if len(scores) != len(X):
        raise ValueError(f"{len(scores)} scores for {len(X)} rows")
    if not np.all(np.isfinite(scores)):
        raise FloatingPointError(f"{int((~np.isfinite(scores)).sum())} non-finite scores")
    return scores


def pyod_combinations(singles):
    """PyOD's combiners over the single members' standardised scores: name -> scores."""
    from pyod.models import combination
    from pyod.utils.utility import standardizer

    train = np.column_stack([s["train"] for s in singles])
    test = np.column_stack([s["test"] for s in singles])
    _, z = standardizer(train, test)
    out = {}
    for name in PYOD_COMBINERS:
        if name == "aom":
            out[name] = combination.aom(z, n_buckets=min(2, z.shape[1]))
        else:
            out[name] = getattr(combination, name)(z)
    return {f"pyod-{name}": np.asarray(v, dtype=np.float64).ravel() for name, v in out.items()}


def evaluate_unit(collection, name, unit, seed, index, device="cpu"):
    """Rows of one unit: every arm, clean and under each corruption."""
    kind, y = unit["kind"], unit["y_test"]
    fitted = fitted_arms(unit, seed, device)
    modalities = list(unit["groups"])
    corrupted = modalities[index % len(modalities)]
    columns = _positions(unit["groups"][corrupted], unit["X_train"].shape[1])
    rows = []
    for condition in CONDITIONS:
        if condition == "clean":
            X_test, target = unit["X_test"], ""
        else:
            X_test, _ = corrupt(unit["X_test"], columns, condition,
                                _rng("corrupt", collection, name, seed, condition),
                                unit["X_train"], series=kind == "series")
            target = corrupted
        singles = []
        for arm, (detector, fit_s, error) in fitted.items():
            row = {"collection": collection, "split": "tuning" if collection in TUNING
                   else "evaluation", "unit": name, "seed": seed, "condition": condition,
                   "corrupted": target, "arm": arm, "metric": np.nan, "metric2": np.nan,
                   "fit_s": fit_s, "score_s": np.nan, "error": error}
            if detector is not None:
                try:
                    start = time.perf_counter()
                    scores = _scored(detector, X_test)
                    row["score_s"] = time.perf_counter() - start
                    row["metric"], row["metric2"] = _metrics(kind, y, scores)
                    if arm.startswith("single:"):
                        singles.append({"train": detector.decision_scores_, "test": scores})
                except Exception as exc:  # noqa: BLE001
                    row["error"] = error_message(exc)
            rows.append(row)
        combined = {}
        if len(singles) == len(modalities):
            try:
                combined = pyod_combinations(singles)
            except Exception as exc:  # noqa: BLE001
                combined = {f"pyod-{c}": exc for c in PYOD_COMBINERS}
        else:
            combined = {f"pyod-{c}": ValueError("a single member failed") for c in PYOD_COMBINERS}
        for arm, scores in combined.items():
            row = {**rows[-1], "arm": arm, "metric": np.nan, "metric2": np.nan,
                   "fit_s": np.nan, "score_s": np.nan, "error": ""}
            if isinstance(scores, Exception):
                row["error"] = error_message(scores)
            else:
                row["metric"], row["metric2"] = _metrics(kind, y, scores)
            rows.append(row)
    return rows


# ---------------------------------------------------------------- summary
def best_single(runs):
    """Per collection, the single modality with the best mean clean metric."""
    clean = runs[(runs["condition"] == "clean") & runs["arm"].str.startswith("single:")]
    means = clean.groupby(["collection", "arm"])["metric"].mean()
    return {c: means[c].idxmax() for c in means.index.get_level_values(0).unique()}


def summarise(runs, notes=()):
    runs = runs.copy()
    runs["error"] = error_text(runs["error"])
    order = [c for c in COLLECTIONS if c in set(runs["collection"])]
    best = best_single(runs)
    seen = list(dict.fromkeys(runs["arm"]))
    arms = ([a for a in seen if a.startswith("single:")]
            + [a for a in seen if not a.startswith("single:")])
    clean = runs[runs["condition"] == "clean"]
    table = clean.pivot_table(index="arm", columns="collection", values="metric",
                              aggfunc="mean").reindex(index=arms, columns=order)
    best_row = pd.Series({c: table.loc[best[c], c] for c in order}, name="best single")
    singles = [a for a in arms if a.startswith("single:")]
    table = pd.concat([table.loc[singles], best_row.to_frame().T,
                       table.drop(index=singles)])
    table["mean"] = table[order].mean(axis=1)
    counts = clean.groupby("collection")["unit"].nunique()
    table.columns = [f"{c} ({counts[c]})" if c in counts else c for c in table.columns]
    lines = ["# Fusion benchmark (issue #14)", "",
             ("Mean metric per collection (series: VUS-PR; images: AUROC), clean test "
              "data. SKAB is the tuning split; the others only report. `best single` is "
              "each collection's best single modality: " +
              ", ".join(f"{c}: {best[c][7:]}" for c in order) + "."), "",
             markdown_table(table, "arm"), ""]
    drops = []
    for condition in CONDITIONS[1:]:
        part = runs[runs["condition"] == condition]
        if not len(part):
            continue
        merged = part.merge(clean[["collection", "unit", "seed", "arm", "metric"]],
                            on=["collection", "unit", "seed", "arm"], suffixes=("", "_clean"))
        merged["drop"] = merged["metric_clean"] - merged["metric"]
        per = merged.pivot_table(index="arm", columns="collection", values="drop",
                                 aggfunc="mean").reindex(index=arms, columns=order)
        best_drop = pd.DataFrame([[per.loc[best[c], c] for c in order]], columns=order,
                                 index=["best single"])
        per = pd.concat([per.loc[singles], best_drop, per.drop(index=singles)])
        drops.append(per[order].mean(axis=1).rename(condition))
    if drops:
        frame = pd.concat(drops, axis=1)
        lines += [("Mean drop of the metric (clean minus corrupted; lower is better) with "
                   f"one modality corrupted on {CORRUPT_FRACTION:.0%} of the test rows, "
                   "mean over collections:"), "", markdown_table(frame, "arm"), ""]
    seconds = clean.groupby("arm")[["fit_s", "score_s"]].median().reindex(arms)
    lines += ["Median seconds per unit (clean):", "", markdown_table(seconds, "arm"), ""]
    failed = runs[runs["error"] != ""]
    if len(failed):
        lines += ["Failures:", ""]
        for (arm, condition), group in failed.groupby(["arm", "condition"], sort=False):
            lines.append(f"- {arm} / {condition}: {len(group)} runs, e.g. "
                         f"{group['error'].iloc[0][:160]}")
        lines.append("")
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines).rstrip() + "\n"


def plot_fusion(runs, path):
    """Two panels: the clean metric of :data:`FIGURE_ARMS` per collection, and their mean
    drop under each corruption (``best single`` is each collection's own best modality)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = [c for c in COLLECTIONS if c in set(runs["collection"])]
    best = best_single(runs)

    def arm_runs(arm, collection):
        name = best[collection] if arm == "best single" else arm
        return runs[(runs["collection"] == collection) & (runs["arm"] == name)]

    arms = [a for a in FIGURE_ARMS
            if a == "best single" or a in set(runs["arm"])]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8),
                                      gridspec_kw={"width_ratios": [len(order) + 1, 4]})
    width = 0.8 / len(arms)
    for i, arm in enumerate(arms):
        clean = [arm_runs(arm, c).query("condition == 'clean'")["metric"].mean() for c in order]
        left.bar(np.arange(len(order)) + (i - (len(arms) - 1) / 2) * width, clean, width,
                 label=arm)
        drops = []
        for condition in CONDITIONS[1:]:
            per = []
            for c in order:
                part = arm_runs(arm, c)
                base = part[part["condition"] == "clean"].set_index(["unit", "seed"])["metric"]
                hit = part[part["condition"] == condition].set_index(["unit", "seed"])["metric"]
                per.append((base - hit).mean())
            drops.append(np.nanmean(per) if np.isfinite(per).any() else np.nan)
        right.bar(np.arange(len(CONDITIONS) - 1) + (i - (len(arms) - 1) / 2) * width, drops,
                  width)
    left.set_xticks(range(len(order)), order)
    left.set_ylabel("clean metric (series VUS-PR, images AUROC)")
    left.set_ylim(0, 1)
    fig.legend(*left.get_legend_handles_labels(), loc="upper center", ncol=len(arms),
               fontsize=8)
    right.set_xticks(range(len(CONDITIONS) - 1), CONDITIONS[1:])
    right.set_ylabel("mean drop (lower is better)")
    right.axhline(0, color="black", linewidth=0.8)
    for ax in (left, right):
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- command line
def run(collections, seeds, data_dir, out, resume=False, max_units=None, device="cpu",
        verbose=True):
    csv_path, previous = start_runs_csv(Path(out) / CSV_NAME, resume, COLUMNS, TEXT_COLUMNS)
    done = set(zip(previous["collection"], previous["unit"], previous["seed"]))
    for collection in collections:
        units = collection_units(collection, data_dir, max_units)
        if not units and verbose:
            print(f"warning: no {collection} data under {data_dir}", flush=True)
        for index, (name, load) in enumerate(units.items()):
            for seed in seeds:
                if (collection, name, seed) in done:
                    continue
                start = time.perf_counter()
                rows = evaluate_unit(collection, name, load(seed), seed, index, device)
                for row in rows:
                    append_row(csv_path, row, COLUMNS)
                if verbose:
                    late = [r["metric"] for r in rows
                            if r["arm"] == "late" and r["condition"] == "clean"]
                    print(f"{collection} {name} seed {seed}: late {late[0]:.3f}, "
                          f"{time.perf_counter() - start:.0f} s", flush=True)
    return read_runs(csv_path, TEXT_COLUMNS)


def main(argv=None):
    """Command-line entry point; see ``python -m benchmarks.fusion --help``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fusion",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--collections", default=",".join(COLLECTIONS),
                        help="comma list (default: %(default)s)")
    parser.add_argument("--seeds", default="0", help="comma list (default: %(default)s)")
    parser.add_argument("--max-units", type=int, default=None,
                        help="at most this many evenly spread units per collection")
    add_run_arguments(parser, data="timeseries/ and images/", devices="the detectors",
                      device="cpu", out=RESULTS_DIR / "fusion")
    parser.add_argument("--resume", action="store_true",
                        help=f"keep <out>/{CSV_NAME} and skip the units it holds")
    parser.add_argument("--summarise", metavar="DIR", default=None,
                        help=f"run nothing: summarise DIR/{CSV_NAME} into --out")
    args = parser.parse_args(argv)
    collections = [c.strip() for c in args.collections.split(",") if c.strip()]
    unknown = sorted(set(collections) - set(COLLECTIONS))
    if unknown:
        parser.error(f"unknown collections {unknown}; choose from {', '.join(COLLECTIONS)}")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    set_threads(args.threads)
    start = time.perf_counter()
    if args.summarise:
        runs = read_runs(Path(args.summarise) / CSV_NAME, TEXT_COLUMNS)
    else:
        runs = run(collections, seeds, resolve_data_dir(args.data_dir), out, args.resume,
                   args.max_units, args.device)
    elapsed = time.perf_counter() - start
    notes = [*environment_notes(command_line("benchmarks.fusion", argv), args.threads,
                                args.device),
             f"Wall time of the last invocation: {elapsed_text(elapsed)}."]
    text = summarise(runs, notes)
    (out / SUMMARY_NAME).write_text(text)
    plot_fusion(runs, out / FIGURE_NAME)
    print("\n" + text, flush=True)
    return text


if __name__ == "__main__":
    main()
