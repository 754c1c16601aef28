"""What every benchmark script shares: data and result folders, threads, the
command-line options, the per-run CSV that lets a run resume, and the pieces of
a written summary.

The scripts of ``benchmarks/`` import these from here; none keeps a copy.

- Paths: :data:`RESULTS_DIR`, :data:`SHARED_DATA`, :func:`resolve_data_dir`.
- Threads: :func:`set_threads`.
- Command line: :func:`add_run_arguments`, :func:`benchmark_parser`,
  :func:`command_line`, :func:`select_from`, :func:`choose_names`,
  :func:`parse_shard`, :func:`take_shard`, :func:`warm_up_budget`.
- Runs: :class:`NotApplicable`, :func:`error_message`, :func:`error_text`,
  :func:`read_runs`, :func:`start_runs_csv`, :func:`results_csv`,
  :func:`append_row`, :func:`merge_run_files`.
- Summaries: :func:`summary_lines`, :func:`environment_notes`,
  :func:`merged_from`, :func:`elapsed_text`, :func:`markdown_table`,
  :func:`plain_table`, :func:`dataset_order`, :func:`stacked_tables`.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from skdiffad.datasets import DATA_ENV_VAR

# ---------------------------------------------------------------- paths
#: Where the scripts write unless ``--out`` says otherwise: ``benchmarks/results``.
RESULTS_DIR = Path(__file__).resolve().parent / "results"
#: The benchmark data next to the checkout, ``<repository>/../shared/data``, found
#: from this file's location (never from the working directory).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def resolve_data_dir(data_dir=None) -> Path:
    """The data root a benchmark script reads.

    Parameters
    ----------
    data_dir : str, path-like or None, default=None
        ``--data-dir``. When not given, the ``SKDIFFAD_DATA`` environment
        variable is used if set (as :func:`skdiffad.datasets.get_data_home`
        reads it), else :data:`SHARED_DATA`.

    Returns
    -------
    data_dir : Path
        The folder, not checked: a script that finds no data there says so (or,
        like the demo, goes on without it).
    """
    chosen = data_dir or os.environ.get(DATA_ENV_VAR)
    return Path(chosen).expanduser() if chosen else SHARED_DATA


def _shown(path):
    """``path`` relative to the repository when it lies inside it (for ``--help``)."""
    path = Path(path)
    try:
        return path.relative_to(RESULTS_DIR.parents[1]).as_posix()
    except ValueError:
        return str(path)


# ---------------------------------------------------------------- threads
def set_threads(n_threads):
    """Use ``n_threads`` for torch and for the BLAS/OpenMP pools numpy and scikit-learn use.

    The command lines default to one thread: the networks are small, so extra
    threads gain little, and on a machine shared with other jobs OpenMP threads
    that wait for a core made the diffusion fits ten times slower in our runs.

    Parameters
    ----------
    n_threads : int
        Threads per process.
    """
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n_threads)
    threadpool_limits(limits=n_threads)


# ---------------------------------------------------------------- command line
def add_run_arguments(parser, data="tabular/adbench/",
                      devices="the diffusion detectors (and PyOD's AutoEncoder)",
                      device="auto", out=RESULTS_DIR):
    """Add the options every benchmark script shares: data, device, threads, output.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        Gets ``--data-dir``, ``--device``, ``--threads`` and ``--out``, in this order.
    data : str, default="tabular/adbench/"
        The folder under the data root the script reads (for ``--help``).
    devices : str, default="the diffusion detectors (and PyOD's AutoEncoder)"
        The models that follow ``--device`` (for ``--help``).
    device : str, default="auto"
        ``--device``'s default.
    out : path-like, default=RESULTS_DIR
        ``--out``'s default.
    """
    parser.add_argument("--data-dir", default=None,
                        help=f"data root holding {data} (default: $SKDIFFAD_DATA when "
                             "set, else the shared/data folder next to the checkout, "
                             "found from the script's location, not the working "
                             f"directory: {SHARED_DATA})")
    parser.add_argument("--device", default=device,
                        help=f"device of {devices}: auto, cpu, cuda (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch / BLAS threads per process; the models are small, and "
                             "more threads slow them down badly on a busy machine "
                             "(default: %(default)s)")
    parser.add_argument("--out", default=str(out),
                        help=f"output directory (default: {_shown(out)})")


def benchmark_parser(prog, description, registry, csv_name, data="tabular/adbench/",
                     devices="the diffusion detectors (and PyOD's AutoEncoder)"):
    """An argument parser holding the options of a benchmark with a per-run CSV.

    Parameters
    ----------
    prog, description : str
        As :class:`argparse.ArgumentParser` takes them.
    registry : dict
        The script's detectors, named in ``--detectors``' help.
    csv_name : str
        The per-run CSV that ``--resume`` keeps and ``--summarise`` merges.
    data, devices : str
        Passed to :func:`add_run_arguments`.

    Returns
    -------
    parser : argparse.ArgumentParser
        With the options of :func:`add_run_arguments`, ``--detectors``,
        ``--resume`` and ``--summarise``.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_run_arguments(parser, data=data, devices=devices)
    parser.add_argument("--detectors", default=None,
                        help="comma list of detector names, case-insensitive "
                             f"(default: all of {', '.join(registry)})")
    parser.add_argument("--resume", action="store_true",
                        help=f"keep <out>/{csv_name} and skip the runs it holds")
    parser.add_argument("--summarise", nargs="+", metavar="DIR", default=None,
                        help=f"run nothing: merge the {csv_name} of these output "
                             "directories (e.g. shards run in parallel) and write the "
                             "summary and figure to --out")
    return parser


