"""The exact model's approximate nearest-sample search: an inverted-file index.

The exact search compares each query with every stored sample. The inverted-file
(IVF) index clusters the stored samples once into ``n_lists`` lists (a seeded
k-means, :func:`ivf_lists`) and compares a query only with the samples of the
:data:`N_PROBE` lists whose centres are nearest to it: about ``N_PROBE / n_lists``
of them. It can
miss a true neighbour that lies in a list it did not read (the approximation),
and returns the exact distances of those it finds.

The lists are scanned by faiss (``faiss-cpu``, the optional extra
``skdiffad[faiss]``); we build the lists and choose each query's lists ourselves:

* the k-means is ours and seeded (faiss's sums its clusters in parallel, so its
  centres would depend on the thread count);
* the lists a query reads are chosen from its float64 distances to the centres,
  one query at a time in effect, so a query's answer does not depend on the other
  queries of its batch (faiss's own choice switches between a matrix product and
  direct distances with the batch size);
* faiss then scans the chosen lists query by query with direct distances, in
  parallel over queries, so its answers do not depend on the thread count.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .blas import one_thread

__all__ = ["MIN_IVF_SAMPLES", "N_PROBE", "SEARCHES", "IVFIndex", "faiss_module", "ivf_lists"]

#: The nearest-sample searches of the exact model.
SEARCHES = ("exact", "ivf")

#: Lists an IVF index reads per query. With twice sqrt(N) lists, chosen on the ADBench
#: sets (10 000 rows stored, seed 0; benchmarks/RESULTS_tabular.md, issue #28): every
#: set's one-class AUROC stayed within 0.0021 of the exact search, against 0.0039 for
#: 2 of sqrt(N) lists and 0.0050 for 2 of twice sqrt(N), at no measurable cost in speed
#: (a query reads 1.5 % of the stored samples instead of 2 %).
N_PROBE = 3
#: Fewer stored samples than this: an index gains nothing, the exact search runs.
MIN_IVF_SAMPLES = 1024
# Lloyd iterations of the k-means that makes the lists.
_KMEANS_ITERATIONS = 10
# Features above which the k-means clusters a random projection of the rows, and its
# dimensions (the k-means of 10 000 windows of 6400 values took seconds per length).
_PROJECT_ABOVE, _PROJECTED = 256, 64
# Values per block of the k-means assignments (bounds memory whatever the length of a
# sample).
_BLOCK_ELEMENTS = 1 << 24

# Distances to the centres per block of the probe choice: small enough to stay in cache
# (1M queries of 20 features chose their lists 2.4 times faster than in 64 MiB blocks).
_PROBE_ELEMENTS = 1 << 19


def _block_rows(n_features):
    return max(1, _BLOCK_ELEMENTS // max(int(n_features), 1))


def faiss_module():
    """The ``faiss`` module, or an ``ImportError`` that says how to install it."""
    try:
        import faiss
    except ImportError as err:
        raise ImportError(
            'search="ivf" scans its lists with faiss, which is not installed: '
            'pip install faiss-cpu (or, from a checkout, pip install ".[faiss]")') from err
    return faiss


def ivf_lists(n_samples):
    """Lists of an index over ``n_samples`` stored samples: ``round(2 sqrt(n))``, 200 at
    10 000. Comparing a query with twice sqrt(n) centres costs little next to reading
    its lists, which this keeps short (about ``sqrt(n) / 2`` samples each)."""
    return max(1, int(round(2 * math.sqrt(n_samples))))


class IVFIndex:
    """An inverted-file index over fixed rows.

    Parameters
    ----------
    rows : ndarray of shape (N, d), float32
        The stored samples, flattened.
    seed : int
        Seeds the k-means (its first centres are distinct stored samples).
    n_probe : int, optional
        Lists each query reads; default :data:`N_PROBE`.

    Attributes
    ----------
    n_lists : int
    centres_ : ndarray of shape (n_lists, d), float32
    """

    #: Its distances come sorted, each measured from its two rows: a search for fewer
    #: neighbours gives the first of a search for more (what
    #: :func:`~skdiffad._core.nonparametric.nearest_distances` relies on to search for
    #: one neighbour fewer where no query's own row is among them).
    sorted_distances = True

    def __init__(self, rows, seed, n_probe=None):
        faiss = faiss_module()
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        n, d = rows.shape
        self.n_lists = min(n, ivf_lists(n))
        self.n_probe = max(1, min(int(N_PROBE if n_probe is None else n_probe), self.n_lists))
        self.centres_ = _kmeans(torch.from_numpy(rows), self.n_lists, seed).numpy()
        self._centres64 = torch.from_numpy(self.centres_).double()
        self._centres_sq = (self._centres64 ** 2).sum(dim=1)
        # -2 C^T and |c|^2 in float32: the ranking distances |c|^2 - 2 q.c by one product
        self._centres_m2_t = np.ascontiguousarray(-2.0 * self.centres_.T)
        self._centres_sq_np = self._centres_sq.float().numpy()
        quantiser = faiss.IndexFlatL2(d)
        quantiser.add(self.centres_)
        self._index = faiss.IndexIVFFlat(quantiser, d, self.n_lists)
        self._quantiser = quantiser  # the index does not own it
        self._index.nprobe = self.n_probe
        # each row goes to the list of its nearest centre, chosen as queries choose
        assign = np.ascontiguousarray(self._probes(rows, 1)[0][:, 0])
        self._index.add_core(n, faiss.swig_ptr(rows), None, faiss.swig_ptr(assign))

    def _probes(self, queries, n_probe):
        """The ``n_probe`` lists nearest to each query and their ranking distances
        (``|c|^2 - 2 q.c``, float32, as faiss takes them).

        They are ranked in float32 products (NumPy's BLAS), in small blocks that stay
        in cache. A query whose last list chosen and first list left out are too close
        to tell apart in float32 is ranked again in float64: the choice is then the same
        whatever the other queries of its block (a product's rounding can depend
        on the block's shape), up to ties float64 cannot separate either.
        """
        n = len(queries)
        lists = np.empty((n, n_probe), dtype=np.int64)
        dist = np.empty((n, n_probe), dtype=np.float32)
        step = max(1, _PROBE_ELEMENTS // self.n_lists)
        scale = float(np.sqrt((self.centres_.astype(np.float64) ** 2).sum(axis=1).max()))
        d2 = np.empty((min(step, n), self.n_lists), dtype=np.float32)
        with one_thread(), torch.inference_mode():
            for start in range(0, n, step):
                stop = min(start + step, n)
                q = np.asarray(queries[start:stop], dtype=np.float32)
                block = d2[:stop - start]
                np.matmul(q, self._centres_m2_t, out=block)  # NumPy's BLAS (see blas.py)
                block += self._centres_sq_np
                found, values = _smallest(block, min(n_probe + 1, self.n_lists))
                lists[start:stop] = found[:, :n_probe]
                dist[start:stop] = values[:, :n_probe]
                if found.shape[1] <= n_probe:
                    continue
                # float32 products err by about 1e-7 of (|q| + |c|)^2
                size = (np.sqrt(np.einsum("nd,nd->n", q, q, dtype=np.float64)) + scale) ** 2
                gap = values[:, n_probe].astype(np.float64) - values[:, n_probe - 1]
                unsure = np.flatnonzero(gap <= 1e-5 * size)
                if len(unsure):
                    exact = torch.addmm(self._centres_sq[None],
                                        torch.from_numpy(q[unsure]).double(),
                                        self._centres64.T, alpha=-2.0).numpy()
                    found, values = _smallest(exact, n_probe)
                    lists[start + unsure] = found
                    dist[start + unsure] = values.astype(np.float32)
        return lists, dist

    def kneighbors(self, queries, n_neighbors):
        """The ``n_neighbors`` nearest stored rows among the lists each query reads.

        Returns
        -------
        distances : ndarray of shape (n, n_neighbors), float64
            Sorted ascending, each computed directly from its two rows (so
            independent of the batch); ``inf`` where the lists read hold fewer
            rows.
        indices : ndarray of shape (n, n_neighbors), int64
            ``-1`` where the lists read hold fewer rows.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        lists, dist = self._probes(queries, self.n_probe)
        d2, found = self._index.search_preassigned(queries, int(n_neighbors), lists, dist)
        distances = np.sqrt(np.maximum(d2.astype(np.float64), 0.0))
        distances[found < 0] = np.inf
        return distances, found


def _smallest(d2, count):
    """Columns of the ``count`` smallest values of each row of ``d2`` (an ndarray, which
    it overwrites), in order, and the values: ``count`` passes of argmin (a top-k over a
    hundred columns costs more)."""
    rows = np.arange(len(d2))
    found = np.empty((len(d2), count), dtype=np.int64)
    values = np.empty((len(d2), count), dtype=d2.dtype)
    for j in range(count):
        best = d2.argmin(axis=1)
        found[:, j] = best
        values[:, j] = d2[rows, best]
        d2[rows, best] = np.inf
    return found, values


def _nearest_centre(rows, centres):
    """The centre nearest to each row (float32 products: the k-means only)."""
    centres_sq = (centres ** 2).sum(dim=1)
    out = torch.empty(len(rows), dtype=torch.int64)
    step = _block_rows(rows.shape[1])
    for start in range(0, len(rows), step):
        stop = min(start + step, len(rows))
        d2 = torch.addmm(centres_sq[None], rows[start:stop], centres.T, alpha=-2.0)
        out[start:stop] = d2.argmin(dim=1)
    return out


def _kmeans(rows, n_lists, seed):
    """Centres of a seeded k-means: Lloyd's iterations from distinct stored rows, each
    centre the mean of its rows summed in their order (so the same whatever the thread
    count); a centre left without rows moves to the row farthest from its own.

    Rows of more than :data:`_PROJECT_ABOVE` features (windows, patches) are clustered
    in a seeded random projection to :data:`_PROJECTED` dimensions, which keeps their
    distances to a few percent; the centres returned are then the means of each
    cluster's rows in the full space."""
    rng = np.random.default_rng(seed)
    first = torch.as_tensor(np.sort(rng.choice(len(rows), n_lists, replace=False)))
    space = rows
    if rows.shape[1] > _PROJECT_ABOVE:
        projection = torch.from_numpy(
            (rng.standard_normal((rows.shape[1], _PROJECTED)) / math.sqrt(_PROJECTED))
            .astype(np.float32))
        space = torch.cat([block @ projection
                           for block in torch.split(rows, _block_rows(rows.shape[1]))])
    with torch.inference_mode():
        centres = _lloyd(space, space[first].clone(), n_lists)
        if space is rows:
            return centres
        assign = _nearest_centre(space, centres)
        counts = torch.bincount(assign, minlength=n_lists)
        full = torch.zeros((n_lists, rows.shape[1]), dtype=rows.dtype)
        full.index_add_(0, assign, rows)
        full /= counts.clamp(min=1)[:, None].to(rows.dtype)
        empty = torch.nonzero(counts == 0).flatten()
        full[empty] = rows[first[empty]]  # (Lloyd leaves none empty; kept for safety)
    return full


def _lloyd(rows, centres, n_lists):
    """Lloyd's iterations of :func:`_kmeans` from ``centres``."""
    for _ in range(_KMEANS_ITERATIONS):
        assign = _nearest_centre(rows, centres)
        counts = torch.bincount(assign, minlength=n_lists)
        sums = torch.zeros_like(centres).index_add_(0, assign, rows)
        empty = counts == 0
        centres = sums / counts.clamp(min=1)[:, None].to(rows.dtype)
        if bool(empty.any()):
            far = ((rows - centres[assign]) ** 2).sum(dim=1)
            centres[empty] = rows[torch.topk(far, int(empty.sum())).indices]
    return centres
