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
import pandas as pd
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._core.noise import noise_mask
from ._core.synthetic import HARMONISE_LEVEL, harmonise
from ._encoders.images import _is_image_list
from .base import BaseDiffusionDetector, _check_n_samples
from .image import DiffusionImageDetector
from .tabular import TabDiffusionDetector
from .timeseries import DiffusionTSDetector

__all__ = ["IMAGE_KINDS", "SERIES_KINDS", "TABLE_KINDS", "AnomalyGenerator"]

#: Anomaly kinds of each data kind; ``"fewshot"`` needs real anomalies in ``fit``.
TABLE_KINDS = ("local", "global", "dependency", "clustered", "fewshot")
SERIES_KINDS = ("spike", "level_shift", "trend", "frequency", "flatline")
IMAGE_KINDS = ("blend", "inpaint", "fewshot")
_KINDS = {"table": TABLE_KINDS, "timeseries": SERIES_KINDS, "images": IMAGE_KINDS}
_DETECTORS = {TabDiffusionDetector: "table", DiffusionTSDetector: "timeseries",
              DiffusionImageDetector: "images"}
DATA_KINDS = ("auto", "table", "timeseries", "images")

# Noise-to-signal ratios s_t/a_t of the partial chains (standardised data).
_LOCAL_LEVEL = 1.0  # "local": noise as large as the signal
_CLUSTER_LEVEL = 0.3  # "clustered": variations of one row
_FEWSHOT_PULL = 0.05  # "fewshot" tables: each step's pull of its estimate to the anomaly
_CLUSTER_SIZE = 8  # rows per cluster of "clustered"
_RESAMPLE = 3  # RePaint's resampling in the inpainting chains


def _seed(rng):
    return int(rng.randint(np.iinfo(np.int32).max))


