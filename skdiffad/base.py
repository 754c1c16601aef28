"""The estimator shell every skdiffad detector shares.

A detector is three things: an **encoder** (its input as samples of one event
shape, with observation masks), a **model** from ``skdiffad._core`` (the exact
diffusion of stored samples, or a trained network) and a **reduction** (the
model's errors folded into one score per output unit: a row, a time step, an
image). This shell owns everything else and is the same for every data kind:
parameter validation, seeding, device resolution, the flow encoder -> model ->
reduction in ``fit`` and ``decision_function``, PyOD's threshold and labels,
and pickling. A subclass implements ``_make_encoder``, ``_make_model`` and, when
the default per-sample mean does not fit its outputs, ``_fold`` / ``_reduce``;
it never overrides ``fit``.
"""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np
import torch
from pyod.models.base import BaseDetector
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import _dask
from ._core.devices import resolve_device
from ._core.exact import ExactModel, ExclusionError
from ._core.learned import LearnedModel
from ._core.paradigms import PARADIGMS, make_paradigm
from ._core.schedules import BETA_SCHEDULES
from ._core.training import TrainingConfig

__all__ = ["BaseDiffusionDetector", "resolve_device"]


def _positive_ints(value, name):
    """Check a non-empty tuple of positive integers (a network's widths)."""
    if len(value) == 0 or not all(
        isinstance(w, numbers.Integral) and not isinstance(w, bool) and w >= 1 for w in value
    ):
        raise ValueError(f"{name} must be a non-empty tuple of positive integers, got {value!r}")


def _paradigm(name, options):
    """The paradigm ``name`` built with the ``options`` it takes, and the options
    that are no paradigm's (the model's). A detector passes its settings to
    whichever scoring it has: another paradigm's options are dropped."""
    takes = PARADIGMS[name].options
    every = {option for cls in PARADIGMS.values() for option in cls.options}
    paradigm = make_paradigm(name, **{k: v for k, v in options.items() if k in takes})
    return paradigm, {k: v for k, v in options.items() if k not in every}


def _check_n_samples(n_samples, name="n_samples"):
    """A positive integer count, or a ``ValueError`` naming ``name``."""
    if (isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral)
            or n_samples < 1):
        raise ValueError(f"{name} must be a positive integer, got {n_samples!r}")
    return int(n_samples)


def _finite_scores(scores):
    """``scores``, or a ``FloatingPointError`` that counts the ones not finite."""
    if not np.all(np.isfinite(scores)):
        raise FloatingPointError(
            f"{int(np.sum(~np.isfinite(scores)))} of {len(scores)} scores are not finite; "
            "the input holds values too extreme for float32 after standardisation")
    return scores


def _stream_record(history, streams):
    """A training record with what streaming the training samples from Dask blocks read."""
    return dict(history or {}, streamed_samples=sum(len(s) for s in streams),
                streamed_blocks=max(s.n_blocks for s in streams),
                block_loads=sum(s.block_loads for s in streams),
                most_blocks_held=max(s.most_held for s in streams))


def _seed_from(random_state):
    """An int seed from scikit-learn's ``random_state`` (``None``: NumPy's global)."""
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


