"""Scale-out benchmark (issue #15): Dask scoring on a local cluster against one process.

Two jobs, each scored lazily by a Dask ``LocalCluster`` of 1 and of 2 worker processes
(one thread each), and in memory by this process (one thread):

- ``table``: ``TabDiffusionDetector()`` fitted on 20,000 normal rows of ADBench's largest
  set (``11_donors``, 619k x 10), scoring a table of ``--rows`` rows (10 million by default)
  drawn with replacement from all of its rows, block by block as the workers need them
  (block ``i`` is drawn from a generator seeded with ``i``, so any block can be rebuilt).
  The process scores ``--check-blocks`` of those blocks in memory: their scores must
  equal the cluster's bit for bit, and their rows per second are the single-process rate.
- ``series``: ``DiffusionTSDetector()`` fitted on the training part of SMAP channel A-1 (25
  channels), scoring a series of ``--steps`` steps (10 million by default) that repeats
  the test parts of every SMAP channel end to end. The process scores the whole series
  in memory: every step must equal the cluster's bit for bit.

- ``ddp``: the density network of ``TabDiffusionDetector(denoiser="mlp",
  scoring="density")`` trained on the same 20,000 rows by one process and by 2 gloo
  processes (``torch.distributed``, data-parallel), with the same step budget
  (:data:`DDP_PARAMS`): the ratio of their final validation losses (the same held-out
  rows and noise) and the fit seconds.

The table job also fits ``TabDiffusionDetector()`` on the lazy table with the larger
cluster: a uniform sample of ``max_samples`` rows drawn block by block (``table fit``).

- ``fit``: fitting on the lazy collections with the larger cluster, never loading them:
  ``TabDiffusionDetector(denoiser="mlp", scoring="density")``, whose network trains
  on mini-batches streamed from every row of a table of the donors' normal rows
  resampled (AUROC on 50,000 of the donors' rows, against the same detector fitted in
  memory on 20,000 normal rows), and
  ``DiffusionTSDetector()`` on the series (the scaling from a sample of steps, the
  stored windows gathered from the blocks, the training scores blockwise), against
  its fit on the whole series in this process: the correlation of the two fits'
  training scores and the ratio of their thresholds. Memory: each worker's peak and
  how far the fitting process's resident memory rose.

Per run: wall seconds of the computation (the cluster's start excluded), rows (steps) per
second, the speed-up of 2 workers over 1, how often each worker unpickled the fitted
detector (``skdiffad._dask.shipments``: 1 means shipped once, not once per block) and each
worker's peak resident memory. Results go to ``--out``: ``scale_out_runs.csv`` and
``scale_out_summary.md``.

Usage::

    python -m benchmarks.scale_out --data-dir ../shared/data           # 10M rows and steps
    python -m benchmarks.scale_out --rows 1000000 --steps 1000000      # a quicker look

Needs the ``dask`` extra (``pip install skdiffad[dask]``).
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._common import (
    RESULTS_DIR,
    command_line,
    elapsed_text,
    environment_notes,
    plain_table,
    resolve_data_dir,
    set_threads,
)

TABLE_SET = "11_donors"
SERIES_FIT = "SMAP_A-1"
TRAIN_ROWS = 20_000
CSV_NAME = "scale_out_runs.csv"
SUMMARY_NAME = "scale_out_summary.md"


def _status_mib(field):
    """A memory line of this process's ``/proc/self/status`` (``VmHWM``, ``VmRSS``) in
    MiB; NaN where there is none."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def _peak_rss_mib():
    """This process's peak resident memory since it started its program: ``VmHWM``
    (``ru_maxrss`` would carry over the peak of the process a worker was forked from)."""
    peak = _status_mib("VmHWM")
    if peak == peak:
        return peak
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _rss_mib():
    """This process's resident memory now (MiB)."""
    return _status_mib("VmRSS")


@contextlib.contextmanager
def _rss_growth():
    """How far this process's resident memory rose above its level at the start of the
    block (MiB, polled every 50 ms): what a computation in it held at its peak."""
    import threading

    base, peak, stop = _rss_mib(), [0.0], threading.Event()

    def poll():
        while not stop.wait(0.05):
            peak[0] = max(peak[0], _rss_mib())

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    result = {}
    try:
        yield result
    finally:
        stop.set()
        thread.join()
        result["mib"] = max(peak[0], _rss_mib()) - base


