"""Blockwise scoring of Dask collections (the optional ``skdiffad[dask]`` extra).

A detector's scores are row-independent (tables, images) or depend on a bounded
neighbourhood of steps (series), and every scoring kernel gives a sample the same
bits whatever else is in its batch (:data:`skdiffad._core.samples.ROW_MULTIPLE`).
So a Dask array or DataFrame is scored block by block with the result of scoring it
in memory, to the bit.

The fitted detector enters the graph once, as one key that every block task
depends on: a distributed worker fetches and unpickles it once, not once per
block, and reuses its copy if Dask fetches the key again. :class:`Shipped` counts
those unpickles per process (:func:`shipments`), so that claim is measured, not
assumed.

Dask is imported only when the input already is a Dask collection (then Dask is
installed and loaded); the package itself never needs it.
"""

from __future__ import annotations

import pickle
import sys
import uuid
from collections import OrderedDict

import numpy as np
import pandas as pd

__all__ = ["is_dask", "Shipped", "shipments", "rowwise"]

# unpickles of a shipped detector in this process (see Shipped)
_SHIPMENTS = {"count": 0}


def is_dask(X):
    """Whether ``X`` is a Dask collection (without importing Dask when it is not loaded)."""
    if "dask" not in sys.modules:
        return False
    from dask import is_dask_collection

    return bool(is_dask_collection(X))


def shipments():
    """How many shipped detectors this process has unpickled (a worker's count)."""
    return _SHIPMENTS["count"]


#: Detectors this process has unpickled, newest last, by token (see Shipped).
_RECEIVED = OrderedDict()
_RECEIVED_KEPT = 2


class Shipped:
    """A fitted detector as one graph key, unpickled at most once per process.

    It travels as its token and its pickled bytes. A process that already unpickled
    that token (the last :data:`_RECEIVED_KEPT` of them are kept) reuses the detector,
    so a worker whose copy Dask released and fetched again between two of its blocks
    does not unpickle it again. :func:`shipments` counts the unpickles.
    """

    def __init__(self, estimator, token=None):
        self.estimator = estimator
        self.token = token or uuid.uuid4().hex

    def __reduce__(self):
        return _receive, (self.token, pickle.dumps(self.estimator,
                                                   protocol=pickle.HIGHEST_PROTOCOL))


def _receive(token, payload):
    """The detector of ``token``: this process's copy, or ``payload`` unpickled."""
    if token in _RECEIVED:
        _RECEIVED.move_to_end(token)
        return _RECEIVED[token]
    _SHIPMENTS["count"] += 1
    shipped = Shipped(pickle.loads(payload), token)
    _RECEIVED[token] = shipped
    while len(_RECEIVED) > _RECEIVED_KEPT:
        _RECEIVED.popitem(last=False)
    return shipped


def _received(shipped):
    return shipped


def ship(estimator):
    """One Delayed key holding ``estimator``, for every block task to depend on.

    The key is a task's result, not a literal in the graph: Dask may copy a literal
    into every task that reads it (then each block would unpickle the detector), while
    a task's result is computed once and fetched once by each worker that needs it.
    It is not scattered: a scattered detector lives only on the worker that holds it,
    and dies with it, where a task is recomputed after a worker's death. (So
    ``distributed`` warns that the graph holds a large object: that is the detector,
    sent to the scheduler once.)
    """
    from dask import delayed

    return delayed(_received, pure=False)(
        Shipped(estimator), dask_key_name=f"skdiffad-{type(estimator).__name__}-"
                                          f"{uuid.uuid4().hex}")


def _call(shipped, method, block, kwargs):
    return getattr(shipped.estimator, method)(block, **kwargs)


def _frame_call(part, shipped, method, kwargs):
    values = np.asarray(_call(shipped, method, part, kwargs))
    if values.ndim == 1:
        return pd.Series(values, index=part.index, name=method)
    return pd.DataFrame(values, index=part.index)


def _array_call(block, shipped, method, kwargs):
    return np.asarray(_call(shipped, method, block, kwargs))