def command_line(module, argv=None):
    """The command that ran ``python -m <module>`` with ``argv`` (None: this process's)."""
    return (f"python -m {module} " + " ".join(sys.argv[1:] if argv is None else argv)).strip()


def select_from(registry, names=None) -> dict:
    """Pick entries of a registry by name, case-insensitively.

    Parameters
    ----------
    registry : dict
        Name -> factory (detectors, generators).
    names : str, iterable of str or None, default=None
        A comma-separated string or a list of names; ``None`` selects all.

    Returns
    -------
    selected : dict
        Name -> factory, in registry order.

    Raises
    ------
    ValueError
        When a name is not in the registry.
    """
    if names is None:
        return dict(registry)
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    by_lower = {name.lower(): name for name in registry}
    unknown = [n for n in names if n.strip().lower() not in by_lower]
    if unknown:
        raise ValueError(f"unknown detector(s) {unknown}; choose from {list(registry)}")
    wanted = {by_lower[n.strip().lower()] for n in names}
    return {name: make for name, make in registry.items() if name in wanted}


def choose_names(names, spec):
    """The ``names`` that an entry of the comma list ``spec`` equals or is part of.

    Matching is case-insensitive and ``names``' order is kept; an empty ``spec``
    (or None) chooses every name.
    """
    if not spec:
        return list(names)
    wanted = [s.strip().lower() for s in spec.split(",") if s.strip()]
    return [n for n in names if any(w == n.lower() or w in n.lower() for w in wanted)]


