"""Anomaly generation: labelled anomalies synthesised with a diffusion model of normal data.

:class:`AnomalyGenerator` fits (or reuses) a detector with a trained denoiser on
normal data and steers its reverse chains (:func:`skdiffad._core.sampling.edit_samples`)
away from normal in chosen ways. Every anomaly comes with its label: per row for
tables, per time step for series, a pixel mask for images. The kinds:

Tables (ADBench's taxonomy, Han et al. 2022, realised with the diffusion model):

* ``"local"`` -- a normal row noised part-way (to the step where noise and
  signal are equal) and denoised at a raised temperature ``1 + strength``: it
  stays near the data but strays from it by more than the data's own spread.
* ``"global"`` -- the deterministic DDIM chain started from the prior at
  temperature ``1 + 2 strength``: the probability-flow ODE carries latents
  beyond the prior's typical set to rows beyond the data, along its shape.
* ``"dependency"`` -- a group of columns (``30 % x strength`` of them, at most
  half; a categorical column's codes move together) inpainted (RePaint)
  conditioned on *another* row's other columns, then put into the first row:
  each group is realistic, their combination is not.
* ``"clustered"`` -- small clusters of variations of one normal row (noised to
  a low level and denoised), shifted together by ``strength`` standard
  deviations per column (in root-mean-square) in a random direction.
* ``"fewshot"`` (needs ``fit(X, anomalies=...)``) -- a real anomaly noised to
  the step where noise is ``0.5 / strength`` of the signal and denoised with
  each step's estimate pulled 5 % of the way back to it: variations of the real
  anomaly that keep its character (a larger strength stays closer to it).

Series (a window of the training series with a span of ``L/8`` to ``L/3``
steps in one channel; the span is redrawn by RePaint inpainting from the
normal model, conditioned on the window around it, and the shaped perturbation
is put on the redrawn steps; sizes in the window's own standard deviation):

* ``"spike"`` -- one to three steps raised or lowered by ``2 + 4 strength``;
* ``"level_shift"`` -- the span moved by ``1.5 strength``;
* ``"trend"`` -- a ramp over the span to ``3 strength``;
* ``"frequency"`` -- the span's content played ``1 + strength`` times faster;
* ``"flatline"`` -- the span held at its first value (``strength`` ignored).

Images (a blob-shaped region from a thresholded simplex field, like DRAEM's
Perlin masks):

* ``"blend"`` -- a foreign texture (another training image, flipped and
  rolled, or smooth noise) blended into the region with opacity
  ``0.3 + 0.5 strength`` (at most 1), then harmonised by the diffusion model:
  the region is noised to a low level and redrawn conditioned on the rest;
* ``"inpaint"`` -- the region redrawn from pure noise, conditioned on the
  rest (RePaint), at temperature ``1 + strength``: coherent with its
  surroundings, but unlike the training images;
* ``"fewshot"`` (needs ``fit(X, anomalies=..., anomaly_masks=...)``) -- a real
  defect's region transplanted into a normal image with opacity
  ``min(1, 0.5 + 0.5 strength)`` and harmonised as ``"blend"`` is.

References
----------
.. [1] S. Han, X. Hu, H. Huang, M. Jiang, Y. Zhao. "ADBench: Anomaly Detection
   Benchmark", NeurIPS 2022 (the table taxonomy).
.. [2] A. Lugmayr et al. "RePaint: Inpainting using Denoising Diffusion
   Probabilistic Models", CVPR 2022.
.. [3] C. Meng et al. "SDEdit: Guided Image Synthesis and Editing with
   Stochastic Differential Equations", ICLR 2022.
.. [4] V. Zavrtanik, M. Kristan, D. Skocaj. "DRAEM", ICCV 2021.
.. [5] J. Liu et al. "Anomaly Detection and Generation with Diffusion Models:
   A Survey", 2025.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .base import _check_n_samples, as_dtype, float_dtype
from .image import DiffusionImageDetector
from .modalities import ImageModality, SeriesModality, TableModality
from .tabular import TabDiffusionDetector
from .timeseries import DiffusionTSDetector

__all__ = ["IMAGE_KINDS", "SERIES_KINDS", "TABLE_KINDS", "AnomalyGenerator"]

#: Anomaly kinds of each data kind; ``"fewshot"`` needs real anomalies in ``fit``.
TABLE_KINDS = TableModality.anomaly_kinds
SERIES_KINDS = SeriesModality.anomaly_kinds
IMAGE_KINDS = ImageModality.anomaly_kinds

#: The detector of each data kind, in the order ``data="auto"`` tries them.
_DETECTORS = {"table": TabDiffusionDetector, "timeseries": DiffusionTSDetector,
              "images": DiffusionImageDetector}
DATA_KINDS = ("auto",) + tuple(_DETECTORS)


def _seed(rng):
    return int(rng.randint(np.iinfo(np.int32).max))


class AnomalyGenerator(BaseEstimator):
    """Synthesise labelled anomalies with a diffusion model of normal data.

    Fit it on normal data -- a table, one series or images -- and draw anomalies
    of a chosen kind and strength, with labels (tables: per row; series: per
    step; images: pixel masks). The model is the trained denoiser of an
    skdiffad detector: one built here, or one passed in (fitted: its model is
    reused; unfitted: a clone is fitted). See the module docstring for what
    each kind does and what ``strength`` means for it. The recipes themselves
    belong to each kind of data's modality (:meth:`skdiffad.modalities.Modality.plant`).

    Parameters
    ----------
    detector : TabDiffusionDetector, DiffusionTSDetector, DiffusionImageDetector or None, \
