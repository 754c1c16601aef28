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
import torch

from ._core.samples import ArraySamples, Samples, WindowSamples
from ._reductions import fill_gaps, finite_scores

__all__ = ["is_dask", "Shipped", "shipments", "rowwise", "series", "series_array", "frames",
           "sample_rows", "BlockSamples", "WindowSource"]

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
    """A fitted detector (or a fitted modality and its model) as one graph key,
    unpickled at most once per process.

    It travels as its token and its pickled bytes. A process that already unpickled
    that token (the last :data:`_RECEIVED_KEPT` of them are kept) reuses the payload,
    so a worker whose copy Dask released and fetched again between two of its blocks
    does not unpickle it again. :func:`shipments` counts the unpickles.
    """

    def __init__(self, payload, token=None):
        self.payload = payload
        self.token = token or uuid.uuid4().hex

    def __reduce__(self):
        return _receive, (self.token, pickle.dumps(self.payload,
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


def ship(payload):
    """One Delayed key holding ``payload`` (a fitted detector, or a modality and its
    model), for every block task to depend on.

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
        Shipped(payload), dask_key_name=f"skdiffad-{type(payload).__name__}-"
                                        f"{uuid.uuid4().hex}")


def _call(shipped, method, block, kwargs):
    return getattr(shipped.payload, method)(block, **kwargs)


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
def series_array(modality, X):
    """A Dask series as an ``(n, C)`` float Dask array with the channels in one chunk,
    and the index to give the scores back on (a Dask DataFrame's), checked against the
    fitted series ``modality``."""
    import dask.dataframe as dd

    name = modality.owner
    index = None
    if isinstance(X, dd.Series):
        X = X.to_frame()
    if isinstance(X, dd.DataFrame):
        bad = [c for c, dtype in X.dtypes.items()
               if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))]
        if bad:
            raise TypeError(f"{name} needs numeric channels; column {bad[0]!r} has dtype "
                            f"{X.dtypes[bad[0]]}")
        fitted = modality.feature_names_in_
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
    if channels != modality.n_features_in_:
        raise ValueError(f"X has {channels} channels, but {name} is expecting "
                         f"{modality.n_features_in_} channels as input")
    shortest = modality.shortest_window
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


def _blocks_over(starts, stops, lo, hi):
    """Indices of the blocks (``starts``/``stops`` of their steps) that overlap steps
    ``lo..hi``."""
    return range(int(np.searchsorted(stops, lo, side="right")),
                 int(np.searchsorted(starts, hi, side="left")))


def _raw_part(shipped, offsets, parts, lo, hi, start, stop, n, channels, training):
    modality, model = shipped.payload
    errors = modality.stretch_errors(model, _stretch(offsets, parts, lo, hi), lo, n,
                                     channels, training)
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
    (left_step, left_value), (right_step, right_value) = edges[index]
    positions = np.arange(start, start + len(part))
    out = part.copy()
    for j in range(part.shape[1]):
        left = None if np.isnan(left_step[j]) else (left_step[j], left_value[j])
        right = None if np.isnan(right_step[j]) else (right_step[j], right_value[j])
        out[:, j] = fill_gaps(part[:, j], positions, left, right)
    return out


def _scores_part(scorer, offsets, filled, raw, lo, hi, start, stop, channels, columns):
    filled = _stretch(offsets, filled, lo, hi)
    if columns:
        return scorer.columns(filled, None)[start - lo : stop - lo]
    scores = scorer.scores(filled, None if raw is None else _stretch(offsets, raw, lo, hi),
                           channels)
    scores = scores[start - lo : stop - lo]
    if not channels:
        scores = finite_scores(scores.ravel())
    return scores


def series(modality, model, X, *, channels=False, columns=False, training=False):
    """Step scores (``channels``: per-channel scores; ``columns``: each window length's
    scores, not divided by its scale) of a Dask series under a fitted series
    ``modality`` and its ``model``, lazily (``training``: the training series' scores,
    under the exact model's two-fold rule).

    Three passes, each block by block: the step errors of each block from the
    windows around it (it reads ``max(window) - 1`` steps of its neighbours); the
    gaps where nothing is observed, filled from the nearest observed steps however
    far (a scan over tiny per-block summaries); each length's aggregation over the
    filled errors of the block and its neighbours. The result equals scoring the
    series in memory, to the bit. The graph is written out task by task, so the
    modality and its model are one key that only the first pass reads, and no pass is
    repeated.

    Returns a Dask array of shape ``(n,)`` (``channels``: ``(n, C)``; ``columns``:
    ``(n, K)``), or for a Dask DataFrame or Series input a Dask Series named
    ``"decision_function"`` (``channels``: a DataFrame with the input's columns) on its
    index, as the in-memory scores of a pandas input are (``columns``: always the array).
    """
    import dask.array as da
    import dask.dataframe as dd
    from dask.highlevelgraph import HighLevelGraph

    names = None  # the input's columns, a Series being one (as to_frame names it)
    if isinstance(X, (dd.Series, dd.DataFrame)):
        names = list((X.to_frame() if isinstance(X, dd.Series) else X).columns)
    X, index = series_array(modality, X)
    n, n_channels = X.shape
    n_lengths = len(modality.lengths_for(model, n))
    depth = modality.context(model, n)
    bounds = np.cumsum((0,) + tuple(int(c) for c in X.chunks[0]))
    starts, stops = bounds[:-1], bounds[1:]
    blocks = [key for key in X.__dask_keys__()]  # (name, i, 0) per block of steps
    blocks = [b[0] if isinstance(b, list) else b for b in blocks]

    token = uuid.uuid4().hex
    kind = "columns" if columns else "channel-scores" if channels else "scores"
    name = f"skdiffad-{kind}-{token}"
    shipped = ship((modality, model))
    ship_key, scorer_key = shipped.key, f"skdiffad-scorer-{token}"
    layer = {scorer_key: (_received, modality.stretch_scorer(model, n))}
    raw = [f"skdiffad-raw-{token}-{i}" for i in range(len(starts))]
    filled = [f"skdiffad-filled-{token}-{i}" for i in range(len(starts))]
    edges = f"skdiffad-edges-{token}"
    for i, (a, b) in enumerate(zip(starts.tolist(), stops.tolist())):
        lo, hi = max(0, a - depth), min(n, b + depth)
        near = _blocks_over(starts, stops, lo, hi)
        layer[raw[i]] = (_raw_part, ship_key, [int(starts[j]) for j in near],
                         [blocks[j] for j in near], lo, hi, a, b, n, channels, training)
        layer[f"skdiffad-ends-{token}-{i}"] = (_known_ends, raw[i])
        layer[filled[i]] = (_filled_part, raw[i], a, edges, i)
        out_key = (name, i, 0) if channels or columns else (name, i)
        layer[out_key] = (_scores_part, scorer_key, [int(starts[j]) for j in near],
                          [filled[j] for j in near],
                          [raw[j] for j in near] if channels else None,
                          lo, hi, a, b, channels, columns)
    layer[edges] = (_edges, [f"skdiffad-ends-{token}-{i}" for i in range(len(starts))],
                    [int(a) for a in starts], not channels)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[X, shipped])
    chunks = ((X.chunks[0], (n_channels,)) if channels
              else (X.chunks[0], (n_lengths,)) if columns else (X.chunks[0],))
    scores = da.Array(graph, name, chunks=chunks, dtype=np.float64,
                      meta=np.empty((0,) * len(chunks)))
    if index is None or columns:
        return scores
    if channels:
        return dd.from_dask_array(scores, columns=names, index=index)
    return dd.from_dask_array(scores, columns="decision_function", index=index)


# ---------------------------------------------------------------- video
def _frames_raw(shipped, offsets, parts, lo, a, b):
    modality, model = shipped.payload
    return modality.block_raw_scores(model, _stretch(offsets, parts, lo, b), a - lo)


def _frames_smoothed(shipped, offsets, parts, lo, hi, a, b):
    modality, _ = shipped.payload
    raw = _stretch(offsets, parts, lo, hi)
    return finite_scores(modality.smooth(raw, [len(raw)])[a - lo : b - lo])


def frames(modality, model, X):
    """Frame scores of a Dask array of one clip's frames ``(T, H, W[, C])`` (or flat
    ``(T, H*W*C)``), chunked along time, under a fitted video ``modality`` and its
    ``model``, lazily.

    Two passes, block by block: the raw scores of a block's frames, read with the
    ``n_past`` frames before it; then their smoothing in time, read with the raw
    scores of ``modality.smoothing_radius`` frames on each side. A frame's raw score
    does not depend on the frames scored with it, and the smoothing at a block's
    edge sees what it would see in the whole clip, so the result equals scoring
    the clip in memory, to the bit.
    """
    import dask.array as da
    from dask.highlevelgraph import HighLevelGraph

    name = modality.owner
    if X.ndim not in (2, 3, 4):
        raise ValueError(f"{name} scores a Dask array of one clip's frames (T, H, W), "
                         f"(T, H, W, C), (T, C, H, W) or flat (T, H*W*C); got shape {X.shape}")
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise TypeError(f"{name} needs numeric frames, got a Dask array of dtype {X.dtype}")
    X = check_rows(X, name)
    n = int(X.shape[0])
    if n < modality.context:
        raise ValueError(f"the clip has {n} frame(s), fewer than the {modality.context} a "
                         "sample holds; pass a longer clip or fit with a smaller n_past")
    depth, radius = modality.context - 1, modality.smoothing_radius
    bounds = np.cumsum((0,) + tuple(int(c) for c in X.chunks[0]))
    starts, stops = bounds[:-1], bounds[1:]
    blocks = [key for key in X.__dask_keys__()]
    while isinstance(blocks[0], list):  # (name, i, 0, ...) per block of frames
        blocks = [b[0] for b in blocks]

    token = uuid.uuid4().hex
    out = f"skdiffad-frame-scores-{token}"
    shipped = ship((modality, model))
    raw = [f"skdiffad-frame-raw-{token}-{i}" for i in range(len(starts))]
    layer = {}
    for i, (a, b) in enumerate(zip(starts.tolist(), stops.tolist())):
        lo = max(0, a - depth)
        near = _blocks_over(starts, stops, lo, b)
        layer[raw[i]] = (_frames_raw, shipped.key, [int(starts[j]) for j in near],
                         [blocks[j] for j in near], lo, a, b)
    for i, (a, b) in enumerate(zip(starts.tolist(), stops.tolist())):
        lo, hi = max(0, a - radius), min(n, b + radius)
        near = _blocks_over(starts, stops, lo, hi)
        layer[(out, i)] = (_frames_smoothed, shipped.key, [int(starts[j]) for j in near],
                           [raw[j] for j in near], lo, hi, a, b)
    graph = HighLevelGraph.from_collections(out, layer, dependencies=[X, shipped])
    return da.Array(graph, out, chunks=(X.chunks[0],), dtype=np.float64,
                    meta=np.empty((0,)))


# ---------------------------------------------------------------- fit
def _block_sample(block, size, seed, index):
    """The ``size`` rows of a block with the smallest random keys, and their keys."""
    n = len(block)
    keys = np.random.default_rng([seed, index]).random(n)
    keep = np.sort(np.argpartition(keys, size - 1)[:size]) if n > size else np.arange(n)
    rows = block.iloc[keep] if isinstance(block, pd.DataFrame) else np.asarray(block)[keep]
    return rows, keys[keep]


def _merge_samples(samples, size):
    """The ``size`` rows with the smallest keys among several candidates, in order, and
    their keys."""
    keys = np.concatenate([k for _, k in samples])
    keep = np.sort(np.argpartition(keys, size - 1)[:size]) if len(keys) > size else None
    frames = [rows for rows, _ in samples]
    if isinstance(frames[0], pd.DataFrame):
        merged = pd.concat(frames)
        return (merged, keys) if keep is None else (merged.iloc[keep], keys[keep])
    merged = np.concatenate(frames)
    return (merged, keys) if keep is None else (merged[keep], keys[keep])


#: Candidate sets one merge task of :func:`sample_rows` takes (it holds at most this
#: many times ``size`` rows).
MERGE_FANIN = 4


def sample_rows(X, size, seed):
    """A uniform random sample of ``size`` rows of a Dask array or DataFrame (all of them
    when it has fewer), in their order, computed block by block.

    Every row gets a random key (a generator seeded by ``seed`` and its block's index);
    each block keeps its ``size`` smallest keys, and a tree of merges, each over
    :data:`MERGE_FANIN` candidate sets, keeps the smallest overall: a sample without
    replacement in which every subset is equally likely. A task holds one block, or at
    most ``MERGE_FANIN * size`` candidate rows, never the collection (even when ``size``
    exceeds a block). The sample depends on ``seed`` and on how the collection is split
    into blocks.
    """
    from dask import compute, delayed

    if hasattr(X, "chunks"):  # an array: one block per run of rows
        blocks = list(check_rows(X, "fit").to_delayed().ravel())
    else:
        blocks = list(X.to_delayed())
    level = [delayed(_block_sample, pure=True)(block, size, seed, i)
             for i, block in enumerate(blocks)]
    while len(level) > 1:
        level = [delayed(_merge_samples, pure=True)(level[i : i + MERGE_FANIN], size)
                 for i in range(0, len(level), MERGE_FANIN)]
    (merged,) = compute(level[0])
    return merged[0]


# ---------------------------------------------------------------- streamed training
#: Blocks a streamed training source holds at once (see :class:`BlockSamples`).
STREAM_BLOCKS = 4


def _take_rows(block, local):
    return block.iloc[local] if isinstance(block, pd.DataFrame) else np.asarray(block)[local]


def _row_blocks(X):
    """The row blocks of a Dask array or DataFrame as Delayed objects, and their sizes
    (a DataFrame's are counted, one pass)."""
    if hasattr(X, "chunks"):
        X = check_rows(X, "fit")
        return list(X.to_delayed().ravel()), [int(c) for c in X.chunks[0]]
    return list(X.to_delayed()), [int(s) for s in X.map_partitions(len).compute()]


class _TrainingRows:
    """The training rows of a streamed source: all of them but the held-out ``validation``
    (sorted global indices). Only its length is an index set's: the epoch order is drawn
    by :meth:`BlockSamples.epoch_order`, a group of blocks at a time."""

    def __init__(self, n, validation):
        self.n, self.validation = n, validation

    def __len__(self):
        return self.n - len(self.validation)


class _BlockOrder:
    """One epoch's order of a streamed source's training rows, built a group of blocks at
    a time: slicing it gives a tensor of global row indices, as a shuffled index tensor
    would, without ever holding all of them. ``quota``: how many rows each block gives
    (a uniform subset of its training rows)."""

    def __init__(self, source, groups, validation, seed, quota):
        self.source, self.groups, self.validation, self.seed = source, groups, validation, seed
        self.quota = quota
        self._ends = np.cumsum([int(self.quota[group].sum()) for group in groups],
                               dtype=np.int64)
        self._cached = (None, None)

    def __len__(self):
        return int(self._ends[-1]) if len(self._ends) else 0

    def _group(self, g):
        if self._cached[0] != g:
            starts, stops = self.source.block_starts, self.source.block_stops
            rng = np.random.default_rng([self.seed, g])
            parts = []
            for b in self.groups[g]:
                rows = np.arange(starts[b], stops[b])
                rows = rows[~np.isin(rows, self.validation, assume_unique=True)]
                if self.quota[b] < len(rows):
                    rows = rng.choice(rows, self.quota[b], replace=False)
                parts.append(rows)
            rows = np.concatenate(parts)
            rng.shuffle(rows)
            self._cached = (g, rows)
        return self._cached[1]

    def __getitem__(self, item):
        if not isinstance(item, slice) or item.step not in (None, 1):
            raise TypeError("an epoch order is read in consecutive slices")
        start, stop, _ = item.indices(len(self))
        pieces = []
        while start < stop:
            g = int(np.searchsorted(self._ends, start, side="right"))
            first = int(self._ends[g - 1]) if g else 0
            end = min(stop, int(self._ends[g]))
            pieces.append(self._group(g)[start - first : end - first])
            start = end
        rows = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)
        return torch.from_numpy(rows.astype(np.int64))


class BlockSamples(Samples):
    """Training samples streamed from the row blocks of a Dask array or DataFrame.

    The one training loop asks its samples for the validation split, each epoch's
    order and each mini-batch by index. Here an epoch visits the blocks in a random
    order, ``kept`` at a time, and shuffles the rows of those blocks together (a block
    shuffle: the usual out-of-core compromise between a uniform shuffle and reading
    each block once per epoch), so a batch reads only blocks already held and every
    block is read once per epoch. The validation rows, a uniform sample of at most
    ``max_validation`` rows, are read in one pass at the split and held. So this
    process holds at most ``kept`` encoded blocks, the validation rows and one
    group's row numbers; a worker computes one block at a time.

    Parameters
    ----------
    X : dask.array.Array or dask.dataframe.DataFrame
        The rows; only the first axis may be chunked (others are merged).
    encode : callable
        A computed block (ndarray or DataFrame) -> its :class:`ArraySamples`, with the
        fitted encoder.
    like : Samples
        Encoded rows of the same data (the fit's sample): the event shape, and whether
        the network sees observation masks (a block with gaps gives its masks to the
        loss either way).
    max_validation : int
        Most rows held out for early stopping.
    kept : int, default=STREAM_BLOCKS
        Encoded blocks held at once.

    Attributes
    ----------
    block_starts, block_stops : ndarray of int
        The samples each block owns (``block_starts[b]`` to ``block_stops[b]``).
    block_loads : int
        Blocks computed and encoded so far (the validation pass not counted).
    most_held : int
        Most blocks held at once.
    """

    def __init__(self, X, encode, like, *, max_validation, kept=STREAM_BLOCKS):
        parts, sizes = _row_blocks(X)
        stops = np.cumsum(np.asarray(sizes, dtype=np.int64))
        self.encode = encode
        self._source(parts, stops - np.asarray(sizes, dtype=np.int64), stops,
                     like.event_shape, like.has_mask, max_validation, kept)

    def _source(self, parts, starts, stops, event_shape, has_mask, max_validation, kept):
        """The state every streamed source has: its blocks (``parts``, Delayed) and the
        samples each owns (``starts..stops``), what a sample is, and what is held."""
        self._parts, self.block_starts, self.block_stops = parts, starts, stops
        self._n = int(stops[-1]) if len(stops) else 0
        self.event_shape, self.has_mask = tuple(event_shape), bool(has_mask)
        self.max_validation, self.kept = int(max_validation), max(int(kept), 1)
        self._held = OrderedDict()
        self._validation = None
        self.block_loads = self.most_held = 0

    def __len__(self):
        return self._n

    @property
    def positions(self):
        return np.arange(self._n, dtype=np.int64)

    @property
    def n_blocks(self):
        return len(self._parts)

    def split(self, fraction, generator):
        """``(training rows, validation indices)``: ``min(floor(N * fraction),
        max_validation)`` rows drawn uniformly, read now and held."""
        n = self._n
        n_val = min(int(np.floor(n * fraction)), self.max_validation)
        if n - n_val < 1:
            n_val = 0
        if n_val == 0:
            return _TrainingRows(n, np.zeros(0, dtype=np.int64)), torch.zeros(0, dtype=torch.long)
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        validation = np.sort(np.random.default_rng(seed).choice(n, n_val, replace=False))
        self._hold(validation)
        return _TrainingRows(n, validation), torch.from_numpy(validation)

    def training_rows(self, validation):
        """Rows of each block that are not held out."""
        held = (np.searchsorted(validation, self.block_stops)
                - np.searchsorted(validation, self.block_starts))
        return self.block_stops - self.block_starts - held

    def epoch_order(self, train, generator, limit=None):
        """The epoch's order: the blocks in a random order, ``kept`` at a time, the rows
        of each group shuffled together (the held-out rows left out).

        With a ``limit`` below the training rows (a step budget shorter than an epoch)
        the epoch is a uniform random subset of ``limit`` rows, spread over every block
        (each block gives a hypergeometric share), so a short training still sees the
        whole collection rather than its first few blocks; each block is read once.
        """
        if not isinstance(train, _TrainingRows):
            raise TypeError("a streamed source orders the training rows of its own split")
        blocks = torch.randperm(self.n_blocks, generator=generator).numpy()
        groups = [blocks[i : i + self.kept] for i in range(0, len(blocks), self.kept)]
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        quota = self.training_rows(train.validation)
        if limit is not None and limit < quota.sum():
            quota = np.random.default_rng([seed, len(groups)]).multivariate_hypergeometric(
                quota, int(limit))
        return _BlockOrder(self, groups, train.validation, seed, quota)

    def _hold(self, validation):
        """Read the rows ``validation`` (sorted) in one pass over the blocks, encoded."""
        from dask import compute, delayed

        tasks = []
        for b in range(self.n_blocks):
            lo, hi = np.searchsorted(validation, [self.block_starts[b], self.block_stops[b]])
            if hi > lo:
                tasks.append(delayed(_take_rows, pure=True)(
                    self._parts[b], validation[lo:hi] - self.block_starts[b]))
        parts = compute(*tasks)
        rows = pd.concat(parts) if isinstance(parts[0], pd.DataFrame) else np.concatenate(parts)
        self._validation = (validation, self.encode(rows))

    def _load(self, b):
        """Block ``b``'s samples, encoded."""
        from dask import compute

        (values,) = compute(self._parts[b])
        return self.encode(values)

    def _block(self, b):
        if b in self._held:
            self._held.move_to_end(b)
            return self._held[b]
        samples = self._load(b)
        self.block_loads += 1
        self._held[b] = samples
        while len(self._held) > self.kept:
            self._held.popitem(last=False)
        self.most_held = max(self.most_held, len(self._held))
        return samples

    def take(self, index, device="cpu"):
        index = np.asarray(torch.as_tensor(index).cpu(), dtype=np.int64)
        if self._validation is not None and len(index):
            held, samples = self._validation
            at = np.minimum(np.searchsorted(held, index), len(held) - 1)
            if np.array_equal(held[at], index):
                return samples.take(at, device)
        x, mask = self._gather(index)
        return x.to(device), None if mask is None else mask.to(device)

    def _gather(self, index):
        """Samples ``index`` on the CPU, read block by block."""
        owner = np.searchsorted(self.block_stops, index, side="right")
        # blocks already held first, so that loading the others never evicts one this
        # batch still needs
        needed = sorted(set(owner.tolist()), key=lambda b: (b not in self._held, b))
        x = torch.empty((len(index),) + self.event_shape, dtype=torch.float32)
        mask = None
        for b in needed:
            where = np.flatnonzero(owner == b)
            xb, mb = self._block(b).take(index[where] - self.block_starts[b], "cpu")
            x[where] = xb
            if mb is not None:
                if mask is None:
                    mask = torch.ones(x.shape, dtype=torch.bool)
                mask[where] = mb
        return x, mask


class WindowSource(BlockSamples):
    """Every window of ``length`` steps of a Dask series, streamed from its blocks.

    Window ``i`` starts at step ``i`` (its position, as in memory); it belongs to the
    block its first step lies in, and reading that block reads the ``length - 1``
    steps after it too. The training loop then sees the windows as
    :class:`BlockSamples` shows rows: a few blocks at a time, each read once per
    epoch; the exact model's ``max_samples`` windows are gathered in one pass.

    Parameters
    ----------
    X : dask.array.Array of shape (n, C)
        The series, channels in one chunk.
    standardise : callable
        Values ``(m, C)`` in the series' units -> the scaled stretch ``(C, m)`` and its
        observation mask (a fitted :class:`~skdiffad._encoders.SeriesEncoder`'s
        ``standardise``).
    length : int
    has_mask : bool
        Whether the network should see observation masks.
    max_validation, kept : int
        As :class:`BlockSamples`.
    """

    def __init__(self, X, standardise, length, has_mask, *, max_validation,
                 kept=STREAM_BLOCKS):
        self._steps = list(X.to_delayed().ravel())
        sizes = np.asarray([int(c) for c in X.chunks[0]], dtype=np.int64)
        self._step_stops = np.cumsum(sizes)
        self._step_starts = self._step_stops - sizes
        self.n_steps = int(self._step_stops[-1])
        self.standardise, self.extent = standardise, int(length)
        n_windows = self.n_steps - self.extent + 1
        self._source(self._steps, np.minimum(self._step_starts, n_windows),
                     np.minimum(self._step_stops, n_windows), (int(X.shape[1]), self.extent),
                     has_mask, max_validation, kept)

    def _load(self, b):
        from dask import compute

        lo, hi = int(self.block_starts[b]), int(self.block_stops[b])
        end = min(self.n_steps, hi + self.extent - 1)
        near = _blocks_over(self._step_starts, self._step_stops, lo, end)
        values = compute(*[self._steps[j] for j in near])
        stretch = _stretch([int(self._step_starts[j]) for j in near], list(values), lo, end)
        Z, obs = self.standardise(np.asarray(stretch, dtype=np.float64))
        return WindowSamples(Z, obs, np.arange(hi - lo), self.extent)

    def _hold(self, validation):
        x, mask = self._gather(validation)
        self._validation = (validation, ArraySamples(x.numpy(), mask.numpy()))