class BaseDiffusionDetector(BaseDetector):
    """Shared fit/score flow of the diffusion detectors (not for direct use).

    Subclasses implement:

    * ``_make_encoder()`` -- an unfitted encoder with ``fit_transform(self, X)``
      and ``transform(self, X)`` returning an ``Encoded`` (see
      ``skdiffad._encoders``);
    * ``_make_model(encoded)`` -- an unfitted model, usually through
      :meth:`_exact_model` or :meth:`_learned_model`;
    * optionally ``_fold(blocks, encoded)`` and ``_reduce(folded, encoded,
      reduction)`` -- how the model's error blocks become one score per output
      unit (default: one score per sample, the mean error of its scored
      entries);
    * optionally ``_fit_reduction(folded, encoded)`` -- what the reduction
      learns from the training samples' own folded errors (``reduction_``,
      e.g. the image detector's per-pixel error statistics; default none).
    """

    _parameter_constraints: dict = {
        "n_timesteps": [Interval(numbers.Integral, 2, None, closed="left")],
        "beta_schedule": [StrOptions(set(BETA_SCHEDULES))],
        "n_scoring_timesteps": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_inference_steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_samples": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "max_steps": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "ema_decay": [None, Interval(numbers.Real, 0, 1, closed="neither")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
        "mixed_precision": ["boolean"],
        "contamination": [Interval(numbers.Real, 0, 0.5, closed="right")],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    # ------------------------------------------------------------- subclass API
    def _make_encoder(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _make_model(self, encoded):  # pragma: no cover - abstract
        raise NotImplementedError

    #: Gradient steps of ``max_iter="auto"`` when ``max_steps`` is None.
    _default_steps = 1000

    def _check_params(self):
        """Checks that span several parameters (after ``_validate_params``)."""

    def _fold(self, blocks, encoded):
        """Collect the model's error blocks, one entry per sample.

        Returns ``(sums, counts)`` of shape ``(N, *event_shape)`` for
        element-wise errors, or ``(scores, None)`` of shape ``(N,)``.
        """
        n = len(encoded.samples)
        sums = counts = None
        for start, stop, block_sums, block_counts in blocks:
            if sums is None:
                sums = np.empty((n,) + block_sums.shape[1:])
                counts = None if block_counts is None else np.empty_like(sums)
            sums[start:stop] = block_sums
            if counts is not None:
                counts[start:stop] = block_counts
        return sums, counts

    def _fit_reduction(self, folded, encoded):
        """State the reduction learns from the training samples' folded errors
        (stored as ``reduction_`` and handed to :meth:`_reduce`); none here."""
        return None

    def _reduce(self, folded, encoded, reduction=None):
        """One score per sample: its per-sample score, or the mean error of its
        scored entries (an entry's error is ``sums / counts``)."""
        sums, counts = folded
        if counts is None:
            return sums
        n = sums.shape[0]
        sums, counts = sums.reshape(n, -1), counts.reshape(n, -1)
        scored = counts > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            per_entry = np.where(scored, sums / counts, 0.0)
        return per_entry.sum(axis=1) / np.maximum(scored.sum(axis=1), 1)

    # ---------------------------------------------------------- model helpers
    def _exact_model(self, paradigm, **options):
        """The exact diffusion of (at most ``max_samples``) stored training samples
        (``options``: the paradigm's and the model's; see :func:`_paradigm`)."""
        paradigm, options = _paradigm(paradigm, options)
        return ExactModel(paradigm, max_samples=self.max_samples, **options)

    def _learned_model(self, paradigm, network, encoded, **options):
        """A ``network`` trained with this detector's schedule and training settings
        (``options``: the paradigm's and the model's; see :func:`_paradigm`)."""
        paradigm, options = _paradigm(paradigm, {"n_grid": self.n_scoring_timesteps,
                                                 "n_inference_steps": self.n_inference_steps,
                                                 **options})
        return LearnedModel(
            paradigm, network, beta_schedule=self.beta_schedule, n_timesteps=self.n_timesteps,
            training=self._training_config(len(encoded.training)), **options,
        )

    def _training_config(self, n_samples):
        max_iter, max_steps = self.max_iter, self.max_steps
        if max_iter == "auto":
            # a fixed budget of gradient steps, whatever the number of samples
            max_steps = self._default_steps if max_steps is None else max_steps
            n_train = n_samples
            if self.early_stopping:
                n_train -= int(n_samples * self.validation_fraction)
            steps_per_epoch = -(-max(n_train, 1) // min(self.batch_size, max(n_train, 1)))
            max_iter = -(-max_steps // steps_per_epoch)
        return TrainingConfig(
            max_iter=max_iter,
            max_steps=max_steps,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            ema_decay=self.ema_decay,
            early_stopping=self.early_stopping,
            validation_fraction=self.validation_fraction,
            n_iter_no_change=self.n_iter_no_change,
            mixed_precision=self.mixed_precision,
            verbose=self.verbose,
        )

    # -------------------------------------------------------------------- fit
    def fit(self, X, y=None):
        """Fit the detector on ``X`` (``y`` is ignored).

        Parameters
        ----------
        X : array-like
            Training data; see the class docstring for the accepted kinds. On a
            Dask array or DataFrame of rows (tables, images) the encoder, the stored
            samples of the exact model and the training scores (``decision_scores_``,
            ``threshold_``) come from a uniform random sample of ``max_samples`` rows,
            drawn block by block without loading the rest
            (:func:`skdiffad._dask.sample_rows`); a trained network learns from every
            row, in mini-batches streamed a few blocks at a time
            (:class:`skdiffad._dask.BlockSamples`; ``history_`` then counts the
            blocks read). A Dask series is never loaded whole either: its scaling
            comes from a sample of steps, its models from windows streamed from the
            blocks, its training scores from blockwise scoring (see
            :meth:`skdiffad.DiffusionTSDetector._fit_dask`).
        y : Ignored
            Present for API consistency.

        Returns
        -------
        self : object
            The fitted detector.
        """
        self._validate_params()
        self._check_params()
        if _dask.is_dask(X) and not self._rowwise:
            fitted = self._fit_dask(X)
        else:
            fitted = self._fit_rows(X)
        encoder, model, device, reduction, history, decision_scores = fitted
        # the whole fitted state is replaced at once, so nothing of a previous fit survives
        self.encoder_, self.model_, self.device_ = encoder, model, device
        self.reduction_ = reduction
        self._record_training(history)
        self.decision_scores_ = decision_scores
        # PyOD's predict_proba reads _classes; its _set_n_classes(y) would warn
        # whenever y is passed, which GridSearchCV always does.
        self._classes = 2
        self._process_decision_scores()
        return self

    def _fit_rows(self, X):
        """Fit on an in-memory input, or on a Dask collection of rows (tables, images):
        the encoder, the stored samples and the training scores from a uniform sample
        of ``max_samples`` rows, a network from every row, streamed.

        Returns ``(encoder, model, device, reduction, history, decision_scores)``.
        """
        source = None
        if _dask.is_dask(X):
            source = X
            X = _dask.sample_rows(X, self.max_samples, _seed_from(self.random_state))
        encoder = self._make_encoder()
        encoded = encoder.fit_transform(self, X)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        device = resolve_device(self.device)
        model = self._make_model(encoded)
        training = encoded.training
        stream = None
        if source is not None and isinstance(model, LearnedModel):
            # a network learns from every row: mini-batches streamed from the blocks,
            # encoded as the sample was; the sample gives the training scores
            stream = _dask.BlockSamples(
                source, lambda block: encoder.transform(self, block).samples, training,
                max_validation=self.max_samples)
            model = self._make_model(dataclasses.replace(encoded, training=stream))
            training = stream
        history = model.fit(training, seed=seed, device=device)
        if stream is not None:
            history = _stream_record(history, [stream])
        folded = self._errors(model, encoded, training=True)
        reduction = self._fit_reduction(folded, encoded)
        decision_scores = self._score(folded, encoded, reduction)
        return encoder, model, device, reduction, history, decision_scores

    def _fit_dask(self, X):  # pragma: no cover - the series detector implements it
        """Fit on a Dask series (detectors whose outputs are not row-wise)."""
        raise NotImplementedError

    def _process_decision_scores(self):
        """PyOD's ``threshold_`` and ``labels_``, with a tie at the threshold settled.

        PyOD puts ``threshold_`` at the ``1 - contamination`` quantile of the
        training scores and flags the scores strictly above it. When that
        quantile falls inside a block of tied scores -- window aggregation
        gives every step of the most anomalous window the same score, and on a
        short series that block can hold more than ``contamination`` of the
        steps -- none of the block is flagged, possibly nothing at all. When
        flagging the block comes closer to ``contamination`` of the training
        samples, ``threshold_`` is lowered to midway between the block and the
        next lower score, and ``labels_`` follow.
        """
        super()._process_decision_scores()
        scores = np.asarray(self.decision_scores_)
        threshold = self.threshold_
        below = scores[scores < threshold]
        if not np.any(scores == threshold) or not len(below):
            return self
        target = self.contamination * len(scores)
        flagged, with_block = np.sum(scores > threshold), np.sum(scores >= threshold)
        if abs(with_block - target) < abs(flagged - target):
            self.threshold_ = below.max() / 2 + threshold / 2
            self.labels_ = (scores > self.threshold_).astype(int).ravel()
        return self

    def _record_training(self, history):
        """Set ``history_``, the loss curves and ``n_iter_`` from the model's
        training record, or for a model that trains nothing (``None``)."""
        history = {} if history is None else history
        self.history_ = history
        self.loss_curve_ = list(history.get("loss", []))
        self.validation_loss_curve_ = list(history.get("val_loss", []))
        self.n_iter_ = history.get("n_iter", 1)

    # ---------------------------------------------------------------- scoring
    def _explain_exclusion(self, exc):
        """Message for a training set too small for the exact model's exclusion rule."""
        return f"the training data is too small to score itself: {exc}"

    def _errors(self, model, encoded, training=False):
        """Encoded samples -> the model's errors, folded onto the output units."""
        try:
            return self._fold(model.errors(encoded.samples, training=training), encoded)
        except ExclusionError as exc:
            raise ValueError(self._explain_exclusion(exc)) from exc

    def _score(self, folded, encoded, reduction):
        """Folded errors -> one finite score per output unit."""
        return _finite_scores(self._reduce(folded, encoded, reduction))

    def _encode(self, X):
        check_is_fitted(self, ["model_", "decision_scores_"])
        return self.encoder_.transform(self, X)

    def decision_function(self, X):
        """Anomaly score of each sample of ``X``; higher means more abnormal.

        Parameters
        ----------
        X : array-like
            Data of the same kind as seen in fit.

        Returns
        -------
        scores : ndarray, float64
            Anomaly scores in the units of the detector's scoring.
        """
        if _dask.is_dask(X):
            return self._dask_scores(X)
        encoded = self._encode(X)
        return self._score(self._errors(self.model_, encoded), encoded, self.reduction_)

    def score_samples(self, X):
        """Opposite of :meth:`decision_function` (scikit-learn's sign: higher = more
        normal), for the same ``X``."""
        return -self.decision_function(X)

    def predict(self, X, return_confidence=False):
        """0/1 label of each sample (1: anomaly): its score above ``threshold_``.

        Parameters
        ----------
        X : array-like
            Data of the same kind as seen in fit; a Dask collection gives a lazy one.
        return_confidence : bool, default=False
            Also return PyOD's confidence of each label.

        Returns
        -------
        labels : ndarray of shape (n_samples,), int
        confidence : ndarray of shape (n_samples,)
            Only with ``return_confidence=True``.
        """
        if not _dask.is_dask(X):
            return super().predict(X, return_confidence=return_confidence)
        check_is_fitted(self, ["decision_scores_", "threshold_"])
        labels = (self.decision_function(X) > self.threshold_).astype(int)
        if return_confidence:
            return labels, self.predict_confidence(X)
        return labels

    def predict_proba(self, X, method="linear", return_confidence=False):
        """PyOD's outlier probability of each sample (see
        :meth:`pyod.models.base.BaseDetector.predict_proba`); row-wise on a Dask
        collection."""
        if _dask.is_dask(X):
            self._check_rowwise_dask("predict_proba")
            proba = _dask.rowwise(self, "predict_proba", X, out_event=(2,),
                                  kwargs={"method": method})
            if return_confidence:
                return proba, self.predict_confidence(X)
            return proba
        return super().predict_proba(X, method=method, return_confidence=return_confidence)

    def predict_confidence(self, X):
        """PyOD's confidence in each label (see
        :meth:`pyod.models.base.BaseDetector.predict_confidence`); row-wise on a Dask
        collection."""
        if _dask.is_dask(X):
            self._check_rowwise_dask("predict_confidence")
            return _dask.rowwise(self, "predict_confidence", X)
        return super().predict_confidence(X)

    # ------------------------------------------------------------------- dask
    #: Whether a sample's outputs depend on that sample alone (tables, images), so
    #: that any method can run block by block; series override the scoring instead.
    _rowwise = True

    def _check_rowwise_dask(self, method):
        check_is_fitted(self, ["model_", "decision_scores_"])
        if not self._rowwise:
            raise TypeError(f"{type(self).__name__}.{method} does not take a Dask collection: "
                            "compute decision_function(X) (lazy, blockwise) and map the "
                            "scores yourself")

    def _dask_scores(self, X):
        """:meth:`decision_function` of a Dask collection, lazily and blockwise."""
        check_is_fitted(self, ["model_", "decision_scores_"])
        return _dask.rowwise(self, "decision_function", X)

    # -------------------------------------------------------------- generation
    #: What to fit instead when the model cannot sample (subclasses say it).
    _sampling_hint = "fit a detector with a trained denoiser"

    def _sampling_model(self, model=None):
        """The learned model samples are drawn from (``model``, default
        ``model_``), or a clear error."""
        check_is_fitted(self, ["model_", "decision_scores_"])
        model = self.model_ if model is None else model
        if not isinstance(model, LearnedModel):
            raise ValueError(
                f"{type(self).__name__} has no trained denoiser to sample from: its model "
                f"is the exact diffusion of the stored training samples, whose samples "
                f"would be those samples again; {self._sampling_hint}")
        try:
            model.check_generative()
        except ValueError as exc:
            raise ValueError(f"{type(self).__name__} cannot sample: {exc}; "
                             f"{self._sampling_hint}") from None
        return model

    def _decode(self, Z, normal=False):
        """Samples in the model's units -> the user's units (subclasses); ``normal``:
        they are meant to be normal data (``sample``), not generated anomalies."""
        return Z

    def sample(self, n_samples=1, *, random_state=None, sampler="ddpm", n_steps=None):
        """Draw new normal samples from the trained denoiser.

        The reverse diffusion chain is run from the prior
        (:func:`skdiffad._core.sampling.draw_samples`) and its samples are decoded
        to the kind of data seen in fit. Needs a detector with a trained noise
        predictor (see the class's ``scoring``/``denoiser``); the exact models
        refuse, with the setting to fit instead.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples to draw.
        random_state : int, RandomState instance or None, default=None
            Seeds the chain (through a private torch generator); ``None`` draws
            the seed from NumPy's global generator. The detector is not changed.
        sampler : {"ddpm", "ddim"}, default="ddpm"
            Ancestral DDPM sampling (stochastic; with every step it is the
            model's own reverse process) or deterministic DDIM (fewer steps).
        n_steps : int or None, default=None
            Network evaluations per sample; ``None`` runs all ``n_timesteps``
            steps of ``"ddpm"`` and 50 of ``"ddim"``. Fewer steps are faster and
            draw samples a little too concentrated (see the user guide).

        Returns
        -------
        samples
            Decoded samples; the subclass says their kind.
        """
        n = _check_n_samples(n_samples)
        model = self._sampling_model()
        Z = model.draw(n, seed=_seed_from(random_state), sampler=sampler, n_steps=n_steps)
        return self._decode(Z, normal=True)

    @property
    def network_(self):
        """The trained denoiser (or time classifier), or ``None`` for the exact model."""
        return getattr(self.model_, "networks_", {}).get("denoiser")

    # ------------------------------------------------------------- persistence
    def __setstate__(self, state):
        super().__setstate__(state)
        model = getattr(self, "model_", None)
        if model is not None:  # the model found its own device when it was unpickled
            self.device_ = model.device_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = False
        # On CUDA, training (atomics in the backward pass, cuDNN) is not
        # bit-reproducible; on the CPU every result is.
        try:
            tags.non_deterministic = resolve_device(self.device).type == "cuda"
        except (ValueError, TypeError):
            tags.non_deterministic = False
        return tags