class AnomalyGenerator(BaseEstimator):
    """Synthesise labelled anomalies with a diffusion model of normal data.

    Fit it on normal data -- a table, one series or images -- and draw anomalies
    of a chosen kind and strength, with labels (tables: per row; series: per
    step; images: pixel masks). The model is the trained denoiser of an
    skdiffad detector: one built here, or one passed in (fitted: its model is
    reused; unfitted: a clone is fitted). See the module docstring for what
    each kind does and what ``strength`` means for it.

    Parameters
    ----------
    detector : TabDiffusionDetector, DiffusionTSDetector, DiffusionImageDetector or None
        The detector whose denoiser draws the anomalies. It must train one
        (tables: ``scoring`` ``"density"``, ``"reconstruction"`` or
        ``"score"``; series and images: ``denoiser="unet"``). ``None`` builds
        one for the data: ``TabDiffusionDetector(scoring="reconstruction")``,
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
        What ``X`` is. ``"auto"``: the given detector's kind; else a 1-D array
        is a series, a 2-D array or a DataFrame a table, a 3-D or 4-D array or
        a list of image files images.
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
        self.data_, self.detector_ = data, detector
        if data == "table":
            encoded = detector.encoder_.transform(detector, X).samples
            self._normal = encoded.values
        elif data == "timeseries":
            series, observed = detector.encoder_._scaled(detector, X)
            self._normal, self._observed = series, observed
        else:
            self._normal = detector.encoder_.transform(detector, X).samples.values
        self._anomalies = self._anomaly_mask = None
        self.n_anomalies_ = 0
        if anomalies is not None:
            self._fit_anomalies(anomalies, anomaly_masks)
        elif anomaly_masks is not None:
            raise ValueError("anomaly_masks were given without anomalies")
        return self

    def _check_params(self):
        if self.data not in DATA_KINDS:
            raise ValueError(f"data must be one of {DATA_KINDS}, got {self.data!r}")
        self._strength(self.strength)
        if (isinstance(self.n_steps, bool) or not isinstance(self.n_steps, numbers.Integral)
                or self.n_steps < 1):
            raise ValueError(f"n_steps must be a positive integer, got {self.n_steps!r}")
        if self.detector is not None and type(self.detector) not in _DETECTORS:
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
            data = _DETECTORS[type(self.detector)]
            if self.data not in ("auto", data):
                raise ValueError(f"data={self.data!r} does not match the detector, a "
                                 f"{type(self.detector).__name__} ({data})")
            return data
        if self.data != "auto":
            return self.data
        if _is_image_list(X):
            return "images"
        if isinstance(X, (pd.DataFrame,)):
            return "table"
        if isinstance(X, pd.Series):
            return "timeseries"
        ndim = np.ndim(X)
        if ndim == 1:
            return "timeseries"
        if ndim == 2:
            return "table"
        if ndim in (3, 4):
            return "images"
        raise ValueError(f"X of {ndim} dimensions is no table (2-D), series (1-D, or 2-D "
                         "with data='timeseries') or images (3-D or 4-D)")

    def _fitted_detector(self, X, data, seed):
        detector = self.detector
        if detector is not None and hasattr(detector, "decision_scores_"):
            detector._sampling_model()  # a clear error now, not at generate
            return detector
        if detector is None:
            if data == "table":
                detector = TabDiffusionDetector(scoring="reconstruction")
            elif data == "timeseries":
                n = len(X)
                detector = DiffusionTSDetector(denoiser="unet",
                                               window_size=max(8, min(64, n // 3)))
            else:
                detector = DiffusionImageDetector(denoiser="unet")
        detector = clone(detector).set_params(random_state=seed)
        if isinstance(detector, BaseDiffusionDetector):
            self._check_trains_denoiser(detector)
        return detector.fit(X)

    @staticmethod
    def _check_trains_denoiser(detector):
        params = detector.get_params()
        if isinstance(detector, TabDiffusionDetector):
            ok = params["scoring"] in ("density", "reconstruction", "score")
        elif isinstance(detector, DiffusionTSDetector):
            ok = params["denoiser"] == "unet" and params["scoring"] == "reconstruction"
        else:
            ok = params["denoiser"] == "unet" and params["noise"] == "gaussian"
        if not ok:
            raise ValueError(f"the {type(detector).__name__} given trains no denoiser to "
                             f"generate with; {detector._sampling_hint}")

    def _fit_anomalies(self, anomalies, masks):
        detector = self.detector_
        if self.data_ == "timeseries":
            raise ValueError("anomalies are for tables and images; series anomalies are "
                             "shaped (see SERIES_KINDS)")
        self._anomalies = detector.encoder_.transform(detector, anomalies).samples.values
        self.n_anomalies_ = len(self._anomalies)
        if self.data_ == "images":
            if masks is not None:
                masks = np.asarray(masks, dtype=bool)
                size = self._normal.shape[2:]
                if masks.shape != (self.n_anomalies_,) + tuple(size):
                    raise ValueError(f"anomaly_masks must have shape ({self.n_anomalies_}, "
                                     f"{size[0]}, {size[1]}), got {masks.shape}")
                if not masks.reshape(len(masks), -1).any(axis=1).all():
                    raise ValueError("every anomaly mask must mark at least one pixel")
            self._anomaly_mask = masks
        elif masks is not None:
            raise ValueError("anomaly_masks are for images")

    # ------------------------------------------------------------- generate
    def _kinds(self, kind):
        kinds = _KINDS[self.data_]
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
                need = ("anomalies= and anomaly_masks=" if self.data_ == "images"
                        else "anomalies=")
                raise ValueError(f"kind 'fewshot' needs real anomalies: fit with {need}")
        return chosen

    def _fewshot_ready(self):
        if self._anomalies is None:
            return False
        return self.data_ != "images" or self._anomaly_mask is not None

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
            detector's ``sample`` gives them.
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
        parts, labels = [], []
        for k, share in zip(kinds, np.array_split(np.arange(n), len(kinds))):
            if len(share) == 0:
                continue
            Z, y = getattr(self, f"_{self.data_}")(k, len(share), strength, rng)
            parts.append(Z)
            labels.append(y)
        Z, y = np.concatenate(parts), np.concatenate(labels)
        if self.data_ == "timeseries":
            return self.detector_._to_series(Z), y
        return self.detector_._decode(Z), y

    # ---------------------------------------------------------------- tables
    def _model(self):
        if self.data_ == "timeseries":
            return self.detector_._window_model(None)[0]
        return self.detector_._sampling_model()

    def _edit(self, x0, level, rng, **options):
        model = self._model()
        t_start = (model.n_timesteps if level is None
                   else model.schedule_.last_step_below(level))
        n_steps = min(self.n_steps, t_start)
        return model.edit(x0, t_start, seed=_seed(rng), n_steps=n_steps, **options)

    def _rows(self, n, rng):
        return self._normal[rng.randint(len(self._normal), size=n)]

    def _table(self, kind, n, strength, rng):
        model = self._model()
        if kind == "local":
            Z = self._edit(self._rows(n, rng), _LOCAL_LEVEL, rng, temperature=1 + strength)
        elif kind == "global":
            Z = model.draw(n, seed=_seed(rng), sampler="ddim", n_steps=self.n_steps,
                           temperature=1 + 2 * strength)
        elif kind == "clustered":
            Z = self._clustered(n, strength, rng)
        elif kind == "dependency":
            Z = self._dependency(n, strength, rng)
        else:  # fewshot
            a = self._anomalies[rng.randint(len(self._anomalies), size=n)]
            Z = self._edit(a, 0.5 / strength, rng, target=a, attract=_FEWSHOT_PULL)
        return Z, np.ones(n, dtype=int)

    def _clustered(self, n, strength, rng):
        d = self._normal.shape[1]
        n_clusters = -(-n // _CLUSTER_SIZE)
        seeds = np.repeat(self._rows(n_clusters, rng), _CLUSTER_SIZE, axis=0)[:n]
        direction = rng.normal(size=(n_clusters, d))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        offset = np.repeat(direction * strength * np.sqrt(d), _CLUSTER_SIZE, axis=0)[:n]
        return self._edit(seeds, _CLUSTER_LEVEL, rng) + offset.astype(np.float32)

    def _blocks(self):
        """Encoded columns of each user column (a categorical's codes together)."""
        encoder = self.detector_.encoder_
        n_numeric = len(encoder.numeric_)
        blocks = [[j] for j in range(n_numeric)]
        start = n_numeric
        for cats in encoder.categories_.values():
            blocks.append(list(range(start, start + len(cats))))
            start += len(cats)
        return blocks

    def _dependency(self, n, strength, rng):
        blocks = self._blocks()
        if len(blocks) < 2:
            raise ValueError("kind 'dependency' needs at least two columns")
        k = int(np.clip(round(0.3 * strength * len(blocks)), 1, len(blocks) // 2))
        first, other = self._rows(n, rng), self._rows(n, rng)
        redrawn = np.zeros_like(first, dtype=bool)
        for i in range(n):
            for b in rng.choice(len(blocks), size=k, replace=False):
                redrawn[i, blocks[b]] = True
        inpainted = self._edit(other, None, rng, keep=~redrawn, n_resample=_RESAMPLE)
        return np.where(redrawn, inpainted, first)

    # ---------------------------------------------------------------- series
    def _timeseries(self, kind, n, strength, rng):
        length = self.detector_._window_model(None)[1]
        starts = _window_starts(self._observed, length)
        if len(starts) == 0:
            raise ValueError(f"the training series has no fully observed window of "
                             f"{length} steps to plant anomalies in")
        starts = starts[rng.randint(len(starts), size=n)]
        windows = np.stack([self._normal[:, s:s + length] for s in starts])
        return self._plant(windows.astype(np.float32), kind, strength, rng)

    def _plant(self, windows, kind, strength, rng):
        """Windows ``(n, C, L)`` (model units) with an anomaly planted in each:
        a span of one channel redrawn by inpainting and shaped; labels ``(n, L)``."""
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
        redrawn = self._edit(windows, None, rng, keep=keep, n_resample=_RESAMPLE)
        labels = np.zeros((n, length), dtype=int)
        for i, (lo, hi) in enumerate(spans):
            row = redrawn[i, channels[i]]
            spread = max(float(windows[i, channels[i]].std()), 0.1)
            row[lo:hi] = _shape(kind, row, lo, hi, strength, spread, rng)
            labels[i, lo:hi] = 1
        return redrawn, labels

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
        y : ndarray of shape (n_timestamps,)
            1 on the planted spans, 0 elsewhere.
        """
        check_is_fitted(self, "detector_")
        if self.data_ != "timeseries":
            raise ValueError(f"inject plants anomalies into a series; this generator was "
                             f"fitted on {self.data_} data (use generate)")
        n = _check_n_samples(n_anomalies, "n_anomalies")
        kinds = self._kinds(self.kind if kind is None else kind)
        strength = self._strength(self.strength if strength is None else strength)
        detector = self.detector_
        length = detector._window_model(None)[1]
        series, observed = detector.encoder_._scaled(detector, X)
        complete = set(_window_starts(observed, length).tolist())
        slots = [s for s in range(0, series.shape[1] - length + 1, length)
                 if s in complete]
        if len(slots) < n:
            raise ValueError(f"X has room for {len(slots)} non-overlapping fully observed "
                             f"windows of {length} steps, fewer than n_anomalies={n}")
        rng = check_random_state(self.random_state)
        starts = np.sort(rng.choice(slots, size=n, replace=False))
        planted = series.astype(np.float32).copy()
        y = np.zeros(series.shape[1], dtype=int)
        order = rng.permutation(n)
        for k, share in zip(kinds, np.array_split(order, len(kinds))):
            if len(share) == 0:
                continue
            windows = np.stack([series[:, s:s + length] for s in starts[share]])
            redrawn, labels = self._plant(windows.astype(np.float32), k, strength, rng)
            for s, w, lab in zip(starts[share], redrawn, labels):
                planted[:, s:s + length] = w
                y[s:s + length] = lab
        out = self.detector_._to_series(planted[None])[0]
        out[~observed.T] = np.nan
        return out, y

    # ---------------------------------------------------------------- images
    def _torch_generator(self, rng):
        return torch.Generator().manual_seed(_seed(rng))

    def _images(self, kind, n, strength, rng):
        x = self._rows(n, rng)
        if kind == "fewshot":
            pick = rng.randint(self.n_anomalies_, size=n)
            region = self._anomaly_mask[pick][:, None]
            opacity = min(1.0, 0.5 + 0.5 * strength)
            planted = x + opacity * (self._anomalies[pick] - x)
            x = np.where(region, planted, x).astype(np.float32)
        elif kind == "blend":
            opacity = min(1.0, 0.3 + 0.5 * strength)
            images, masks = harmonise(
                self._model(), torch.as_tensor(x), seed=_seed(rng),
                source=torch.as_tensor(self._normal), n_steps=self.n_steps,
                n_resample=_RESAMPLE, opacity=(opacity, opacity))
            return images.cpu().numpy(), masks.cpu().numpy()[:, 0].astype(int)
        else:  # inpaint
            region = noise_mask(x.shape, self._torch_generator(rng),
                                coverage=(0.02, 0.2)).numpy()
        if kind == "inpaint":
            out = self._edit(x, None, rng, keep=~region, temperature=1 + strength,
                             n_resample=_RESAMPLE)
        else:
            out = self._edit(x, HARMONISE_LEVEL, rng, keep=~region, n_resample=_RESAMPLE)
        return out, region[:, 0].astype(int)


def _window_starts(observed, length):
    """Starts of the windows of ``length`` steps where every channel is observed."""
    gaps = (~observed.all(axis=0)).astype(float)
    return np.flatnonzero(np.convolve(gaps, np.ones(length), "valid") == 0)


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