def check_rows(X, name):
    """A Dask array whose only chunked axis is the first (samples, or steps)."""
    if X.ndim < 1:
        raise ValueError(f"{name} needs a Dask array with a sample axis, got shape {X.shape}")
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError(f"{name} needs the Dask array's chunk sizes along the first axis; "
                         "call X.compute_chunk_sizes() first")
    if any(len(c) > 1 for c in X.chunks[1:]):
        X = X.rechunk({axis: -1 for axis in range(1, X.ndim)})
    return X


def rowwise(estimator, method, X, *, out_dtype=np.float64, out_event=(), kwargs=None):
    """``estimator.<method>`` over the row blocks of a Dask array or the partitions of a
    Dask DataFrame, lazily.

    Parameters
    ----------
    estimator : fitted detector
    method : str
        A method whose output has one entry (of shape ``out_event``) per input row.
    X : dask.array.Array or dask.dataframe.DataFrame
    out_dtype : dtype
        Of the output.
    out_event : tuple of int
        Shape of each row's output (``()``: a scalar per row).
    kwargs : dict or None
        Keyword arguments of the method.

    Returns
    -------
    dask.array.Array of shape ``(n, *out_event)``, or a Dask Series (DataFrame when
    ``out_event`` is not empty) with ``X``'s index, for a Dask DataFrame.
    """
    import dask.dataframe as dd

    kwargs = dict(kwargs or {})
    shipped = ship(estimator)
    name = type(estimator).__name__
    if isinstance(X, dd.DataFrame):
        if out_event:
            meta = pd.DataFrame({i: pd.Series(dtype=out_dtype) for i in range(out_event[0])})
        else:
            meta = pd.Series(dtype=out_dtype, name=method)
        return X.map_partitions(_frame_call, shipped, method, kwargs, meta=meta)
    if isinstance(X, dd.Series):
        raise TypeError(f"{name}.{method} takes a Dask DataFrame or array, not a Dask Series; "
                        "use series.to_frame()")
    X = check_rows(X, name)
    n_out = 1 + len(out_event)
    chunks = (X.chunks[0],) + tuple((size,) for size in out_event)
    return X.map_blocks(_array_call, shipped, method, kwargs, dtype=out_dtype,
                        meta=np.empty((0,) * n_out, dtype=out_dtype),
                        drop_axis=list(range(n_out, X.ndim)) or None,
                        new_axis=list(range(X.ndim, n_out)) or None, chunks=chunks)


# ---------------------------------------------------------------- series
def _series_array(estimator, X):
    """A Dask series as an ``(n, C)`` float Dask array with the channels in one chunk,
    and the index to give the scores back on (a Dask DataFrame's), checked against fit."""
    import dask.dataframe as dd

    name = type(estimator).__name__
    index = None
    if isinstance(X, dd.Series):
        X = X.to_frame()
    if isinstance(X, dd.DataFrame):
        bad = [c for c, dtype in X.dtypes.items()
               if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))]
        if bad:
            raise TypeError(f"{name} needs numeric channels; column {bad[0]!r} has dtype "
                            f"{X.dtypes[bad[0]]}")
        fitted = getattr(estimator, "feature_names_in_", None)
        if fitted is not None and list(map(str, X.columns)) != list(fitted):
            raise ValueError(f"The channel names should match those that were passed during "
                             f"fit: got {list(X.columns)}, expected {list(fitted)}")
        index = X.index
        X = X.to_dask_array(lengths=True)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError("X must be one series of shape (n_timestamps,) or (n_timestamps, "
                         f"n_channels), got a Dask array of shape {X.shape}")
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise TypeError(f"{name} needs a numeric series, got a Dask array of dtype {X.dtype}")
    X = check_rows(X, name)
    n, channels = X.shape
    if channels != estimator.n_features_in_:
        raise ValueError(f"X has {channels} channels, but {name} is expecting "
                         f"{estimator.n_features_in_} channels as input")
    shortest = estimator.encoder_.window_size
    if n < shortest:
        raise ValueError(f"the series has {n} sample(s) (time steps), fewer than "
                         f"window_size={shortest}; pass a longer series or a smaller "
                         "window_size")
    return X, index


def _stretch(offsets, parts, lo, hi):
    """Steps ``lo..hi`` of a series from the consecutive blocks ``parts`` starting at
    ``offsets``."""
    values = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return values[lo - offsets[0] : hi - offsets[0]]