default=None
        The detector whose denoiser draws the anomalies. It must train one
        (tables: ``denoiser="mlp"`` with ``scoring`` ``"density"``,
        ``"reconstruction"`` or ``"score"``; series and images:
        ``denoiser="unet"``). ``None`` builds one for the data:
        ``TabDiffusionDetector(denoiser="mlp", scoring="reconstruction")``,
        ``DiffusionTSDetector(denoiser="unet", window_size=64)`` (shorter for
        a short series) or ``DiffusionImageDetector(denoiser="unet")``.
    kind : str, tuple of str or None, default=None
        The anomaly kind (``TABLE_KINDS``, ``SERIES_KINDS``, ``IMAGE_KINDS``),
        or several, drawn in equal shares. ``None``: every kind of the data
        (``"fewshot"`` only when real anomalies were given).
    strength : float, default=1.0
        How far from normal, per kind (module docstring); larger is easier to
        detect.
    data : {"auto", "table", "timeseries", "images"}, default="auto"
        What ``X`` is. ``"auto"``: the given detector's kind; else the one kind
        whose inputs ``X`` looks like (a 1-D array is a series, a 2-D array or a
        DataFrame a table, a 3-D or 4-D array or a list of image files images).
    n_steps : int, default=100
        Network evaluations of each chain (strided ancestral sampling).
    random_state : int, RandomState instance or None, default=None
        Seeds the detector built here and every draw; with an int,
        :meth:`generate` gives the same anomalies for the same arguments.

    Attributes
    ----------
    detector_ : detector
        The fitted detector whose denoiser is used.
    data_ : {"table", "timeseries", "images"}
        The data kind.
    n_anomalies_ : int
        Number of real anomalies given to :meth:`fit`.

    Examples
    --------
    >>> import numpy as np
    >>> from skdiffad.generation import AnomalyGenerator
    >>> X = np.random.default_rng(0).normal(size=(300, 4))
    >>> gen = AnomalyGenerator(kind="local", random_state=0).fit(X)
    >>> X_anomalous, y = gen.generate(10)
    >>> X_anomalous.shape, int(y.sum())
    ((10, 4), 10)
    """

    def __init__(self, detector=None, kind=None, strength=1.0, data="auto", n_steps=100,
                 random_state=None):
        self.detector = detector
        self.kind = kind
        self.strength = strength
        self.data = data
        self.n_steps = n_steps
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None, *, anomalies=None, anomaly_masks=None):
        """Fit (or reuse) the detector on normal data ``X``.

        Parameters
        ----------
        X : array-like, DataFrame or list of image files
            Normal data: a table, one series ``(n_timestamps, n_channels)`` or
            images.
        y : Ignored
        anomalies : array-like, optional
            A few real anomalies of the same kind as ``X`` (rows, or images),
            for ``kind="fewshot"``.
        anomaly_masks : array-like of shape (n_anomalies, H, W), optional
            Images: where each real anomaly's defect is (needed by image
            ``"fewshot"``).

        Returns
        -------
        self : AnomalyGenerator
        """
        self._check_params()
        rng = check_random_state(self.random_state)
        data = self._data_kind(X)
        detector = self._fitted_detector(X, data, _seed(rng))
        modality = detector.modality_
        pool = modality.normal_pool(X)
        real = None
        if anomalies is not None:
            real = modality.real_anomalies(anomalies, anomaly_masks)
        elif anomaly_masks is not None:
            raise ValueError("anomaly_masks were given without anomalies")
        self.data_, self.detector_ = data, detector
        self._pool, self._real = pool, real
        self._dtype = float_dtype(X)  # generated data keeps float32 normal data's dtype
        self.n_anomalies_ = 0 if real is None else len(real[0])
        return self

    def _check_params(self):
        if self.data not in DATA_KINDS:
            raise ValueError(f"data must be one of {DATA_KINDS}, got {self.data!r}")
        self._strength(self.strength)
        if (isinstance(self.n_steps, bool) or not isinstance(self.n_steps, numbers.Integral)
                or self.n_steps < 1):
            raise ValueError(f"n_steps must be a positive integer, got {self.n_steps!r}")
        if self.detector is not None and type(self.detector) not in _DETECTORS.values():
            raise TypeError("detector must be a TabDiffusionDetector, DiffusionTSDetector or "
                            f"DiffusionImageDetector, got {type(self.detector).__name__}")

    @staticmethod
    def _strength(strength):
        if (isinstance(strength, bool) or not isinstance(strength, numbers.Real)
                or not np.isfinite(strength) or strength <= 0):
            raise ValueError(f"strength must be a positive finite number, got {strength!r}")
        return float(strength)

    def _data_kind(self, X):
        if self.detector is not None:
            data = next(k for k, cls in _DETECTORS.items() if type(self.detector) is cls)
            if self.data not in ("auto", data):
                raise ValueError(f"data={self.data!r} does not match the detector, a "
                                 f"{type(self.detector).__name__} ({data})")
            return data
        if self.data != "auto":
            return self.data
        claims = [k for k, cls in _DETECTORS.items() if cls.modality_class.claims(X)]
        if len(claims) == 1:
            return claims[0]
        if claims:
            raise ValueError(f"X could be {' or '.join(claims)} data; pass data= to say which")
        raise ValueError(f"X of {np.ndim(X)} dimensions is no table (2-D), series (1-D, or "
                         "2-D with data='timeseries') or images (3-D or 4-D)")

    def _fitted_detector(self, X, data, seed):
        detector = self.detector
        if detector is not None and hasattr(detector, "decision_scores_"):
            detector.modality_.sampling_model(detector.model_)  # a clear error now
            return detector
        cls = _DETECTORS[data]
        if detector is None:
            detector = cls(**cls.modality_class.generation_defaults(X))
        detector = clone(detector).set_params(random_state=seed)
        detector.make_modality().check_can_sample()
        return detector.fit(X)

    # ------------------------------------------------------------- generate
    def _kinds(self, kind):
        modality = self.detector_.modality_
        kinds = modality.anomaly_kinds
        if kind is None:
            return tuple(k for k in kinds if k != "fewshot" or self._fewshot_ready())
        chosen = (kind,) if isinstance(kind, str) else tuple(kind)
        if not chosen:
            raise ValueError("kind must name at least one kind")
        for k in chosen:
            if k not in kinds:
                raise ValueError(f"kind must be one of {kinds} for {self.data_} data, "
                                 f"got {k!r}")
            if k == "fewshot" and not self._fewshot_ready():
                need = ("anomalies= and anomaly_masks=" if modality.fewshot_needs_masks
                        else "anomalies=")
                raise ValueError(f"kind 'fewshot' needs real anomalies: fit with {need}")
        return chosen

    def _fewshot_ready(self):
        if self._real is None:
            return False
        return self._real[1] is not None or not self.detector_.modality_.fewshot_needs_masks

    def generate(self, n_samples, kind=None, strength=None):
        """Draw labelled anomalies.

        Parameters
        ----------
        n_samples : int
            Rows, windows or images to draw.
        kind : str, tuple of str or None, default=None
            Overrides the constructor's ``kind``; several kinds share
            ``n_samples`` equally (in the given order).
        strength : float or None, default=None
            Overrides the constructor's ``strength``.

        Returns
        -------
        X_anomalous
            Tables: rows as the detector's ``sample`` gives them (an array or
            a DataFrame). Series: windows ``(n_samples, window_size,
            n_channels)`` in the series' units. Images: as the image
            detector's ``sample`` gives them. Float arrays are float32 when
            the data given to :meth:`fit` was, float64 otherwise.
        y : ndarray
            Tables: ``(n_samples,)`` ones. Series: ``(n_samples,
            window_size)`` 0/1 per step. Images: ``(n_samples, H, W)`` 0/1
            masks.
        """
        check_is_fitted(self, "detector_")
        n = _check_n_samples(n_samples)
        kinds = self._kinds(self.kind if kind is None else kind)
        strength = self._strength(self.strength if strength is None else strength)
        rng = check_random_state(self.random_state)
        modality, model = self.detector_.modality_, self.detector_.model_
        parts, labels = [], []
        for k, share in zip(kinds, np.array_split(np.arange(n), len(kinds))):
            if len(share) == 0:
                continue
            Z, y = modality.plant(k, len(share), strength, rng, model=model, pool=self._pool,
                                  anomalies=self._real, n_steps=self.n_steps)
            parts.append(Z)
            labels.append(y)
        decoded = modality.decode(np.concatenate(parts))
        return as_dtype(decoded, getattr(self, "_dtype", None)), np.concatenate(labels)

    def inject(self, X, n_anomalies, kind=None, strength=None):
        """Plant anomalies into a series: a labelled copy of ``X`` (series only).

        ``n_anomalies`` windows of the model's length that do not overlap and
        are fully observed are chosen at random in ``X``; in each, a span is
        redrawn and shaped as :meth:`generate` does. Everything outside the
        spans is ``X`` as given.

        Parameters
        ----------
        X : array-like of shape (n_timestamps,) or (n_timestamps, n_channels)
            A normal series with the channels seen in fit.
        n_anomalies : int
            Anomalies to plant; at most one per window of ``X``.
        kind, strength
            As in :meth:`generate`; several kinds share the anomalies equally.

        Returns
        -------
        X_anomalous : ndarray of shape (n_timestamps, n_channels)
            Float32 when ``X`` is float32, else float64.
        y : ndarray of shape (n_timestamps,)
            1 on the planted spans, 0 elsewhere.
        """
        check_is_fitted(self, "detector_")
        modality = self.detector_.modality_
        if not modality.injects:
            raise ValueError(f"inject plants anomalies into a series; this generator was "
                             f"fitted on {self.data_} data (use generate)")
        n = _check_n_samples(n_anomalies, "n_anomalies")
        kinds = self._kinds(self.kind if kind is None else kind)
        strength = self._strength(self.strength if strength is None else strength)
        planted, y = modality.inject(self.detector_.model_, X, n, kinds, strength,
                                     check_random_state(self.random_state),
                                     n_steps=self.n_steps)
        return as_dtype(planted, float_dtype(X)), y
