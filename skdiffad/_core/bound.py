"""A lower bound on distances to stored samples, for the exact search on the CPU.

For any matrix ``B`` with orthonormal columns, a sample ``x`` splits into its
coordinates ``z = B^T x`` and a residual ``x - B z`` orthogonal to them, so

``|q - s|^2 = |z_q - z_s|^2 + |res_q - res_s|^2 >= |z_q - z_s|^2 + (|res_q| - |res_s|)^2``

(the reverse triangle inequality on the residuals). With ``B`` the leading principal
directions of the stored samples, a handful of coordinates and one residual norm keep
most of the distance on smooth data (windows of a periodic series): the bound over
``m + 1`` values rules out all but a few stored samples per query, at a fraction of
the cost of the full product over every entry.

The bound only picks the candidates (:meth:`ProjectedBound.candidates`); the exact
model measures them. The directions are read from the stored samples alone, so a
loaded model rebuilds the same bound. Any orthonormal ``B`` gives a valid bound: the
directions decide how tight it is, never whether it holds.

The products run in NumPy's BLAS on one thread (:mod:`skdiffad._core.blas`): a thin
``(n, m + 1) x (m + 1, N)`` product is bound by writing its output.
"""

from __future__ import annotations

import numpy as np
import torch

from .blas import one_thread

__all__ = ["BOUND_DIRECTIONS", "ProjectedBound", "pair_sq"]

#: Principal directions of the stored samples that the bound keeps (plus the residual norm).
BOUND_DIRECTIONS = 32
# Stored samples, spread evenly, that the directions are read from.
_BASIS_SAMPLES = 256
# Queries whose bounds are held at once: (rows x stored) float32 stays in the cache.
_ROWS = 128
# Entries of the pairs :func:`pair_sq` measures at once (two buffers of 1 MiB in float32).
_PAIR_ELEMENTS = 1 << 18