def _raw_part(shipped, offsets, parts, lo, hi, start, stop, n, channels):
    errors = shipped.estimator._stretch_errors(_stretch(offsets, parts, lo, hi), lo, n,
                                               channels)
    return errors[start - lo : stop - lo]


def _known_ends(part):
    """Per column: the first and last observed row of a part and their values."""
    known = ~np.isnan(part)
    rows = np.arange(len(part))[:, None]
    first = np.where(known.any(axis=0), np.where(known, rows, len(part)).min(axis=0), -1)
    last = np.where(known.any(axis=0), np.where(known, rows, -1).max(axis=0), -1)
    take = np.arange(part.shape[1])
    return (first, part[np.maximum(first, 0), take], last, part[np.maximum(last, 0), take])


def _edges(ends, starts, need_known):
    """For each part and column, the nearest observed ``(step, value)`` before and after
    it in the series (NaN step: none)."""
    k = len(ends[0][0])
    left_step, left_value = np.full(k, np.nan), np.full(k, np.nan)
    lefts = []
    for (first, _, last, last_value), start in zip(ends, starts):
        lefts.append((left_step.copy(), left_value.copy()))
        seen = last >= 0
        left_step[seen], left_value[seen] = start + last[seen], last_value[seen]
    if need_known and np.isnan(left_step).all():
        raise ValueError("X has no observed value: every entry is NaN")
    right_step, right_value = np.full(k, np.nan), np.full(k, np.nan)
    rights = []
    for (first, first_value, _, _), start in zip(reversed(ends), reversed(starts)):
        rights.append((right_step.copy(), right_value.copy()))
        seen = first >= 0
        right_step[seen], right_value[seen] = start + first[seen], first_value[seen]
    return list(zip(lefts, reversed(rights)))


def _filled_part(part, start, edges, index):
    from .timeseries import _fill_gaps

    (left_step, left_value), (right_step, right_value) = edges[index]
    positions = np.arange(start, start + len(part))
    out = part.copy()
    for j in range(part.shape[1]):
        left = None if np.isnan(left_step[j]) else (left_step[j], left_value[j])
        right = None if np.isnan(right_step[j]) else (right_step[j], right_value[j])
        out[:, j] = _fill_gaps(part[:, j], positions, left, right)
    return out


def _scores_part(scorer, offsets, filled, raw, lo, hi, start, stop, channels):
    scores = scorer.scores(_stretch(offsets, filled, lo, hi),
                           None if raw is None else _stretch(offsets, raw, lo, hi), channels)
    scores = scores[start - lo : stop - lo]
    if not channels:
        scores = scores.ravel()
        if not np.all(np.isfinite(scores)):
            raise FloatingPointError(
                f"{int(np.sum(~np.isfinite(scores)))} of {len(scores)} scores are not finite; "
                "the input holds values too extreme for float32 after standardisation")
    return scores


