"""Diffusion-time estimation under the exact diffusion of the training set.

A variance-exploding diffusion started from the empirical distribution of the
stored rows ``x_1 .. x_N`` has the closed-form marginal
``p_sigma(x) = 1/N sum_i N(x; x_i, sigma^2 I)``: no network is needed. Reading a
query ``x`` as a noised sample of unknown noise level ``sigma`` (DTE's view of an
anomaly: a point that looks as if it had been diffused for longer), Bayes' rule
under the scale-free prior ``p(log sigma) = const`` gives, in closed form,

* the posterior probability that ``x`` was diffused from stored row ``i``:
  ``w_i = r_i^{-d} / sum_j r_j^{-d}`` with ``r_i = |x - x_i|``;
* the posterior of ``sigma`` given that origin: ``r_i^2 / (2 sigma^2)`` is
  ``Gamma(d/2, 1)``, so ``E[log sigma | i] = log r_i - (log 2 + digamma(d/2)) / 2``.

The anomaly score is the posterior mean ``E[log sigma | x] = sum_i w_i E[log sigma | i]``,
in log standard deviations of the (standardised) features. The posterior is
continuous: it neither saturates at the top of a grid nor ties, unlike a grid
argmax (DTE-NP's released estimator), and its sign is right by construction (the
inverse-gamma variant's mean is a squared distance). The weights fall off as
``r^{-d}``, so in practice only the few nearest rows matter: the sum runs over the
``k`` nearest stored rows.

On contaminated training data the nearest stored rows of an anomaly are often
other anomalies (a cluster, or duplicates), and a posterior that trusts the
nearest origin calls it normal. The contamination-robust estimator therefore
gives each of the ``k`` nearest rows the same weight and uses their mean distance.

A stored row at distance exactly 0 is taken to be the query itself and left out
(once), so scoring the training rows gives their leave-one-out scores, as PyOD's
``decision_scores_`` expect.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["ESTIMATORS", "MAX_INDEX_NEIGHBOURS", "exact_time_scores", "nearest_distances",
           "query_chunk", "ranking_sq_distances"]

#: ``"posterior"`` -- the exact posterior mean (clean training data);
#: ``"neighbourhood"`` -- equal weights over the k nearest rows (contaminated data).
ESTIMATORS = ("posterior", "neighbourhood")

# Distances are floored at this noise level per feature (in standard deviations), so
# that a query equal to a stored row other than itself scores finitely.
_MIN_NOISE = 1e-3

# Largest query-by-reference block, in elements: bounds scoring memory (64 MiB in
# float32) whatever the number of rows scored or stored.
_BLOCK_ELEMENTS = 1 << 24
# Largest number of (query, neighbour) pairs held at once: queries are searched
# in chunks of this many pairs, so memory is bounded for any k (1001 neighbours
# of 20k queries would otherwise take 320 MB of distances and indices).
_PAIR_ELEMENTS = 1 << 20
# Most neighbours a search index (k-d tree) is asked for. Beyond this a tree's
# per-query heaps cost more than a blocked matrix product and a partial sort
# (20k queries, 10k stored rows in 5-d, 1001 neighbours: 5.8 s by the tree,
# about 2 s by matrix products and np.argpartition on one core).
MAX_INDEX_NEIGHBOURS = 128


def query_chunk(k_search: int) -> int:
    """Queries searched at once for ``k_search`` neighbours each."""
    return max(1, _PAIR_ELEMENTS // max(int(k_search), 1))


def nearest_distances(queries, reference, k, *, query_mask=None, device="cpu",
                      exclude_self=True, index=None, sort=True):
    """Euclidean distances from each query to its ``k`` nearest reference rows.

    Parameters
    ----------
    queries : ndarray of shape (n, d), float32
        Rows to score (missing values imputed, see ``query_mask``).
    reference : ndarray of shape (N, d), float32
        Stored rows (missing values already imputed).
    k : int
        Number of neighbours; reduced to ``N`` (``N - 1`` with ``exclude_self``).
    query_mask : ndarray of shape (n, d), bool, optional
        Observed features of each query: distances run over these only and are
        rescaled by ``d / d_observed``, so rows with gaps stay comparable.
    device : str or torch.device
        Where brute-force distance blocks are computed (CUDA: one matrix product
        per block of queries).
    exclude_self : bool, default=True
        Leave out (once) a stored row equal to the query (on the query's
        observed features, when it has gaps).
    index : object, optional
        A search index over ``reference`` whose ``kneighbors(queries, k)`` returns
        ``(distances, indices)`` of each query's ``k`` nearest rows: exact
        distances sorted ascending, or ``None`` and the indices in any order (the
        detectors pass a ``skdiffad._neighbours.NeighbourIndex``, the exact model
        an approximate :class:`~skdiffad._core.search.IVFIndex`, whose distances
        are ``inf`` where it found fewer rows). Used on the CPU for queries with
        no missing values and at most :data:`MAX_INDEX_NEIGHBOURS` neighbours (a
        tree is much faster than brute force there, and much slower for many
        neighbours); brute force answers the other queries, row by row.
    sort : bool, default=True
        Sort each row's distances. Order-free uses (a mean over the
        neighbours) pass ``False``: sorting 1000 neighbours of every query
        costs as much as finding them.

    Returns
    -------
    distances : ndarray of shape (n, k), float64
        Sorted ascending (in no particular order with ``sort=False``, unless a
        tree answered); every distance is computed exactly in float64 from the
        two rows (by the tree, or recomputed after a brute-force search), so a
        row's result never depends on its batch.

    Notes
    -----
    Memory grows with ``n * k``: search many queries for many neighbours in
    chunks of :func:`query_chunk` queries (as the exact model does).
    """
    device = torch.device(device)
    n_ref, d = reference.shape
    extra = 1 if exclude_self and n_ref > 1 else 0
    k = max(1, min(k, n_ref - extra))
    k_search = k + extra
    n = queries.shape[0]
    out = np.empty((n, k), dtype=np.float64)
    if n == 0:
        return out
    if index is not None and device.type == "cpu" and k_search <= MAX_INDEX_NEIGHBOURS:
        again = dict(k=k, device=device, exclude_self=exclude_self, sort=sort)
        gaps = None if query_mask is None else ~query_mask.all(axis=1)
        if gaps is not None and gaps.any():
            # the index answers the rows without gaps and brute force the others, row
            # by row, so that a row's answer does not depend on the rest of its batch
            out[~gaps] = nearest_distances(queries[~gaps], reference, index=index, **again)
            out[gaps] = nearest_distances(queries[gaps], reference,
                                          query_mask=query_mask[gaps], **again)
            return out
        rows = np.arange(n)  # the queries the search for k + 1 neighbours answers
        if extra and getattr(index, "sorted_distances", False):
            # the k nearest first: a query none of them is at distance 0 from has the
            # k + 1 search's answer with its farthest dropped, the same k distances;
            # the others (and any query its index read too few rows for) search again
            head, _ = index.kneighbors(queries, k)
            plain = (head[:, 0] != 0.0) & np.isfinite(head).all(axis=1)
            out[plain] = head[plain]
            rows = np.flatnonzero(~plain)
            if not len(rows):
                return out
        part = queries if len(rows) == n else queries[rows]
        exact, candidates = index.kneighbors(part, k_search)
        if exact is not None:
            found = np.isfinite(exact).all(axis=1)
            if extra:  # a query's own row is at distance exactly 0: first if present
                exact = _drop_one(exact, exact[:, :1] == 0.0)
            out[rows[found]] = exact[found]
            if not found.all():
                # an approximate index read fewer rows than asked: brute force for those
                out[rows[~found]] = nearest_distances(queries[rows[~found]], reference,
                                                      **again)
            return out
        # brute force (every query: an index of sorted distances always gives them):
        # its distances are recomputed below
    else:
        candidates = _brute_candidates(queries, reference, k_search, query_mask, device)
    full = query_mask is None or bool(query_mask.all())
    ref64 = reference.astype(np.float64, copy=False)
    chunk = max(1, _BLOCK_ELEMENTS // 8 // max(k_search * d, 1))
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        q = queries[start:stop].astype(np.float64)[:, None, :]
        diff = ref64[candidates[start:stop]] - q
        if full:
            d2 = np.einsum("nkd,nkd->nk", diff, diff)
            same = (diff == 0).all(axis=2)
        else:
            m = query_mask[start:stop][:, None, :]
            d2 = np.einsum("nkd,nkd->nk", diff * m, diff)
            d2 *= d / np.maximum(m.sum(axis=2), 1)
            same = ((diff == 0) | ~m).all(axis=2)
        if sort:
            order = np.argsort(d2, axis=1, kind="stable")
            d2 = np.take_along_axis(d2, order, axis=1)
            same = np.take_along_axis(same, order, axis=1)
        if extra:
            d2 = _drop_one(d2, same)
        out[start:stop] = np.sqrt(d2)
    return out


def _drop_one(values, is_self):
    """Drop one column per row: the first ``is_self`` one, else the largest (the
    farthest neighbour, which the extra one searched for pushed in)."""
    n, width = values.shape
    drop_at = np.where(is_self.any(axis=1), is_self.argmax(axis=1), values.argmax(axis=1))
    keep = np.arange(width)[None] != drop_at[:, None]
    return values[keep].reshape(n, width - 1)


def ranking_sq_distances(queries, weight, ref_t, *, ref_sq=None, ref_sq_t=None):
    """Weighted squared distances from each query to each reference row, less a
    per-query constant: ``sum_j w_j (r_j^2 - 2 q_j r_j)``.

    The omitted ``sum_j w_j q_j^2`` is the same for every reference row of a
    query, so the nearest rows (the ranking) are those of the full distance.

    Parameters
    ----------
    queries : torch.Tensor of shape (n, d)
    weight : torch.Tensor of shape (n, d) or None
        Entries each query is compared on (``None``: all, with ``ref_sq``).
        When every row of ``weight`` is the same (a full or a shared mask), the
        reference term is computed once instead of by a second matrix product.
    ref_t : torch.Tensor of shape (d, N)
        The reference rows, transposed.
    ref_sq : torch.Tensor of shape (N,), optional
        ``|r|^2`` of each reference row (needed when ``weight`` is None).
    ref_sq_t : torch.Tensor of shape (d, N), optional
        ``r^2`` entry-wise, transposed (needed with a ``weight``).

    Returns
    -------
    d2 : torch.Tensor of shape (n, N)
    """
    if weight is None:
        return torch.addmm(ref_sq[None], queries, ref_t, alpha=-2.0)
    if bool((weight == weight[:1]).all()):
        reference_term = weight[:1] @ ref_sq_t
    else:
        reference_term = weight @ ref_sq_t
    return torch.addmm(reference_term, queries * weight, ref_t, alpha=-2.0)


def _brute_candidates(queries, reference, k_search, query_mask, device):
    """Indices of the ``k_search`` nearest stored rows by blocked matrix products
    (in no particular order); a partial sort picks them (``topk``, or
    ``np.argpartition`` for many neighbours on the CPU, where it is twice as fast)."""
    ref = torch.as_tensor(reference, dtype=torch.float32, device=device)
    squares = ref * ref
    ref_sq = squares.sum(dim=1)
    ref_t = ref.T.contiguous()
    ref_sq_t = squares.T.contiguous() if query_mask is not None else None
    partial_sort = device.type == "cpu" and MAX_INDEX_NEIGHBOURS < k_search < ref.shape[0]
    # np.argpartition returns an int64 index for every distance: smaller blocks there
    chunk = max(1, (_BLOCK_ELEMENTS >> (2 if partial_sort else 0)) // max(ref.shape[0], 1))
    found = np.empty((queries.shape[0], k_search), dtype=np.int64)
    with torch.inference_mode():
        for start in range(0, queries.shape[0], chunk):
            stop = min(start + chunk, queries.shape[0])
            q = torch.as_tensor(queries[start:stop], dtype=torch.float32, device=device)
            if query_mask is None:
                d2 = ranking_sq_distances(q, None, ref_t, ref_sq=ref_sq)
            else:
                m = torch.as_tensor(query_mask[start:stop], device=device).float()
                d2 = ranking_sq_distances(q, m, ref_t, ref_sq_t=ref_sq_t)
                d2 /= m.sum(dim=1, keepdim=True).clamp(min=1.0)
            if partial_sort:
                found[start:stop] = np.argpartition(d2.numpy(), k_search - 1, axis=1)[:, :k_search]
            else:
                idx = torch.topk(d2, k_search, dim=1, largest=False, sorted=False).indices
                found[start:stop] = idx.cpu().numpy()
    return found


def exact_time_scores(distances, n_features, estimator="posterior"):
    """Posterior mean of ``log sigma`` from each query's nearest-row distances.

    Parameters
    ----------
    distances : ndarray of shape (n, k)
        Distances to the ``k`` nearest stored rows (see :func:`nearest_distances`).
    n_features : int
        Dimension ``d`` of the space the distances were measured in.
    estimator : {"posterior", "neighbourhood"}
        ``"posterior"`` weights origin ``i`` by ``r_i^{-d}`` (the exact posterior);
        ``"neighbourhood"`` averages the distances with equal weights.

    Returns
    -------
    scores : ndarray of shape (n,), float64
        ``E[log sigma | x]``, higher = more abnormal.
    """
    d = int(n_features)
    r = np.sqrt(np.asarray(distances, dtype=np.float64) ** 2 + d * _MIN_NOISE**2)
    log_r = np.log(r)
    if estimator == "posterior":
        logits = -d * log_r
        logits -= logits.max(axis=1, keepdims=True)
        w = np.exp(logits)
        w /= w.sum(axis=1, keepdims=True)
        centre = (w * log_r).sum(axis=1)
    elif estimator == "neighbourhood":
        centre = np.log(r.mean(axis=1))
    else:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    return centre - 0.5 * (math.log(2.0) + _digamma(d / 2.0))


def _digamma(x):
    return float(torch.special.digamma(torch.tensor(x, dtype=torch.float64)))