class ProjectedBound:
    """The projected lower bound over stored samples ``flat`` ``(N, D)`` (float32 CPU
    tensor).

    Attributes
    ----------
    basis : ndarray of shape (D, m), float32
        Orthonormal directions (the stored samples' leading principal directions).
    """

    def __init__(self, flat):
        x = flat.numpy()
        n, d = x.shape
        picked = np.unique(np.linspace(0, n - 1, min(_BASIS_SAMPLES, n)).round().astype(np.int64))
        sample = x[picked].astype(np.float64)
        sample -= sample.mean(axis=0)
        m = min(BOUND_DIRECTIONS, d, len(picked))
        _, vectors = np.linalg.eigh(sample @ sample.T)
        # leading directions, orthonormalised in float64 (Householder QR gives orthonormal
        # columns even where the sample has lower rank: all the bound needs)
        directions = sample.T @ vectors[:, ::-1][:, :m]
        basis, _ = np.linalg.qr(directions)
        self.basis = np.ascontiguousarray(basis, dtype=np.float32)
        self._basis_t = np.ascontiguousarray(self.basis.T)
        with one_thread():  # a block of rows at a time: its temporaries stay in the cache
            projected = np.concatenate([self.project(x[start:start + _ROWS])
                                        for start in range(0, n, _ROWS)])
        self._stored_t = np.ascontiguousarray(-2.0 * projected.T)  # -2 P^T: one product
        self._stored_sq = (projected * projected).sum(axis=1)

    def project(self, x):
        """``(n, m + 1)``: the coordinates of the rows of ``x`` ``(n, D)`` and the norm of
        their residuals."""
        z = x @ self.basis
        residual = x - z @ self._basis_t
        r = np.sqrt(np.einsum("nd,nd->n", residual, residual))
        return np.concatenate([z, r[:, None]], axis=1)

    def candidates(self, q, stored, margin, exclude=None, k=1):
        """The stored samples each query may be nearest to (one of its ``k`` nearest).

        Parameters
        ----------
        q : torch.Tensor of shape (n, D), float32, CPU
        stored : torch.Tensor of shape (N, D)
            The stored samples (the bound's ``flat``).
        margin : callable
            ``margin(q, upper)``: the squared distance a query's bound may exceed the
            attained ``upper`` by and still be kept (rounding).
        exclude : torch.Tensor of shape (n,), optional
            A stored sample each query may not use.
        k : int, default=1
            Neighbours wanted: the ``k`` stored samples nearest by the bound are
            measured, and the farthest of them sets the distance the others are held to
            (no stored sample beyond it can be among the ``k`` nearest).

        Returns
        -------
        rows, cols : torch.Tensor, int64
            Pairs of query and stored sample whose bound is within the distance of the
            ``k`` stored samples nearest by the bound (measured; the farthest of them),
            plus ``margin``.
        """
        n, n_stored = len(q), self._stored_t.shape[1]
        n_wanted = max(1, min(int(k), n_stored - (exclude is not None)))
        qn = q.numpy()
        width = -(-n_stored // 8) * 8  # whole 8-byte words of the mask
        mask = np.zeros((min(_ROWS, n), width), dtype=bool)
        lower = np.empty((min(_ROWS, n), n_stored), dtype=np.float32)
        all_rows, all_cols = [], []
        with one_thread():
            for start in range(0, n, _ROWS):
                stop = min(start + _ROWS, n)
                m = stop - start
                p = self.project(qn[start:stop])
                # |P_s|^2 - 2 p.P_s: the bound less |p|^2, a per-query constant
                np.matmul(p, self._stored_t, out=lower[:m])
                lower[:m] += self._stored_sq
                if exclude is not None:
                    lower[np.arange(m), exclude[start:stop].numpy()] = np.inf
                chunk = q[start:stop]
                if n_wanted == 1:
                    first = torch.from_numpy(lower[:m].argmin(axis=1))[:, None]
                else:
                    first = torch.topk(torch.from_numpy(lower[:m]), n_wanted, dim=1,
                                       largest=False, sorted=False).indices
                upper = pair_sq(chunk, stored, torch.arange(m).repeat_interleave(n_wanted),
                                first.reshape(-1)).view(m, n_wanted).max(dim=1).values.double()
                limit = upper + margin(chunk, upper) - torch.from_numpy(
                    np.einsum("nd,nd->n", p, p, dtype=np.float64))
                np.less_equal(lower[:m], limit.numpy().astype(np.float32)[:, None],
                              out=mask[:m, :n_stored])
                rows, cols = _true_entries(mask[:m])
                all_rows.append(rows + start)
                all_cols.append(cols)
        return (torch.from_numpy(np.concatenate(all_rows)),
                torch.from_numpy(np.concatenate(all_cols)))


def pair_sq(q, stored, rows, cols):
    """Squared distances of the pairs ``(rows, cols)`` of queries ``q`` and ``stored``
    samples, in their dtype, entry by entry: each within a few roundings of its own
    size, and the same whatever the other pairs.

    The pairs are gathered :data:`_PAIR_ELEMENTS` entries at a time into two buffers
    that are reused: fresh temporaries for every slice cost more in page faults than
    the arithmetic (five times the time on the CPU).
    """
    d2 = torch.empty(len(rows), dtype=q.dtype, device=q.device)
    if not len(rows):
        return d2
    step = max(1, min(len(rows), _PAIR_ELEMENTS // max(q.shape[1], 1)))
    a = torch.empty((step, q.shape[1]), dtype=q.dtype, device=q.device)
    b = torch.empty_like(a)
    for start in range(0, len(rows), step):
        stop = min(start + step, len(rows))
        m = stop - start
        diff = torch.index_select(stored, 0, cols[start:stop], out=a[:m])
        diff.sub_(torch.index_select(q, 0, rows[start:stop], out=b[:m])).mul_(diff)
        torch.sum(diff, dim=1, out=d2[start:stop])
    return d2


def _true_entries(mask):
    """``(rows, cols)`` of the true entries of a boolean matrix whose rows are whole
    8-byte words, in row-major order: the nonzero words first (an eighth of the reads
    of a search entry by entry, and the true entries are few)."""
    width = mask.shape[1]
    words = np.flatnonzero(mask.reshape(-1).view(np.uint64))
    if not len(words):
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    within, byte = np.nonzero(mask.reshape(-1, 8)[words])
    flat = words[within] * 8 + byte
    return flat // width, flat % width
