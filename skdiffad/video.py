"""DiffusionVideoDetector: frame- and sequence-level diffusion anomaly detection for video."""

from __future__ import annotations

import numbers

from sklearn.utils._param_validation import Interval, StrOptions

from . import _dask
from ._encoders.images import CHANNEL_AXES
from ._encoders.video import STREAMS
from ._params import UNSET, document_shared
from .base import BaseDiffusionDetector, _check_layout, _positive_ints
from .modalities import VideoModality

__all__ = ["DiffusionVideoDetector"]

VIDEO_DENOISERS = ("exact", "unet", "predictor")
VIDEO_SCORINGS = ("reconstruction", "prediction")


@document_shared
class DiffusionVideoDetector(BaseDiffusionDetector):
    """Anomaly detector for video: a score per frame, and where in the frame.

    Frame ``t`` is seen with the ``n_past`` frames before it: as those frames
    (``stream="frames"``), as their differences (``"motion"``) or both,
    stacked as channels. A diffusion model of the training (normal) clips'
    stacks restores the whole stack (``scoring="reconstruction"``) or
    generates the current frame from its past (``"prediction"``: a model of
    the next frame conditioned on the ones before it, so a cyclist moving at
    the wrong speed is abnormal even when every frame alone looks plausible).
    A pixel's error is measured against the errors the same pixel shows on
    the training frames and smoothed: the frame's anomaly map
    (:meth:`anomaly_map`); the mean of its highest pixels, smoothed over time
    within the clip, is the frame's score. With ``n_past=0`` and ``stream="frames"`` it is a
    frame-level detector, close to the image detector applied to each frame (which
    restores a patch only from patches of its own border class, as ``per_site`` does by
    grid place, and does not centre its maps on the training maps' mean).

    Clips go in as the series detector's series do: one clip in, one score
    per frame out (``decision_function(clip)`` has shape ``(T,)``), and a
    list of clips gives their frames' scores one clip after the other. The
    first ``n_past`` frames of a clip, which lack a full past, are scored
    with the clip's first frame standing in for the frames before it. Long
    clips are scored ``chunk_size`` frames at a time, in bounded memory; a
    Dask array of a clip's frames, chunked along time, is scored block by
    block with the same bits.

    The default is the exact diffusion of stored motion patches: nothing is
    trained, and it was the best diffusion configuration on the video
    benchmark's tuning clips (``benchmarks/RESULTS_video.md``: chosen on UCSD
    Ped1's test clips 1 to 12, reported on clips 13 to 36, where it leads
    every PyOD baseline, motion energy and the image detector per frame).
    The trained U-Net
    (conditional, ``denoiser="unet"``) and a plain predictor with the same
    U-Net trained by mean squared error (``denoiser="predictor"``, the
    no-diffusion ablation) are there for scenes a patch memory does not
    cover and for GPUs.

    Parameters
    ----------
    denoiser : {"exact", "unet", "predictor"}, default="exact"
        - ``"exact"``: the exact diffusion of stored training patches of the
          stacks (at most ``max_samples``, or that many per place with
          ``per_site``): as the
          noise vanishes it restores each ``patch_size`` patch by the nearest
          stored one. Nothing is trained. When the training frames are scored
          (``decision_scores_``, hence ``threshold_``), a patch is restored only
          from the other half of the training frames.
        - ``"unet"``: a 2-D U-Net trained as a DDPM noise predictor of the
          stacks; with ``scoring="prediction"`` it is conditional: it sees the
          past channels clean and learns to generate the current ones.
        - ``"predictor"``: the same U-Net trained by mean squared error to
          output the current frame's channels from the past ones, without noise
          (future-frame prediction without its adversarial loss): the ablation
          that shows what diffusion adds. Needs ``scoring="prediction"``.
    scoring : {"reconstruction", "prediction"}, default="reconstruction"
        - ``"reconstruction"``: restore the whole stack (the frame and its
          past); every channel's squared error counts.
        - ``"prediction"``: generate the current frame's channels (the frame,
          its difference with the one before) from the past ones: the exact
          model takes them from the stored patch nearest on the past, the
          U-Net generates them with ``n_inference_steps`` DDIM steps from
          noise given the past. Needs ``n_past >= 1`` (``>= 2`` with
          ``stream="motion"``, whose past then holds a difference).
    n_past : int, default=2
        Frames before the current one that a frame's sample holds.
    stream : {"frames", "motion", "both"}, default="motion"
        What the sample holds: the ``n_past + 1`` frames, the ``n_past``
        differences of consecutive frames ending at the current one (motion;
        needs ``n_past >= 1``), or both. Frames are standardised with the
        training pixels' mean and standard deviation per channel, differences
        divided by the training differences' standard deviation.
    patch_size : int, default=8
        Exact denoiser: side of the patches (capped at the frame's size).
    stride : int or None, default=None
        Exact denoiser: pixels between patches (``None``: the patch side; at
        most the patch side).
    per_site : bool, default=False
        Exact denoiser: restore a patch only from the training patches of the
        same place in the frame (the exact diffusion conditioned on the
        place), storing up to ``max_samples`` patches per place. Meant for a
        fixed camera whose places have their own normal content; on UCSD
        Ped1 it did not pay (tuning clips: frame AUROC 0.809 against 0.824
        from any place, evaluation clips 0.787 against 0.788) and it scores
        half as fast, so patches are restored from any place by default.
    image_shape : "auto" or tuple of int, default="auto"
        Layout of flat frames ``(T, H*W*C)``, as the image detector reads flat
        images.
    image_size : tuple of int or None, default=None
        ``(H, W)`` every frame is resized to (bilinear, antialiased); needed
        for clips of different frame sizes. Maps come back at this working
        size.
    channel_axis : {"auto", "first", "last"}, default="auto"
        Where the channels of a 4-D clip are: ``(T, C, H, W)`` or
        ``(T, H, W, C)``; ``"auto"`` takes the axis of size 1, 3 or 4.
    pixel_normalisation : bool, default=True
        Measure each pixel's error against the errors the same pixel shows on
        the training frames (``reduction_``: per-pixel mean and scale).
    smoothing : float, default=0.0
        Standard deviation, in pixels, of the Gaussian that smooths each
        frame's map (0: none).
    top_fraction : float, default=0.02
        A frame's raw score is the mean of its map's highest ``top_fraction``
        of pixels (0: the map's maximum). An abnormal object covers many
        pixels; the mean of the top 2 % is steadier than the single worst
        pixel (tuning clips: frame AUROC 0.809 against 0.755 for the maximum).
    temporal_smoothing : float, default=8.0
        Standard deviation, in frames, of the Gaussian that smooths a clip's
        frame scores (0: none). It reads ``4 * temporal_smoothing`` frames on
        each side, past and future: a clip is scored whole (offline), and an
        event lasts many frames.
    chunk_size : int, default=256
        Frames scored at once; bounds the memory of scoring a long clip.
    widths : tuple of int, default=(32, 64)
        U-Net: feature channels of its levels.
    kernel_size : int, default=3
        U-Net: side of the square convolution kernels (odd).
    {shared parameters}

    Attributes
    ----------
    decision_scores_ : ndarray of shape (n_frames,)
        Scores of the training frames, clip after clip.
    threshold_ : float
        The ``1 - contamination`` quantile of ``decision_scores_``.
    labels_ : ndarray of shape (n_frames,)
        0/1 labels of the training frames.
    n_features_in_ : int
        Values per frame (``C * H * W``).
    feature_names_in_ : ndarray of str
        Column names of a DataFrame of flat frames.
    modality_ : VideoModality
        The fitted plug-in: encoder (``encoder_``) and per-pixel statistics
        (``reduction_``).
    encoder_ : VideoEncoder
    reduction_ : dict or None
    model_ : object
        The fitted model: stored patches, or the trained U-Net.
    network_ : torch.nn.Module or None
    device_ : torch.device
    history_, loss_curve_, validation_loss_curve_, n_iter_
        The training record (empty for the exact denoiser).

    References
    ----------
    Mahadevan et al., "Anomaly detection in crowded scenes", CVPR 2010 (UCSD Ped).
    Liu et al., "Future frame prediction for anomaly detection -- a new baseline",
    CVPR 2018. Liu et al., "Anomaly Detection and Generation with Diffusion
    Models: A Survey", 2025 (video section).

    Examples
    --------
    >>> import numpy as np
    >>> from skdiffad import DiffusionVideoDetector
    >>> rng = np.random.default_rng(0)
    >>> def clip(speed, n=40):                      # a bright square crossing the frame
    ...     frames = rng.normal(0.2, 0.02, size=(n, 16, 16))
    ...     for t in range(n):
    ...         x = int(t * speed) % 12
    ...         frames[t, 6:10, x:x + 4] += 0.6
    ...     return frames
    >>> det = DiffusionVideoDetector(random_state=0, patch_size=4).fit([clip(1), clip(1)])
    >>> normal, fast = det.decision_function(clip(1)), det.decision_function(clip(3))
    >>> normal.shape
    (40,)
    >>> bool(fast.mean() > normal.mean())
    True
    >>> det.anomaly_map(clip(3)).shape
    (40, 16, 16)
    """

    _parameter_constraints: dict = {
        **BaseDiffusionDetector._parameter_constraints,
        "denoiser": [StrOptions(set(VIDEO_DENOISERS))],
        "scoring": [StrOptions(set(VIDEO_SCORINGS))],
        "n_past": [Interval(numbers.Integral, 0, None, closed="left")],
        "stream": [StrOptions(set(STREAMS))],
        "patch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "stride": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "per_site": ["boolean"],
        "image_shape": [StrOptions({"auto"}), tuple, list],
        "image_size": [None, tuple, list],
        "channel_axis": [StrOptions(set(CHANNEL_AXES))],
        "pixel_normalisation": ["boolean"],
        "smoothing": [Interval(numbers.Real, 0, None, closed="left")],
        "top_fraction": [Interval(numbers.Real, 0, 1, closed="both")],
        "temporal_smoothing": [Interval(numbers.Real, 0, None, closed="left")],
        "chunk_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "widths": [tuple, list],
        "kernel_size": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        *,
        denoiser="exact",
        scoring="reconstruction",
        n_past=2,
        stream="motion",
        patch_size=8,
        stride=None,
        per_site=False,
        image_shape="auto",
        image_size=None,
        channel_axis="auto",
        pixel_normalisation=True,
        smoothing=0.0,
        top_fraction=0.02,
        temporal_smoothing=8.0,
        chunk_size=256,
        widths=(32, 64),
        kernel_size=3,
        n_timesteps=1000,
        beta_schedule="linear",
        n_scoring_timesteps=2,
        n_inference_steps=5,
        max_samples=5000,
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
    ):
        self.denoiser = denoiser
        self.scoring = scoring
        self.n_past = n_past
        self.stream = stream
        self.patch_size = patch_size
        self.stride = stride
        self.per_site = per_site
        self.image_shape = image_shape
        self.image_size = image_size
        self.channel_axis = channel_axis
        self.pixel_normalisation = pixel_normalisation
        self.smoothing = smoothing
        self.top_fraction = top_fraction
        self.temporal_smoothing = temporal_smoothing
        self.chunk_size = chunk_size
        self.widths = widths
        self.kernel_size = kernel_size
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

    @classmethod
    def _unit_test_params(cls):
        """Small, fast settings for the test-suite (river's convention)."""
        return {"patch_size": 2, "n_past": 1, "temporal_smoothing": 1.0, "widths": (4,),
                "max_steps": 4, "n_timesteps": 50, "n_inference_steps": 2,
                "n_scoring_timesteps": 1, "random_state": 0, "device": "cpu"}

    # ---------------------------------------------------------------- checks
    def _check_params(self):
        super()._check_params()
        _positive_ints(self.widths, "widths")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")
        if self.stream != "frames" and self.n_past < 1:
            raise ValueError(f"stream={self.stream!r} needs n_past >= 1 (a difference needs "
                             f"the frame before), got n_past={self.n_past}")
        if self.scoring == "prediction":
            least = 2 if self.stream == "motion" else 1
            if self.n_past < least:
                raise ValueError(
                    f"scoring='prediction' generates the current frame from its past, which "
                    f"with stream={self.stream!r} needs n_past >= {least}, got "
                    f"n_past={self.n_past}")
        if self.denoiser == "predictor" and self.scoring != "prediction":
            raise ValueError("denoiser='predictor' predicts the current frame from its past: "
                             f"it needs scoring='prediction', got scoring={self.scoring!r}")
        _check_layout(self.image_size, self.image_shape)

    # ------------------------------------------------------------- modality
    modality_class = VideoModality

    def _make_modality(self):
        return VideoModality(
            owner=type(self).__name__, denoiser=self.denoiser, scoring=self.scoring,
            n_past=self.n_past, stream=self.stream, patch_size=self.patch_size,
            stride=self.stride, per_site=self.per_site, image_shape=self.image_shape,
            image_size=self.image_size, channel_axis=self.channel_axis,
            pixel_normalisation=self.pixel_normalisation, smoothing=self.smoothing,
            top_fraction=self.top_fraction, temporal_smoothing=self.temporal_smoothing,
            chunk_size=self.chunk_size,
            widths=self.widths, kernel_size=self.kernel_size)

    # ------------------------------------------------------------- public API
    def fit(self, X, y=None):
        """Fit the detector on normal clips (``y`` is ignored).

        Parameters
        ----------
        X : array of shape (T, H, W), (T, H, W, C), (T, C, H, W) or (T, H*W*C), \
or a list of them
            One training clip, or several as a list (of any lengths; of one
            frame size unless ``image_size`` is given).
        y : Ignored
            Present for API consistency.

        Returns
        -------
        self : object
            The fitted detector.
        """
        return super().fit(X, y)

    def decision_function(self, X):
        """Anomaly score of every frame; higher means more abnormal.

        Parameters
        ----------
        X : clip or list of clips
            As in :meth:`fit`; a Dask array of one clip's frames, chunked along
            time, gives a lazy result computed block by block (the same bits).

        Returns
        -------
        scores : ndarray of shape (n_frames,), float64
            One score per frame, clip after clip.
        """
        return super().decision_function(X)

    def anomaly_map(self, X):
        """Smoothed pixel anomaly scores of every frame, at the working size.

        Parameters
        ----------
        X : clip or list of clips
            As in :meth:`fit`.

        Returns
        -------
        maps : ndarray of shape (n_frames, H, W)
            Higher = more abnormal, in the units of the frame scores (before
            temporal smoothing, a frame's score is the mean of its map's
            highest ``top_fraction`` of pixels).
        """
        modality, model = self._fitted()
        if _dask.is_dask(X):
            raise TypeError(f"{type(self).__name__}.anomaly_map takes clips in memory; score "
                            "a Dask array with decision_function")
        return modality.anomaly_map(model, X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False  # frames have no missing pixels: NaN is an error
        return tags
