"""The modality plug-in: what a kind of data supplies to the estimator shell."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .. import _dask
from .._core.exact import ExactModel, ExclusionError
from .._core.learned import LearnedModel
from .._core.paradigms import PARADIGMS, make_paradigm
from .._core.progress import tracked_blocks
from .._core.training import TrainingConfig
from .._persistence import trust
from .._reductions import collect_rows, finite_scores, mean_per_sample

__all__ = ["Modality", "ModelSettings", "edit"]


@dataclass(frozen=True)
class ModelSettings:
    """What a detector's shared parameters say about any model it fits.

    The shell builds it from the parameters at fit; a modality's :meth:`Modality.make_model`
    reads it, and the names are the detector's (see the shared parameters' docs).

    Attributes
    ----------
    n_timesteps, beta_schedule, n_scoring_timesteps, n_inference_steps, max_samples, search
        As the detector's parameters.
    training : TrainingConfig
        The training settings of a network; its ``max_iter`` is ``None`` for "the
        epochs ``max_steps`` take" (resolved per training set by :meth:`training_for`),
        or 0.1's epoch count.
    """

    n_timesteps: int = 1000
    beta_schedule: str = "linear"
    n_scoring_timesteps: int = 8
    n_inference_steps: int = 5
    max_samples: int = 10_000
    search: str = "exact"
    training: TrainingConfig = field(default_factory=lambda: TrainingConfig(
        max_iter=None, max_steps=1000, early_stopping=False))

    def training_for(self, n_samples):
        """The :class:`~skdiffad._core.training.TrainingConfig` of ``n_samples``
        training samples: exactly ``max_steps`` gradient steps (the epochs they take),
        or with an int ``max_iter`` that many epochs, ``max_steps`` capping the steps."""
        config = self.training
        if config.max_iter is not None:
            return config
        n_train = n_samples
        if config.early_stopping:
            n_train -= int(n_samples * config.validation_fraction)
        steps_per_epoch = -(-max(n_train, 1) // min(config.batch_size, max(n_train, 1)))
        return replace(config, max_iter=-(-config.max_steps // steps_per_epoch))

    def exact_model(self, paradigm, **options):
        """The exact diffusion of (at most ``max_samples``) stored training samples, under
        ``paradigm`` (a name of :data:`~skdiffad._core.paradigms.PARADIGMS`) built with the
        ``options`` it takes; the others go to :class:`~skdiffad._core.exact.ExactModel`
        (``max_samples`` among them: a modality may store fewer)."""
        paradigm, options = _paradigm(paradigm, options)
        options.setdefault("max_samples", self.max_samples)
        options.setdefault("search", self.search)
        return ExactModel(paradigm, **options)

    def learned_model(self, paradigm, network, n_samples, *, label=None, **options):
        """A ``network`` trained on ``n_samples`` samples with these settings, scored under
        ``paradigm`` built with the ``options`` it takes (and ``n_grid`` /
        ``n_inference_steps`` from ``n_scoring_timesteps`` / ``n_inference_steps`` when it
        takes them). ``label`` names its training in the progress reports of ``verbose``
        (one network of several: ``"window 64"``)."""
        options = {"n_grid": self.n_scoring_timesteps,
                   "n_inference_steps": self.n_inference_steps, **options}
        paradigm, options = _paradigm(paradigm, options)
        return LearnedModel(paradigm, network, beta_schedule=self.beta_schedule,
                            n_timesteps=self.n_timesteps,
                            training=replace(self.training_for(n_samples), label=label),
                            **options)


def _paradigm(name, options):
    """The paradigm ``name`` built with the ``options`` it takes, and the options that
    are no paradigm's (the model's). A modality passes the settings of any scoring it
    has; another paradigm's options (``n_grid`` for time, say) are dropped."""
    takes = PARADIGMS[name].options
    every = {option for cls in PARADIGMS.values() for option in cls.options}
    paradigm = make_paradigm(name, **{k: v for k, v in options.items() if k in takes})
    return paradigm, {k: v for k, v in options.items() if k not in every}


def edit(model, x0, level, rng, n_steps, **options):
    """``x0`` (model units) noised to where the noise-to-signal ratio reaches ``level``
    (``None``: the prior) and denoised back by the learned ``model``, with
    :meth:`~skdiffad._core.learned.LearnedModel.edit`'s controls; the chain's seed is
    drawn from ``rng``, its steps are at most ``n_steps``."""
    t_start = (model.n_timesteps if level is None
               else model.schedule_.last_step_below(level))
    return model.edit(x0, t_start, seed=_seed(rng), n_steps=min(n_steps, t_start), **options)


