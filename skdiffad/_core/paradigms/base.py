"""The base of the paradigm objects, and the checks of their options."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import torch

from ..training import denoising_loss

__all__ = ["TIME_EMBED_DIM", "Paradigm"]

# Width of the sinusoidal timestep embedding of every denoiser.
TIME_EMBED_DIM = 64


def positive_int(name, value, minimum=1):
    """``value`` as an int, or a ``ValueError`` naming the option."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def optional_positive_int(name, value):
    """:func:`positive_int`, or ``None``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
    return int(value)


def non_negative_float(name, value):
    """``value`` as a finite float >= 0, or a ``ValueError`` naming the option."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or not (number >= 0.0 and math.isfinite(number)):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


def one_of(name, value, choices):
    """``value`` if it is one of ``choices``, else a ``ValueError`` naming the option."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def denoiser_of(networks):
    """The noise predictor among the trained ``networks`` (a mapping of role to
    module, or the denoiser itself)."""
    return networks["denoiser"] if isinstance(networks, Mapping) else networks


class Paradigm:
    """How a diffusion model scores samples: one of the survey's paradigms.

    A paradigm holds its own options, checked once when it is built, and
    knows what the models need to train and score with it: the network it
    trains (:meth:`network_config`), the loss of the one training loop
    (:meth:`training_loss`), the fixed scoring plan (:meth:`plan`), the
    errors of a batch (:meth:`batch_errors`) and whatever is trained after
    the denoiser (:meth:`fit_extra`). It holds no fitted state (the
    ``feature`` paradigm's extractor is its own copy of an untrained
    module), so it pickles as its options, and :meth:`get_config` with
    :meth:`from_config` rebuild it.

    Subclasses set the class attributes below and take their options as
    keyword arguments named in :attr:`options`.

    Attributes
    ----------
    name : str
        The name the registry (:data:`~skdiffad._core.paradigms.PARADIGMS`)
        knows it by.
    options : tuple of str
        The constructor's options, the keys of :meth:`get_config`.
    generative : bool
        Whether the trained network is an unconditional noise predictor of
        whole samples, which can draw new samples (not ``"time"``, a
        classifier, nor ``"imputation"``, which predicts hidden entries from
        visible ones).
    elementwise : bool
        Whether the errors are per entry (``sums`` and ``counts`` shaped like
        the batch) rather than one score per sample.
    exact : bool
        Whether the exact model (:class:`~skdiffad._core.exact.ExactModel`)
        implements the paradigm.
    needs_images : bool
        Whether the paradigm itself only scores images (see :attr:`event_rank`).
    noise : str
        Kind of the noise the network is trained and scored with; ``"gaussian"``
        for the paradigms whose maths assumes it.
    hidden : torch.Tensor or None
        The masks that hide entries at scoring; ``None`` when the paradigm
        hides nothing.
    """

    name: str = ""
    options: tuple = ()
    generative = True
    elementwise = True
    exact = False
    needs_images = False
    noise = "gaussian"
    hidden = None
    #: What the network learns, for the error of a paradigm that cannot sample.
    network_kind = "a noise predictor of whole samples"

    # ----------------------------------------------------------- properties
    @property
    def event_rank(self):
        """Number of axes a sample must have (3: images ``(C, H, W)``), or
        ``None`` for any: images for the image paradigms and for simplex noise."""
        return 3 if self.needs_images or self.noise == "simplex" else None

    def check_event_shape(self, event_shape):
        """Raise ``ValueError`` unless samples of ``event_shape`` can be scored."""
        rank = self.event_rank
        if rank is None or len(event_shape) == rank:
            return
        who = f"paradigm {self.name!r}" if self.needs_images else f"noise={self.noise!r}"
        raise ValueError(f"{who} needs images: samples of shape (C, H, W), got samples of "
                         f"shape {tuple(event_shape)}")

    def check_ready(self):
        """Raise ``ValueError`` if an option scoring cannot do without is missing."""

    def check_generative(self):
        """Raise ``ValueError`` unless the trained network can draw samples."""
        if not self.generative:
            raise ValueError(f"paradigm {self.name!r} trains {self.network_kind}, not a noise "
                             "predictor of whole samples, so it cannot draw samples")
        if self.noise != "gaussian":
            raise ValueError(f"the denoiser was trained on {self.noise} noise, and the reverse "
                             "chains draw Gaussian noise; train it with Gaussian noise to sample")

    # ------------------------------------------------------------- training
    def network_config(self, network, event_shape, *, n_timesteps, mask_input):
        """The full config of the network to train: ``network`` (the family and
        its own settings) with the channels, the timestep embedding and the
        Gaussian skip filled in from the samples and the paradigm."""
        channels = int(event_shape[0])
        config = dict(network)
        config.update(in_channels=self._in_channels(channels, mask_input),
                      out_channels=channels, time_embed_dim=TIME_EMBED_DIM,
                      n_timesteps=int(n_timesteps), gaussian_skip=True)
        return config

    def _in_channels(self, channels, mask_input):
        return channels * (2 if mask_input else 1)

    def training_loss(self, schedule, *, device, mask_input):
        """The per-sample loss ``loss(network, x, mask, generator)`` of
        :func:`~skdiffad._core.training.train_network`: by default
        epsilon-prediction (:func:`~skdiffad._core.training.denoising_loss`)
        with the paradigm's noise."""
        schedule = schedule.to(device)
        noise_kind = self.noise

        def loss(network, x, mask, generator):
            return denoising_loss(network, schedule, x, mask, generator,
                                  mask_input=mask_input, noise_kind=noise_kind)
        return loss

    def fit_extra(self, model, samples, seed):
        """Train what the paradigm needs besides the denoiser, once it is trained.

        Parameters
        ----------
        model : LearnedModel
            The model being fitted (its denoiser, schedule, plan and device set).
        samples : Samples
            The training samples.
        seed : int
            The model's seed.

        Returns
        -------
        networks : dict of str to torch.nn.Module
            Further trained modules by role (none by default).
        histories : dict
            Their training records by role.
        """
        return {}, {}

    # -------------------------------------------------------------- scoring
    def plan(self, schedule, event_shape, generator):
        """Draw the fixed grid, noise and masks of scoring (a
        :class:`~skdiffad._core.plans.ScoringPlan`) from the CPU ``generator``."""
        raise NotImplementedError

    def batch_errors(self, networks, schedule, plan, x, mask=None, *, mask_input=False):
        """Errors of one batch, float64.

        Parameters
        ----------
        networks : dict of str to torch.nn.Module, or torch.nn.Module
            The trained modules by role (``"denoiser"``, ``"head"``), or the
            denoiser alone.
        schedule : NoiseSchedule
        plan : ScoringPlan
            The paradigm's plan, on the batch's device.
        x : torch.Tensor of shape (n, C, *spatial)
        mask : torch.Tensor of the shape of ``x``, bool, optional
            Observation mask; unobserved entries are not scored.
        mask_input : bool, default=False
            Whether the network takes the mask as extra channels.

        Returns
        -------
        sums, counts : torch.Tensor
            Element-wise paradigms: both of the shape of ``x`` (``sums / counts``
            is an entry's error). Per-sample paradigms: ``sums`` of shape
            ``(n,)`` (higher = more abnormal) and ``counts`` ``None``.
        """
        raise NotImplementedError

    def to(self, device):
        """Move the modules the paradigm holds to ``device`` (none by default)."""
        return self

    # --------------------------------------------------------------- config
    def get_config(self):
        """The options, by name: JSON-able values, except tensors (masks) and
        modules (a user feature extractor), given as they are."""
        return {name: getattr(self, name) for name in self.options}

    @classmethod
    def from_config(cls, config):
        """The paradigm of a :meth:`get_config` dict."""
        return cls(**config)

    def __repr__(self):
        options = ", ".join(f"{k}={_short(v)}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({options})"


def _short(value):
    """An option's repr, with a tensor or module named rather than printed whole."""
    if isinstance(value, torch.Tensor):
        return f"<{str(value.dtype).replace('torch.', '')} tensor of shape {tuple(value.shape)}>"
    if isinstance(value, torch.nn.Module):
        return f"<{type(value).__name__}>"
    return repr(value)