def _warm(data_dir):
    """Import the detectors and read the source data, as a long-lived worker has."""
    import skdiffad  # noqa: F401

    table_source(data_dir)
    series_source(data_dir)
    return _peak_rss_mib()


# ---------------------------------------------------------------- data
# Workers read the source data from disk themselves, once per process (a real job reads
# its blocks from storage; shipping the source through the graph would time the graph).
_SOURCES = {}


def table_source(data_dir):
    """``11_donors``' rows and labels."""
    key = ("table", str(data_dir))
    if key not in _SOURCES:
        data = np.load(Path(data_dir) / "tabular" / "adbench" / f"{TABLE_SET}.npz")
        _SOURCES[key] = data["X"].astype(np.float64), data["y"]
    return _SOURCES[key]


def series_source(data_dir):
    """The training part of SMAP A-1 and every SMAP channel's test part end to end."""
    key = ("series", str(data_dir))
    if key not in _SOURCES:
        from skdiffad.datasets import list_timeseries, load_timeseries

        train = load_timeseries("SMAP_MSL", SERIES_FIT, data_dir)["X_train"]
        parts = [load_timeseries("SMAP_MSL", name, data_dir)["X_test"]
                 for name in list_timeseries("SMAP_MSL", data_dir) if name.startswith("SMAP_")]
        _SOURCES[key] = train, np.concatenate([p for p in parts if p.shape[1] == train.shape[1]])
    return _SOURCES[key]


def _table_block(data_dir, size, seed, index, normal=False):
    pool = table_source(data_dir)[0]
    if normal:
        pool = _normal_rows(data_dir)
    rng = np.random.default_rng([seed, index])
    return pool[rng.integers(0, len(pool), size)]


def _normal_rows(data_dir):
    key = ("normal", str(data_dir))
    if key not in _SOURCES:
        X, y = table_source(data_dir)
        _SOURCES[key] = X[y == 0]
    return _SOURCES[key]


def _table_chunk(data_dir, seed, normal=False, block_info=None):
    info = block_info[None]
    return _table_block(data_dir, info["chunk-shape"][0], seed, info["chunk-location"][0],
                        normal)


