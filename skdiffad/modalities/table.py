"""Tables: rows of numeric and categorical columns, one score per row."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._core.nonparametric import MAX_INDEX_NEIGHBOURS
from .._core.paradigms import PARADIGMS
from .._encoders import TabularEncoder
from .._neighbours import NeighbourIndex
from ._base import Modality, _seed, edit

__all__ = ["TableModality"]

# Noise-to-signal ratios s_t/a_t of the partial chains of anomaly generation
# (standardised data).
_LOCAL_LEVEL = 1.0  # "local": noise as large as the signal
_CLUSTER_LEVEL = 0.3  # "clustered": variations of one row
_FEWSHOT_PULL = 0.05  # "fewshot": each step's pull of its estimate to the anomaly
_CLUSTER_SIZE = 8  # rows per cluster of "clustered"
_RESAMPLE = 3  # RePaint's resampling in the inpainting chains
_POSTERIOR_NEIGHBOURS = 10  # neighbours of the exact posterior
_MIN_NEIGHBOURHOOD = 20  # fewest neighbours of the contamination-robust estimator
# Most neighbours of the contamination-robust estimator with n_neighbors="auto": it
# stores at most NEIGHBOURHOOD / contamination rows, so its search stays within the
# index (MAX_INDEX_NEIGHBOURS, with the query's own row) instead of a partial sort of
# every stored row (issue #28: 20k x 5 fitted 11x slower than PyOD's KNN).
NEIGHBOURHOOD = MAX_INDEX_NEIGHBOURS - 1


class TableModality(Modality):
    """Rows of a table (numpy or pandas, mixed types, NaNs) as ``(d,)`` samples.

    The encoder standardises numeric columns and one-hot codes categorical ones
    (:class:`~skdiffad._encoders.TabularEncoder`); the reduction is a row's mean error
    (or its per-row score). The exact model scores a row by diffusion-time estimation
    from its nearest stored rows; a network is a residual MLP.

    Parameters
    ----------
    owner : str
        The detector's name, for messages.
    denoiser : {"exact", "mlp"}
        The exact diffusion of the stored rows, or a trained MLP.
    scoring : str
        The paradigm: ``"time"`` for the exact model; ``"time"``, ``"density"``,
        ``"reconstruction"`` or ``"score"`` for the MLP.
    widths : tuple of int
        The MLP's residual block widths.
    n_bins : int
        Time bins of the MLP's diffusion-time classifier.
    novelty : bool
        Exact model: the posterior (clean training data) or equal weights over the
        neighbourhood (contaminated training data).
    n_neighbors : int or "auto"
        Exact model: stored rows each score looks at (``"auto"``: see
        :meth:`neighbours`).
    contamination : float
        Expected share of anomalies (the neighbourhood of ``novelty=False``).
    levels : bool
        Record the discrete columns' training values (for sampling).
    """

    kind = "table"
    anomaly_kinds = ("local", "global", "dependency", "clustered", "fewshot")
    sampling_hint = ("fit it with denoiser='mlp' and scoring='density', 'reconstruction' or "
                     "'score', which train a denoiser of the rows")

    def __init__(self, *, owner, denoiser, scoring, widths, n_bins, novelty, n_neighbors,
                 contamination, levels):
        super().__init__(owner=owner)
        self.denoiser, self.scoring = denoiser, scoring
        self.widths, self.n_bins = tuple(int(w) for w in widths), int(n_bins)
        self.novelty, self.n_neighbors = novelty, n_neighbors
        self.contamination, self.levels = contamination, levels

    def neighbours(self, n_stored):
        """Stored rows each exact score looks at: ``n_neighbors``, or with ``"auto"`` 10
        for clean training data (the posterior's weights fall off as ``r^-d``: ADBench
        gave k = 1, 5, 10 and 50 within 0.0002 AUROC) and ``max(20, ceil(contamination
        x n_stored))`` for contaminated data, enough to see past a cluster of the
        expected number of anomalies."""
        if self.n_neighbors != "auto":
            return self.n_neighbors
        if self.novelty:
            return _POSTERIOR_NEIGHBOURS
        return max(_MIN_NEIGHBOURHOOD, int(np.ceil(self.contamination * n_stored)))

    def stored_rows(self, max_samples):
        """Training rows the exact model stores: ``max_samples``, and with ``novelty=False``
        and ``n_neighbors="auto"`` at most ``NEIGHBOURHOOD / contamination`` (a uniform
        sample), whose nearest ``contamination`` share is at most ``NEIGHBOURHOOD``
        rows: the same share of a smaller sample, found by the index."""
        if self.novelty or self.n_neighbors != "auto":
            return max_samples
        return min(max_samples, int(NEIGHBOURHOOD / self.contamination))

    @staticmethod
    def claims(X):
        return isinstance(X, pd.DataFrame) or (not isinstance(X, pd.Series) and np.ndim(X) == 2)

    @classmethod
    def generation_defaults(cls, X):
        return {"denoiser": "mlp", "scoring": "reconstruction"}

    def can_sample(self):
        return self.denoiser != "exact" and PARADIGMS[self.scoring].generative

    def make_encoder(self):
        return TabularEncoder(levels=self.levels, owner=self.owner)

    def make_model(self, encoded, settings):
        if self.denoiser == "exact":
            n_stored = min(len(encoded.training), self.stored_rows(settings.max_samples))
            return settings.exact_model(
                "time", exclusion="self", n_neighbors=self.neighbours(n_stored),
                estimator="posterior" if self.novelty else "neighbourhood", index=NeighbourIndex,
                max_samples=n_stored)
        network = {"name": "mlp", "hidden_dims": self.widths}
        return settings.learned_model(self.scoring, network, len(encoded.training),
                                      n_bins=self.n_bins)

    def decode(self, Z, normal=False):
        return self.encoder_.inverse_transform(Z, clip=normal)

    def sample(self, model, n, *, seed, sampler="ddpm", n_steps=None, missing=False,
               missing_seed=None):
        """``n`` new rows; ``missing`` blanks each entry at its column's training
        missing rate, drawn with ``missing_seed`` (see
        :meth:`skdiffad.TabDiffusionDetector.sample`)."""
        rows = super().sample(model, n, seed=seed, sampler=sampler, n_steps=n_steps)
        if not missing:
            return rows
        rates = self.encoder_.missing_rates_
        blank = np.random.default_rng(missing_seed).random((len(rows), len(rates))) < rates
        if isinstance(rows, np.ndarray):
            return np.where(blank, np.nan, rows)
        for j, c in enumerate(rows.columns):
            if blank[:, j].any():
                rows[c] = rows[c].mask(blank[:, j])
        return rows

    # -------------------------------------------------------------- generation
    def plant(self, kind, n, strength, rng, *, model, pool, anomalies=None, n_steps=100):
        """Anomalous rows of ``kind`` (ADBench's taxonomy, see :mod:`skdiffad.generation`)."""
        model = self.sampling_model(model)
        if kind == "local":
            Z = edit(model, _rows(pool, n, rng), _LOCAL_LEVEL, rng, n_steps,
                     temperature=1 + strength)
        elif kind == "global":
            Z = model.draw(n, seed=_seed(rng), sampler="ddim", n_steps=n_steps,
                           temperature=1 + 2 * strength)
        elif kind == "clustered":
            Z = self._clustered(n, strength, rng, model, pool, n_steps)
        elif kind == "dependency":
            Z = self._dependency(n, strength, rng, model, pool, n_steps)
        else:  # fewshot
            real = anomalies[0]
            a = real[rng.randint(len(real), size=n)]
            Z = edit(model, a, 0.5 / strength, rng, n_steps, target=a, attract=_FEWSHOT_PULL)
        return Z, np.ones(n, dtype=int)

    def _clustered(self, n, strength, rng, model, pool, n_steps):
        d = pool.shape[1]
        n_clusters = -(-n // _CLUSTER_SIZE)
        seeds = np.repeat(_rows(pool, n_clusters, rng), _CLUSTER_SIZE, axis=0)[:n]
        direction = rng.normal(size=(n_clusters, d))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        offset = np.repeat(direction * strength * np.sqrt(d), _CLUSTER_SIZE, axis=0)[:n]
        return edit(model, seeds, _CLUSTER_LEVEL, rng, n_steps) + offset.astype(np.float32)

    def column_blocks(self):
        """The encoded columns of each user column (a categorical column's codes together)."""
        n_numeric = len(self.encoder_.numeric_)
        blocks = [[j] for j in range(n_numeric)]
        start = n_numeric
        for cats in self.encoder_.categories_.values():
            blocks.append(list(range(start, start + len(cats))))
            start += len(cats)
        return blocks

    def _dependency(self, n, strength, rng, model, pool, n_steps):
        blocks = self.column_blocks()
        if len(blocks) < 2:
            raise ValueError("kind 'dependency' needs at least two columns")
        k = int(np.clip(round(0.3 * strength * len(blocks)), 1, len(blocks) // 2))
        first, other = _rows(pool, n, rng), _rows(pool, n, rng)
        redrawn = np.zeros_like(first, dtype=bool)
        for i in range(n):
            for b in rng.choice(len(blocks), size=k, replace=False):
                redrawn[i, blocks[b]] = True
        inpainted = edit(model, other, None, rng, n_steps, keep=~redrawn, n_resample=_RESAMPLE)
        return np.where(redrawn, inpainted, first)


def _rows(pool, n, rng):
    """``n`` rows of ``pool`` drawn with replacement."""
    return pool[rng.randint(len(pool), size=n)]
