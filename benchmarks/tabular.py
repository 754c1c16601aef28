"""ADBench tabular benchmark: skdiffad's diffusion detectors against PyOD baselines.

Run from the repository root::

    python -m benchmarks.tabular                      # everything (long: hours on 2 cores)
    python -m benchmarks.tabular --quick              # the < 2000-row datasets, seed 0
    python -m benchmarks.tabular --datasets cardio,wbc --detectors iforest,diffusion-time
    python -m benchmarks.tabular --resume             # carry on after an interruption

Data: every ``.npz`` in ``<data-dir>/tabular/adbench`` (see the data README). Without
``--data-dir`` the data root is ``$SKDIFFAD_DATA`` when that is set, else the
``shared/data`` folder next to the checkout (:data:`benchmarks._common.SHARED_DATA`,
found from the scripts' location, so the working directory does not matter); see
:func:`benchmarks._common.resolve_data_dir`.

Detectors (:data:`DETECTORS`, chosen with ``--detectors``): ``TabDiffusionDetector``
with its default settings under each scoring paradigm (``Diffusion-nonparametric``
is the default detector, ``denoiser="exact", scoring="time"``: the row keeps the
name of 0.1's ``scoring="nonparametric"``; ``-time``, ``-reconstruction``,
``-density`` and ``-score`` are the trained MLP, ``denoiser="mlp"`` with that
``scoring``; ``Diffusion-nonparametric-outlier`` is the default with
``novelty=False``, for contaminated training data), and the PyOD baselines IForest,
KNN, LOF, ECOD, COPOD, OCSVM, PCA, HBOS, CBLOF, AutoEncoder and DeepSVDD with PyOD's
defaults, ``random_state`` set to the seed where the constructor takes one. Only the
deep baselines' epochs are changed, to keep a CPU run affordable: AutoEncoder trains
PyOD's default 10 epochs, DeepSVDD 20 instead of 100.

Protocols (``--protocols``):

- ``semi`` (one-class): train on a random half of the normal rows, test on the
  other normal rows plus every anomaly; features standardised with the training
  rows' mean and standard deviation.
- ``unsup``: fit on all rows (anomalies included) and score the same rows;
  features standardised with all rows' statistics.

Subsampling of large sets, seeded per (dataset, seed) and recorded per run in the
``train_subsampled`` / ``test_subsampled`` columns:

- ``semi``: more than ``--max-train`` training rows -> a uniform random subset of
  them; more than ``--max-test`` test rows -> a stratified random subset (the
  anomaly rate is kept).
- ``unsup``: the rows scored are all rows, or a stratified random subset of
  ``--max-test`` rows; the rows fitted are the rows scored, or a uniform random
  subset of ``--max-train`` of them. The fitted rows are thus always among the
  scored ones, as in the uncapped protocol, and the standardisation still uses
  every row of the dataset.

Each finished run is appended at once to ``<out>/tabular_runs.csv``, so
``--resume`` skips the (dataset, protocol, seed, detector) rows already there
(failed runs included: delete their rows to retry them). At the end
``tabular_summary.md`` and ``tabular_auroc.png`` are written and the tables printed.

A detector that raises does not stop the run: its AUROC/AUPR are NaN, the error
text is kept in the ``error`` column, and the summary counts the failures.

Timing: ``fit_s`` and ``score_s`` are ``time.perf_counter`` around ``fit`` and
``decision_function``. Every detector is first fitted once on a tiny table
(:func:`warm_up`), so one-off costs such as numba compilation are not charged to
the first dataset. Torch and BLAS use one thread unless ``--threads`` says more.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from pyod.models.auto_encoder import AutoEncoder
from pyod.models.cblof import CBLOF
from pyod.models.copod import COPOD
from pyod.models.deep_svdd import DeepSVDD
from pyod.models.ecod import ECOD
from pyod.models.hbos import HBOS
from pyod.models.iforest import IForest
from pyod.models.knn import KNN
from pyod.models.lof import LOF
from pyod.models.ocsvm import OCSVM
from pyod.models.pca import PCA
from sklearn.metrics import average_precision_score, roc_auc_score

from benchmarks._common import (
    SHARDS_DEVICE,
    append_row,
    benchmark_parser,
    choose_names,
    command_line,
    dataset_order,
    elapsed_text,
    environment_notes,
    error_message,
    error_text,
    markdown_table,
    merge_run_files,
    merged_from,
    resolve_data_dir,
    results_csv,
    select_from,
    set_threads,
    start_runs_csv,
    summary_lines,
    warm_up_budget,
)
from skdiffad import TabDiffusionDetector
from skdiffad.datasets import list_adbench, load_adbench, semi_supervised_split

PROTOCOLS = ("semi", "unsup")
DIFFUSION_PREFIX = "Diffusion"

# Epochs of PyOD's deep baselines, kept moderate so the whole benchmark runs on a
# 2-core CPU: AutoEncoder keeps PyOD's default (10); DeepSVDD drops from 100 to 20.
AUTOENCODER_EPOCHS = 10
DEEPSVDD_EPOCHS = 20
#: The summary's note on the deep baselines' settings.
DEEP_BASELINES_NOTE = (f"Deep baselines: AutoEncoder epoch_num={AUTOENCODER_EPOCHS}, DeepSVDD "
                       f"epochs={DEEPSVDD_EPOCHS}; every other setting is the library default.")


# ---------------------------------------------------------------- detectors
def _diffusion(denoiser, scoring, **params):
    def make(seed, n_features, device):
        return TabDiffusionDetector(denoiser=denoiser, scoring=scoring, random_state=seed,
                                    device=device, **params)
    return make


def _pyod_device(device):
    return None if device == "auto" else device  # None: PyOD picks CUDA when visible


#: Every detector of the benchmark: name -> factory(seed, n_features, device).
#: Settings not given here are the library defaults. Adding a detector is one line.
#: The Diffusion rows keep their 0.1 names (the labels of the RESULTS tables):
#: ``-nonparametric`` is the exact model's diffusion time, the others the trained MLP.
DETECTORS = {
    "Diffusion-nonparametric": _diffusion("exact", "time"),
    "Diffusion-nonparametric-outlier": _diffusion("exact", "time", novelty=False),
    "Diffusion-ivf": _diffusion("exact", "time", search="ivf"),
    "Diffusion-ivf-outlier": _diffusion("exact", "time", novelty=False, search="ivf"),
    "Diffusion-time": _diffusion("mlp", "time"),
    "Diffusion-reconstruction": _diffusion("mlp", "reconstruction"),
    "Diffusion-density": _diffusion("mlp", "density"),
    "Diffusion-score": _diffusion("mlp", "score"),
    "IForest": lambda seed, d, device: IForest(random_state=seed),
    "KNN": lambda seed, d, device: KNN(),
    "LOF": lambda seed, d, device: LOF(),
    "ECOD": lambda seed, d, device: ECOD(),
    "COPOD": lambda seed, d, device: COPOD(),
    "OCSVM": lambda seed, d, device: OCSVM(),
    "PCA": lambda seed, d, device: PCA(random_state=seed),
    "HBOS": lambda seed, d, device: HBOS(),
    "CBLOF": lambda seed, d, device: CBLOF(random_state=seed),
    "AutoEncoder": lambda seed, d, device: AutoEncoder(
        epoch_num=AUTOENCODER_EPOCHS, random_state=seed, verbose=0,
        device=_pyod_device(device)),
    "DeepSVDD": lambda seed, d, device: DeepSVDD(
        n_features=d, epochs=DEEPSVDD_EPOCHS, random_state=seed, verbose=0),
}

RUN_COLUMNS = [
    "dataset", "protocol", "seed", "detector", "auroc", "aupr", "fit_s", "score_s",
    "n_train", "n_test", "n_test_anomalies", "d", "train_subsampled", "test_subsampled",
    "error",
]


def select_detectors(names=None) -> dict:
    """:func:`benchmarks._common.select_from` over this module's :data:`DETECTORS`."""
    return select_from(DETECTORS, names)