def _blocks(n, chunk):
    return (chunk,) * (n // chunk) + ((n % chunk,) if n % chunk else ())


def table_job(data_dir, n_rows, chunk, seed=0, normal=False):
    """Training rows, the lazy table (``normal``: of the normal rows only), and a function
    that rebuilds block ``i``."""
    import dask.array as da

    X, y = table_source(data_dir)
    rng = np.random.default_rng(seed)
    train = X[rng.choice(np.flatnonzero(y == 0), TRAIN_ROWS, replace=False)]
    chunks = (_blocks(n_rows, chunk), (X.shape[1],))
    lazy = da.map_blocks(_table_chunk, str(data_dir), seed, normal, chunks=chunks,
                         dtype=np.float64, meta=np.empty((0, 0)))
    return train, lazy, lambda index: _table_block(data_dir, chunks[0][index], seed, index,
                                                   normal)


def _series_chunk(data_dir, block_info=None):
    pool = series_source(data_dir)[1]
    start, stop = block_info[None]["array-location"][0]
    return pool[np.arange(start, stop) % len(pool)]


def series_job(data_dir, n_steps, chunk):
    """Training series, the lazy series and the whole series in memory (a function)."""
    import dask.array as da

    train, pool = series_source(data_dir)
    lazy = da.map_blocks(_series_chunk, str(data_dir),
                         chunks=(_blocks(n_steps, chunk), (pool.shape[1],)),
                         dtype=np.float64, meta=np.empty((0, 0)))
    return train, lazy, lambda: pool[np.arange(n_steps) % len(pool)]


# ---------------------------------------------------------------- runs
@contextlib.contextmanager
def _cluster(n_workers, data_dir):
    """A fresh local cluster (one thread per worker) whose workers have imported
    skdiffad and read the source data, and its client."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=40) as cluster, \
            Client(cluster) as client:
        client.run(set_threads, 1)
        client.run(_warm, str(data_dir))
        yield client


def on_cluster(detector, lazy, n_workers, data_dir):
    """Compute ``detector.decision_function(lazy)`` on a fresh local cluster (its start
    and warm-up not timed)."""
    from skdiffad import _dask

    with _cluster(n_workers, data_dir) as client:
        start = time.perf_counter()
        scores = client.compute(detector.decision_function(lazy)).result()
        seconds = time.perf_counter() - start
        shipped = list(client.run(_dask.shipments).values())
        peaks = list(client.run(_peak_rss_mib).values())
    return scores, seconds, shipped, peaks


def fit_on_cluster(lazy, n_workers, data_dir):
    """Fit ``TabDiffusionDetector()`` on the lazy table (a uniform sample of
    ``max_samples`` rows drawn block by block on the cluster): seconds and worker peaks."""
    from skdiffad import TabDiffusionDetector

    with _cluster(n_workers, data_dir) as client:
        start = time.perf_counter()
        detector = TabDiffusionDetector(random_state=0).fit(lazy)
        seconds = time.perf_counter() - start
        peaks = list(client.run(_peak_rss_mib).values())
    return detector, seconds, peaks


def run_table(data_dir, n_rows, chunk, workers, check_blocks):
    from skdiffad import TabDiffusionDetector

    train, lazy, block = table_job(data_dir, n_rows, chunk)
    detector = TabDiffusionDetector(random_state=0).fit(train)
    checked = np.linspace(0, lazy.numblocks[0] - 1, check_blocks).round().astype(int)
    rows = []
    start = time.perf_counter()
    memory = [detector.decision_function(block(i)) for i in checked]
    seconds = time.perf_counter() - start
    n_checked = sum(len(m) for m in memory)
    rows.append({"job": "table", "mode": "one process, in memory", "n": n_checked,
                 "seconds": seconds, "per_second": n_checked / seconds, "exact": "",
                 "shipments": "", "peak_mib": round(_peak_rss_mib())})
    bounds = np.cumsum((0,) + lazy.chunks[0])
    for n_workers in workers:
        scores, seconds, shipped, peaks = on_cluster(detector, lazy, n_workers, data_dir)
        exact = all(np.array_equal(scores[bounds[i]:bounds[i + 1]], m)
                    for i, m in zip(checked, memory))
        rows.append({"job": "table", "mode": f"Dask, {n_workers} worker(s)", "n": n_rows,
                     "seconds": seconds, "per_second": n_rows / seconds,
                     "exact": f"{exact} ({n_checked} rows)",
                     "shipments": "/".join(map(str, shipped)),
                     "peak_mib": "/".join(str(round(p)) for p in peaks)})
    fitted, seconds, peaks = fit_on_cluster(lazy, max(workers), data_dir)
    rows.append({"job": "table fit", "mode": f"Dask, {max(workers)} worker(s)", "n": n_rows,
                 "seconds": seconds, "per_second": n_rows / seconds,
                 "exact": f"sample of {len(fitted.decision_scores_)} rows",
                 "shipments": "", "peak_mib": "/".join(str(round(p)) for p in peaks)})
    return rows


def run_series(data_dir, n_steps, chunk, workers):
    from skdiffad import DiffusionTSDetector

    train, lazy, whole = series_job(data_dir, n_steps, chunk)
    detector = DiffusionTSDetector(random_state=0).fit(train)
    series = whole()
    start = time.perf_counter()
    memory = detector.decision_function(series)
    seconds = time.perf_counter() - start
    del series
    rows = [{"job": "series", "mode": "one process, in memory", "n": n_steps,
             "seconds": seconds, "per_second": n_steps / seconds, "exact": "",
             "shipments": "", "peak_mib": round(_peak_rss_mib())}]
    for n_workers in workers:
        scores, seconds, shipped, peaks = on_cluster(detector, lazy, n_workers, data_dir)
        rows.append({"job": "series", "mode": f"Dask, {n_workers} worker(s)", "n": n_steps,
                     "seconds": seconds, "per_second": n_steps / seconds,
                     "exact": f"{np.array_equal(scores, memory)} (every step)",
                     "shipments": "/".join(map(str, shipped)),
                     "peak_mib": "/".join(str(round(p)) for p in peaks)})
    return rows


# The streamed-fit job's network: TabDiffusionDetector's density scoring, defaults
# otherwise (1000 gradient steps of 256 rows).
STREAM_PARAMS = {"denoiser": "mlp", "scoring": "density", "random_state": 0}
AUROC_ROWS = 50_000


def run_fit(data_dir, n_rows, chunk_rows, n_steps, chunk_steps, n_workers):
    """Fitting on Dask collections that are never loaded: a density network trained on
    mini-batches streamed from the 10M-row table, and ``DiffusionTSDetector()`` on the
    10M-step series, each against its in-memory fit in this process. The cluster
    workers' peaks and how far this (the fitting) process's memory rose."""
    from sklearn.metrics import roc_auc_score

    from skdiffad import DiffusionTSDetector, TabDiffusionDetector

    X, y = table_source(data_dir)
    check = np.random.default_rng(1).choice(len(X), min(AUROC_ROWS, len(X)), replace=False)
    train, lazy, _ = table_job(data_dir, n_rows, chunk_rows, normal=True)
    rows = []
    with _rss_growth() as grown:
        start = time.perf_counter()
        memory = TabDiffusionDetector(**STREAM_PARAMS).fit(train)
        seconds = time.perf_counter() - start
    auc = roc_auc_score(y[check], memory.decision_function(X[check]))
    rows.append({"job": "table fit (density network)",
                 "mode": f"one process, in memory ({len(train)} normal rows)", "n": len(train),
                 "seconds": seconds, "per_second": np.nan,
                 "exact": f"AUROC {auc:.3f}; {memory.history_['n_steps']} steps",
                 "shipments": "", "peak_mib": f"+{grown['mib']:.0f} in the process"})
    with _cluster(n_workers, data_dir) as client:
        with _rss_growth() as grown:
            start = time.perf_counter()
            streamed = TabDiffusionDetector(**STREAM_PARAMS).fit(lazy)
            seconds = time.perf_counter() - start
        peaks = list(client.run(_peak_rss_mib).values())
    history = streamed.history_
    auc = roc_auc_score(y[check], streamed.decision_function(X[check]))
    rows.append({"job": "table fit (density network)",
                 "mode": f"Dask, {n_workers} workers, streamed from every row (normal rows "
                         "resampled)", "n": n_rows,
                 "seconds": seconds, "per_second": np.nan,
                 "exact": f"AUROC {auc:.3f}; {history['n_steps']} steps; "
                          f"{history['block_loads']} of {history['streamed_blocks']} blocks "
                          f"read, at most {history['most_blocks_held']} held",
                 "shipments": "",
                 "peak_mib": "/".join(str(round(p)) for p in peaks)
                             + f"; +{grown['mib']:.0f} in the process"})

    _, lazy, whole = series_job(data_dir, n_steps, chunk_steps)
    with _cluster(n_workers, data_dir) as client:
        with _rss_growth() as grown:
            start = time.perf_counter()
            on_dask = DiffusionTSDetector(random_state=0).fit(lazy)
            seconds = time.perf_counter() - start
        peaks = list(client.run(_peak_rss_mib).values())
    dask_row = {"job": "series fit (exact)", "mode": f"Dask, {n_workers} workers", "n": n_steps,
                "seconds": seconds, "per_second": n_steps / seconds, "shipments": "",
                "peak_mib": "/".join(str(round(p)) for p in peaks)
                            + f"; +{grown['mib']:.0f} in the process"}
    series = whole()
    with _rss_growth() as grown:
        start = time.perf_counter()
        in_memory = DiffusionTSDetector(random_state=0).fit(series)
        seconds = time.perf_counter() - start
    del series
    rows.append({"job": "series fit (exact)", "mode": "one process, in memory", "n": n_steps,
                 "seconds": seconds, "per_second": n_steps / seconds, "exact": "",
                 "shipments": "", "peak_mib": f"+{grown['mib']:.0f} in the process"})
    same = np.corrcoef(on_dask.decision_scores_, in_memory.decision_scores_)[0, 1]
    scale = np.max(np.abs(on_dask.encoder_.scale_ / in_memory.encoder_.scale_ - 1))
    dask_row["exact"] = (f"training scores' correlation {same:.4f}; threshold "
                         f"{on_dask.threshold_ / in_memory.threshold_:.3f}x; scales within "
                         f"{100 * scale:.1f}% (sample of steps)")
    rows.append(dask_row)
    return rows


# The data-parallel job: the density scoring's network on the donors' training rows.
DDP_PARAMS = {"denoiser": "mlp", "scoring": "density", "batch_size": 256, "max_steps": 1000,
              "early_stopping": True, "n_iter_no_change": 10_000, "ema_decay": 0.999}


def run_ddp(data_dir, world=2):
    """1 process against ``world`` gloo processes, the same step budget: the final
    validation loss (fixed held-out rows and noise) and the fit seconds."""
    from benchmarks.gpu import check_ddp

    X, y = table_source(data_dir)
    train = X[np.random.default_rng(0).choice(np.flatnonzero(y == 0), TRAIN_ROWS,
                                              replace=False)]
    row = check_ddp("cpu", world, X=train, params=DDP_PARAMS,
                    name=f"TabDiffusionDetector(denoiser='mlp', scoring='density'), "
                         f"{TABLE_SET}")
    return [{"job": "ddp", "mode": "one process", "n": len(train),
             "seconds": row["single_fit_s"], "per_second": np.nan, "exact": "",
             "shipments": "", "peak_mib": "", "val_loss_ratio": 1.0},
            {"job": "ddp", "mode": f"DDP, {world} gloo processes", "n": len(train),
             "seconds": row["fit_s"], "per_second": np.nan,
             "exact": f"ranks equal: {row['ranks_equal']}", "shipments": "", "peak_mib": "",
             "val_loss_ratio": round(row["val_loss_ratio"], 4)}]


def summarise(runs, notes=()):
    lines = ["# Scale-out benchmark (issue #15)", "",
             "Rows (steps) per second scored; `exact`: the cluster's scores equal the "
             "in-memory ones bit for bit; `shipments`: unpickles of the fitted detector per "
             "worker; `peak MiB`: each worker's (or this process's) peak resident memory.", ""]
    table = runs.copy()
    for job, group in table.groupby("job", sort=False):
        one = group.loc[group["mode"] == "Dask, 1 worker(s)", "per_second"]
        if len(one):
            table.loc[group.index, "vs 1 worker"] = (group["per_second"] / one.iloc[0]).round(2)
    table["seconds"] = table["seconds"].round(1)
    table["per_second"] = table["per_second"].round(0).astype("Int64")
    header = ["job", "mode", "n", "seconds", "per_second", "vs 1 worker", "exact",
              "shipments", "peak_mib"] + (["val_loss_ratio"] if "val_loss_ratio" in table
                                         else [])
    table = table.reindex(columns=header).astype(object).fillna("")
    lines.append(plain_table(table.to_dict("records"), header))
    lines += [""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def main(argv=None):
    """Command-line entry point; see ``python -m benchmarks.scale_out --help``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale_out",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", default="table,series,ddp,fit",
                        help="comma list of table, series, ddp, fit (default: %(default)s)")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--steps", type=int, default=10_000_000)
    parser.add_argument("--chunk-rows", type=int, default=250_000)
    parser.add_argument("--chunk-steps", type=int, default=100_000)
    parser.add_argument("--workers", default="1,2", help="cluster sizes (default: %(default)s)")
    parser.add_argument("--check-blocks", type=int, default=4,
                        help="table blocks also scored in memory (default: %(default)s)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default=str(RESULTS_DIR / "scale_out"))
    args = parser.parse_args(argv)
    set_threads(1)
    data_dir = resolve_data_dir(args.data_dir)
    workers = [int(w) for w in args.workers.split(",")]
    jobs = [j.strip() for j in args.jobs.split(",") if j.strip()]
    unknown = sorted(set(jobs) - {"table", "series", "ddp", "fit"})
    if unknown:
        parser.error(f"unknown jobs {unknown}; choose from table, series, ddp, fit")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows = []
    if "table" in jobs:
        rows += run_table(data_dir, args.rows, args.chunk_rows, workers, args.check_blocks)
    if "series" in jobs:
        rows += run_series(data_dir, args.steps, args.chunk_steps, workers)
    if "ddp" in jobs:
        rows += run_ddp(data_dir)
    if "fit" in jobs:
        rows += run_fit(data_dir, args.rows, args.chunk_rows, args.steps, args.chunk_steps,
                        max(workers))
    runs = pd.DataFrame(rows)
    runs.to_csv(out / CSV_NAME, index=False)
    elapsed = time.perf_counter() - start
    notes = [*environment_notes(command_line("benchmarks.scale_out", argv), 1, "cpu"),
             f"Wall time: {elapsed_text(elapsed)}."]
    text = summarise(runs, notes)
    (out / SUMMARY_NAME).write_text(text)
    print(text, flush=True)
    return text


if __name__ == "__main__":
    # Run this module's own functions, not __main__'s: Dask sends functions of
    # __main__ to the workers by value, with the globals they read (the source-data
    # cache), once per task; the module's are sent by name.
    from benchmarks.scale_out import main as module_main

    module_main()