def parse_shard(text):
    """``"i/n"`` -> ``(i, n)``, shards counted from 1."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like i/n, e.g. 1/2, got {text!r}") from None
    if not 1 <= index <= count:
        raise ValueError(f"--shard i/n needs 1 <= i <= n (shards count from 1), got {text!r}")
    return index, count


def take_shard(units, shard):
    """Every ``n``-th of ``units`` from the ``i``-th on (``shard=(i, n)``; None: all).

    Dealing round-robin over a list sorted by collection gives each shard its
    share of the costly collections.
    """
    if shard is None:
        return list(units)
    index, count = shard
    return list(units)[index - 1::count]


def warm_up_budget(params):
    """The settings that cut a detector with parameters ``params`` to one step or
    epoch, for the warm-up fit whose result is discarded.

    skdiffad's budget is ``max_steps`` (its ``max_iter`` is 0.1's deprecated
    spelling, left alone); PyOD's is ``max_iter``, ``epochs`` or ``epoch_num``.
    """
    budget = "max_steps" if "max_steps" in params else "max_iter"
    return {name: 1 for name in (budget, "epochs", "epoch_num") if name in params}


# ---------------------------------------------------------------- runs
#: How the ``error`` column of a run starts when its detector does not apply.
NOT_APPLICABLE = "not applicable"


class NotApplicable(Exception):
    """Raised by a factory or a detector that cannot handle a unit by design."""


def error_message(exc):
    """The ``error`` column's text for ``exc``: ``"ExceptionType: message"`` on one line,
    ``"not applicable: message"`` for :class:`NotApplicable`, at most 300 characters."""
    message = " ".join(str(exc).split())
    if isinstance(exc, NotApplicable):
        return f"{NOT_APPLICABLE}: {message}"[:300]
    return f"{type(exc).__name__}: {message}"[:300]


def error_text(errors):
    """Error column as str, ``""`` for no error (a CSV read back gives NaN there)."""
    return errors.astype(object).where(errors.notna(), "").astype(str)


def read_runs(csv_path, text_columns=()):
    """A per-run CSV read back, its ``error`` column as :func:`error_text` gives it.

    Parameters
    ----------
    csv_path : path-like
        The CSV.
    text_columns : iterable of str, default=()
        Columns read as text even where they look like numbers (series and
        unit names, ``labelled``); a name the CSV lacks is passed over.

    Returns
    -------
    runs : pandas.DataFrame
    """
    runs = pd.read_csv(csv_path, dtype={"error": str, **{c: str for c in text_columns}})
    runs["error"] = error_text(runs["error"])
    return runs


def start_runs_csv(csv_path, resume, columns, text_columns=()):
    """Get a benchmark's per-run CSV ready: the earlier rows when resuming, else a fresh start.

    Makes the CSV's folder; without ``resume`` (or with an empty file) an existing
    CSV is deleted.

    Parameters
    ----------
    csv_path : path-like or None
        The CSV; None writes nothing.
    resume : bool
        Keep the rows already there.
    columns : list of str
        The CSV's columns, those of the empty frame returned when nothing is kept.
    text_columns : iterable of str, default=()
        Passed to :func:`read_runs`.

    Returns
    -------
    csv_path : Path or None
        ``csv_path`` as a ``Path`` (None stays None: nothing is written).
    previous : pandas.DataFrame
        The rows already there when resuming, else an empty frame with ``columns``.
        A CSV written before some of ``columns`` existed is rewritten with all of them
        (empty in its earlier rows), so the rows appended next line up with its header.
    """
    if csv_path is None:
        return None, pd.DataFrame(columns=columns)
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    if resume and csv_path.exists() and csv_path.stat().st_size > 0:
        previous = read_runs(csv_path, text_columns)
        missing = [c for c in columns if c not in previous.columns]
        if missing:
            previous = previous.reindex(columns=list(columns) + [
                c for c in previous.columns if c not in columns])
            previous[list(columns)].to_csv(csv_path, index=False)
        return csv_path, previous
    csv_path.unlink(missing_ok=True)
    return csv_path, pd.DataFrame(columns=columns)


def results_csv(out, name, resume):
    """``<out>/<name>``, with ``out`` made; without ``resume`` an earlier file goes to ``.bak``.

    Parameters
    ----------
    out : path-like
        The output directory.
    name : str
        The CSV's file name.
    resume : bool
        Leave an earlier file where it is.

    Returns
    -------
    csv_path : Path
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / name
    if csv_path.exists() and not resume:
        backup = csv_path.with_suffix(".csv.bak")
        csv_path.replace(backup)
        print(f"previous results moved to {backup} (use --resume to continue them)",
              flush=True)
    return csv_path


