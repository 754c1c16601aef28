"""The estimator shell every skdiffad detector shares.

A detector is a **modality** (:mod:`skdiffad.modalities`: an encoder, a model
recipe and a reduction behind one plug-in object) inside this shell, which owns
everything else and is the same for every data kind: parameter validation,
seeding, device resolution, the flow encoder -> model -> reduction in ``fit``,
PyOD's threshold and labels, Dask dispatch, sampling and pickling. A subclass
implements ``_make_modality`` (its modality, built from its parameters) and
documents its parameters; it never overrides ``fit``. Scoring reads the fitted
modality and model only, never a parameter.
"""

from __future__ import annotations

import dataclasses
import inspect
import numbers

import numpy as np
import pandas as pd
import torch
from pyod.models.base import BaseDetector
from scipy.special import erf
from scipy.stats import binom
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import _dask
from ._core.devices import resolve_device
from ._core.schedules import BETA_SCHEDULES
from ._core.search import SEARCHES
from ._core.training import TrainingConfig
from ._params import DEPRECATED, UNSET, warn_deprecated
from ._persistence import check_stamp, load, save, stamp, trust
from .modalities import ModelSettings

__all__ = ["BaseDiffusionDetector", "resolve_device"]


def _positive_ints(value, name):
    """Check a non-empty tuple of positive integers (a network's widths)."""
    if len(value) == 0 or not all(
        isinstance(w, numbers.Integral) and not isinstance(w, bool) and w >= 1 for w in value
    ):
        raise ValueError(f"{name} must be a non-empty tuple of positive integers, got {value!r}")


def _check_layout(image_size, image_shape):
    """Check the image parameters ``image_size`` ``(H, W)`` and ``image_shape``
    ``(H, W[, C])``: ``None``/``"auto"`` or a tuple of positive integers."""
    for name, value, lengths, form in (("image_size", image_size, (2,), "(H, W)"),
                                       ("image_shape", image_shape, (2, 3), "(H, W[, C])")):
        if value is None or isinstance(value, str):
            continue
        if len(value) not in lengths or not all(
                isinstance(v, numbers.Integral) and v >= 1 for v in value):
            raise ValueError(f"{name} must be a tuple of positive integers {form}, "
                             f"got {value!r}")


def _check_n_samples(n_samples, name="n_samples"):
    """A positive integer count, or a ``ValueError`` naming ``name``."""
    if (isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral)
            or n_samples < 1):
        raise ValueError(f"{name} must be a positive integer, got {n_samples!r}")
    return int(n_samples)


def _stream_record(history, streams):
    """A training record with what streaming the training samples from Dask blocks read."""
    return dict(history or {}, streamed_samples=sum(len(s) for s in streams),
                streamed_blocks=max(s.n_blocks for s in streams),
                block_loads=sum(s.block_loads for s in streams),
                most_blocks_held=max(s.most_held for s in streams))


def _unset(value):
    """Whether a deprecated parameter holds its default (it was not set)."""
    return isinstance(value, str) and value == UNSET


def on_index(X, values, name, columns=None):
    """``values`` (one entry per row of ``X``) as ``X`` came: for a pandas ``X`` a Series
    named ``name`` on ``X``'s index, or for 2-D values a DataFrame with ``columns``
    (``None``: ``X``'s own, a Series being one column as ``to_frame`` has it); for
    anything else the array itself."""
    if not isinstance(X, (pd.DataFrame, pd.Series)):
        return values
    if np.ndim(values) == 1:
        return pd.Series(values, index=X.index, name=name)
    return pd.DataFrame(values, index=X.index,
                        columns=input_columns(X) if columns is None else columns)


def input_columns(X):
    """The column labels of a pandas (or Dask) DataFrame, or of a Series as one column."""
    return list((X.to_frame() if not hasattr(X, "columns") else X).columns)


def _renamed(scores, name):
    """A (Dask or pandas) Series of scores renamed ``name``; an array as it is."""
    return scores.rename(name) if hasattr(scores, "rename") and np.ndim(scores) == 1 else scores


def float_dtype(X):
    """``float32`` when the values of ``X`` are float32 (an array's, a Dask array's, a
    Series' or every column of a DataFrame), else ``None``: what generated samples are
    cast to, as scikit-learn's transformers keep float32 data float32."""
    dtypes = list(X.dtypes) if hasattr(X, "columns") else [getattr(X, "dtype", None)]
    return np.dtype(np.float32) if dtypes and all(d == np.float32 for d in dtypes) else None


