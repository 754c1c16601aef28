"""The exact model: the closed-form diffusion of stored training samples.

A diffusion started from the empirical distribution of stored samples
``x_1 .. x_N`` has the noised marginal ``1/N sum_i N(x; a_t x_i, s_t^2 I)``, a
Gaussian mixture known in closed form: no network is trained. Everything it
needs at scoring time is a nearest-sample search:

* ``"time"`` -- diffusion-time estimation: the posterior mean of the noise level
  at which the query looks like a diffused stored sample, from its distances to
  the nearest stored samples (:func:`~skdiffad._core.nonparametric.exact_time_scores`);
  one score per sample.
* ``"reconstruction"`` -- as the noise vanishes, the exact denoiser
  ``E[x0 | x_t]`` tends to the stored sample nearest to the query; every entry's
  error is its squared distance to that sample.
* ``"imputation"`` -- ``E[x0_hidden | x_visible]`` tends to the hidden part of
  the stored sample nearest on the visible part; every hidden entry's error is
  its squared distance to it, over masks that hide each entry once.

When the training samples themselves are scored, a sample must not be restored
from itself. One exclusion rule serves rows, windows and (later) image patches:

* ``"none"`` -- every stored sample may be used;
* ``"self"`` -- a stored sample identical to the query is left out, once
  (value-based, so a training row and an equal new row score alike);
* ``"two-fold"`` -- when the training samples are scored, a sample may only use
  stored samples of the other half of its source that do not overlap it (its
  position more than ``extent`` away). A sample with no such stored sample falls
  back to any stored sample it does not overlap; one that overlaps every stored
  sample raises :class:`ExclusionError`. New data uses every stored sample.

On the CPU, the exact search of an element-wise paradigm restoring every entry (not
``per_site``, no ``hidden`` masks or ``"self"`` exclusion, samples of at least 64
entries) may use a *projected lower bound* to spare most of its matrix product
(:class:`~skdiffad._core.bound.ProjectedBound`): the coordinates along the stored
samples' leading principal directions, with the norm of what they leave out, are
never farther apart than the samples. So only the stored samples whose bound is
within the distance of the bound's nearest one can be the nearest, and they are few
on smooth data (the windows of a periodic series). A query left with more than a 32nd
of the stored samples takes the full product instead, and a model whose queries are
mostly left with more than :data:`BOUND_CANDIDATES` stops trying the bound.

The model keeps the bound when, at fit or load, it settles at least half of a probe of
its own stored samples. Then the search of new samples without gaps returns the
stored sample nearest in float64 (ties to the first stored), whichever way it was
found and whatever the batch: float32 distances find the candidates, and those
within float32 rounding of the best are measured again in float64. A model without
the bound takes the float32 products' nearest, as before.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import torch

from .bound import ProjectedBound, pair_sq
from .devices import loadable_device
from .nonparametric import (
    ESTIMATORS,
    MAX_INDEX_NEIGHBOURS,
    exact_time_scores,
    nearest_distances,
    query_chunk,
    ranking_sq_distances,
)
from .paradigms import PARADIGMS, Paradigm, accumulate, make_paradigm
from .samples import block_size, expand, pad_block
from .search import MIN_IVF_SAMPLES, SEARCHES, IVFIndex, faiss_module, ivf_lists

__all__ = ["BOUND_CANDIDATES", "EXCLUSIONS", "ExactModel", "ExclusionError"]

EXCLUSIONS = ("none", "self", "two-fold")

#: Most stored samples a query's bound may leave for it to count as settled by the bound
#: (the share of settled queries decides whether a model keeps the bound).
BOUND_CANDIDATES = 32
# The bound is tried on at least this many queries, and kept while it settles at least
# _BOUND_SHARE of them (it only decides the speed: the answers are the same).
_BOUND_TRIAL, _BOUND_SHARE = 64, 0.5
# A query the bound leaves with more candidates than BOUND_CANDIDATES is still measured
# candidate by candidate up to 1/_GATHER_SHARE of the stored samples (reading them one by
# one costs about that much more than the product's share per query).
_GATHER_SHARE = 32
# Entries of a sample below which the bound is not tried (the product is cheap).
_BOUND_MIN_ENTRIES = 64
# float32 products err by about sqrt(d) * 6e-8 of (|q| + |s|)^2; the margin keeps
# every stored sample within that rounding of the best as a candidate.
_MARGIN = 1e-5
# Rows squared at a time for the stored samples' norms (no temporary of the whole).
_NORM_ROWS = 256
# Entries of the near-tied pairs measured again in float64 at once (a few MiB).
_PAIR_ELEMENTS = 1 << 18
# Entries of the neighbours gathered at once for the spread weighting (16 MiB).
_SPREAD_ELEMENTS = 1 << 22


class ExclusionError(ValueError):
    """A training sample overlaps every stored sample, so the two-fold rule leaves
    it nothing to be restored from.

    Attributes
    ----------
    position : int
        Position of the first such sample in its source.
    extent : int
        Positions one sample covers.
    n_positions : int
        Positions in the source.
    """

    def __init__(self, position, extent, n_positions):
        self.position, self.extent, self.n_positions = int(position), int(extent), int(n_positions)
        super().__init__(
            f"the training sample at position {self.position} overlaps every stored sample "
            f"(each covers {self.extent} of {self.n_positions} positions), so none is left "
            "to restore it from"
        )


class ExactModel:
    """Stored training samples, a nearest-sample search and one exclusion rule.

    Parameters
    ----------
    paradigm : Paradigm or str
        How a query is scored from its nearest stored samples (module
        docstring): a paradigm whose ``exact`` is true (``"time"``,
        ``"reconstruction"``, ``"imputation"``), or its name. A per-sample
        paradigm (time) is scored from the distances to the nearest stored
        samples; an element-wise one restores every entry from the nearest
        stored sample, on the entries its masks hide (``hidden``, the
        imputation masks) or on all of them.
    max_samples : int, default=10000
        Most training samples stored (a seeded random sample above that).
    exclusion : {"none", "self", "two-fold"}, default="none"
        Which stored samples a query may not use (module docstring).
    n_neighbors : int, default=10
        ``"time"``: stored samples each score looks at; with ``spread_floor``:
        stored samples whose variance weights a restoration's errors.
    estimator : {"posterior", "neighbourhood"}, default="posterior"
        ``"time"``: the exact posterior (clean training data), or equal weights
        over the ``n_neighbors`` nearest (contaminated training data).
    per_site : bool, default=False
        Element-wise paradigms: restore a sample only from stored samples of
        its own site (``Samples.sites``: the place of an image patch), i.e. the
        exact diffusion conditioned on the site, for sources whose every site
        has its own normal content (a fixed camera); ``max_samples`` then
        bounds the stored samples of each site.
    index : callable, optional
        ``"time"``: ``index(rows)`` builds a search index over the stored rows
        with a ``kneighbors(queries, k)`` method (see
        :func:`~skdiffad._core.nonparametric.nearest_distances`); it is used for
        CPU queries without gaps and at most ``MAX_INDEX_NEIGHBOURS``
        neighbours, and rebuilt when the model is unpickled (never pickled
        itself).
    search : {"exact", "ivf"}, default="exact"
        How the nearest stored samples are found on the CPU: compared with every
        stored sample that a projected lower bound cannot rule out (exact; module
        docstring), or by an inverted-file index
        (:class:`~skdiffad._core.search.IVFIndex`, needs faiss) that reads about
        ``N_PROBE / (2 sqrt(N))`` of them and may miss a true neighbour. The index
        answers queries without gaps, ``"time"`` with at most a list's worth of
        neighbours (``sqrt(N) / 2``) and element-wise paradigms that
        restore every entry at once (not ``hidden`` masks, ``per_site`` or the
        two-fold rule's training samples); the exact search answers the others,
        every query on CUDA, and every query when fewer than
        ``MIN_IVF_SAMPLES`` samples are stored. The index is rebuilt (from the
        same seed) when the model is unpickled; without faiss there, the model
        falls back to the exact search with a warning.
    spread_floor : float or None, default=None
        ``"reconstruction"``: multiply each entry's squared error by
        ``spread_floor / max(v, spread_floor)``, ``v`` the entry's variance over the
        ``n_neighbors`` stored samples nearest the query (among those it may use):
        the errors of a Gaussian predictive whose variance is the larger of the floor
        and the spread of the query's neighbourhood, in units of the floor. Only
        entries whose stored values range wider than ``2 sqrt(spread_floor)`` can
        be weighted (a variance is at most a quarter of the squared range); a model
        with none scores as with ``None``, to the bit, at the same cost. Otherwise one
        search finds the ``n_neighbors`` nearest (by the projected bound where it
        leaves few candidates, else by the full product) and the restoration is the
        nearest of them (in float64, ties to the first stored, where the model keeps
        the bound). ``None``: every error counts in full.

    Attributes
    ----------
    trains : bool
        ``False``: fitting stores samples and trains nothing (a class attribute).
    stored_ : torch.Tensor of shape (N, *event_shape), float32
        The stored samples (on the CPU).
    stored_compact_ : dict or None
        A smaller form of the stored samples (:meth:`Samples.compact`: for windows,
        the stretch of the series they cover and their starts), which a pickle or a
        saved folder holds instead of ``stored_`` (rebuilt exactly on load);
        ``None``: they are saved as they are.
    positions_ : ndarray of shape (N,), int64
        Their positions in the training source.
    sites_ : ndarray of shape (N,), int64, or None
        Their sites (``per_site`` only).
    n_neighbors_ : int
        Neighbours per ``"time"`` score, at most the stored samples available.
    seed_ : int
        The seed of the stored sample, which also seeds the index's lists.
    device_ : torch.device
        Where searches run.
    """

    trains = False
    search = "exact"  # the search of a model saved before there was a choice
    spread_floor = None  # a model saved before the spread weighting counted every error
    stored_compact_ = None  # a model saved before the compact form held its samples

    def __init__(self, paradigm, *, max_samples=10_000, exclusion="none", n_neighbors=10,
                 estimator="posterior", per_site=False, index=None, search="exact",
                 spread_floor=None):
        paradigm = make_paradigm(paradigm)
        if not paradigm.exact:
            exact = tuple(name for name, cls in PARADIGMS.items() if cls.exact)
            raise ValueError(f"the exact model scores from stored samples only: paradigm must "
                             f"be one of {exact}, got {paradigm.name!r}")
        paradigm.check_ready()
        if exclusion not in EXCLUSIONS:
            raise ValueError(f"exclusion must be one of {EXCLUSIONS}, got {exclusion!r}")
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
        self.paradigm = paradigm
        self.max_samples = int(max_samples)
        self.exclusion = exclusion
        self.n_neighbors = int(n_neighbors)
        self.estimator = estimator
        self.per_site = bool(per_site)
        if self.per_site and not paradigm.elementwise:
            raise ValueError(f"per_site restores samples entry by entry; paradigm "
                             f"{paradigm.name!r} scores whole samples")
        if self.per_site and exclusion == "self":
            raise ValueError("per_site takes exclusion='none' or 'two-fold'")
        self.index = index
        if search not in SEARCHES:
            raise ValueError(f"search must be one of {SEARCHES}, got {search!r}")
        if search == "ivf":
            faiss_module()  # a clear error now rather than at the first score
        self.search = search
        if spread_floor is not None:
            if isinstance(spread_floor, bool) or not isinstance(spread_floor, numbers.Real) \
                    or not np.isfinite(spread_floor) or spread_floor <= 0:
                raise ValueError(f"spread_floor must be a positive number or None, got "
                                 f"{spread_floor!r}")
            if not paradigm.elementwise or paradigm.hidden is not None:
                raise ValueError(f"spread_floor weights the errors of a whole-sample "
                                 f"restoration: it takes the 'reconstruction' paradigm, got "
                                 f"{paradigm.name!r}")
            if self.per_site or exclusion == "self":
                raise ValueError("spread_floor takes exclusion='none' or 'two-fold' and no "
                                 "per_site search")
            spread_floor = float(spread_floor)
        self.spread_floor = spread_floor

    # ------------------------------------------------------------------ fit
    def fit(self, samples, seed, device):
        """Store (a seeded sample of at most ``max_samples``) training samples.

        Returns ``None``: nothing is trained.
        """
        n = len(samples)
        rng = np.random.default_rng(seed)
        self.seed_ = int(seed)
        self.sites_ = None
        if self.per_site:
            if samples.sites is None:
                raise ValueError("per_site needs samples with sites (image patches)")
            sites = np.asarray(samples.sites)
            keep = np.sort(np.concatenate([_at_most(np.flatnonzero(sites == site),
                                                    self.max_samples, rng)
                                           for site in np.unique(sites)]))
            self.sites_ = sites[keep]
        else:
            keep = _at_most(np.arange(n), self.max_samples, rng)
        x, _ = samples.take(torch.as_tensor(keep), "cpu")  # missing entries are already 0
        self.stored_ = x.contiguous()
        compact = samples.compact(keep)
        size = 0 if compact is None else sum(v.numel() for v in compact.values()
                                             if isinstance(v, torch.Tensor))
        self.stored_compact_ = compact if 0 < size < self.stored_.numel() else None
        self.positions_ = np.asarray(samples.positions)[keep]
        others = len(keep) - 1 if self.exclusion == "self" and len(keep) > 1 else len(keep)
        self.n_neighbors_ = max(1, min(self.n_neighbors, others))
        self.to(device)
        return None

    def to(self, device):
        """Move the search to ``device`` (the stored samples stay on the CPU too)."""
        self.device_ = torch.device(device)
        self._spread_cols = self._spread_values = None
        flat = self.stored_.reshape(len(self.stored_), -1)
        extra = 1 if self.exclusion == "self" else 0
        k_search = (self.n_neighbors_ if not self.paradigm.elementwise else 1) + extra
        self._ivf = self._ivf_index(flat, k_search)
        if not self.paradigm.elementwise:
            self._rows = flat.numpy()
            use_index = self.index is not None and k_search <= MAX_INDEX_NEIGHBOURS
            self._index = self._ivf if self._ivf is not None \
                else self.index(self._rows) if use_index else None
        else:
            flat = flat.to(self.device_)
            self._positions = torch.as_tensor(self.positions_, device=self.device_)
            self._site_rows, self._largest_site = None, 0
            if getattr(self, "sites_", None) is not None:
                # each site's stored samples, searched on their own (no copy of the whole)
                self._site_rows = {}
                for site in np.unique(self.sites_):
                    rows = torch.as_tensor(np.flatnonzero(self.sites_ == site),
                                           device=self.device_)
                    part = flat[rows].contiguous()
                    part_t = _transposed(part)
                    self._site_rows[int(site)] = (rows, part, part_t, part_t * part_t)
                self._largest_site = max(len(v[0]) for v in self._site_rows.values())
                return self
            self._flat = flat
            self._spread_entries()
            self._flat_t = _transposed(flat)
            self._sq_t = self._flat_t * self._flat_t  # the squares, transposed
            self._sq = torch.cat([(rows * rows).sum(dim=1)
                                  for rows in flat.split(_NORM_ROWS)])
            self._norm_max = float(self._sq.double().max().sqrt())
            self._bound = None
            if (self.device_.type == "cpu" and self.paradigm.hidden is None
                    and self.exclusion != "self"
                    and flat.shape[1] >= _BOUND_MIN_ENTRIES and len(flat) > BOUND_CANDIDATES):
                self._bound_seen, self._bound_settled = 0, 0
                self._bound = ProjectedBound(flat)
                if not self._bound_pays():
                    self._bound = None
        return self

    def _bound_pays(self):
        """Whether the projected bound settles at least ``_BOUND_SHARE`` of
        ``_BOUND_TRIAL`` stored samples spread evenly, each searched among the others
        (from the stored samples alone: the same on every load)."""
        probe = torch.as_tensor(np.linspace(0, len(self._flat) - 1, _BOUND_TRIAL).round()
                                .astype(np.int64))
        probe = torch.unique(probe)
        *_, settled = self._bound_candidates(self._flat[probe], exclude=probe)
        return float(settled.double().mean()) >= _BOUND_SHARE

    def _ivf_index(self, flat, k_search):
        """The inverted-file index over the stored samples, or ``None`` where the exact
        search runs (module and ``search`` docs): ``k_search`` neighbours beyond a
        list's worth would mostly come from brute force, so they search exactly."""
        if (self.search != "ivf" or self.device_.type != "cpu" or self.per_site
                or (self.paradigm.elementwise and self.paradigm.hidden is not None)
                or len(flat) < MIN_IVF_SAMPLES
                or k_search * ivf_lists(len(flat)) > len(flat)):
            return None
        try:
            faiss_module()
        except ImportError as err:
            warnings.warn(f"{err}; this exact model searches exactly instead", RuntimeWarning,
                          stacklevel=3)
            return None
        return IVFIndex(flat.numpy(), self.seed_)

    def __getstate__(self):
        # derived search structures (the index, transposed copies) are rebuilt on load,
        # and the stored samples from their compact form where they have one
        state = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        if state.get("stored_compact_") is not None:
            del state["stored_"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if "stored_" not in state and state.get("stored_compact_") is not None:
            self.stored_ = expand(self.stored_compact_).contiguous()
        # a state of skdiffad 0.1 named its paradigm by a string: left as it is, so that
        # the detector holding it refuses it with the versions (skdiffad._persistence)
        if "stored_" in self.__dict__ and isinstance(self.paradigm, Paradigm):
            self.to(loadable_device(self.device_, "the exact model"))

    # -------------------------------------------------------------- scoring
    def errors(self, samples, training=False):
        """Errors of ``samples`` in consecutive blocks.

        Parameters
        ----------
        samples : Samples
            Encoded like the training samples.
        training : bool, default=False
            Whether these are the training samples (the two-fold rule applies).

        Yields
        ------
        start, stop : int
            The samples of the block.
        sums, counts : ndarray, float64
            ``"time"``: ``sums`` of shape ``(stop - start,)``, one score per
            sample, and ``counts`` ``None``. Restorations: both of shape
            ``(stop - start, *event_shape)``, the squared error of each entry
            and the number of restorations that scored it.
        """
        if not self.paradigm.elementwise:
            yield from self._time_errors(samples)
            return
        two_fold = training and self.exclusion == "two-fold"
        per_site = self._site_rows is not None
        searched = self._largest_site if per_site else len(self.stored_)
        bytes_per_sample = 4 * 3 * searched + 8 * 4 * samples.n_elements
        for start, stop, x, obs in samples.blocks(block_size(bytes_per_sample, self.device_),
                                                  self.device_):
            with torch.inference_mode():
                positions = self._block_positions(samples, start, stop, len(x)) \
                    if two_fold else None
                if per_site:
                    groups = self._site_groups(samples, start, stop, len(x), positions)
                else:
                    excluded = None if positions is None else self._two_fold(
                        samples, positions, self._positions)
                    groups = [(None, None, excluded)]
                sums, counts = self._restore(x, obs, groups)
            n = stop - start
            yield start, stop, sums[:n].cpu().numpy(), counts[:n].cpu().numpy()

    def _time_errors(self, samples):
        n = len(samples)
        k_search = self.n_neighbors_ + (1 if self.exclusion == "self" else 0)
        step = query_chunk(k_search)
        d = self._rows.shape[1]
        for start in range(0, n, step):
            stop = min(start + step, n)
            x, mask = samples.take(torch.arange(start, stop))
            distances = nearest_distances(
                x.reshape(stop - start, d).numpy(), self._rows, self.n_neighbors_,
                query_mask=None if mask is None else mask.reshape(stop - start, d).numpy(),
                device=self.device_, exclude_self=self.exclusion == "self", index=self._index,
                sort=self.estimator == "posterior")
            yield start, stop, exact_time_scores(distances, d, self.estimator), None

    def _block_positions(self, samples, start, stop, n_rows):
        """Positions of a block's samples (padded rows repeat the block's first)."""
        positions = torch.as_tensor(samples.positions[start:stop], device=self.device_)
        if n_rows > len(positions):
            positions = torch.cat([positions, positions[:1].expand(n_rows - len(positions))])
        return positions

    def _two_fold(self, samples, positions, stored):
        """``(n_rows, N)`` mask of the ``stored`` samples (their positions) that training
        samples at ``positions`` may not use."""
        middle, extent = samples.n_positions // 2, samples.extent
        # comparisons against per-row bounds only: no (rows x stored) integer
        # differences to allocate (they took two thirds of an image fit's time)
        overlap = (stored[None] > (positions - extent)[:, None]) \
            & (stored[None] < (positions + extent)[:, None])
        excluded = ((stored >= middle)[None] == (positions >= middle)[:, None]) | overlap
        stranded = excluded.all(dim=1)
        if bool(stranded.any()):
            excluded[stranded] = overlap[stranded]  # fall back to any non-overlapping sample
            still = excluded.all(dim=1)
            if bool(still.any()):
                first = int(positions[int(torch.nonzero(still)[0])])
                raise ExclusionError(first, samples.extent, samples.n_positions)
        return excluded

    def _site_groups(self, samples, start, stop, n_rows, positions):
        """``(rows, stored, excluded)`` of each site of a block: its queries, its stored
        samples and (``positions``: training samples) the ones they may not use. The
        queries of a site are padded to a multiple of ``ROW_MULTIPLE`` rows when they
        are searched, so a query's result does not depend on the others."""
        sites = self._query_sites(samples, start, stop, n_rows)
        groups = []
        for site in np.unique(sites):
            rows = torch.as_tensor(np.flatnonzero(sites == site), device=self.device_)
            ref = self._site_rows[int(site)]
            excluded = None
            if positions is not None:
                excluded = self._two_fold(samples, pad_block(positions[rows]),
                                          self._positions[ref[0]])
            groups.append((rows, ref, excluded))
        return groups

    def _query_sites(self, samples, start, stop, n_rows):
        """Sites of a block's queries (padded rows repeat the first), or a clear error."""
        if samples.sites is None:
            raise ValueError("the exact model stores samples per site: score samples with "
                             "sites (image patches), encoded as in fit")
        sites = np.asarray(samples.sites[start:stop])
        if n_rows > len(sites):
            sites = np.concatenate([sites, np.repeat(sites[:1], n_rows - len(sites))])
        unknown = np.setdiff1d(np.unique(sites), self.sites_)
        if len(unknown):
            raise ValueError(f"site {int(unknown[0])} has no stored samples: the samples are "
                             "not cut as the training samples were")
        return sites

    def _nearest(self, x, weight, excluded, ref=None):
        """Stored sample nearest to each query over the entries ``weight`` keeps
        (among one site's stored samples ``ref``: ``(rows, flat, flat_t, sq_t)``;
        ``None``: all)."""
        _, stored, stored_t, sq_t = (None, self._flat, self._flat_t, self._sq_t) \
            if ref is None else ref
        n = x.shape[0]
        flat, w = x.reshape(n, -1), weight.reshape(n, -1)
        if self._ivf is not None and ref is None and excluded is None:
            found = self._ivf_nearest(flat, w)
            if found is not None:
                return stored[found].reshape(x.shape)
        if ref is None and excluded is None and self._bound is not None:
            return stored[self._exact_nearest(flat, w)].reshape(x.shape)
        d2 = ranking_sq_distances(flat, w, stored_t, ref_sq_t=sq_t)
        if excluded is not None:
            d2.masked_fill_(excluded, float("inf"))
        return stored[self._pick(d2, flat, w, stored)].reshape(x.shape)

    def _pick(self, d2, flat, w, stored):
        """The nearest stored sample of each query by its ranking distances ``d2``."""
        if self.exclusion != "self" or d2.shape[1] < 2:  # per_site never takes "self"
            return d2.argmin(dim=1)
        # "self": the nearest stored sample, unless it equals the query on the kept
        # entries (the query itself), then the next one -- a twin if there is one
        two = torch.topk(d2, 2, dim=1, largest=False).indices
        same = ((stored[two[:, 0]] - flat) * w == 0).all(dim=1)
        return torch.where(same, two[:, 1], two[:, 0])

    def _ivf_nearest(self, flat, w):
        """Index of the stored sample nearest to each query by the inverted-file index:
        the queries without gaps from the index, the others exactly (``None`` when no
        query is without gaps)."""
        full = (w == 1).all(dim=1)
        if not bool(full.any()):
            return None
        two = self.exclusion == "self" and len(self.stored_) > 1
        distances, found = self._ivf.kneighbors(flat[full].numpy(), 2 if two else 1)
        nearest = found[:, 0]
        if two:  # "self": the query itself is at distance exactly 0
            nearest = np.where(distances[:, 0] == 0.0, found[:, 1], found[:, 0])
        missed = nearest < 0
        out = torch.empty(len(flat), dtype=torch.int64)
        out[full] = torch.from_numpy(nearest)
        rest = ~full
        rest[torch.nonzero(full).flatten()[torch.from_numpy(missed)]] = True
        if bool(rest.any()):
            d2 = ranking_sq_distances(flat[rest], w[rest], self._flat_t, ref_sq_t=self._sq_t)
            out[rest] = self._pick(d2, flat[rest], w[rest], self._flat)
        return out

    def _exact_nearest(self, flat, w):
        """Index of the stored sample nearest to each query of a block of new samples:
        in float64 for the queries without gaps (module docstring), by the float32
        ranking of the whole block for the others."""
        full = (w == 1).all(dim=1)
        if bool(full.all()):
            return self._nearest_full(flat)
        out = torch.empty(len(flat), dtype=torch.int64, device=flat.device)
        gaps = torch.nonzero(~full).flatten()
        # only the rows with gaps, padded as a block is (ROW_MULTIPLE): their products
        # are those of the whole block, without a second search of the rows the bound takes
        d2 = ranking_sq_distances(pad_block(flat[gaps]), pad_block(w[gaps]), self._flat_t,
                                  ref_sq_t=self._sq_t)
        out[gaps] = d2.argmin(dim=1)[:len(gaps)]
        if bool(full.any()):
            rows = torch.nonzero(full).flatten()
            out[rows] = self._nearest_full(flat[rows])
        return out

    def _nearest_full(self, q):
        """The stored sample nearest to each query ``q`` (compared on every entry) in
        float64, ties to the first: the projected bound's candidates where it settles a
        query, else those within float32 rounding of the full product's best."""
        n = len(q)
        trial = _BOUND_TRIAL - self._bound_seen
        if 0 < trial < n:  # the rest of the trial first, then the rest as it decides
            return torch.cat([self._nearest_full(q[:trial]), self._nearest_full(q[trial:])])
        out = torch.full((n,), -1, dtype=torch.int64, device=q.device)
        todo = torch.arange(n, device=q.device)
        if trial > 0 or self._bound_settled >= _BOUND_SHARE * self._bound_seen:
            rows, cols, gathered, settled = self._bound_candidates(q)
            if len(rows):
                found = _closest(q, self._flat, rows, cols, n)
                out[gathered] = found[gathered]
            self._bound_seen += n
            self._bound_settled += int(settled.sum())
            todo = torch.nonzero(~gathered).flatten()
        if len(todo):
            out[todo] = self._product_nearest(q[todo])
        return out

    def _product_nearest(self, q):
        """The float64-nearest stored sample of each query by the full float32 product:
        its best, unless another stored sample lies within float32 rounding of it (then
        those are compared in float64)."""
        d2 = torch.addmm(self._sq[None], q, self._flat_t, alpha=-2.0)
        best, out = d2.min(dim=1)
        rows = torch.arange(len(q), device=q.device)
        d2[rows, out] = float("inf")
        size = (q.double().norm(dim=1) + self._norm_max) ** 2
        limit = best + (_MARGIN * _rounding(q.shape[1]) * size).to(d2.dtype)
        close = torch.nonzero(d2.min(dim=1).values <= limit).flatten()
        if len(close):  # near ties: every sample within the margin, the best included
            d2[close, out[close]] = best[close]
            rows, cols = torch.nonzero(d2[close] <= limit[close, None], as_tuple=True)
            out[close] = _closest(q[close], self._flat, rows, cols, len(close))
        return out

    def _bound_candidates(self, q, exclude=None, k=1):
        """``(rows, cols, gathered, settled)``: the pairs of query and stored sample the
        projected bound leaves to compare for its ``k`` nearest, for the queries it
        leaves few enough (``gathered``); ``settled``: those left at most
        :data:`BOUND_CANDIDATES` (``exclude``: a stored sample each query may not use)."""
        rounding = _MARGIN * _rounding(q.shape[1])

        def margin(chunk, upper):
            # the products' and the projection's rounding, which grows with the sizes
            size = (chunk.double().norm(dim=1) + self._norm_max) ** 2
            return rounding * (2 * upper + size)

        rows, cols = self._bound.candidates(q, self._flat, margin, exclude, k=k)
        count = torch.bincount(rows, minlength=len(q))
        # a query with more candidates is still measured candidate by candidate while
        # that reads less than its share of the full product would
        gathered = count <= max(k * BOUND_CANDIDATES, len(self._flat) // _GATHER_SHARE)
        keep = gathered[rows]
        return rows[keep], cols[keep], gathered, count <= BOUND_CANDIDATES

    def _restore(self, x, obs, groups):
        """Squared errors of a block restored by its nearest stored samples; ``groups``:
        ``(rows, stored, excluded)`` searched together (``None`` rows: the whole block,
        among every stored sample)."""
        obs_f = torch.ones_like(x) if obs is None else obs.to(x.dtype)
        sums = torch.zeros(x.shape, dtype=torch.float64, device=x.device)
        counts = torch.zeros_like(sums)

        def nearest(weight):
            rows, ref, excluded = groups[0]
            if rows is None:
                return self._nearest(x, weight, excluded)
            weight = weight.expand_as(x)
            out = torch.empty_like(x)
            for rows, ref, excluded in groups:
                found = self._nearest(pad_block(x[rows]), pad_block(weight[rows]), excluded, ref)
                out[rows] = found[:len(rows)]
            return out

        if self.paradigm.hidden is None:
            if self._spread_cols is None:
                accumulate(sums, counts, nearest(obs_f), x, obs_f)
                return sums, counts
            # one search for both: the k nearest, the restoration from the nearest of them
            n = len(x)
            flat, w = x.reshape(n, -1), obs_f.reshape(n, -1)
            found, measured = self._k_nearest(flat, w, groups[0][2])
            nearest_found = self._first(flat, w, found, measured)
            accumulate(sums, counts, self._flat[nearest_found].reshape(x.shape), x, obs_f)
            sums.view(n, -1)[:, self._spread_cols] *= self._spread_weights(found)
            return sums, counts
        for hidden in self.paradigm.hidden.to(x.device):
            hidden = hidden.to(x.dtype)
            x_hat = nearest(obs_f * (1 - hidden))
            accumulate(sums, counts, x_hat, x, obs_f * hidden)
        return sums, counts


    # ------------------------------------------------------------ spread
    def _spread_entries(self):
        """The entries whose stored values spread wider than ``2 sqrt(spread_floor)``
        (``_spread_cols``; ``None``: no entry, or no spread weighting): only there can
        the variance of some stored samples exceed the floor (a variance is at most a
        quarter of the squared range), so only there can an error be weighted."""
        if self.spread_floor is None:
            return
        # from the stored samples on the CPU, where NumPy reduces along the rows 25
        # times faster than torch (and a GPU model needs no copy back)
        values = self.stored_.reshape(len(self.stored_), -1).numpy()
        spread = (values.max(axis=0) - values.min(axis=0)).astype(np.float64)
        cols = np.flatnonzero(spread ** 2 > 4 * self.spread_floor)
        if len(cols):
            self._spread_cols = torch.as_tensor(cols, device=self._flat.device)
            self._spread_values = self._flat[:, self._spread_cols].contiguous()

    def _first(self, flat, w, found, measured=None):
        """The nearest of each query's ``found`` stored samples (nearest first): in
        float64, ties to the first stored, for queries without gaps where the model
        keeps the bound (as its nearest search does), else the first found.
        ``measured``: their float32 distances where the search measured them pair by
        pair (NaN where it did not), which are not measured again."""
        if self._bound is None or not bool((w == 1).all()):
            return found[:, 0]
        rows = torch.arange(len(flat), device=flat.device).repeat_interleave(found.shape[1])
        cols = found.reshape(-1)
        keep = cols >= 0
        rows, cols = rows[keep], cols[keep]
        d2 = None
        if measured is not None:
            d2 = measured.reshape(-1)[keep]
            unknown = torch.isnan(d2)
            if bool(unknown.any()):
                d2[unknown] = pair_sq(flat, self._flat, rows[unknown], cols[unknown])
        return _closest(flat, self._flat, rows, cols, len(flat), d2)

    def _spread_weights(self, found):
        """``floor / max(v, floor)`` (float64, ``(n, len(_spread_cols))``) of the
        entries that can spread: ``v`` the variance of the entry over each query's
        ``found`` stored samples (``-1``: none), ``floor`` the ``spread_floor``."""
        n = found.shape[0]
        values = self._spread_values
        out = torch.empty((n, values.shape[1]), dtype=torch.float64, device=found.device)
        step = max(1, _SPREAD_ELEMENTS // (found.shape[1] * values.shape[1]))
        for start in range(0, n, step):
            stop = min(start + step, n)
            rows = found[start:stop]
            valid = (rows >= 0).to(values.dtype)[..., None]
            near = values[rows.clamp_min(0)]  # (rows, k, entries)
            count = valid.sum(dim=1).clamp_min(1)  # a query always has one; never 0/0
            mean = (near * valid).sum(dim=1) / count
            near.sub_(mean[:, None]).mul_(valid)
            var = (near * near).sum(dim=1).double() / count.double()
            out[start:stop] = self.spread_floor / var.clamp_min(self.spread_floor)
        return out

    def _k_nearest(self, flat, w, excluded):
        """``(found, measured)``: ``(n, n_neighbors_)`` indices of the stored samples
        nearest each query, nearest first (by the projected bound where the model keeps
        it, for queries without gaps; ``-1`` where a query may use fewer), and their
        float32 distances as :meth:`_bound_k_nearest` measured them (``None``: by
        another search)."""
        k = self.n_neighbors_
        full = excluded is None and bool((w == 1).all())
        if full and self._ivf is not None:
            _, found = self._ivf.kneighbors(flat.numpy(), k)
            found = torch.from_numpy(np.ascontiguousarray(found)).to(torch.int64)
            if bool((found >= 0).all()):
                return found, None
        if full and self._bound is not None:
            return self._bound_k_nearest(flat, k)
        d2 = ranking_sq_distances(flat, w, self._flat_t, ref_sq_t=self._sq_t)
        if excluded is not None:
            d2.masked_fill_(excluded, float("inf"))
        return _top(d2, k), None

    def _bound_k_nearest(self, q, k):
        """``(found, measured)``: the ``k`` nearest stored samples of each query without
        gaps, among the projected bound's candidates where it leaves few enough, else
        by the full product; and their distances measured pair by pair (:func:`pair_sq`)
        where the candidates were, NaN where the full product found them."""
        rows, cols, gathered, _ = self._bound_candidates(q, k=k)
        n = len(q)
        found = torch.full((n, k), -1, dtype=torch.int64)
        measured = torch.full((n, k), float("nan"), dtype=q.dtype)
        if len(rows):
            # candidates come row by row: their place in their row's list
            count = torch.bincount(rows, minlength=n)
            place = torch.arange(len(rows)) - (torch.cumsum(count, 0) - count)[rows]
            dense = torch.full((n, int(count.max())), float("inf"), dtype=q.dtype)
            index = torch.full(dense.shape, -1, dtype=torch.int64)
            dense[rows, place] = pair_sq(q, self._flat, rows, cols)
            index[rows, place] = cols
            order = _top(dense, k)
            found[:, :order.shape[1]] = torch.gather(index, 1, order.clamp_min(0)) \
                .masked_fill(order < 0, -1)
            measured[:, :order.shape[1]] = torch.gather(dense, 1, order.clamp_min(0))
        todo = torch.nonzero(~gathered).flatten()
        if len(todo):
            found[todo] = _top(torch.addmm(self._sq[None], q[todo], self._flat_t,
                                           alpha=-2.0), k)
            measured[todo] = float("nan")
        return found, measured


def _top(d2, k):
    """Columns of the ``k`` smallest entries of each row of ``d2`` (``-1`` for an
    infinite one)."""
    k = min(k, d2.shape[1])
    values, found = torch.topk(d2, k, dim=1, largest=False)
    return found.masked_fill(torch.isinf(values), -1)


def _at_most(index, size, rng):
    """``index``, or a sorted uniform sample of ``size`` of its entries."""
    if len(index) <= size:
        return index
    return np.sort(rng.choice(index, size, replace=False))


def _transposed(flat):
    """``flat.T``: on the CPU a view, which BLAS reads as it is (measured: the same
    products, bit for bit, in the same time as from a transposed copy, and the model
    holds one copy of its stored samples fewer); contiguous on a GPU."""
    return flat.T if flat.device.type == "cpu" else flat.T.contiguous()


def _rounding(n_entries):
    """How many times :data:`_MARGIN` a product over ``n_entries`` may err by: its
    rounding grows as the square root of its length (1 up to 256 entries)."""
    return max(1.0, (n_entries / 256) ** 0.5)


def _sq_distances64(a, b):
    """Squared distances between the rows of ``a`` and ``b``, in float64, each summed
    the same way whatever the number of rows (NumPy's row-wise reduction on the
    CPU)."""
    diff = a.double() - b.double()
    if diff.device.type == "cpu":
        return torch.from_numpy(np.square(diff.numpy()).sum(axis=1))
    return (diff * diff).sum(dim=1)


def _closest(q, stored, rows, cols, n, d2=None):
    """For each of ``n`` queries, the stored sample nearest in float64 among its
    candidate pairs ``(rows, cols)`` (ties to the first stored); ``-1`` for a query
    without candidates. The pairs are measured in float32 (unless ``d2`` holds them,
    as :func:`pair_sq` gives them); those within its rounding of their query's best
    are measured again in float64."""
    out = torch.full((n,), -1, dtype=torch.int64, device=q.device)
    if not len(rows):
        return out
    if d2 is None:
        d2 = pair_sq(q, stored, rows, cols)
    step = max(1, _PAIR_ELEMENTS // max(q.shape[1], 1))
    best = torch.full((n,), float("inf"), dtype=q.dtype, device=q.device)
    best.scatter_reduce_(0, rows, d2, "amin")
    near = d2 <= best[rows] * (1 + 4 * _MARGIN * _rounding(q.shape[1]))
    rows, cols = rows[near], cols[near]
    count = torch.bincount(rows, minlength=n)
    alone = count[rows] == 1
    out[rows[alone]] = cols[alone]
    rows, cols = rows[~alone], cols[~alone]
    if len(rows):  # near ties: float64, ties to the first stored
        d64 = torch.empty(len(rows), dtype=torch.float64, device=q.device)
        for start in range(0, len(rows), step):
            stop = min(start + step, len(rows))
            d64[start:stop] = _sq_distances64(q[rows[start:stop]], stored[cols[start:stop]])
        r, c, d = rows.cpu().numpy(), cols.cpu().numpy(), d64.cpu().numpy()
        order = np.lexsort((c, d, r))
        first = order[np.r_[True, r[order][1:] != r[order][:-1]]]
        out[torch.as_tensor(r[first], device=q.device)] = torch.as_tensor(c[first],
                                                                          device=q.device)
    return out