def append_row(csv_path, row, columns):
    """Add one run to a per-run CSV at once, so an interrupted run can be resumed.

    Parameters
    ----------
    csv_path : Path or None
        The CSV (its header is written first when it is new or empty); None
        writes nothing.
    row : dict
        The run; keys other than ``columns`` are left out.
    columns : list of str
        The CSV's columns, in order.
    """
    if csv_path is None:
        return
    new_file = not csv_path.exists() or csv_path.stat().st_size == 0
    with open(csv_path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        if new_file:
            writer.writeheader()
        writer.writerow({k: row[k] for k in columns})


def merge_run_files(directories, name, keys, out, text_columns=()):
    """Join the per-run CSV ``name`` of several output directories (shards) into ``<out>/<name>``.

    Parameters
    ----------
    directories : iterable of path-like
        Output directories, each holding ``name``.
    name : str
        The per-run CSV's file name.
    keys : list of str
        The columns that name a run.
    out : path-like
        Where the joined CSV is written (made if needed).
    text_columns : iterable of str, default=()
        Passed to :func:`read_runs`.

    Returns
    -------
    runs : pandas.DataFrame
        The joined runs.

    Raises
    ------
    SystemExit
        When a directory has no such file, or a run (the same ``keys`` values)
        appears in more than one.
    """
    paths = [Path(d) / name for d in directories]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise SystemExit(f"no results to merge at {missing}")
    runs = pd.concat([read_runs(p, text_columns) for p in paths], ignore_index=True)
    duplicated = runs.duplicated(list(keys))
    if duplicated.any():
        raise SystemExit(f"{int(duplicated.sum())} runs appear in more than one directory")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs.to_csv(out / name, index=False)
    return runs


# ---------------------------------------------------------------- summaries
#: The device of a summary merged from shards, each of which names its own.
SHARDS_DEVICE = "see the shards' commands"


def environment_notes(args_line, n_threads, device):
    """Lines that say how a result was produced: the command, versions, the machine.

    Parameters
    ----------
    args_line : str
        The command (:func:`command_line`).
    n_threads : int
        Threads per process.
    device : str
        The ``--device`` the run used.

    Returns
    -------
    notes : list of str
    """
    import pyod
    import sklearn
    import torch

    import skdiffad
    return [
        f"Command: `{args_line}`",
        f"skdiffad {skdiffad.__version__}, pyod {pyod.__version__}, torch "
        f"{torch.__version__}, scikit-learn {sklearn.__version__}, python "
        f"{platform.python_version()}",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {n_threads} threads, "
        f"device={device} (CUDA available: {torch.cuda.is_available()})",
    ]


def summary_lines(title, notes=()):
    """The opening lines of a Markdown summary: the ``# title`` heading and one bullet a note."""
    return [f"# {title}", "", *[f"- {note}" for note in notes]]


def merged_from(directories):
    """The note of a summary merged from several output directories."""
    return "Merged from: " + ", ".join(str(d) for d in directories)


def elapsed_text(seconds):
    """``"754 s (12.6 min)"``: how a summary gives a wall time."""
    return f"{seconds:.0f} s ({seconds / 60:.1f} min)"


def markdown_table(frame, index_name, floatfmt=".3f"):
    """A Markdown table of ``frame``: its index first, numbers right-aligned.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table; text cells are kept as they are.
    index_name : str
        The first column's heading.
    floatfmt : str, default=".3f"
        Format of float cells; NaN is shown as ``–``.

    Returns
    -------
    text : str
    """
    def cell(value):
        if isinstance(value, str):
            return value
        if isinstance(value, (float, np.floating)):
            return "–" if np.isnan(value) else format(value, floatfmt)
        return str(value)

    header = [index_name] + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + ["---:"] * len(frame.columns)) + "|"]
    columns = [frame[c].tolist() for c in frame.columns]  # keeps int columns int
    for i, index in enumerate(frame.index):
        lines.append("| " + " | ".join([str(index)] + [cell(col[i]) for col in columns]) + " |")
    return "\n".join(lines)


def plain_table(rows, columns, cell=str):
    """A Markdown table of records, every column left-aligned.

    Parameters
    ----------
    rows : iterable of dict
        One dict a line; a missing key is an empty cell.
    columns : list of str
        The headings, which are also the keys shown.
    cell : callable, default=str
        Turns a value into its cell's text.

    Returns
    -------
    text : str
    """
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


def dataset_order(names):
    """The distinct ``names`` sorted ADBench's way: by numeric prefix, then the others."""
    def key(name):
        head = name.split("_")[0]
        return (0, int(head), name) if head.isdigit() else (1, 0, name)
    return sorted(set(names), key=key)


def stacked_tables(tables):
    """Per-collection tables (collection -> frame indexed by detector) stacked into one
    frame with a leading ``collection`` column: the ``*_summary.csv`` files."""
    frames = [table.reset_index().assign(collection=c) for c, table in tables.items()]
    if not frames:
        return pd.DataFrame()
    frame = pd.concat(frames, ignore_index=True)
    return frame[["collection"] + [c for c in frame.columns if c != "collection"]]