def _seed(rng):
    return int(rng.randint(np.iinfo(np.int32).max))


class Modality:
    """A kind of data behind the estimator shell: an encoder, a model recipe and a
    reduction, with its Dask block plan and its generation recipes.

    The shell (:class:`skdiffad.base.BaseDiffusionDetector`), the Dask services
    (:mod:`skdiffad._dask`) and anomaly generation (:mod:`skdiffad.generation`) talk
    to a kind of data only through these public methods. A detector builds its
    modality from its parameters at every fit (:meth:`make_model` and the reduction
    read the settings it was built with, never the detector's parameters), fits it,
    and keeps it as ``modality_``: the fitted encoder (``encoder_``) and what the
    reduction learned from the training samples (``reduction_``).

    A subclass implements :meth:`make_encoder` and :meth:`make_model`, and overrides
    :meth:`fold`, :meth:`fit_reduction` and :meth:`reduce` when the default (one
    score per sample: its mean error) does not fit its outputs. ``doc/design.rst``
    walks through adding one.

    Parameters
    ----------
    owner : str
        The detector's name, for messages.

    Attributes
    ----------
    kind : str
        The data kind (``"table"``, ``"series"``, ``"images"``, ``"video"``).
    rowwise : bool
        Whether a sample's outputs depend on that sample alone, so that any method
        runs block by block on a Dask collection of rows.
    anomaly_kinds : tuple of str
        The kinds of anomalies :meth:`plant` can generate.
    encoder_ : object
        The fitted encoder.
    reduction_ : object
        What the reduction learned from the training samples' errors (``None``: nothing).
    verbose : int
        The detector's ``verbose``, which the shell sets when it builds the modality:
        when positive, scoring that runs longer than a few seconds reports its progress
        (:meth:`tracked`).
    """

    kind = None
    verbose = 0
    #: Seconds scoring runs before ``verbose`` shows its progress: quick scoring says nothing.
    scoring_delay = 2.0
    rowwise = True
    anomaly_kinds = ()
    #: Whether ``"fewshot"`` anomalies need masks of where the real ones are.
    fewshot_needs_masks = False
    #: Whether :meth:`inject` plants anomalies into a whole input (series).
    injects = False
    #: What to fit instead when the model cannot sample.
    sampling_hint = "fit a detector with a trained denoiser"
    #: Settings added since the state format last changed -> the value that reproduces
    #: how a plug-in saved before them scored (set when one is loaded), as the
    #: detector's ``_added_params``.
    _added_params: dict = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        trust(cls)  # a plug-in defined outside the package saves and loads like ours

    def __setstate__(self, state):
        self.__dict__.update({**self._added_params, **state})

    @staticmethod
    def claims(X):  # pragma: no cover - abstract
        """Whether ``X`` looks like this kind of data (for ``data="auto"`` in generation)."""
        raise NotImplementedError

    @classmethod
    def generation_defaults(cls, X):
        """Parameters of the detector that generation builds for ``X`` when given none."""
        return {}

    def __init__(self, *, owner):
        self.owner = owner

    # ------------------------------------------------------------------ recipe
    def make_encoder(self):  # pragma: no cover - abstract
        """An unfitted encoder with ``fit_transform(X)`` and ``transform(X)``."""
        raise NotImplementedError

    def make_model(self, encoded, settings):  # pragma: no cover - abstract
        """The unfitted model of ``encoded`` training data (``settings``: a
        :class:`ModelSettings`)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- encoding
    def fit_encode(self, X):
        """Fit the encoder on the training input and encode it."""
        self.encoder_ = self.make_encoder()
        return self.encoder_.fit_transform(X)

    def fit_encode_dask(self, X, *, max_samples, seed):
        """Fit on a Dask collection of rows without loading it: the encoder on a uniform
        sample of ``max_samples`` rows (:func:`skdiffad._dask.sample_rows`), whose
        encoding is the training samples of a model that stores them; a model that
        trains learns from every row instead, streamed a few blocks at a time
        (``Encoded.stream``)."""
        encoded = self.fit_encode(_dask.sample_rows(X, max_samples, seed))
        like = encoded.training
        encoded.stream = lambda: _dask.BlockSamples(
            X, lambda block: self.encode(block).samples, like, max_validation=max_samples)
        return encoded

    def encode(self, X):
        """Encode input of the fitted kind."""
        return self.encoder_.transform(X)

    def decode(self, Z, normal=False):
        """Samples in model units -> the user's units (``normal``: meant to be normal
        data, as :meth:`sample` draws, not generated anomalies)."""
        return self.encoder_.inverse_transform(Z)

    @property
    def n_features_in_(self):
        """Features seen in fit (``None``: no fixed number)."""
        return self.encoder_.n_features_in_

    @property
    def feature_names_in_(self):
        """Feature names seen in fit (``None``: none)."""
        return self.encoder_.feature_names_in_

    # --------------------------------------------------------------- reduction
    def fold(self, blocks, encoded):
        """Collect a model's error blocks into the outputs' layout (default: one entry
        per sample, see :func:`skdiffad._reductions.collect_rows`)."""
        return collect_rows(blocks, len(encoded.samples))

    def fit_reduction(self, folded, encoded):
        """What the reduction learns from the training samples' folded errors (stored as
        ``reduction_``); nothing by default."""
        return None

    def reduce(self, folded, encoded):
        """One score per output unit (default: a sample's mean error)."""
        return mean_per_sample(folded)

    def explain_exclusion(self, exc):
        """Message for a training set too small for the exact model's exclusion rule."""
        return f"the training data is too small to score itself: {exc}"

    def errors(self, model, encoded, training=False):
        """Encoded samples -> ``model``'s errors, folded (``training``: of the training
        samples, under the exact model's exclusion rule)."""
        try:
            blocks = model.errors(encoded.samples, training=training)
            return self.fold(self.tracked(blocks, encoded, training), encoded)
        except ExclusionError as exc:
            raise ValueError(self.explain_exclusion(exc)) from exc

    def tracked(self, blocks, encoded, training=False):
        """A model's error ``blocks`` of ``encoded``, passed on as they come and, when
        ``verbose``, counted in a progress report shown once they take more than
        :attr:`scoring_delay` seconds (the exact model's fit scores every training
        sample, and long scoring would otherwise say nothing)."""
        if not self.verbose:
            return blocks
        what = "scoring the training samples" if training else "scoring"
        return tracked_blocks(blocks, len(encoded.samples), what, delay=self.scoring_delay)

    def fit_scores(self, model, encoded):
        """The training samples' scores, after the reduction has learned from their
        errors (``reduction_``)."""
        folded = self.errors(model, encoded, training=True)
        self.reduction_ = self.fit_reduction(folded, encoded)
        return finite_scores(self.reduce(folded, encoded))

    def scores(self, model, X):
        """One finite score per output unit of ``X`` under the fitted ``model``."""
        encoded = self.encode(X)
        return finite_scores(self.reduce(self.errors(model, encoded), encoded))

    # -------------------------------------------------------------------- dask
    def dask_scores(self, estimator, X, method="decision_function"):
        """``estimator.<method>`` of a Dask collection, lazily and blockwise (a rowwise
        modality: block by block of rows, see :func:`skdiffad._dask.rowwise`)."""
        return _dask.rowwise(estimator, method, X)

    # ---------------------------------------------------------------- sampling
    def can_sample(self):
        """Whether the model these settings build trains a denoiser that can sample
        (known before fitting)."""
        return False

    def check_can_sample(self):
        """Raise a ``ValueError`` naming what to fit unless :meth:`can_sample`."""
        if not self.can_sample():
            raise ValueError(f"the {self.owner} given trains no denoiser to generate with; "
                             f"{self.sampling_hint}")

    def sampling_model(self, model):
        """The learned model samples are drawn from, or a clear error."""
        if not isinstance(model, LearnedModel):
            raise ValueError(
                f"{self.owner} has no trained denoiser to sample from: its model is the "
                "exact diffusion of the stored training samples, whose samples would be "
                f"those samples again; {self.sampling_hint}")
        try:
            model.check_generative()
        except ValueError as exc:
            raise ValueError(f"{self.owner} cannot sample: {exc}; {self.sampling_hint}") from None
        return model

    def sample(self, model, n, *, seed, sampler="ddpm", n_steps=None):
        """``n`` new normal samples of the trained denoiser, decoded."""
        Z = self.sampling_model(model).draw(n, seed=seed, sampler=sampler, n_steps=n_steps)
        return self.decode(Z, normal=True)

    # -------------------------------------------------------------- generation
    def normal_pool(self, X):
        """Normal data in model units, which :meth:`plant` starts anomalies from."""
        return self.encode(X).samples.values

    def real_anomalies(self, anomalies, masks=None):
        """Real anomalies for the ``"fewshot"`` kind, in model units (and their masks)."""
        if masks is not None:
            raise ValueError(f"anomaly_masks are for images, not {self.kind} data")
        return self.encode(anomalies).samples.values, None

    def plant(self, kind, n, strength, rng, *, model, pool, anomalies=None, n_steps=100):
        """``n`` anomalies of ``kind`` (model units) and their labels."""
        raise ValueError(f"{self.owner} generates no anomalies")  # pragma: no cover
