"""DiffusionImageDetector: diffusion-model anomaly detection and localisation for images."""

from __future__ import annotations

import numbers

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from . import _dask
from ._encoders.images import CHANNEL_AXES
from ._params import UNSET, document_shared
from .base import BaseDiffusionDetector, _check_layout, _positive_ints
from .modalities import ImageModality

__all__ = ["DiffusionImageDetector"]

IMAGE_SCORINGS = ("reconstruction", "density", "feature", "discriminative")


@document_shared
class DiffusionImageDetector(BaseDiffusionDetector):
    """Anomaly detector for images, with pixel-level anomaly maps.

    Every image is restored by a diffusion model of the training ("good")
    images; a pixel's error is how badly it is restored, measured against the
    errors the same pixel shows on the training images and smoothed: that is
    the image's anomaly map (:meth:`anomaly_map`), and the image's score is the
    map's maximum. Works as a PyOD detector and a scikit-learn estimator.

    The default is the exact diffusion of stored training patches: nothing
    is trained, and it was the best diffusion configuration of the image
    benchmark (``benchmarks/RESULTS_image.md``: chosen on mnist0, mnist1,
    fashion0, fashion1 and the magnetic tiles' seed 0, reported on every
    set). The trained U-Net and its paradigms (``denoiser="unet"``) are there
    for images a patch memory does not cover and for GPUs; see the user
    guide for what each costs.

    Parameters
    ----------
    denoiser : {"exact", "unet"}, default="exact"
        - ``"exact"``: the denoiser of the exact diffusion of stored training
          *patches* (at most ``max_samples`` of each border class below): as the
          noise vanishes it restores each ``patch_size`` patch of an image by the
          nearest stored patch, so a defect, which no good image holds, is
          restored badly. A patch is restored only from patches in the same
          place relative to the image's border: one on the top edge from
          patches that lay on the top edge of training images, a corner patch
          from the same corner, an interior patch from any interior patch. So a
          training image's inside never lands on a border where good images are
          blank (on MNIST that put the map's peak in the outer two pixels for
          25-78% of the anomalies, ``benchmarks/image_border.py``).
          Nothing is trained. When the training images themselves are scored
          (``decision_scores_``, hence ``threshold_``), a patch is restored only
          from patches of the other half of the training images, never from
          its own image.
        - ``"unet"``: a 2-D convolutional U-Net trained as a DDPM noise
          predictor on the training images (:mod:`skdiffad` trains it with the
          same loop as every other network).
    scoring : {"reconstruction", "density", "feature", "discriminative"}, \
default="reconstruction"
        How a pixel's error is measured (every paradigm but the first needs
        ``denoiser="unet"``):

        - ``"reconstruction"`` (AnoDDPM): the squared restoration error of
          every pixel; with the U-Net the image is diffused to
          ``n_scoring_timesteps`` levels ``t0`` (with ``noise``) and denoised
          back with ``n_inference_steps`` DDIM steps, guided toward the input
          when ``guidance > 0`` (DDAD).
        - ``"density"``: the per-pixel terms of the negative ELBO.
        - ``"feature"`` (DDAD's feature comparison): ``1 - cosine`` between
          the features of the image and of its restoration, from the U-Net's
          own encoder or from ``feature_extractor``, averaged over its levels.
        - ``"discriminative"`` (DiffusionAD, DRAEM): after the U-Net, a small
          segmentation network (``head_widths``) is trained on training images
          with pasted synthetic defects and their restorations; its defect
          probability is the map.
    patch_size : int or "auto", default="auto"
        Exact denoiser: side of the patches (capped at the image's size);
        ``"auto"``: half the working image's shorter side, at most 16 (14 on
        28x28 MNIST, 16 on 128x128 tiles). The resolved side is ``patch_size_``.
    stride : int or None, default=None
        Exact denoiser: pixels between patches (``None``: half the patch).
    image_shape : "auto" or tuple of int, default="auto"
        Layout of flat rows ``(n, H*W*C)``: ``(H, W)`` or ``(H, W, C)``, row-major
        and channels last; ``"auto"`` reads ``k*k`` values as a ``k x k``
        grayscale image, ``3*k*k`` as ``k x k`` RGB, anything else as a one-row
        image.
    image_size : tuple of int or None, default=None
        ``(H, W)`` every image is resized to (bilinear, antialiased); needed
        for lists of files of different sizes. Maps come back at each input's
        own size.
    channel_axis : {"auto", "first", "last"}, default="auto"
        Where the channels of a 4-D array are: ``(n, C, H, W)`` or
        ``(n, H, W, C)``; ``"auto"`` takes the axis of size 1, 3 or 4 and asks
        for this parameter when both are.
    pixel_normalisation : bool, default=True
        Measure each pixel's error in units of the spread of the errors the
        same pixel shows on the training images: ``e / (std + 0.1 * mean std)``,
        with the per-pixel standard deviation of the training maps
        (``reduction_``). Parts of a good image that are always hard to restore
        (the edges of a photographed part, the varied strokes of a digit) then
        stop dominating the maps; switch it off for images with no common
        layout (textures shifted at random). The errors are not centred on the
        training maps' mean (as they were in 0.2): a new normal image is
        restored better than the training images (from all the stored patches,
        not half), so centring made its map negative on its content and put
        its maximum on an always blank margin.
    smoothing : float, default=2.0
        Standard deviation, in working pixels, of the Gaussian that smooths
        the (normalised) error map (0: none).
    widths : tuple of int, default=(32, 64)
        U-Net: feature channels of its levels.
    kernel_size : int, default=3
        U-Net: side of the square convolution kernels (odd).
    attention : bool, default=False
        U-Net: self-attention at the lowest resolution.
    noise : {"gaussian", "simplex"}, default="gaussian"
        U-Net: the noise it is trained with and diffuses images with before
        restoring them (not for ``"density"``). ``"simplex"`` is AnoDDPM's
        multi-scale simplex noise: smooth fields that also wash out large
        defects, which Gaussian noise of the same level leaves recognisable.
    guidance : float, default=0.0
        U-Net, ``"reconstruction"`` and ``"feature"``: DDAD's conditioning,
        the weight of the pull of every DDIM step toward the input image
        diffused to the same level (0: none; 1: the strongest the schedule
        keeps stable), so that normal detail survives the restoration.
    feature_extractor : torch.nn.Module or None, default=None
        ``"feature"``: the network whose feature maps are compared (``None``:
        the trained U-Net's encoder). Any module mapping ``(n, C, H, W)`` to a
        tensor or a list/dict of feature maps, e.g. a pretrained backbone whose
        weights you hold; nothing is downloaded. It is copied, not trained.
    head_widths : tuple of int, default=(16, 32)
        ``"discriminative"``: feature channels of the segmentation head's levels.
    head_defects : {"synthetic", "generated"}, default="synthetic"
        ``"discriminative"``: the defects the head learns to find.
        ``"synthetic"``: DRAEM's patches (another training image or smooth
        noise in a blob-shaped region), pasted as they are; ``"generated"``:
        such patches harmonised by the trained U-Net (the region noised to a
        low level and redrawn conditioned on the rest of the image, as
        :class:`~skdiffad.AnomalyGenerator`'s ``"blend"`` kind does), a pool of
        up to 256 drawn once after the U-Net is trained. Needs
        ``noise="gaussian"``.
    {shared parameters}
    patch_stride : int or None, default="deprecated"
        Deprecated in 0.2 (removed in 0.3): 0.1's name of ``stride``.

    Attributes
    ----------
    decision_scores_, threshold_, labels_
        PyOD's training scores, threshold and labels.
    n_features_in_ : int
        Values per image (``C * H * W``) when fitted on an array.
    encoder_ : object
        The fitted layout, working size and per-channel scaling
        (``encoder_.mean_``, ``encoder_.scale_``).
    reduction_ : dict or None
        Per-pixel ``"scale"`` of the training maps, at the working size
        (``None`` with ``pixel_normalisation=False``; a detector fitted by
        0.2 also has their ``"mean"``, and keeps centring on it).
    patch_size_ : int or None
        The exact denoiser's resolved patch side.
    model_ : object
        The fitted model: stored patches, or the trained U-Net.
    network_ : torch.nn.Module or None
    device_ : torch.device
    history_, loss_curve_, validation_loss_curve_, n_iter_
        The training record (empty for the exact denoiser). A U-Net fitted on a
        Dask array adds what it streamed: ``streamed_samples``,
        ``streamed_blocks``, ``block_loads``, ``most_blocks_held``.

    Examples
    --------
    >>> import numpy as np
    >>> from skdiffad import DiffusionImageDetector
    >>> rng = np.random.default_rng(0)
    >>> good = rng.normal(0.5, 0.05, size=(40, 16, 16))
    >>> bad = rng.normal(0.5, 0.05, size=(4, 16, 16))
    >>> bad[:, 4:8, 4:8] += 0.5                        # a bright square
    >>> det = DiffusionImageDetector(random_state=0).fit(good)
    >>> det.predict(np.concatenate([good[:4], bad]))
    array([0, 0, 0, 0, 1, 1, 1, 1])
    >>> det.anomaly_map(bad).shape
    (4, 16, 16)
    """

    _parameter_constraints: dict = {
        **BaseDiffusionDetector._parameter_constraints,
        "denoiser": [StrOptions({"exact", "unet"})],
        "scoring": [StrOptions(set(IMAGE_SCORINGS))],
        "patch_size": [Interval(numbers.Integral, 1, None, closed="left"),
                       StrOptions({"auto"})],
        "stride": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "patch_stride": [None, Interval(numbers.Integral, 1, None, closed="left"),
                         StrOptions({UNSET})],
        "image_shape": [StrOptions({"auto"}), tuple, list],
        "image_size": [None, tuple, list],
        "channel_axis": [StrOptions(set(CHANNEL_AXES))],
        "pixel_normalisation": ["boolean"],
        "smoothing": [Interval(numbers.Real, 0, None, closed="left")],
        "widths": [tuple, list],
        "kernel_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "attention": ["boolean"],
        "noise": [StrOptions({"gaussian", "simplex"})],
        "guidance": [Interval(numbers.Real, 0, None, closed="left")],
        "feature_extractor": [None, torch.nn.Module],
        "head_widths": [tuple, list],
        "head_defects": [StrOptions({"synthetic", "generated"})],
    }
    _renamed = {**BaseDiffusionDetector._renamed, "patch_stride": "stride"}

    def __init__(
        self,
        *,
        denoiser="exact",
        scoring="reconstruction",
        patch_size="auto",
        stride=None,
        image_shape="auto",
        image_size=None,
        channel_axis="auto",
        pixel_normalisation=True,
        smoothing=2.0,
        widths=(32, 64),
        kernel_size=3,
        attention=False,
        noise="gaussian",
        guidance=0.0,
        feature_extractor=None,
        head_widths=(16, 32),
        head_defects="synthetic",
        n_timesteps=1000,
        beta_schedule="linear",
        n_scoring_timesteps=2,
        n_inference_steps=5,
        max_samples=10_000,
        search="exact",
        max_steps=1000,
        batch_size=32,
        learning_rate=1e-3,
        weight_decay=1e-4,
        ema_decay=None,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=20,
        mixed_precision=True,
        contamination=0.1,
        device="auto",
        random_state=None,
        verbose=0,
        max_iter=UNSET,
        patch_stride=UNSET,
    ):
        self.denoiser = denoiser
        self.scoring = scoring
        self.patch_size = patch_size
        self.stride = stride
        self.image_shape = image_shape
        self.image_size = image_size
        self.channel_axis = channel_axis
        self.pixel_normalisation = pixel_normalisation
        self.smoothing = smoothing
        self.widths = widths
        self.kernel_size = kernel_size
        self.attention = attention
        self.noise = noise
        self.guidance = guidance
        self.feature_extractor = feature_extractor
        self.head_widths = head_widths
        self.head_defects = head_defects
        self.n_timesteps = n_timesteps
        self.beta_schedule = beta_schedule
        self.n_scoring_timesteps = n_scoring_timesteps
        self.n_inference_steps = n_inference_steps
        self.max_samples = max_samples
        self.search = search
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.ema_decay = ema_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.mixed_precision = mixed_precision
        self.contamination = contamination
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.max_iter = max_iter
        self.patch_stride = patch_stride

    @classmethod
    def _unit_test_params(cls):
        """Small, fast settings for the test-suite (river's convention)."""
        return {"patch_size": 2, "widths": (4,), "max_steps": 4, "n_timesteps": 50,
                "n_inference_steps": 2, "n_scoring_timesteps": 1, "random_state": 0,
                "device": "cpu"}

    # ---------------------------------------------------------------- checks
    def _check_params(self):
        super()._check_params()
        _positive_ints(self.widths, "widths")
        _positive_ints(self.head_widths, "head_widths")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")
        if self.denoiser == "exact":
            for name, value, plain in (("scoring", self.scoring, "reconstruction"),
                                       ("noise", self.noise, "gaussian"),
                                       ("guidance", self.guidance, 0)):
                if value != plain:
                    raise ValueError(f"{name}={value!r} needs denoiser='unet'; the exact "
                                     "denoiser restores each patch by the nearest stored ones")
        if self.noise != "gaussian" and self.scoring == "density":
            raise ValueError(f"noise={self.noise!r} is for the scorings that restore images; "
                             "the density (ELBO) is defined for Gaussian noise")
        if self.guidance and self.scoring not in ("reconstruction", "feature"):
            raise ValueError(f"guidance={self.guidance} conditions restorations compared with "
                             "the input (scoring='reconstruction' or 'feature'), not "
                             f"scoring={self.scoring!r}")
        if self.head_defects != "synthetic" and self.scoring != "discriminative":
            raise ValueError(f"head_defects={self.head_defects!r} is for the segmentation head "
                             f"of scoring='discriminative', not scoring={self.scoring!r}")
        if self.head_defects == "generated" and self.noise != "gaussian":
            raise ValueError("head_defects='generated' harmonises defects with the U-Net's "
                             "reverse chain, which needs noise='gaussian'")
        if self.feature_extractor is not None and self.scoring != "feature":
            raise ValueError("feature_extractor is used by scoring='feature' only, got "
                             f"scoring={self.scoring!r}")
        _check_layout(self.image_size, self.image_shape)

    # ------------------------------------------------------------- modality
    modality_class = ImageModality

    def _make_modality(self):
        return ImageModality(
            owner=type(self).__name__, denoiser=self.denoiser, scoring=self.scoring,
            patch_size=self.patch_size, stride=self._current("stride"),
            image_shape=self.image_shape,
            image_size=self.image_size, channel_axis=self.channel_axis,
            pixel_normalisation=self.pixel_normalisation, smoothing=self.smoothing,
            widths=self.widths, kernel_size=self.kernel_size, attention=self.attention,
            noise=self.noise, guidance=self.guidance, feature_extractor=self.feature_extractor,
            head_widths=self.head_widths, head_defects=self.head_defects)

    def sample(self, n_samples=1, *, random_state=None, sampler="ddpm", n_steps=None):
        """Draw new normal images from the trained denoiser.

        Parameters
        ----------
        n_samples : int, default=1
            Number of images.
        random_state : int, RandomState instance or None, default=None
            Seeds the chains; the detector is not changed.
        sampler : {"ddpm", "ddim"}, default="ddpm"
            Ancestral DDPM (every step by default) or deterministic DDIM.
        n_steps : int or None, default=None
            Network evaluations per image (``None``: all ``n_timesteps`` of
            ``"ddpm"``, 50 of ``"ddim"``).

        Returns
        -------
        images : ndarray of shape (n_samples, H, W) or (n_samples, H, W, C)
            At the working size (``image_size``, else the fitted size), in the
            training pixels' range: ``uint8`` when those were 8-bit values,
            else float32 for float32 training images and float64 otherwise.

        Raises
        ------
        ValueError
            For ``denoiser="exact"`` (the default) or ``noise="simplex"``,
            naming what to fit instead; for a bad count, ``sampler`` or
            ``n_steps``.
        """
        return super().sample(n_samples, random_state=random_state, sampler=sampler,
                              n_steps=n_steps)

    # ------------------------------------------------------------- public API
    def anomaly_map(self, X):
        """Smoothed pixel anomaly scores of each image, at the input's resolution.

        Parameters
        ----------
        X : images
            As accepted by :meth:`fit` (arrays, flat rows, files, PIL images);
            a Dask array gives a lazy result, computed block by block.

        Returns
        -------
        maps : ndarray of shape (n, H, W), or a list of (H_i, W_i) arrays
            Higher = more abnormal, in the units of the image scores
            (:meth:`decision_function` is each map's maximum at the working
            size). A list when the input images have different sizes.
        """
        modality, model = self._fitted()
        if _dask.is_dask(X):
            return modality.dask_scores(self, X, "anomaly_map")
        return modality.anomaly_map(model, X)

    def predict_mask(self, X):
        """Pixel masks of the anomalies: where :meth:`anomaly_map` exceeds ``threshold_``.

        The pixel threshold is the image threshold (the image score is the
        map's maximum): an image is labelled anomalous by :meth:`predict`
        exactly when its mask is not empty (at the working size).

        Returns
        -------
        masks : ndarray of shape (n, H, W), bool, or a list of arrays
        """
        modality, _ = self._fitted()
        if _dask.is_dask(X):
            return modality.dask_scores(self, X, "predict_mask")
        maps = self.anomaly_map(X)
        if isinstance(maps, list):
            return [m > self.threshold_ for m in maps]
        return maps > self.threshold_

    patch_size_ = property(lambda self: self.modality_.patch_size_,
                           doc="Side of the exact denoiser's patches (None for the U-Net).")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False  # images have no missing pixels: NaN is an error
        return tags