def series(estimator, X, *, channels=False):
    """Step scores (``channels``: per-channel scores) of a Dask series, lazily.

    Three passes, each block by block: the step errors of each block from the
    windows around it (it reads ``max(window) - 1`` steps of its neighbours); the
    gaps where nothing is observed, filled from the nearest observed steps however
    far (a scan over tiny per-block summaries); each length's aggregation over the
    filled errors of the block and its neighbours. The result equals scoring the
    series in memory, to the bit. The graph is written out task by task, so the
    detector is one key that only the first pass reads, and no pass is repeated.

    Returns a Dask array of shape ``(n,)`` (``channels``: ``(n, C)``), or a Dask
    Series (DataFrame) on the index of a Dask DataFrame input.
    """
    import dask.array as da
    import dask.dataframe as dd
    from dask.highlevelgraph import HighLevelGraph

    X, index = _series_array(estimator, X)
    n, n_channels = X.shape
    lengths = [entry[1] for entry in estimator._lengths_for(n)]
    depth = max(lengths) - 1
    bounds = np.cumsum((0,) + tuple(int(c) for c in X.chunks[0]))
    starts, stops = bounds[:-1], bounds[1:]
    blocks = [key for key in X.__dask_keys__()]  # (name, i, 0) per block of steps
    blocks = [b[0] if isinstance(b, list) else b for b in blocks]

    def around(lo, hi):
        """Indices of the blocks that overlap steps lo..hi."""
        return range(int(np.searchsorted(stops, lo, side="right")),
                     int(np.searchsorted(starts, hi, side="left")))

    token = uuid.uuid4().hex
    name = f"skdiffad-{'channel-scores' if channels else 'scores'}-{token}"
    shipped = ship(estimator)
    ship_key, scorer_key = shipped.key, f"skdiffad-scorer-{token}"
    layer = {scorer_key: (_received, estimator._stretch_scorer(n))}
    raw = [f"skdiffad-raw-{token}-{i}" for i in range(len(starts))]
    filled = [f"skdiffad-filled-{token}-{i}" for i in range(len(starts))]
    edges = f"skdiffad-edges-{token}"
    for i, (a, b) in enumerate(zip(starts.tolist(), stops.tolist())):
        lo, hi = max(0, a - depth), min(n, b + depth)
        near = around(lo, hi)
        layer[raw[i]] = (_raw_part, ship_key, [int(starts[j]) for j in near],
                         [blocks[j] for j in near], lo, hi, a, b, n, channels)
        layer[f"skdiffad-ends-{token}-{i}"] = (_known_ends, raw[i])
        layer[filled[i]] = (_filled_part, raw[i], a, edges, i)
        out_key = (name, i, 0) if channels else (name, i)
        layer[out_key] = (_scores_part, scorer_key, [int(starts[j]) for j in near],
                          [filled[j] for j in near],
                          [raw[j] for j in near] if channels else None,
                          lo, hi, a, b, channels)
    layer[edges] = (_edges, [f"skdiffad-ends-{token}-{i}" for i in range(len(starts))],
                    [int(a) for a in starts], not channels)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[X, shipped])
    chunks = (X.chunks[0], (n_channels,)) if channels else (X.chunks[0],)
    scores = da.Array(graph, name, chunks=chunks, dtype=np.float64,
                      meta=np.empty((0,) * len(chunks)))
    if index is None:
        return scores
    if channels:
        return dd.from_dask_array(scores, columns=list(estimator.feature_names_in_)
                                  if hasattr(estimator, "feature_names_in_") else None,
                                  index=index)
    return dd.from_dask_array(scores, index=index)


# ---------------------------------------------------------------- fit
def _block_sample(block, size, seed, index):
    """The ``size`` rows of a block with the smallest random keys, and their keys."""
    n = len(block)
    keys = np.random.default_rng([seed, index]).random(n)
    keep = np.sort(np.argpartition(keys, size - 1)[:size]) if n > size else np.arange(n)
    rows = block.iloc[keep] if isinstance(block, pd.DataFrame) else np.asarray(block)[keep]
    return rows, keys[keep]


def _merge_samples(samples, size):
    keys = np.concatenate([k for _, k in samples])
    keep = np.sort(np.argpartition(keys, size - 1)[:size]) if len(keys) > size else None
    frames = [rows for rows, _ in samples]
    if isinstance(frames[0], pd.DataFrame):
        merged = pd.concat(frames)
        return merged if keep is None else merged.iloc[keep]
    merged = np.concatenate(frames)
    return merged if keep is None else merged[keep]


def sample_rows(X, size, seed):
    """A uniform random sample of ``size`` rows of a Dask array or DataFrame (all of them
    when it has fewer), in their order, computed block by block.

    Every row gets a random key (a generator seeded by ``seed`` and its block's index);
    each block keeps its ``size`` smallest keys and one task keeps the smallest overall:
    a sample without replacement in which every subset is equally likely. A worker holds
    one block and the candidates, never the collection. The sample depends on
    ``seed`` and on how the collection is split into blocks.
    """
    from dask import compute, delayed

    if hasattr(X, "chunks"):  # an array: one block per run of rows
        blocks = list(check_rows(X, "fit").to_delayed().ravel())
    else:
        blocks = list(X.to_delayed())
    parts = [delayed(_block_sample, pure=True)(block, size, seed, i)
             for i, block in enumerate(blocks)]
    (merged,) = compute(delayed(_merge_samples, pure=True)(parts, size))
    return merged