def as_dtype(samples, dtype):
    """Float ``samples`` (an array) cast to ``dtype`` (``None``: as they are); integer
    images and DataFrames (which keep their training dtypes) are left alone."""
    if dtype is None or not isinstance(samples, np.ndarray) or samples.dtype.kind != "f":
        return samples
    return samples.astype(dtype, copy=False)


def _seed_from(random_state):
    """An int seed from scikit-learn's ``random_state`` (``None``: NumPy's global)."""
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


class PredictionsMixin:
    """``score_samples``, ``predict``, ``predict_proba``, ``predict_confidence`` and
    ``fit_predict`` of a fitted detector, from its scores and PyOD's threshold.

    The class it is mixed into (before PyOD's ``BaseDetector``) provides
    ``decision_function``, ``_scores(X)`` (the scores of an in-memory ``X`` as an
    array), ``_check_rowwise_dask(method)`` (refuse a Dask ``X`` that ``method``
    cannot map block by block), ``contamination`` and PyOD's fitted
    ``decision_scores_``, ``threshold_``, ``labels_``, ``_mu`` and ``_sigma``; it
    may override ``_index_source``. The formulas are PyOD's, computed from one pass
    of scores; a pandas ``X`` gets pandas results on its index, an array arrays.
    """

    def _index_source(self, X):
        """The pandas object whose index the results for ``X`` take (when it is one)."""
        return X

    def score_samples(self, X):
        """Opposite of :meth:`decision_function` (scikit-learn's sign: higher = more
        normal), for the same ``X``; a Series named ``"score_samples"`` where
        :meth:`decision_function` gives a Series."""
        return _renamed(-self.decision_function(X), "score_samples")

    def fit_predict(self, X, y=None):
        """Fit on ``X`` and return the training samples' labels, ``labels_``.

        scikit-learn's ``OutlierMixin`` convention, without the ``FutureWarning`` of
        PyOD's own ``fit_predict``: the labels are those ``fit`` gave the training
        samples, so ``fit_predict(X)`` equals ``fit(X).labels_``.

        Parameters
        ----------
        X : array-like (or a dict, for FusionDetector)
            Training data, as in :meth:`fit`.
        y : Ignored
            Present for API consistency.

        Returns
        -------
        labels : ndarray of shape (n_samples,), int, or pandas.Series
            0/1 (1: anomaly); a Series named ``"predict"`` on the index that
            :meth:`decision_function` gives ``X``'s scores (a pandas ``X``'s).
        """
        return on_index(self._index_source(X), self.fit(X, y).labels_, "predict")

    def predict(self, X, return_confidence=False):
        """0/1 label of each sample (1: anomaly): its score above ``threshold_``.

        Parameters
        ----------
        X : array-like (or a dict, for FusionDetector)
            Data of the same kind as seen in fit; a Dask collection gives a lazy one.
        return_confidence : bool, default=False
            Also return PyOD's confidence of each label (from the same scores).

        Returns
        -------
        labels : ndarray of shape (n_samples,), int, or pandas.Series
            A Series named ``"predict"`` on the index that :meth:`decision_function`
            gives ``X``'s scores (a pandas ``X``'s).
        confidence : ndarray of shape (n_samples,), or pandas.Series
            Only with ``return_confidence=True``; see :meth:`predict_confidence`.
        """
        check_is_fitted(self, ["decision_scores_", "threshold_", "labels_"])
        if _dask.is_dask(X):
            labels = _renamed((self.decision_function(X) > self.threshold_).astype(int),
                              "predict")
            if return_confidence:
                return labels, self.predict_confidence(X)
            return labels
        scores, source = self._scores(X), self._index_source(X)
        labels = on_index(source, (scores > self.threshold_).astype(int), "predict")
        if return_confidence:
            return labels, on_index(source, self._confidence(scores), "predict_confidence")
        return labels

    def predict_proba(self, X, method="linear", return_confidence=False):
        """PyOD's outlier probability of each sample (see
        :meth:`pyod.models.base.BaseDetector.predict_proba`); row-wise on a Dask
        collection.

        Parameters
        ----------
        X : array-like (or a dict, for FusionDetector)
            Data of the same kind as seen in fit.
        method : {"linear", "unify"}, default="linear"
            ``"linear"``: the score min-max scaled by the training scores' range
            and clipped to [0, 1]; ``"unify"``: the Gaussian error function of the
            score standardised by the training scores (Kriegel et al., 2011).
        return_confidence : bool, default=False
            Also return :meth:`predict_confidence` (from the same scores).

        Returns
        -------
        proba : ndarray of shape (n_samples, 2), or pandas.DataFrame
            Probability of normal (column 0) and of anomaly (column 1); a
            DataFrame with columns 0 and 1 on the index that
            :meth:`decision_function` gives ``X``'s scores (a pandas ``X``'s).
        confidence : ndarray of shape (n_samples,), or pandas.Series
            Only with ``return_confidence=True``.
        """
        check_is_fitted(self, ["decision_scores_", "threshold_", "labels_"])
        if method not in ("linear", "unify"):
            raise ValueError(f"method must be 'linear' or 'unify', got {method!r}")
        if _dask.is_dask(X):
            self._check_rowwise_dask("predict_proba")
            proba = _dask.rowwise(self, "predict_proba", X, out_event=(2,),
                                  kwargs={"method": method})
            if return_confidence:
                return proba, self.predict_confidence(X)
            return proba
        scores, source = self._scores(X), self._index_source(X)
        if method == "linear":
            scaler = MinMaxScaler().fit(np.reshape(self.decision_scores_, (-1, 1)))
            anomalous = scaler.transform(scores.reshape(-1, 1)).ravel().clip(0, 1)
        else:
            anomalous = erf((scores - self._mu) / (self._sigma * np.sqrt(2))).clip(0, 1)
        proba = on_index(source, np.column_stack([1 - anomalous, anomalous]), None,
                         columns=[0, 1])
        if return_confidence:
            return proba, on_index(source, self._confidence(scores), "predict_confidence")
        return proba

    def predict_confidence(self, X):
        """PyOD's confidence in each label (see
        :meth:`pyod.models.base.BaseDetector.predict_confidence`); row-wise on a Dask
        collection.

        Returns
        -------
        confidence : ndarray of shape (n_samples,), or pandas.Series
            In [0, 1]; a Series named ``"predict_confidence"`` on the index that
            :meth:`decision_function` gives ``X``'s scores (a pandas ``X``'s).
        """
        check_is_fitted(self, ["decision_scores_", "threshold_", "labels_"])
        if _dask.is_dask(X):
            self._check_rowwise_dask("predict_confidence")
            return _dask.rowwise(self, "predict_confidence", X)
        return on_index(self._index_source(X), self._confidence(self._scores(X)),
                        "predict_confidence")

    def _confidence(self, scores):
        """PyOD's confidence in the labels of ``scores`` (Perini et al., 2020): how
        surely the label would survive a perturbed training set."""
        training = np.sort(np.ravel(self.decision_scores_))
        n = len(training)
        posterior = (1 + np.searchsorted(training, scores, side="right")) / (2 + n)
        confidence = 1 - binom.cdf(n - int(n * self.contamination), n, posterior)
        return np.where(scores > self.threshold_, confidence, 1 - confidence)