# ------------------------------------------------------------- preparation
def _standardise(X_fit_stats, *arrays):
    mean = X_fit_stats.mean(axis=0)
    std = X_fit_stats.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    return [(np.asarray(a, dtype=np.float64) - mean) / std for a in arrays]


def _stratified_subsample(y, size, rng):
    """Indices of about ``size`` rows with the anomaly rate of ``y`` (at least one per class)."""
    picked = []
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        k = min(len(rows), max(1, int(round(size * len(rows) / len(y)))))
        picked.append(rng.choice(rows, size=k, replace=False))
    return np.sort(np.concatenate(picked))


def _subsample(n, size, rng):
    return np.sort(rng.choice(n, size=size, replace=False))


def prepare(X, y, protocol, seed, max_train=10_000, max_test=50_000, name=""):
    """Training and test matrices of one (dataset, protocol, seed), as the module doc says.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The features.
    y : ndarray of shape (n_samples,)
        Labels, 1 = anomaly.
    protocol : {"semi", "unsup"}
        The evaluation protocol.
    seed : int
        Seeds the split (:func:`skdiffad.datasets.semi_supervised_split` gets it as is)
        and the subsampling (mixed with ``name`` so datasets draw independently).
    max_train, max_test : int or None
        Caps on fitted and scored rows; ``None`` means no cap.
    name : str, default=""
        Dataset name, used only to seed the subsampling.

    Returns
    -------
    run : dict
        ``X_train``, ``X_test``, ``y_test`` and the ``train_subsampled`` /
        ``test_subsampled`` flags.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y).astype(int)
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    max_train = math.inf if max_train is None else max_train
    max_test = math.inf if max_test is None else max_test
    if protocol == "semi":
        X_train, X_test, y_test = semi_supervised_split(X, y, random_state=seed)
        train_sub, test_sub = len(X_train) > max_train, len(X_test) > max_test
        if train_sub:
            X_train = X_train[_subsample(len(X_train), max_train, rng)]
        if test_sub:
            keep = _stratified_subsample(y_test, max_test, rng)
            X_test, y_test = X_test[keep], y_test[keep]
        X_train, X_test = _standardise(X_train, X_train, X_test)
    elif protocol == "unsup":
        (X_all,) = _standardise(X, X)
        scored = np.arange(len(y))
        test_sub = len(y) > max_test
        if test_sub:
            scored = _stratified_subsample(y, max_test, rng)
        train_sub = len(scored) > max_train
        fitted = scored[_subsample(len(scored), max_train, rng)] if train_sub else scored
        X_train, X_test, y_test = X_all[fitted], X_all[scored], y[scored]
    else:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    return {"X_train": X_train, "X_test": X_test, "y_test": y_test,
            "train_subsampled": bool(train_sub), "test_subsampled": bool(test_sub)}


# ---------------------------------------------------------------- running
def evaluate(make_detector, run, seed, device="auto"):
    """Fit one detector on ``run["X_train"]``, score ``run["X_test"]``, never raise.

    Returns
    -------
    result : dict
        ``auroc``, ``aupr``, ``fit_s``, ``score_s`` (NaN where not reached) and
        ``error`` (empty, or ``"ExceptionType: message"``).
    """
    result = {"auroc": np.nan, "aupr": np.nan, "fit_s": np.nan, "score_s": np.nan,
              "error": ""}
    try:
        detector = make_detector(seed, run["X_train"].shape[1], device)
        start = time.perf_counter()
        detector.fit(run["X_train"])
        result["fit_s"] = time.perf_counter() - start
        start = time.perf_counter()
        scores = np.asarray(detector.decision_function(run["X_test"]), dtype=np.float64)
        result["score_s"] = time.perf_counter() - start
        if not np.isfinite(scores).all():
            raise FloatingPointError(f"{int((~np.isfinite(scores)).sum())} non-finite scores")
        result["auroc"] = roc_auc_score(run["y_test"], scores)
        result["aupr"] = average_precision_score(run["y_test"], scores)
    except Exception as exc:  # noqa: BLE001 - one detector must not end the benchmark
        result["error"] = error_message(exc)
    return result


def warm_up(detectors, device="auto"):
    """Fit and score every detector once on a tiny table, results discarded.

    The first call of a library pays one-off costs (lazy imports, numba
    compilation, thread-pool start-up: several seconds for HBOS, CBLOF and the
    torch models) that would otherwise be charged to the first dataset's timings.
    Training budgets are set to one step or epoch here
    (:func:`benchmarks._common.warm_up_budget`), since only the first call matters.
    """
    from skdiffad.datasets import make_tabular_anomalies

    X, _ = make_tabular_anomalies(n_samples=64, n_features=4, random_state=0)
    for make_detector in detectors.values():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _fit_once(make_detector, X, device)


def _fit_once(make_detector, X, device):
    try:
        detector = make_detector(0, X.shape[1], device)
        detector.set_params(**warm_up_budget(detector.get_params()))
        detector.fit(X).decision_function(X)
    except Exception:  # noqa: BLE001 - a failing detector fails again, recorded, later
        pass


def run_benchmark(datasets, detectors=None, protocols=PROTOCOLS, seeds=(0, 1, 2), *,
                  max_train=10_000, max_test=50_000, device="auto", csv_path=None,
                  resume=False, verbose=True, warm=True):
    """Run every (dataset, protocol, seed, detector) and collect the results.

    Parameters
    ----------
    datasets : dict
        Name -> ``(X, y)`` or a zero-argument callable returning it (loaded only
        when one of its runs is still to do). ``y``: 1 = anomaly.
    detectors : None, str, list of str or dict, default=None
        Names from :data:`DETECTORS` (``None``: all of them), or a dict
        name -> ``factory(seed, n_features, device)`` returning a PyOD-style detector.
    protocols : iterable of {"semi", "unsup"}, default=("semi", "unsup")
        The evaluation protocols (see the module docstring).
    seeds : iterable of int, default=(0, 1, 2)
        Seeds of the split, the subsampling and the detectors' ``random_state``.
    max_train, max_test : int or None, default=10_000, 50_000
        Caps on fitted and scored rows.
    device : str, default="auto"
        Passed to the diffusion detectors (and PyOD's AutoEncoder).
    csv_path : path-like or None, default=None
        Append each finished run to this CSV as soon as it ends.
    resume : bool, default=False
        Keep ``csv_path``'s rows and skip the runs they hold; otherwise the file is
        started afresh.
    verbose : bool, default=True
        Print one progress line per run.
    warm : bool, default=True
        Call :func:`warm_up` before the first timed run.

    Returns
    -------
    runs : pandas.DataFrame
        One row per run of this selection (resumed rows included), columns
        :data:`RUN_COLUMNS`.

    Examples
    --------
    >>> from skdiffad.datasets import make_tabular_anomalies
    >>> data = {"toy": make_tabular_anomalies(n_samples=300, random_state=0)}
    >>> runs = run_benchmark(data, ["IForest", "ECOD"], protocols=["semi"], seeds=[0],
    ...                      verbose=False, warm=False)
    >>> runs[["detector", "auroc"]].shape
    (2, 2)
    """
    if not isinstance(detectors, dict):
        detectors = select_detectors(detectors)
    protocols, seeds = list(protocols), [int(s) for s in seeds]
    for protocol in protocols:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")

    csv_path, previous = start_runs_csv(csv_path, resume, RUN_COLUMNS)
    done = set(zip(previous["dataset"], previous["protocol"],
                   previous["seed"].astype(int), previous["detector"]))

    total = len(datasets) * len(protocols) * len(seeds) * len(detectors)
    rows, count = [], 0
    for name, data in datasets.items():
        todo = [(p, s, d) for p in protocols for s in seeds for d in detectors
                if (name, p, s, d) not in done]
        count += len(protocols) * len(seeds) * len(detectors) - len(todo)
        if not todo:
            continue
        if warm:
            warm_up(detectors, device)
            warm = False
        X, y = data() if callable(data) else data
        for protocol in protocols:
            for seed in seeds:
                pending = [d for p, s, d in todo if p == protocol and s == seed]
                if not pending:
                    continue
                run = prepare(X, y, protocol, seed, max_train, max_test, name=name)
                for detector in pending:
                    count += 1
                    result = evaluate(detectors[detector], run, seed, device)
                    row = {"dataset": name, "protocol": protocol, "seed": seed,
                           "detector": detector, **result,
                           "n_train": len(run["X_train"]), "n_test": len(run["X_test"]),
                           "n_test_anomalies": int(run["y_test"].sum()),
                           "d": run["X_train"].shape[1],
                           "train_subsampled": run["train_subsampled"],
                           "test_subsampled": run["test_subsampled"]}
                    rows.append(row)
                    if csv_path is not None:
                        append_row(csv_path, row, RUN_COLUMNS)
                    if verbose:
                        _print_progress(count, total, row)
        del X, y

    runs = pd.DataFrame(rows, columns=RUN_COLUMNS)
    if len(previous):
        keep = (previous["dataset"].isin(list(datasets))
                & previous["protocol"].isin(protocols)
                & previous["seed"].astype(int).isin(seeds)
                & previous["detector"].isin(list(detectors)))
        runs = pd.concat([previous[keep], runs], ignore_index=True)
    return runs.astype({"seed": int, "train_subsampled": bool, "test_subsampled": bool})


def _print_progress(count, total, row):
    width = len(str(total))
    outcome = (f"AUROC={row['auroc']:.3f} AUPR={row['aupr']:.3f}" if not row["error"]
               else f"FAILED {row['error'][:100]}")
    print(f"[{count:>{width}}/{total}] {row['dataset']} {row['protocol']} "
          f"seed={row['seed']} {row['detector']}: {outcome} "
          f"fit={row['fit_s']:.2f}s score={row['score_s']:.2f}s", flush=True)


# ---------------------------------------------------------------- summary
def detector_table(runs):
    """Per-detector summary of one protocol's runs, best mean AUROC first.

    Per-dataset scores are averaged over seeds first; ranks (1 = best) are taken per
    dataset among the detectors that produced a score there.

    Parameters
    ----------
    runs : pandas.DataFrame
        Rows of :func:`run_benchmark` for one protocol.

    Returns
    -------
    table : pandas.DataFrame
        Indexed by detector.
    """
    auroc = runs.pivot_table(index="dataset", columns="detector", values="auroc",
                             aggfunc="mean", dropna=False)
    aupr = runs.pivot_table(index="dataset", columns="detector", values="aupr",
                            aggfunc="mean", dropna=False)
    by_detector = runs.groupby("detector")
    table = pd.DataFrame({
        "mean AUROC": auroc.mean(),
        "mean AUPR": aupr.mean(),
        "mean rank": auroc.rank(axis=1, ascending=False).mean(),
        "datasets": auroc.notna().sum(),
        "median fit s": by_detector["fit_s"].median(),
        "median score s": by_detector["score_s"].median(),
        "total s": by_detector["fit_s"].sum() + by_detector["score_s"].sum(),
        "failures": by_detector["error"].apply(lambda e: (e != "").sum()),
    })
    table = table.astype({"datasets": int, "failures": int})
    return table.sort_values(["mean AUROC", "mean rank"], ascending=[False, True])


def dataset_table(runs, order=None):
    """Seed-averaged AUROC per dataset (rows) and detector (columns).

    The best detector of each dataset is marked in bold, and datasets that were
    subsampled in any run carry a dagger.
    """
    auroc = runs.pivot_table(index="dataset", columns="detector", values="auroc",
                             aggfunc="mean", dropna=False)
    auroc = auroc.reindex(index=dataset_order(auroc.index), columns=order or auroc.columns)
    sub = runs.groupby("dataset")[["train_subsampled", "test_subsampled"]].any().any(axis=1)
    rounded = auroc.round(3)
    cells = auroc.map(lambda v: "–" if np.isnan(v) else f"{v:.3f}")
    best = rounded.max(axis=1)
    for dataset in auroc.index:
        for detector in auroc.columns:
            if rounded.loc[dataset, detector] == best[dataset]:
                cells.loc[dataset, detector] = f"**{cells.loc[dataset, detector]}**"
    cells.index = [f"{d} †" if sub.get(d, False) else d for d in cells.index]
    return cells


def summarise(runs, title="Tabular anomaly detection benchmark", notes=()):
    """Markdown summary of :func:`run_benchmark`'s results.

    For each protocol: a table with one row per detector (mean AUROC, mean AUPR,
    mean rank of AUROC across datasets, median fit and score seconds, total
    seconds, failures), sorted by mean AUROC, then the per-dataset AUROC table,
    the subsampled datasets and the failures.

    Parameters
    ----------
    runs : pandas.DataFrame
        Output of :func:`run_benchmark` (or ``tabular_runs.csv`` read back).
    title : str
        First heading.
    notes : iterable of str
        Lines printed under the title (the command, versions, settings).

    Returns
    -------
    text : str
        Markdown.
    """
    runs = runs.copy()
    runs["error"] = error_text(runs["error"])
    lines = summary_lines(title, notes)
    lines += ["- Per-dataset AUROC/AUPR are averaged over seeds, then over datasets; "
              "mean rank: 1 = best AUROC on a dataset, among the detectors that "
              "produced a score there.", ""]
    for protocol in [p for p in PROTOCOLS if p in set(runs["protocol"])] + sorted(
            set(runs["protocol"]) - set(PROTOCOLS)):
        part = runs[runs["protocol"] == protocol]
        seeds = sorted(int(s) for s in part["seed"].unique())
        table = detector_table(part)
        label = {"semi": "semi-supervised (one-class)", "unsup": "unsupervised"}.get(
            protocol, protocol)
        lines += [f"## Protocol: {label}", "",
                  f"{part['dataset'].nunique()} datasets, seeds {seeds}, "
                  f"{len(part)} runs.", "",
                  markdown_table(table, "detector"), "",
                  "### AUROC per dataset (mean over seeds)", "",
                  markdown_table(dataset_table(part, list(table.index)), "dataset"), ""]
        subsampled = part[part["train_subsampled"] | part["test_subsampled"]]
        if len(subsampled):
            lines.append("† subsampled (rows fitted / scored, seed "
                         f"{seeds[0]}): " + ", ".join(
                             f"{d} ({g['n_train'].iloc[0]} / {g['n_test'].iloc[0]})"
                             for d, g in subsampled[subsampled["seed"] == seeds[0]]
                             .groupby("dataset", sort=False)))
            lines.append("")
        failed = part[part["error"] != ""]
        if len(failed):
            lines += ["### Failures", ""]
            for (detector, error), group in failed.groupby(["detector", "error"]):
                names = ", ".join(dataset_order(group["dataset"]))
                lines.append(f"- {detector} ({len(group)} runs; {names}): {error}")
            lines.append("")
    return "\n".join(lines)


def plot_auroc(runs, path):
    """Box plot of per-dataset AUROC by detector, one panel per protocol.

    Diffusion detectors are drawn in colour, the baselines in grey; each dot is one
    dataset (mean over seeds).
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    protocols = [p for p in PROTOCOLS if p in set(runs["protocol"])]
    n_detectors = runs["detector"].nunique()
    fig, axes = plt.subplots(1, len(protocols), squeeze=False,
                             figsize=(5.5 * len(protocols), 0.4 * n_detectors + 1.5))
    for ax, protocol in zip(axes[0], protocols):
        part = runs[runs["protocol"] == protocol]
        auroc = part.pivot_table(index="dataset", columns="detector", values="auroc",
                                 aggfunc="mean")
        order = auroc.median().sort_values().index
        values = [auroc[d].dropna().to_numpy() for d in order]
        boxes = ax.boxplot(values, orientation="horizontal", patch_artist=True, widths=0.6,
                           medianprops={"color": "black"}, showfliers=False)
        rng = np.random.default_rng(0)
        for i, (detector, patch, vals) in enumerate(zip(order, boxes["boxes"], values), 1):
            diffusion = detector.startswith(DIFFUSION_PREFIX)
            patch.set_facecolor("tab:orange" if diffusion else "lightgrey")
            ax.scatter(vals, i + rng.uniform(-0.15, 0.15, len(vals)), s=8,
                       color="tab:red" if diffusion else "dimgrey", zorder=3)
        ax.set_yticks(range(1, len(order) + 1), order)
        ax.set_xlabel("AUROC per dataset (mean over seeds)")
        ax.set_title({"semi": "semi-supervised", "unsup": "unsupervised"}[protocol])
        ax.axvline(0.5, color="grey", linestyle=":", linewidth=1)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------- command line
def adbench_names(data_dir):
    """The ADBench sets found under ``data_dir``, or ``SystemExit`` saying where none were."""
    names = list_adbench(data_dir)
    if not names:
        raise SystemExit(f"no ADBench .npz files in {Path(data_dir) / 'tabular' / 'adbench'}; "
                         "pass --data-dir or set SKDIFFAD_DATA (see the data README)")
    return names


def _notes(command, threads, device):
    return environment_notes(command, threads, device) + [DEEP_BASELINES_NOTE]


def write_outputs(runs, out, notes):
    """Write ``tabular_summary.md`` and ``tabular_auroc.png`` to ``out``; returns the Markdown."""
    out = Path(out)
    text = summarise(runs, notes=notes)
    (out / "tabular_summary.md").write_text(text + "\n")
    plot_auroc(runs, out / "tabular_auroc.png")
    return text


def _parse_args(argv):
    parser = benchmark_parser(
        "python -m benchmarks.tabular",
        "ADBench tabular benchmark: diffusion detectors vs PyOD baselines.",
        DETECTORS, "tabular_runs.csv")
    parser.add_argument("--datasets", default=None,
                        help="comma list of dataset names or substrings (default: all)")
    parser.add_argument("--protocols", default="semi,unsup",
                        help="semi, unsup or both (default: %(default)s)")
    parser.add_argument("--seeds", default=None,
                        help="comma list of seeds (default: 0,1,2; 0 with --quick)")
    parser.add_argument("--max-train", type=int, default=10_000,
                        help="cap on fitted rows, random subsample (default: %(default)s)")
    parser.add_argument("--max-test", type=int, default=50_000,
                        help="cap on scored rows, stratified random subsample "
                             "(default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: only datasets with < 2000 rows, seed 0")
    return parser.parse_args(argv)


def summarise_directories(directories, out, command):
    """Merge the ``tabular_runs.csv`` of several runs and write one summary.

    Lets a long benchmark run as parallel shards (one process per core, each with
    its own ``--out``), then be summarised as a single table.
    """
    runs = merge_run_files(directories, "tabular_runs.csv",
                           ["dataset", "protocol", "seed", "detector"], out)
    text = write_outputs(runs, out, _notes(command, 1, SHARDS_DEVICE) + [merged_from(directories)])
    print(text, flush=True)
    return runs


def _choose_datasets(names, spec):
    chosen = choose_names(names, spec)
    if not spec:
        return chosen
    wanted = [s.strip().lower() for s in spec.split(",") if s.strip()]
    missing = [w for w in wanted if not any(w in n.lower() for n in names)]
    if missing:
        print(f"warning: no dataset matches {missing}", file=sys.stderr, flush=True)
    return chosen


def main(argv=None):
    """Command-line entry point; see ``python -m benchmarks.tabular --help``."""
    args = _parse_args(argv)
    if args.summarise:
        return summarise_directories(args.summarise, args.out,
                                     command_line("benchmarks.tabular", argv))
    set_threads(args.threads)
    data_dir = resolve_data_dir(args.data_dir)
    names = _choose_datasets(adbench_names(data_dir), args.datasets)
    seeds = [int(s) for s in (args.seeds or ("0" if args.quick else "0,1,2")).split(",")]
    protocols = [p.strip() for p in args.protocols.split(",") if p.strip()]
    detectors = select_detectors(args.detectors)

    def loader(name):
        return lambda: load_adbench(name, data_dir)

    if args.quick:
        datasets = {}
        for name in names:
            X, y = load_adbench(name, data_dir)
            if len(y) < 2000:
                datasets[name] = (X, y)
    else:
        datasets = {name: loader(name) for name in names}
    if not datasets:
        raise SystemExit("no dataset selected")

    out = Path(args.out)
    csv_path = results_csv(out, "tabular_runs.csv", args.resume)
    print(f"{len(datasets)} datasets x {len(protocols)} protocols x {len(seeds)} seeds x "
          f"{len(detectors)} detectors; results -> {csv_path}", flush=True)

    start = time.perf_counter()
    runs = run_benchmark(datasets, detectors, protocols, seeds, max_train=args.max_train,
                         max_test=args.max_test, device=args.device, csv_path=csv_path,
                         resume=args.resume)
    elapsed = time.perf_counter() - start
    notes = _notes(command_line("benchmarks.tabular", argv), args.threads, args.device) + [
        f"Data: {data_dir / 'tabular' / 'adbench'}; caps: {args.max_train} fitted rows, "
        f"{args.max_test} scored rows (see the module docstring for the protocol).",
        f"Wall time of this invocation: {elapsed_text(elapsed)}.",
    ]
    text = write_outputs(runs, out, notes)
    print("\n" + text, flush=True)
    print(f"\nwrote {csv_path}, {out / 'tabular_summary.md'}, {out / 'tabular_auroc.png'}",
          flush=True)
    return runs


if __name__ == "__main__":
    main()
