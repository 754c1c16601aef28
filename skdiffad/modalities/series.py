"""Series: one (multichannel) time series, windows at one or several lengths, a score per step."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import _dask
from .._core.ensemble import ScaleEnsemble
from .._core.exact import ExclusionError
from .._core.plans import grating_masks
from .._core.progress import tracked_blocks
from .._core.samples import WindowSamples, fold, window_starts
from .._encoders import Encoded, ScalesEncoded, SeriesEncoder
from .._encoders.series import head_steps, min_training_steps
from .._reductions import (
    StretchScorer,
    channel_errors,
    finite_scores,
    fold_steps,
    mean_of,
    observed_mean,
    step_columns,
    training_scales,
)
from ._base import Modality, edit

__all__ = ["SCALING_STEPS", "SeriesModality"]

#: Steps of a Dask series that its channel scaling is fitted on (a uniform sample;
#: every step of a shorter series).
SCALING_STEPS = 200_000

# Fractions of T spanned by the starting steps of U-Net reconstruction: a little
# further than for table rows, where a window's fine detail is gone but its
# shape is kept.
T0_RANGE = (0.05, 0.3)

_RESAMPLE = 3  # RePaint's resampling when a span is redrawn for a planted anomaly


class SeriesModality(Modality):
    """One series as windows of one or several lengths; a score per step.

    Every window length is a member of a :class:`~skdiffad._core.ensemble.ScaleEnsemble`
    (one length is a one-member ensemble). A length's window errors are summed onto
    the steps they cover and turned into step scores by one
    :class:`~skdiffad._reductions.StretchScorer`, which the blockwise scoring of a
    Dask series uses too (:func:`skdiffad._dask.series`): each stretch of the series
    gets the whole series' bits. With several lengths, each length's scores are
    divided by its training scale (``reduction_["scales"]``) and averaged.

    Parameters
    ----------
    owner : str
    window_sizes : tuple of int or "auto"
    stride : int or None
    scaling : {"robust", "standard", "minmax", "none"}
    aggregation : {"window", "window_mean", "step"}
    aggregation_window : int or None
        The longest window the aggregation reads (``None``: each length's own).
    denoiser : {"exact", "unet"}
    scoring : {"reconstruction", "imputation"}
    widths : tuple of int
        U-Net: feature channels of its levels.
    kernel_size : int
        U-Net: width of the convolutions.
    n_stripes : int
        Imputation: stripes of the grating masks.
    spread_floor : float or None
        Exact reconstruction: an entry's squared error is multiplied by
        ``spread_floor / max(v, spread_floor)``, ``v`` the entry's variance over the
        stored windows nearest the window (``None``: every error counts in full).
    """

    kind = "series"
    rowwise = False
    anomaly_kinds = ("spike", "level_shift", "trend", "frequency", "flatline")
    injects = True
    sampling_hint = ("fit it with denoiser='unet' and scoring='reconstruction', which train "
                     "a denoiser of the windows")
    #: A plug-in saved before ``aggregation_window`` existed aggregated each length over
    #: its own windows; one saved before ``spread_floor`` counted every error in full.
    _added_params = {"aggregation_window": None, "spread_floor": None}

    def __init__(self, *, owner, window_sizes, stride, scaling, aggregation, denoiser, scoring,
                 widths, kernel_size, n_stripes, aggregation_window=None, spread_floor=None):
        super().__init__(owner=owner)
        self.window_sizes = window_sizes if isinstance(window_sizes, str) else tuple(window_sizes)
        self.stride, self.scaling = stride, scaling
        self.aggregation, self.denoiser, self.scoring = aggregation, denoiser, scoring
        self.aggregation_window = aggregation_window
        self.widths, self.kernel_size = tuple(int(w) for w in widths), int(kernel_size)
        self.n_stripes = int(n_stripes)
        self.spread_floor = spread_floor

    @staticmethod
    def claims(X):
        return isinstance(X, pd.Series) or (not isinstance(X, pd.DataFrame) and np.ndim(X) == 1)

    @classmethod
    def generation_defaults(cls, X):
        return {"denoiser": "unet", "window_size": max(8, min(64, len(X) // 3))}

    def can_sample(self):
        return self.denoiser != "exact" and self.scoring == "reconstruction"

    # ------------------------------------------------------------------ recipe
    def make_encoder(self):
        return SeriesEncoder(self.window_sizes, self.stride, self.scaling, owner=self.owner)

    def make_model(self, encoded, settings):
        lengths = self.encoder_.window_sizes_
        return ScaleEnsemble([self._length_model(part, length, settings)
                              for part, length in zip(encoded.parts, lengths)])

    def _length_model(self, encoded, length, settings):
        """The model of one window length."""
        hidden = None
        if self.scoring == "imputation":
            hidden = grating_masks(length, min(self.n_stripes, length))
            hidden = hidden[:, None, :]  # stripes along time, shared by the channels
        if self.denoiser == "exact":
            spread = self.spread_floor if self.scoring == "reconstruction" else None
            return settings.exact_model(self.scoring, exclusion="two-fold", hidden=hidden,
                                        spread_floor=spread)
        network = {"name": "conv1d", "widths": self.widths, "kernel_size": self.kernel_size}
        return settings.learned_model(self.scoring, network, len(encoded.training),
                                      t0_range=T0_RANGE, hidden=hidden, label=f"window {length}")

    def explain_exclusion(self, exc):
        return (
            f"the training series is too short for the exact denoiser: its window at "
            f"step {exc.position} overlaps every stored window, so it cannot be "
            f"scored as new data would be (threshold_ needs that). Pass a series of "
            f"at least {min_training_steps(exc.extent)} steps, a smaller window_size (now "
            f"{_spelled(self.window_sizes)}) or denoiser='unet'"
        )

    # --------------------------------------------------------------- encoding
    def scale(self, X):
        """A series of the fitted channels in model units: ``(series (C, n) float32,
        observed (C, n) bool)``."""
        return self.encoder_.scale(X)

    @property
    def shortest_window(self):
        """The shortest window length in use: no series may be shorter."""
        return self.encoder_.shortest

    @property
    def window_sizes_(self):
        """The window lengths in use (those the training series allowed)."""
        return self.encoder_.window_sizes_

    # --------------------------------------------------------------- reduction
    def fold(self, blocks, encoded):
        """Each length's window errors summed onto the steps they cover: ``(sums, counts)``
        of shape ``(C, n)`` per length (``None`` for a length that did not score it)."""
        return [None if stream is None else fold_steps(stream, part.samples)
                for stream, part in zip(blocks, encoded.parts)]

    def tracked(self, blocks, encoded, training=False):
        """Each length's error blocks in a progress report of its own (see
        :meth:`Modality.tracked`)."""
        if not self.verbose:
            return blocks
        what = "scoring the training series" if training else "scoring"
        return [None if stream is None
                else tracked_blocks(stream, len(part.samples),
                                    f"{what}, window {part.samples.extent}", unit="window",
                                    delay=self.scoring_delay)
                for stream, part in zip(blocks, encoded.parts)]

    def _divides(self):
        """Whether each length's scores are divided by its training scale: only when
        several lengths were asked for (one length's scores keep their units)."""
        return self.encoder_.several

    def _scales(self, columns):
        return training_scales(columns) if self._divides() else np.ones(columns.shape[1])

    def fit_reduction(self, folded, encoded):
        """Each length's ``SCALE_PERCENTILE``-th percentile of its training scores,
        which its scores are divided by (1 with a single length)."""
        columns = self.scorer(self._lengths(encoded)).columns(*step_columns(folded))
        return {"scales": self._scales(columns)}

    def reduce(self, folded, encoded):
        """Step scores: see the detector's ``aggregation`` and ``window_size``."""
        return self.scorer(self._lengths(encoded)).scores(*step_columns(folded),
                                                         channels=False)

    def _divisors(self):
        """Each fitted length's training scale; 1 before the reduction is fitted (the
        training columns are read undivided)."""
        reduction = getattr(self, "reduction_", None)
        if reduction is None:
            return np.ones(len(self.encoder_.window_sizes_))
        return reduction["scales"]

    def _lengths(self, encoded):
        """The fitted lengths that scored ``encoded`` (``(length, scale)``)."""
        return [(part.samples.extent, scale)
                for part, scale in zip(encoded.parts, self._divisors())
                if part is not None]

    def scorer(self, lengths):
        """The :class:`~skdiffad._reductions.StretchScorer` of ``(length, scale)`` pairs."""
        return StretchScorer(self.aggregation, lengths, self.n_features_in_,
                             longest=self.aggregation_window)

    def channel_scores(self, model, X):
        """Per-channel step scores of a series (see the detector's ``channel_scores``)."""
        encoded = self.encode(X)
        folded = self.fold(model.errors(encoded.samples), encoded)
        return self.scorer(self._lengths(encoded)).scores(*step_columns(folded, channels=True),
                                                          channels=True)

    # -------------------------------------------------------------------- dask
    def fit_encode_dask(self, X, *, max_samples, seed):
        """Fit on a Dask series without loading it: the channels' scaling on a uniform
        sample of :data:`SCALING_STEPS` steps (every step of a shorter series: then the
        fit equals the in-memory one, to the bit), each length's windows streamed from
        the blocks (:class:`skdiffad._dask.WindowSource`; the exact model gathers its
        ``max_samples`` windows, a network trains a few blocks at a time). The training
        scores are then the blockwise scores of the series (:meth:`fit_scores`)."""
        if hasattr(X, "to_frame") and not hasattr(X, "columns"):  # a Dask Series
            X = X.to_frame()
        steps = _dask.sample_rows(X, SCALING_STEPS, seed)
        if hasattr(X, "columns"):
            X = X.to_dask_array(lengths=True)
        elif X.ndim == 1:
            X = X[:, None]
        encoder, n = self.make_encoder(), int(X.shape[0])
        head = None
        if encoder.auto:  # the period needs consecutive steps: the series' first ones,
            # which a series of at most SCALING_STEPS steps has sampled whole, in order
            head = steps if n <= SCALING_STEPS else X[:head_steps(n)].compute()
        self.encoder_ = encoder.fit_stream(steps, n, head=head)
        X, _ = _dask.series_array(self, X)
        has_mask = bool(np.isnan(np.asarray(steps, dtype=np.float64)).any())
        streams = [_dask.WindowSource(X, self.encoder_.standardise, length, has_mask,
                                      max_validation=max_samples)
                   for length in self.encoder_.window_sizes_]
        return ScalesEncoded([Encoded(stream) for stream in streams], source=X)

    def fit_scores(self, model, encoded):
        if encoded.source is None:
            return super().fit_scores(model, encoded)
        self.reduction_ = None
        try:
            columns = _dask.series(self, model, encoded.source, columns=True,
                                   training=True).compute()
        except ExclusionError as exc:
            raise ValueError(self.explain_exclusion(exc)) from exc
        self.reduction_ = {"scales": self._scales(columns)}
        return finite_scores(mean_of([columns[:, i] / scale
                                      for i, scale in enumerate(self.reduction_["scales"])]))

    def dask_scores(self, estimator, X, method="decision_function"):
        if method not in ("decision_function", "channel_scores"):
            raise TypeError(f"{self.owner}.{method} does not take a Dask collection: compute "
                            "decision_function(X) (lazy, blockwise) and map the scores "
                            "yourself")
        return _dask.series(self, estimator.model_, X, channels=method == "channel_scores")

    def lengths_for(self, model, n):
        """``(model, length, stride, scale)`` of each fitted window length that a series
        of ``n`` steps is scored at."""
        return [entry for entry in zip(model.members, self.encoder_.window_sizes_,
                                       self.encoder_.strides_, self._divisors())
                if n >= entry[1]]

    def context(self, model, n):
        """Steps of its neighbours a stretch of a series of ``n`` steps needs on each side
        to score its own steps as the whole series would."""
        return max(entry[1] for entry in self.lengths_for(model, n)) - 1

    def stretch_errors(self, model, values, start, n, channels, training=False):
        """Step errors of the stretch ``values`` ``(m, C)`` (user units, NaN missing)
        that starts at step ``start`` of a series of ``n`` steps, gaps not filled
        (``training``: of the training series, under the exact model's two-fold rule,
        whose folds are that series' halves).

        Returns ``(m, K)``: a column per window length (``channels``: per length and
        channel), NaN where nothing is observed. Only the windows of the whole
        series' grid that lie inside the stretch are scored, so a step whose windows
        all lie inside it gets the whole series' value.
        """
        Z, obs = self.encoder_.standardise(np.asarray(values, dtype=np.float64))
        m, width = Z.shape[1], (Z.shape[0] if channels else 1)
        columns = []
        for member, length, stride, _ in self.lengths_for(model, n):
            starts = window_starts(n, length, stride)
            inside = starts[(starts >= start) & (starts + length <= start + m)] - start
            if not len(inside):
                columns.append(np.full((m, width), np.nan))
                continue
            samples = WindowSamples(Z, obs, inside, length, offset=start,
                                    n_positions=n - length + 1)
            sums, counts = (a.T for a in fold(samples, member.errors(samples,
                                                                    training=training)))
            columns.append(channel_errors(sums, counts).T if channels
                           else observed_mean(sums, counts)[:, None])
        return np.hstack(columns)

    def stretch_scorer(self, model, n):
        """What turns a stretch's step errors into scores, without the model (the
        blockwise aggregation pass needs no more)."""
        return self.scorer([(length, scale) for _, length, _, scale
                            in self.lengths_for(model, n)])

    # ---------------------------------------------------------------- sampling
    def window_model(self, model, window_size=None):
        """The learned model of one fitted window length (``None``: the longest) and
        that length."""
        lengths = self.encoder_.window_sizes_
        self.sampling_model(model.members[0])  # every member is of one kind
        if window_size is None:
            window_size = max(lengths)
        if window_size not in lengths:
            raise ValueError(f"window_size must be one of the fitted lengths {lengths}, got "
                             f"{window_size!r}")
        return model.members[lengths.index(window_size)], int(window_size)

    def sample(self, model, n, *, seed, sampler="ddpm", n_steps=None, window_size=None,
               context=None, horizon=None, n_resample=5):
        """New windows, or continuations of ``context`` (see the detector's ``sample``)."""
        member, length = self.window_model(model, window_size)
        if context is None:
            if horizon is not None:
                raise ValueError("horizon needs a context to continue")
            return self.decode(member.draw(n, seed=seed, sampler=sampler, n_steps=n_steps))
        if not hasattr(context, "__len__") or len(context) < length:
            raise ValueError(f"context must end with {length} fully observed steps (one "
                             f"window), got {len(context) if hasattr(context, '__len__') else 0}"
                             " steps")
        series, observed = self.scale(context)
        if series.shape[1] < length or not observed[:, -length:].all():
            raise ValueError(f"context must end with {length} fully observed steps (one "
                             f"window), got {series.shape[1]} steps")
        step = max(1, length // 2)
        if horizon is None:
            horizon = step
        tail = np.repeat(series[None, :, -length:], n, axis=0)
        drawn = []
        remaining, k = horizon, 0
        while remaining > 0:
            new = min(step, remaining)
            window = np.concatenate([tail[:, :, new:], np.zeros_like(tail[:, :, :new])], axis=2)
            keep = np.zeros((1, 1, length), dtype=bool)
            keep[..., :length - new] = True
            window = member.edit(window, member.n_timesteps, seed=seed + k, sampler=sampler,
                                 n_steps=n_steps, keep=keep, n_resample=n_resample)
            drawn.append(window[:, :, length - new:])
            tail, remaining, k = window, remaining - new, k + 1
        return self.decode(np.concatenate(drawn, axis=2))

    def sampling_model(self, model):
        if isinstance(model, ScaleEnsemble):
            return self.window_model(model)[0]
        return super().sampling_model(model)

    # -------------------------------------------------------------- generation
    def normal_pool(self, X):
        """The normal series in model units and its observation mask."""
        return self.scale(X)

    def real_anomalies(self, anomalies, masks=None):
        raise ValueError("anomalies are for tables and images; series anomalies are shaped "
                         "(see SERIES_KINDS)")

    def plant(self, kind, n, strength, rng, *, model, pool, anomalies=None, n_steps=100):
        """Windows of the longest length with a shaped anomaly planted in each, labels per
        step (see :mod:`skdiffad.generation`)."""
        member, length = self.window_model(model)
        normal, observed = pool
        starts = _complete_windows(observed, length)
        if len(starts) == 0:
            raise ValueError(f"the training series has no fully observed window of "
                             f"{length} steps to plant anomalies in")
        starts = starts[rng.randint(len(starts), size=n)]
        windows = np.stack([normal[:, s:s + length] for s in starts])
        return _plant(windows.astype(np.float32), kind, strength, rng, member, n_steps)

    def inject(self, model, X, n, kinds, strength, rng, n_steps=100):
        """``X`` with ``n`` anomalies planted in non-overlapping, fully observed windows
        (see :meth:`skdiffad.generation.AnomalyGenerator.inject`)."""
        member, length = self.window_model(model)
        series, observed = self.scale(X)
        complete = set(_complete_windows(observed, length).tolist())
        slots = [s for s in range(0, series.shape[1] - length + 1, length) if s in complete]
        if len(slots) < n:
            raise ValueError(f"X has room for {len(slots)} non-overlapping fully observed "
                             f"windows of {length} steps, fewer than n_anomalies={n}")
        starts = np.sort(rng.choice(slots, size=n, replace=False))
        planted = series.astype(np.float32).copy()
        y = np.zeros(series.shape[1], dtype=int)
        order = rng.permutation(n)
        for kind, share in zip(kinds, np.array_split(order, len(kinds))):
            if len(share) == 0:
                continue
            windows = np.stack([series[:, s:s + length] for s in starts[share]])
            redrawn, labels = _plant(windows.astype(np.float32), kind, strength, rng, member,
                                     n_steps)
            for s, w, lab in zip(starts[share], redrawn, labels):
                planted[:, s:s + length] = w
                y[s:s + length] = lab
        out = self.decode(planted[None])[0]
        out[~observed.T] = np.nan
        return out, y


def _spelled(window_sizes):
    if isinstance(window_sizes, str):
        return repr(window_sizes)
    return window_sizes[0] if len(window_sizes) == 1 else window_sizes


def _complete_windows(observed, length):
    """Starts of the windows of ``length`` steps where every channel is observed."""
    gaps = (~observed.all(axis=0)).astype(float)
    return np.flatnonzero(np.convolve(gaps, np.ones(length), "valid") == 0)


def _plant(windows, kind, strength, rng, model, n_steps):
    """Windows ``(n, C, L)`` (model units) with an anomaly planted in each: a span of one
    channel redrawn by inpainting and shaped; labels ``(n, L)``."""
    n, n_channels, length = windows.shape
    channels = rng.randint(n_channels, size=n)
    spans = []
    for _ in range(n):
        m = rng.randint(max(1, length // 8), max(2, length // 3) + 1)
        lo = rng.randint(0, length - m + 1)
        spans.append((lo, lo + m))
    if kind == "spike":
        spans = [(lo, lo + min(hi - lo, rng.randint(1, 4))) for lo, hi in spans]
    keep = np.ones_like(windows, dtype=bool)
    for i, (lo, hi) in enumerate(spans):
        keep[i, channels[i], lo:hi] = False
    redrawn = edit(model, windows, None, rng, n_steps, keep=keep, n_resample=_RESAMPLE)
    labels = np.zeros((n, length), dtype=int)
    for i, (lo, hi) in enumerate(spans):
        row = redrawn[i, channels[i]]
        spread = max(float(windows[i, channels[i]].std()), 0.1)
        row[lo:hi] = _shape(kind, row, lo, hi, strength, spread, rng)
        labels[i, lo:hi] = 1
    return redrawn, labels


def _shape(kind, row, lo, hi, strength, spread, rng):
    """The span ``row[lo:hi]`` with the perturbation of ``kind`` put on it."""
    span = row[lo:hi].copy()
    m = hi - lo
    sign = 1.0 if rng.random_sample() < 0.5 else -1.0
    if kind == "spike":
        return span + sign * (2 + 4 * strength) * spread
    if kind == "level_shift":
        return span + sign * 1.5 * strength * spread
    if kind == "trend":
        return span + sign * 3 * strength * spread * np.arange(1, m + 1) / m
    if kind == "frequency":
        window = row.astype(np.float64)
        centre = (lo + hi - 1) / 2
        source = centre + (np.arange(lo, hi) - centre) * (1 + strength)
        return np.interp(np.clip(source, 0, len(row) - 1), np.arange(len(row)), window)
    return np.full(m, row[lo], dtype=row.dtype)  # flatline