class BaseDiffusionDetector(PredictionsMixin, BaseDetector):
    """Shared fit/score flow of the diffusion detectors (not for direct use).

    Subclasses implement ``_make_modality()``: a
    :class:`~skdiffad.modalities.Modality` built from the detector's parameters
    (after they are validated), which the shell fits and keeps as ``modality_``.
    """

    _parameter_constraints: dict = {
        "n_timesteps": [Interval(numbers.Integral, 2, None, closed="left")],
        "beta_schedule": [StrOptions(set(BETA_SCHEDULES))],
        "n_scoring_timesteps": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_inference_steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_samples": [Interval(numbers.Integral, 1, None, closed="left")],
        "search": [StrOptions(set(SEARCHES))],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left"),
                     StrOptions({"auto", UNSET})],
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

    #: The search of a detector saved before there was a choice (issue #28).
    search = "exact"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        trust(cls)  # a plug-in defined outside the package saves and loads like ours

    # ------------------------------------------------------------- subclass API
    #: The class of the detector's modality (:mod:`skdiffad.modalities`).
    modality_class = None

    def _make_modality(self):  # pragma: no cover - abstract
        """The detector's modality, built from its (validated) parameters."""
        raise NotImplementedError

    def make_modality(self):
        """The modality plug-in these parameters build, unfitted (what :meth:`fit` fits).

        The parameters are validated first, as in :meth:`fit`. Useful to see what a
        configuration will do before paying for a fit (e.g. whether its model can
        sample: ``det.make_modality().can_sample()``).
        """
        self._validate_params()
        self._check_params()
        self._warn_deprecated()
        modality = self._make_modality()
        modality.verbose = self.verbose  # its scoring's progress reports
        return modality

    #: Parameters renamed in 0.2 that this detector still takes: old -> new name.
    _renamed = {"max_iter": "max_steps"}

    def _check_params(self):
        """Checks that span several parameters (after ``_validate_params``)."""

    def _spelling(self, name):
        """The name parameter ``name`` was given under: its 0.1 spelling when that was set."""
        for old, new in self._renamed.items():
            if new == name and old != "max_iter" and not _unset(getattr(self, old)):
                return old
        return name

    def _current(self, name):
        """The value of parameter ``name``, or of its 0.1 spelling when that was set."""
        return getattr(self, self._spelling(name))

    def _warn_deprecated(self):
        """A ``FutureWarning`` for every 0.1 spelling that was set."""
        owner = type(self).__name__
        for old in self._renamed:
            if not _unset(getattr(self, old)):
                new, what = DEPRECATED[old]
                warn_deprecated(owner, f"{new}=", what)
        if self.max_steps is None:
            warn_deprecated(owner, "an int max_steps",
                            "max_steps=None (the detector's default budget) is deprecated")

    def _default(self, name):
        return inspect.signature(type(self)).parameters[name].default

    def _model_settings(self):
        """What the shared parameters say about any model (see
        :class:`~skdiffad.modalities.ModelSettings`)."""
        default = self._default("max_steps")
        max_steps = default if self.max_steps is None else self.max_steps
        max_iter = None
        if not _unset(self.max_iter) and self.max_iter != "auto":
            # 0.1's epochs, capped only by a max_steps that was set (0.1: no cap by default)
            max_iter = self.max_iter
            max_steps = None if max_steps == default else max_steps
        training = TrainingConfig(
            max_iter=max_iter, max_steps=max_steps, batch_size=self.batch_size,
            learning_rate=self.learning_rate, weight_decay=self.weight_decay,
            ema_decay=self.ema_decay, early_stopping=self.early_stopping,
            validation_fraction=self.validation_fraction,
            n_iter_no_change=self.n_iter_no_change, mixed_precision=self.mixed_precision,
            verbose=self.verbose)
        return ModelSettings(
            n_timesteps=self.n_timesteps, beta_schedule=self.beta_schedule,
            n_scoring_timesteps=self.n_scoring_timesteps,
            n_inference_steps=self.n_inference_steps, max_samples=self.max_samples,
            search=self.search,
            training=training)

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
            :meth:`skdiffad.modalities.SeriesModality.fit_encode_dask`).
        y : Ignored
            Present for API consistency.

        Returns
        -------
        self : object
            The fitted detector.
        """
        modality = self.make_modality()
        settings = self._model_settings()
        if _dask.is_dask(X):
            encoded = modality.fit_encode_dask(X, max_samples=self.max_samples,
                                               seed=_seed_from(self.random_state))
        else:
            encoded = modality.fit_encode(X)
        seed = _seed_from(self.random_state)
        device = resolve_device(self.device)
        model = modality.make_model(encoded, settings)
        streams = encoded.streams
        if encoded.stream is not None and model.trains:
            # a network learns from every row, streamed from the blocks and encoded as
            # the sample was; the sample gives the training scores
            encoded = dataclasses.replace(encoded, training=encoded.stream())
            streams = [encoded.training]
            model = modality.make_model(encoded, settings)
        history = model.fit(encoded.training, seed=seed, device=device)
        if streams:
            history = _stream_record(history, streams)
        decision_scores = modality.fit_scores(model, encoded)
        # the whole fitted state is replaced at once, so nothing of a previous fit survives
        self.modality_, self.model_, self.device_ = modality, model, device
        for name in ("n_features_in_", "feature_names_in_"):
            value = getattr(modality, name)
            if value is None:
                vars(self).pop(name, None)
            else:
                setattr(self, name, value)
        self._record_training(history)
        self.decision_scores_ = decision_scores
        self._sample_dtype = float_dtype(X)  # what sample() gives back: float32 stays float32
        # PyOD's predict_proba reads _classes; its _set_n_classes(y) would warn
        # whenever y is passed, which GridSearchCV always does.
        self._classes = 2
        self._process_decision_scores()
        return self

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
    def _fitted(self):
        check_is_fitted(self, ["modality_", "model_", "decision_scores_"])
        return self.modality_, self.model_

    @property
    def encoder_(self):
        """The fitted encoder (``modality_.encoder_``)."""
        return self.modality_.encoder_

    @property
    def reduction_(self):
        """What the reduction learned from the training samples (``modality_.reduction_``)."""
        return self.modality_.reduction_

    def decision_function(self, X):
        """Anomaly score of each sample of ``X``; higher means more abnormal.

        Parameters
        ----------
        X : array-like
            Data of the same kind as seen in fit; a Dask collection gives a lazy
            result, computed block by block.

        Returns
        -------
        scores : ndarray of shape (n_samples,), float64, or pandas.Series
            Anomaly scores in the units of the detector's scoring. A pandas
            ``X`` (a DataFrame, or a Series for a series detector) gives a
            Series named ``"decision_function"`` on ``X``'s index, and a Dask
            DataFrame a Dask Series on its index; an array gives an array.
        """
        modality, model = self._fitted()
        if _dask.is_dask(X):
            return _renamed(modality.dask_scores(self, X), "decision_function")
        return on_index(X, modality.scores(model, X), "decision_function")

    def _scores(self, X):
        """:meth:`decision_function` of an in-memory ``X`` as an array (what the labels,
        probabilities and confidences are computed from)."""
        modality, model = self._fitted()
        return modality.scores(model, X)

    def fit_predict(self, X, y=None):
        """Fit on ``X`` and return ``fit(X).labels_``, the training samples' labels
        (scored as new data would be, see ``decision_scores_``), without PyOD's
        ``FutureWarning``; a Series named ``"predict"`` on the index of a pandas ``X``.

        Raises
        ------
        TypeError
            For a Dask collection of rows (a table, images): ``labels_`` then
            label the rows sampled at fit, not every row of ``X``. Fit, then call
            :meth:`predict`.
        """
        if _dask.is_dask(X) and self.modality_class.rowwise:
            raise TypeError(f"{type(self).__name__}.fit_predict does not take a Dask "
                            "collection of rows: fit scores only the rows it samples "
                            "(max_samples), so labels_ are theirs; call fit(X) and then "
                            "predict(X) (lazy, every row)")
        return super().fit_predict(X, y)

    def _check_rowwise_dask(self, method):
        modality, _ = self._fitted()
        if not modality.rowwise:
            raise TypeError(f"{type(self).__name__}.{method} does not take a Dask collection: "
                            "compute decision_function(X) (lazy, blockwise) and map the "
                            "scores yourself")

    # -------------------------------------------------------------- generation
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
            Decoded samples; the subclass says their kind. Float samples come
            in the training input's float dtype: float32 when ``X`` was
            float32, float64 otherwise.
        """
        n = _check_n_samples(n_samples)
        modality, model = self._fitted()
        return self._as_fitted_dtype(modality.sample(
            model, n, seed=_seed_from(random_state), sampler=sampler, n_steps=n_steps))

    def _as_fitted_dtype(self, samples):
        """Generated float samples in the training input's float dtype (float32 stays
        float32; a detector fitted or saved before this was recorded gives float64)."""
        return as_dtype(samples, getattr(self, "_sample_dtype", None))

    @property
    def network_(self):
        """The trained denoiser (or time classifier), or ``None`` for the exact model."""
        return getattr(self.model_, "networks_", {}).get("denoiser")

    # ------------------------------------------------------------- persistence
    def __getstate__(self):
        return stamp(super().__getstate__())

    #: Parameters added since the state format was last changed -> the value that
    #: reproduces how a detector saved before them scored (set when one is loaded).
    _added_params: dict = {}

    def __setstate__(self, state):
        state = {**self._added_params, **check_stamp(dict(state), type(self).__name__)}
        super().__setstate__(state)
        model = getattr(self, "model_", None)
        if model is not None:  # the model found its own device when it was unpickled
            self.device_ = model.device_

    def save(self, path):
        """Save the detector to the folder ``path``, without pickle.

        The folder holds ``config.json`` (the parameters, every fitted value that
        is not an array, and the skdiffad version and state format) and
        ``weights.safetensors`` (every array and tensor: stored samples, network
        weights, scoring noise). :meth:`load` reads it back without running code
        from the file, and the loaded detector scores bit for bit as this one. A
        detector holding objects that are not skdiffad's (a user
        ``feature_extractor`` module) cannot be saved this way: pickle it.

        Parameters
        ----------
        path : str or path-like
            The folder (created when missing; its two files are overwritten).

        Returns
        -------
        path : pathlib.Path
        """
        return save(self, path)

    @classmethod
    def load(cls, path):
        """A detector saved by :meth:`save` in the folder ``path``.

        Raises :class:`~skdiffad._persistence.IncompatibleVersionError` (a
        ``ValueError``) when the folder was written by a skdiffad whose state
        format differs from this one's, and ``TypeError`` when it holds another
        class of detector.
        """
        return load(path, cls)

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
