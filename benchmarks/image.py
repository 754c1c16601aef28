"""Image benchmark (issue #11): ``DiffusionImageDetector`` against PyOD and localisation baselines.

Run from the repository root::

    python -m benchmarks.image                                  # the default grid (long)
    python -m benchmarks.image --quick --out /tmp/img_quick     # a smoke run, minutes
    python -m benchmarks.image --collections magnetic_tile --detectors Diffusion-default,PatchNN
    python -m benchmarks.image --sets mnist3,fashion0 --seeds 0,1 --max-test 1000
    python -m benchmarks.image --resume                         # carry on after an interruption

    # two shards, one process per core, then one summary:
    python -m benchmarks.image --shard 1/2 --out S1 &
    python -m benchmarks.image --shard 2/2 --out S2 &
    wait; python -m benchmarks.image --summarise S1 S2 --out benchmarks/results

Data: ``<data-dir>/images/{mnist,fashion_mnist,magnetic_tile}`` (see the data
README; without ``--data-dir``, :func:`benchmarks._common.resolve_data_dir` picks
``$SKDIFFAD_DATA`` or the ``shared/data`` folder next to the checkout), read with
:func:`skdiffad.datasets.load_one_class_images` (``mnist0``-``mnist9``,
``fashion0``, ``fashion1``, ``fashion3``-``5``, ``fashion7``-``9``: 28x28, about 7000
normal images of the set's class and 1000 of other classes as anomalies) and
:func:`skdiffad.datasets.load_magnetic_tile` (952 defect-free tiles, 392 defective
ones with pixel masks), the tiles resized to ``--tile-size`` (default 128x128;
images bilinear, masks nearest neighbour) before anything else, so maps and pixel
metrics are at that working size. Every detector gets the same float arrays of
shape ``(n, H, W)``, grey levels scaled to [0, 1].

Protocol (one-class), per (set, seed), with
:func:`skdiffad.datasets.semi_supervised_split` seeded by the seed: training
images are a random half of the set's normal images, at most ``--max-train``
(default 2000, 0 = no cap; the normal images the cap leaves out go to the test
set, as the split does); the test images are every other normal image plus every anomaly,
capped at ``--max-test`` (default 2000, 0 = no cap) by a stratified random subset
that keeps the anomaly rate (seeded by the seed and the set's name). Both caps are
recorded per run (``train_subsampled``, ``test_subsampled``).

Default grid: seed 0 on every MNIST and Fashion-MNIST class, seeds 1 and 2 also on
the first :data:`EXTRA_SEED_SETS` files of each collection (``mnist0``-``mnist2``,
``fashion0``, ``fashion1``, ``fashion3``), and seeds 0, 1, 2 on the magnetic tiles.
``--seeds`` replaces the grid's seeds for every selected set.

Detectors (:data:`DETECTORS`, chosen with ``--detectors``; each factory gets
``(seed, image_shape, device)`` and returns an object with ``fit`` and
``decision_function`` on ``(n, H, W)`` arrays, and ``anomaly_map`` when it localises):

- ``Diffusion-default`` is ``DiffusionImageDetector(random_state=seed,
  device=device)`` as a user gets it (exact patch denoiser, patches of half
  the shorter side up to 16, maps normalised per pixel by the training maps,
  reconstruction); ``Diffusion-exact-p8`` has ``patch_size=8`` and
  ``Diffusion-exact-p8-raw`` also ``pixel_normalisation=False`` (the first,
  provisional default);
  ``Diffusion-unet`` trains the 2-D U-Net (``denoiser="unet"``, reconstruction
  with 5 DDIM steps) and its variants score it otherwise:
  ``Diffusion-unet-full`` restores with every step of the schedule from each
  ``t0`` (``n_inference_steps=1000``, the "1000-step" reconstruction),
  ``-simplex`` trains and restores with simplex noise (AnoDDPM),
  ``-ddad`` restores with ``guidance=0.5`` (DDAD), ``-feature`` compares in
  the U-Net's encoder features (with ``guidance=0.5``, as DDAD does),
  ``-discriminative`` trains the segmentation head on synthetic defects
  (DiffusionAD), ``-discriminative-generated`` on such defects harmonised by the
  trained U-Net (``head_defects="generated"``, issue #13; ``-small-`` runs
  both with a U-Net of widths (16, 32) and a head of (8, 16), the size a CPU
  affords on the tiles) and ``-density`` reads the ELBO's per-pixel terms. The class is
  imported when a run starts, so a broken detector is a failed run, not a crash.
- PyOD on raw flattened pixels (``H * W`` features), the factories of
  :data:`benchmarks.tabular.DETECTORS` as they are: ``KNN``, ``IForest``,
  ``PCA``, ``LOF``, ``AutoEncoder`` (PyOD's default 10 epochs) and ``DeepSVDD`` (20
  epochs instead of PyOD's 100). They give no maps: pixel metrics are n/a.
- Localisation baselines written here (baselines, not library code), each with
  per-pixel maps smoothed by the Gaussian of ``DiffusionImageDetector``'s default
  ``smoothing`` (sigma = 2 working pixels) and image score = the map's maximum, as
  the diffusion detector scores: ``ConvAE`` (:class:`ConvAutoencoder`, a small
  convolutional autoencoder trained for a fixed :data:`CONV_AE_STEPS` Adam steps
  on the training images; map = squared residual ``(x - x_hat)^2``) and
  ``PatchNN`` (:class:`PatchNearestNeighbours`, PatchCore without a pretrained
  backbone: raw 8x8 pixel patches every 4 pixels, a memory bank of at most
  :data:`PATCH_BANK_SIZE` training patches drawn at random, and each pixel's score
  the mean over the patches covering it of their distance to the nearest bank
  patch).

- ``Anomalib-GANomaly`` (:class:`AnomalibGANomaly`): anomalib's GANomaly, the
  one anomalib image model added: it trains from scratch (no weights downloaded),
  :data:`GANOMALY_EPOCHS` epochs, image scores only. It runs only where anomalib
  imports, which the project's environment does not allow (see
  :data:`ANOMALIB_NOTE`); elsewhere its runs are recorded as ``not applicable``
  and counted apart from failures.

Metrics (:mod:`skdiffad.metrics`): image AUROC and AUPR for every run; on the
magnetic tiles also pixel AUROC, AUPRO up to FPR 0.3 and the best Dice over
thresholds, over the pooled pixels of all test images (masks at the working size),
for the detectors with ``anomaly_map``. Timing: ``fit_s`` and ``score_s`` are
``time.perf_counter`` around ``fit`` and the scoring pass; where masks exist, a
map detector is scored by one ``anomaly_map`` pass (its score is the map's
maximum), whose time is both ``score_s`` and ``map_s``. Every detector is first fitted
once on tiny random images (:func:`warm_up`) so one-off costs are not charged to
the first set. Torch and BLAS use one thread unless ``--threads`` says more.

Outputs in ``--out``: ``image_runs.csv`` (one row per run, appended as each ends,
so ``--resume`` skips the (collection, set, seed, detector) rows already there,
failed ones included: delete their rows to retry), ``image_summary.md`` (one
section per collection: means over sets and seeds, and per-class AUROC for MNIST
and Fashion-MNIST), ``image_summary.csv`` (the per-collection tables stacked) and
``image_tile_maps.png`` (a few magnetic-tile test images of the first tile seed,
their masks and the map detectors' maps, kept in ``image_maps/``). A detector that
raises, or returns scores or maps of the wrong shape or not finite, does not stop
the run: its metrics are NaN and the error text is kept.

``--quick`` is a smoke run of the harness, not a result: the first set of each
collection, seed 0, 100 training and 200 test images, tiles at 64x64, and the
trained models cut to :data:`QUICK_STEPS` steps or :data:`QUICK_EPOCHS` epochs.
"""

from __future__ import annotations

import functools
import itertools
import sys
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.ndimage import gaussian_filter
from sklearn.base import BaseEstimator

from benchmarks._common import (
    NOT_APPLICABLE,
    SHARDS_DEVICE,
    NotApplicable,
    append_row,
    benchmark_parser,
    choose_names,
    command_line,
    elapsed_text,
    environment_notes,
    error_message,
    error_text,
    markdown_table,
    merge_run_files,
    merged_from,
    parse_shard,
    resolve_data_dir,
    results_csv,
    select_from,
    set_threads,
    stacked_tables,
    start_runs_csv,
    summary_lines,
    take_shard,
)
from benchmarks.tabular import (
    AUTOENCODER_EPOCHS,
    DEEPSVDD_EPOCHS,
    _stratified_subsample,
    dataset_table,
    detector_table,
)
from benchmarks.tabular import DETECTORS as TABULAR_DETECTORS
from skdiffad._core.devices import resolve_device
from skdiffad._core.samples import window_starts
from skdiffad.datasets import (
    IMAGE_COLLECTIONS,
    list_images,
    load_magnetic_tile,
    load_one_class_images,
    semi_supervised_split,
)

MAX_TRAIN = 2000
MAX_TEST = 2000
TILE_SIZE = (128, 128)
TILE = "magnetic_tile"
#: Sets per one-class collection (its first files) that also run seeds 1 and 2.
EXTRA_SEED_SETS = 3
TILE_SEEDS = (0, 1, 2)
QUICK = {"max_train": 100, "max_test": 200, "tile_size": (64, 64)}
#: ``--quick`` cuts the trained models to these budgets (and the warm-up to 1).
QUICK_STEPS = 50
QUICK_EPOCHS = 2
_STEP_PARAMS = ("max_steps",)
_EPOCH_PARAMS = ("epochs", "epoch_num")

#: Gaussian smoothing of the localisation baselines' maps: DiffusionImageDetector's default.
SMOOTHING = 2.0
CONV_AE_STEPS = 500
GANOMALY_EPOCHS = 10  # like PyOD's AutoEncoder here: affordable on a CPU
PATCH_SIZE, PATCH_STRIDE, PATCH_BANK_SIZE = 8, 4, 20_000
PRO_MAX_FPR = 0.3
#: Example test images drawn in the figure: the first of each defect class and one normal.
N_EXAMPLES = 6
DEFAULT_DETECTOR = "Diffusion-default"

ANOMALIB_NOTE = (
    "Anomalib-GANomaly needs anomalib (2.7.0 installs from PyPI), which imports torchvision; "
    "PyPI's torchvision wheels for torch 2.13 are CUDA builds that do not load with the CPU "
    "build of torch the project pins ('operator torchvision::nms does not exist'), so it runs "
    "only in a separate environment (e.g. PyPI's torch 2.14.1 + torchvision 0.29.1 + "
    "anomalib, CPU or GPU). anomalib's other image models (PatchCore, PaDiM, ...) take "
    "pretrained backbones downloaded at run time and are not run.")

METRICS = ("auroc", "aupr", "pixel_auroc", "aupro", "best_dice")
PIXEL_METRICS = METRICS[2:]
#: What a run writes next to ``image_runs.csv``: the summary, its tables, the figure.
OUTPUT_FILES = ("image_summary.md", "image_summary.csv", "image_tile_maps.png")
RUN_COLUMNS = [
    "collection", "dataset", "seed", "detector", *METRICS, "fit_s", "score_s", "map_s",
    "n_train", "n_test", "n_test_anomalies", "height", "width", "has_maps",
    "train_subsampled", "test_subsampled", "error",
]
_TITLES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", TILE: "Magnetic tile"}


# ------------------------------------------------------------ baselines
def _smooth(maps, sigma=SMOOTHING):
    """The diffusion detector's map smoothing: a Gaussian over each image, edges repeated."""
    maps = np.asarray(maps, dtype=np.float64)
    if sigma <= 0:
        return maps
    return gaussian_filter(maps, sigma=(0, sigma, sigma), mode="nearest")


def _as_images(X):
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 3:
        raise ValueError(f"expected images of shape (n, H, W), got shape {X.shape}")
    return X


class _MapDetector(BaseEstimator):
    """Image score = the maximum of the smoothed map, as DiffusionImageDetector scores."""

    def __init__(self, smoothing=SMOOTHING, device="auto", random_state=0):
        self.smoothing = smoothing
        self.device = device
        self.random_state = random_state

    def anomaly_map(self, X):
        """Smoothed per-pixel scores, shape ``(n, H, W)``."""
        return _smooth(self._pixel_scores(_as_images(X)), self.smoothing)

    def decision_function(self, X):
        """One score per image: its map's maximum (higher = more abnormal)."""
        maps = self.anomaly_map(X)
        return maps.reshape(len(maps), -1).max(axis=1)


def _conv_autoencoder(height, width, widths, bottleneck):
    """Stride-2 convolutions down to a side of at most 8, a 1x1 bottleneck, and back up."""
    levels, side = 0, max(height, width)
    while side > 8 and levels < len(widths):
        side, levels = -(-side // 2), levels + 1
    down = [1, *widths[:levels]]
    up = down[::-1]
    if levels:
        up[-1] = 8  # feature channels at full resolution, before the output convolution
    nn = torch.nn
    layers = [m for c_in, c_out in itertools.pairwise(down)
              for m in (nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.ReLU())]
    layers += [nn.Conv2d(down[-1], bottleneck, 1), nn.ReLU(),
               nn.Conv2d(bottleneck, down[-1], 1), nn.ReLU()]
    layers += [m for c_in, c_out in itertools.pairwise(up)
               for m in (nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU())]
    return nn.Sequential(*layers, nn.Conv2d(up[-1], 1, 3, padding=1), nn.Sigmoid())


class ConvAutoencoder(_MapDetector):
    """Baseline: a small convolutional autoencoder; map = squared residual ``(x - x_hat)^2``.

    Trained with Adam on mean squared error for a fixed number of steps on random
    batches of the training images; the weights and batches are seeded by
    ``random_state`` without touching torch's global generator.

    Parameters
    ----------
    widths : tuple of int, default=(16, 32, 64)
        Channels of the stride-2 levels (as many are used as halve the image to a
        side of at most 8).
    bottleneck : int, default=8
        Channels of the 1x1 bottleneck.
    max_steps : int, default=CONV_AE_STEPS
    batch_size : int, default=32
    learning_rate : float, default=1e-3
    smoothing : float, default=SMOOTHING
    device : str, default="auto"
    random_state : int, default=0
    """

    def __init__(self, widths=(16, 32, 64), bottleneck=8, max_steps=CONV_AE_STEPS,
                 batch_size=32, learning_rate=1e-3, smoothing=SMOOTHING, device="auto",
                 random_state=0):
        super().__init__(smoothing, device, random_state)
        self.widths = widths
        self.bottleneck = bottleneck
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.learning_rate = learning_rate

    def fit(self, X, y=None):
        X = _as_images(X)
        self.device_ = resolve_device(self.device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_state)
            network = _conv_autoencoder(*X.shape[1:], tuple(self.widths), self.bottleneck)
        self.network_ = network.to(self.device_)
        images = torch.from_numpy(X)[:, None].to(self.device_)
        generator = torch.Generator().manual_seed(self.random_state)
        optimiser = torch.optim.Adam(self.network_.parameters(), lr=self.learning_rate)
        self.loss_curve_ = []
        for _ in range(self.max_steps):
            batch = images[torch.randint(len(images), (self.batch_size,), generator=generator)]
            loss = torch.nn.functional.mse_loss(self._restore(batch), batch)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            self.loss_curve_.append(loss.item())
        return self

    def _restore(self, batch):
        return self.network_(batch)[..., :batch.shape[-2], :batch.shape[-1]]

    def _pixel_scores(self, X):
        errors = []
        with torch.inference_mode():
            for start in range(0, len(X), 256):
                batch = torch.from_numpy(X[start:start + 256])[:, None].to(self.device_)
                errors.append(((batch - self._restore(batch)) ** 2)[:, 0].double().cpu())
        return torch.cat(errors).numpy()


def _patch_corners(side, patch, stride):
    """Patch starts every ``stride`` pixels, plus one flush with the far edge."""
    patch = min(patch, side)
    return window_starts(side, patch, stride), patch


class PatchNearestNeighbours(_MapDetector):
    """Baseline: PatchCore on raw pixels, without a pretrained backbone.

    ``fit`` keeps a memory bank of at most ``max_patches`` training patches
    (``patch_size`` square, every ``stride`` pixels, drawn uniformly at random
    when there are more); a test patch's score is its Euclidean distance to the
    nearest bank patch, and a pixel's score the mean of the scores of the patches
    covering it.

    Parameters
    ----------
    patch_size : int, default=PATCH_SIZE
    stride : int, default=PATCH_STRIDE
    max_patches : int, default=PATCH_BANK_SIZE
    smoothing : float, default=SMOOTHING
    device : str, default="auto"
    random_state : int, default=0
    """

    def __init__(self, patch_size=PATCH_SIZE, stride=PATCH_STRIDE,
                 max_patches=PATCH_BANK_SIZE, smoothing=SMOOTHING, device="auto",
                 random_state=0):
        super().__init__(smoothing, device, random_state)
        self.patch_size = patch_size
        self.stride = stride
        self.max_patches = max_patches

    def _patches(self, X):
        """Every patch of every image, ``(n, n_rows, n_cols, patch * patch)``."""
        tops, p = _patch_corners(X.shape[1], self.patch_size, self.stride)
        lefts, q = _patch_corners(X.shape[2], self.patch_size, self.stride)
        windows = np.lib.stride_tricks.sliding_window_view(X, (p, q), axis=(1, 2))
        picked = windows[:, tops[:, None], lefts[None, :]]  # copies only these patches
        return picked.reshape(len(X), len(tops), len(lefts), p * q)

    def fit(self, X, y=None):
        X = _as_images(X)
        self.device_ = resolve_device(self.device)
        patches = self._patches(X)
        patches = patches.reshape(-1, patches.shape[-1])
        if len(patches) > self.max_patches:
            rng = np.random.default_rng(self.random_state)
            patches = patches[np.sort(rng.choice(len(patches), self.max_patches,
                                                 replace=False))]
        self.memory_bank_ = torch.from_numpy(np.ascontiguousarray(patches)).to(self.device_)
        return self

    def _nearest_distances(self, queries, block=1024):
        bank = self.memory_bank_
        bank_sq = (bank ** 2).sum(dim=1)
        out = []
        with torch.inference_mode():
            for start in range(0, len(queries), block):
                q = torch.from_numpy(queries[start:start + block]).to(self.device_)
                d2 = (q ** 2).sum(dim=1, keepdim=True) - 2 * q @ bank.T + bank_sq
                out.append(d2.min(dim=1).values.clamp_min(0).sqrt().double().cpu())
        return torch.cat(out).numpy()

    def _pixel_scores(self, X):
        n, height, width = X.shape
        tops, p = _patch_corners(height, self.patch_size, self.stride)
        lefts, q = _patch_corners(width, self.patch_size, self.stride)
        sums = np.zeros((n, height, width))
        counts = np.zeros((height, width))
        for start in range(0, n, 64):  # bounds the patch copy's memory
            chunk = self._patches(X[start:start + 64])
            scores = self._nearest_distances(np.ascontiguousarray(
                chunk.reshape(-1, chunk.shape[-1]))).reshape(chunk.shape[:3])
            for i, top in enumerate(tops):
                for j, left in enumerate(lefts):
                    sums[start:start + 64, top:top + p, left:left + q] += scores[:, i, j, None,
                                                                                None]
        for top in tops:
            for left in lefts:
                counts[top:top + p, left:left + q] += 1
        return sums / counts


class _ImageItems(torch.utils.data.Dataset):
    """Grey images as anomalib's 3-channel ``ImageItem`` s (label 0: training is normal)."""

    def __init__(self, X, item_type):
        self.X, self.item_type = torch.from_numpy(X), item_type

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.item_type(image=self.X[i][None].expand(3, -1, -1), gt_label=torch.tensor(0))


class AnomalibGANomaly(BaseEstimator):
    """Baseline: anomalib's GANomaly (Akcay et al., ACCV 2018), trained from scratch.

    The one anomalib image model here: it needs no pretrained weights (nothing is
    downloaded). Runs only where ``anomalib`` (with a ``torchvision`` matching the
    installed torch) imports; elsewhere a run is recorded as not applicable. Images
    are repeated to 3 channels and resized (bilinear) to the next power-of-two side,
    at least 32, since GANomaly's DCGAN encoder halves them down to 4 pixels;
    anomalib's post-processing (normalisation on a validation set, which this
    protocol does not have) is off, so the scores are GANomaly's raw latent
    distances. Image-level only: no maps.

    Parameters
    ----------
    epochs : int, default=GANOMALY_EPOCHS
    batch_size : int, default=32
        anomalib's default.
    device : str, default="auto"
    random_state : int, default=0
        Seeds torch's global generator (anomalib takes no seed) and the batches.
    """

    def __init__(self, epochs=GANOMALY_EPOCHS, batch_size=32, device="auto", random_state=0):
        self.epochs = epochs
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state

    @staticmethod
    def _anomalib():
        try:
            from anomalib.data import ImageBatch, ImageItem
            from anomalib.engine import Engine
            from anomalib.models import Ganomaly
            from anomalib.pre_processing import PreProcessor
            from torchvision.transforms import v2
        except Exception as exc:  # noqa: BLE001 - ImportError, or torchvision's RuntimeError
            raise NotApplicable(f"anomalib cannot be imported here ({type(exc).__name__}: "
                                f"{exc}); see ANOMALIB_NOTE") from exc
        return ImageBatch, ImageItem, Engine, Ganomaly, PreProcessor, v2

    def _engine(self, engine_type, **params):
        import logging

        for name in ("lightning", "lightning.pytorch", "lightning.fabric", "anomalib",
                     "lightning.pytorch.utilities.rank_zero",
                     "lightning.fabric.utilities.rank_zero"):
            logging.getLogger(name).setLevel(logging.ERROR)
        accelerator = "gpu" if resolve_device(self.device).type == "cuda" else "cpu"
        return engine_type(accelerator=accelerator, devices=1, logger=False,
                           enable_progress_bar=False, enable_model_summary=False,
                           default_root_dir=self.root_, **params)

    def _loader(self, X, shuffle):
        batch_type, item_type = self.anomalib_[:2]
        generator = torch.Generator().manual_seed(self.random_state)
        return torch.utils.data.DataLoader(_ImageItems(_as_images(X), item_type),
                                           batch_size=self.batch_size, shuffle=shuffle,
                                           generator=generator, collate_fn=batch_type.collate)

    def fit(self, X, y=None):
        import tempfile

        X = _as_images(X)
        self.anomalib_ = self._anomalib()
        *_, engine_type, model_type, pre_processor, transforms = self.anomalib_
        side = max(32, 1 << (max(X.shape[1:]) - 1).bit_length())
        torch.manual_seed(self.random_state)
        self.model_ = model_type(
            batch_size=self.batch_size, post_processor=False, evaluator=False,
            visualizer=False,
            pre_processor=pre_processor(transform=transforms.Resize((side, side))))
        self.root_ = tempfile.mkdtemp(prefix="skdiffad-anomalib-")
        self._engine(engine_type, max_epochs=self.epochs).fit(
            self.model_, train_dataloaders=self._loader(X, shuffle=True))
        return self

    def decision_function(self, X):
        engine_type = self.anomalib_[2]
        batches = self._engine(engine_type).predict(self.model_,
                                                    dataloaders=self._loader(X, False))
        return torch.cat([b.pred_score.reshape(-1) for b in batches]).double().cpu().numpy()


class Flattened(BaseEstimator):
    """A detector of flat rows (a PyOD baseline) fed each image as one row of its pixels.

    Parameters
    ----------
    detector : object
        With ``fit`` and ``decision_function`` on ``(n, H * W)`` arrays.
    """

    def __init__(self, detector):
        self.detector = detector

    def fit(self, X, y=None):
        self.detector.fit(np.asarray(X).reshape(len(X), -1))
        return self

    def decision_function(self, X):
        return self.detector.decision_function(np.asarray(X).reshape(len(X), -1))


# ---------------------------------------------------------------- detectors
def _diffusion(**params):
    def make(seed, image_shape, device):
        from skdiffad import DiffusionImageDetector  # lazily: a failed import is a failed run

        return DiffusionImageDetector(random_state=seed, device=device, **params)
    return make


def _border_variant(per_site, centred):
    """The default detector with the patch search and the map normalisation of issue #29
    chosen: ``per_site`` restores a patch only from stored patches of its border class,
    ``centred`` subtracts the training maps' per-pixel mean before dividing by their
    spread. ``(False, True)`` is the default before #29, ``(False, False)`` its second
    change alone, ``(True, False)`` both (the default since)."""
    def make(seed, image_shape, device):
        from skdiffad import DiffusionImageDetector
        from skdiffad._reductions import pixel_statistics
        from skdiffad.modalities import ImageModality

        class Modality(ImageModality):
            def make_model(self, encoded, settings):
                if self.denoiser != "exact":
                    return super().make_model(encoded, settings)
                return settings.exact_model("reconstruction", exclusion="two-fold",
                                            per_site=per_site)

            def fit_reduction(self, folded, encoded):
                if not self.pixel_normalisation:
                    return None
                return pixel_statistics(folded, centred=centred)

        class Detector(DiffusionImageDetector):
            modality_class = Modality

            def _make_modality(self):
                modality = object.__new__(Modality)
                modality.__dict__.update(super()._make_modality().__dict__)
                return modality

        return Detector(random_state=seed, device=device)
    return make


def _flattened(name):
    make_flat = TABULAR_DETECTORS[name]

    def make(seed, image_shape, device):
        return Flattened(make_flat(seed, int(np.prod(image_shape)), device))
    return make


def _seeded(cls):
    def make(seed, image_shape, device):
        return cls(random_state=seed, device=device)
    return make


#: Every detector of the benchmark: name -> factory(seed, image_shape, device).
#: Settings not given here are the library defaults. Adding a detector is one line.
DETECTORS = {
    "Diffusion-default": _diffusion(),
    # the default with the IVF index (#28); since #29 images search exactly: the default
    "Diffusion-ivf": _diffusion(search="ivf"),
    # issue #29's two changes: neither (the default before), the uncentred maps alone
    "Diffusion-position-free-centred": _border_variant(per_site=False, centred=True),
    "Diffusion-position-free": _border_variant(per_site=False, centred=False),
    "Diffusion-exact-p8": _diffusion(patch_size=8),
    "Diffusion-exact-p8-raw": _diffusion(patch_size=8, pixel_normalisation=False),
    "Diffusion-unet": _diffusion(denoiser="unet"),
    "Diffusion-unet-full": _diffusion(denoiser="unet", n_inference_steps=1000),
    "Diffusion-unet-simplex": _diffusion(denoiser="unet", noise="simplex"),
    "Diffusion-unet-ddad": _diffusion(denoiser="unet", guidance=0.5),
    "Diffusion-unet-feature": _diffusion(denoiser="unet", scoring="feature", guidance=0.5),
    "Diffusion-unet-discriminative": _diffusion(denoiser="unet", scoring="discriminative"),
    "Diffusion-unet-discriminative-generated": _diffusion(
        denoiser="unet", scoring="discriminative", head_defects="generated"),
    # the same pair with a quarter-width U-Net and head: the CPU-affordable comparison
    "Diffusion-unet-small-discriminative": _diffusion(
        denoiser="unet", scoring="discriminative", widths=(16, 32), head_widths=(8, 16)),
    "Diffusion-unet-small-discriminative-generated": _diffusion(
        denoiser="unet", scoring="discriminative", widths=(16, 32), head_widths=(8, 16),
        head_defects="generated"),
    "Diffusion-unet-density": _diffusion(denoiser="unet", scoring="density"),
    "ConvAE": _seeded(ConvAutoencoder),
    "PatchNN": _seeded(PatchNearestNeighbours),
    "Anomalib-GANomaly": _seeded(AnomalibGANomaly),
    **{name: _flattened(name) for name in ("KNN", "IForest", "PCA", "LOF", "AutoEncoder",
                                           "DeepSVDD")},
}


def select_detectors(names=None) -> dict:
    """:func:`benchmarks._common.select_from` over this module's :data:`DETECTORS`."""
    return select_from(DETECTORS, names)


def with_budget(make_detector, steps, epochs):
    """A factory whose detector trains for ``steps`` steps / ``epochs`` epochs at most.

    Sets every parameter named in ``_STEP_PARAMS`` / ``_EPOCH_PARAMS`` that the
    detector (or, through ``Flattened``, its inner detector) has; others are left.
    """
    def make(seed, image_shape, device):
        detector = make_detector(seed, image_shape, device)
        if not hasattr(detector, "get_params"):
            return detector
        budget = {}
        for key in detector.get_params(deep=True):
            leaf = key.rsplit("__", 1)[-1]
            if leaf in _STEP_PARAMS or leaf in _EPOCH_PARAMS:
                budget[key] = steps if leaf in _STEP_PARAMS else epochs
        return detector.set_params(**budget)
    return make


# ---------------------------------------------------------------- data
def image_sets(collection, data_dir=None, tile_size=TILE_SIZE) -> dict:
    """Name -> zero-argument loader of every set of a collection found in ``data_dir``.

    The one place the benchmark reads data. A loader returns a dict with ``X``
    (uint8, ``(n, H, W)``), ``y`` (1 = anomaly) and, for the tiles, ``masks``
    (bool, ``(n, H, W)``) and ``class``.
    """
    if collection == TILE:
        return {name: functools.partial(_load_tiles, data_dir, tuple(tile_size))
                for name in list_images(collection, data_dir)}
    return {name: functools.partial(_load_one_class, name, data_dir)
            for name in list_images(collection, data_dir)}


def _load_tiles(data_dir, size):
    return load_magnetic_tile(data_dir, size=size)


def _load_one_class(name, data_dir):
    X, y = load_one_class_images(name, data_dir)
    return {"X": X, "y": y}


def default_grid(collection, names):
    """``(set, seed)`` pairs of the default grid for one collection's sets, in run order."""
    if collection == TILE:
        return [(name, seed) for name in names for seed in TILE_SEEDS]
    return [(name, 0) for name in names] + [
        (name, seed) for name in names[:EXTRA_SEED_SETS] for seed in (1, 2)]


def prepare(data, seed, name="", max_train=MAX_TRAIN, max_test=MAX_TEST):
    """Training and test images of one (set, seed), as the module docstring says.

    Returns
    -------
    run : dict
        ``X_train``, ``X_test`` (float32 in [0, 1], ``(n, H, W)``), ``y_test``,
        ``masks_test`` and ``class_test`` (None without masks / classes),
        ``test_index`` (positions in the set) and the two subsampling flags.
    """
    y = np.asarray(data["y"]).astype(int)
    *_, train, test = semi_supervised_split(data["X"], y, random_state=seed,
                                            max_train=max_train or None, return_indices=True)
    test_sub = bool(max_test) and len(test) > max_test
    if test_sub:
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        test = test[_stratified_subsample(y[test], max_test, rng)]
    X = np.asarray(data["X"])
    run = {"X_train": X[train].astype(np.float32) / 255.0,
           "X_test": X[test].astype(np.float32) / 255.0, "y_test": y[test], "test_index": test,
           "train_subsampled": bool(max_train and 0.5 * (y == 0).sum() > max_train),
           "test_subsampled": test_sub}
    for key in ("masks", "class"):
        run[f"{key}_test"] = None if data.get(key) is None else np.asarray(data[key])[test]
    return run


# ---------------------------------------------------------------- running
def image_metrics(y, scores):
    """Image AUROC and AUPR."""
    from skdiffad import metrics

    return {"auroc": float(metrics.auroc(y, scores)), "aupr": float(metrics.aupr(y, scores))}


def pixel_metrics(masks, maps):
    """Pixel AUROC, AUPRO (FPR <= :data:`PRO_MAX_FPR`) and best Dice of pooled test pixels."""
    from skdiffad import metrics

    return {"pixel_auroc": float(metrics.pixel_auroc(masks, maps)),
            "aupro": float(metrics.aupro(masks, maps, max_fpr=PRO_MAX_FPR)),
            "best_dice": float(metrics.best_dice(masks, maps)[0])}


def _checked(values, shape, what):
    values = np.asarray(values, dtype=np.float64)
    if values.shape != shape:
        raise ValueError(f"expected {what} of shape {shape}, got {values.shape}")
    n_bad = int((~np.isfinite(values)).sum())
    if n_bad:
        raise FloatingPointError(f"{n_bad} non-finite {what} values of {values.size}")
    return values


def evaluate(make_detector, run, seed, device="auto"):
    """Fit one detector on ``run["X_train"]``, score (and map) ``run["X_test"]``, never raise.

    Maps are computed, timed and measured only when ``run["masks_test"]`` is set
    and the detector has ``anomaly_map``.

    Returns
    -------
    result : dict
        :data:`METRICS` (NaN where not reached or not available), ``fit_s``,
        ``score_s``, ``map_s``, ``has_maps``, ``error`` (empty or
        ``"ExceptionType: message"``) and ``maps`` (the test maps, or None).
    """
    result = {**{name: np.nan for name in METRICS}, "fit_s": np.nan, "score_s": np.nan,
              "map_s": np.nan, "has_maps": False, "error": "", "maps": None}
    X_train, X_test = run["X_train"], run["X_test"]
    try:
        detector = make_detector(seed, X_train.shape[1:], device)
        result["has_maps"] = hasattr(detector, "anomaly_map")
        start = time.perf_counter()
        detector.fit(X_train)
        result["fit_s"] = time.perf_counter() - start
        start = time.perf_counter()
        if result["has_maps"] and run["masks_test"] is not None:
            # one restoration pass: a map detector's score is its map's maximum at the
            # working size, which is the input's size here (no detector resizes)
            maps = _checked(detector.anomaly_map(X_test), X_test.shape, "maps")
            scores = maps.reshape(len(maps), -1).max(axis=1)
            result["score_s"] = result["map_s"] = time.perf_counter() - start
            result["maps"] = maps
            result.update(pixel_metrics(run["masks_test"], maps))
        else:
            scores = detector.decision_function(X_test)
            result["score_s"] = time.perf_counter() - start
        result.update(image_metrics(run["y_test"], _checked(scores, (len(X_test),), "scores")))
    except Exception as exc:  # noqa: BLE001 - one detector must not end the benchmark
        result["error"] = error_message(exc)
    return result


def warm_up(detectors, device="auto"):
    """Fit and score (and map) every detector once on tiny random images, results discarded.

    One-off costs (lazy imports, thread pools, torch start-up) would otherwise be
    charged to the first set's timings; budgets are cut to one step or epoch.
    """
    X = np.random.default_rng(0).random((12, 16, 16), dtype=np.float32)
    for make_detector in detectors.values():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                detector = with_budget(make_detector, 1, 1)(0, X.shape[1:], device)
                detector.fit(X).decision_function(X)
                if hasattr(detector, "anomaly_map"):
                    detector.anomaly_map(X)
            except Exception:  # noqa: BLE001 - a failing detector fails again, recorded, later
                pass


def _maps_path(maps_dir):
    return Path(maps_dir) / f"{TILE}.npz"


def _example_positions(run):
    """Test positions drawn in the figure: the first of each defect class, then a normal one."""
    classes = run["class_test"]
    if classes is None:
        classes = np.where(run["y_test"] == 1, "defective", "normal")
    masked = run["masks_test"].reshape(len(classes), -1).any(axis=1)
    picked = []
    for name in dict.fromkeys(classes[run["y_test"] == 1]):
        found = np.flatnonzero((classes == name) & masked)
        if len(found):
            picked.append(found[0])
    normal = np.flatnonzero(run["y_test"] == 0)
    picked = picked[:N_EXAMPLES - 1] + list(normal[:1])
    return np.array(picked, dtype=int), classes


def _save_example_maps(maps_dir, dataset, seed, run, detector, maps):
    """Add one detector's maps of the example images to ``<maps_dir>/magnetic_tile.npz``."""
    path = _maps_path(maps_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    positions, classes = _example_positions(run)
    stored = {}
    if path.exists():
        with np.load(path, allow_pickle=False) as archive:
            if str(archive["dataset"]) == dataset and int(archive["seed"]) == seed:
                stored = {k: archive[k] for k in archive.files}
    stored.update(dataset=np.array(dataset), seed=np.array(seed),
                  images=run["X_test"][positions], masks=run["masks_test"][positions],
                  classes=classes[positions].astype(str))
    stored[f"map__{detector}"] = maps[positions].astype(np.float32)
    np.savez_compressed(path, **stored)


def run_benchmark(units, detectors=None, *, max_train=MAX_TRAIN, max_test=MAX_TEST,
                  device="auto", csv_path=None, resume=False, verbose=True, warm=True,
                  example_unit=None, maps_dir=None):
    """Run every (collection, set, seed) unit with every detector and collect the results.

    Parameters
    ----------
    units : dict
        ``(collection, set, seed)`` -> a zero-argument loader returning a dict
        as :func:`image_sets`' loaders do (consecutive units of one set share one load).
    detectors : None, str, list of str or dict, default=None
        Names from :data:`DETECTORS` (``None``: all), or name -> factory.
    max_train, max_test : int
        The caps of :func:`prepare`.
    device : str, default="auto"
        Passed to the factories.
    csv_path : path-like or None, default=None
        Append each finished run to this CSV as soon as it ends.
    resume : bool, default=False
        Keep ``csv_path``'s rows and skip the runs they hold; otherwise start afresh.
    verbose : bool, default=True
        Print one progress line per run.
    warm : bool, default=True
        Call :func:`warm_up` before the first timed run.
    example_unit : tuple or None, default=None
        The unit whose example maps go to ``maps_dir`` for the figure.
    maps_dir : path-like or None, default=None

    Returns
    -------
    runs : pandas.DataFrame
        One row per run of this selection (resumed rows included), columns
        :data:`RUN_COLUMNS`.
    """
    if not isinstance(detectors, dict):
        detectors = select_detectors(detectors)
    csv_path, previous = start_runs_csv(csv_path, resume, RUN_COLUMNS)
    done = set(zip(previous["collection"], previous["dataset"],
                   previous["seed"].astype(int), previous["detector"]))

    total, count, rows, loaded = len(units) * len(detectors), 0, [], (None, None)
    for (collection, name, seed), loader in units.items():
        todo = [d for d in detectors if (collection, name, seed, d) not in done]
        count += len(detectors) - len(todo)
        if not todo:
            continue
        if warm:
            warm_up(detectors, device)
            warm = False
        if loaded[0] != (collection, name):
            loaded = ((collection, name), None)  # let the previous set go first
            loaded = ((collection, name), loader())
        run = prepare(loaded[1], seed, name, max_train, max_test)
        keep_maps = maps_dir is not None and (collection, name, seed) == example_unit
        for detector in todo:
            count += 1
            result = evaluate(detectors[detector], run, seed, device)
            maps = result.pop("maps")
            if keep_maps and maps is not None:
                _save_example_maps(maps_dir, name, seed, run, detector, maps)
            row = {"collection": collection, "dataset": name, "seed": seed,
                   "detector": detector, **result, "n_train": len(run["X_train"]),
                   "n_test": len(run["X_test"]), "n_test_anomalies": int(run["y_test"].sum()),
                   "height": run["X_test"].shape[1], "width": run["X_test"].shape[2],
                   "train_subsampled": run["train_subsampled"],
                   "test_subsampled": run["test_subsampled"]}
            rows.append(row)
            append_row(csv_path, row, RUN_COLUMNS)
            if verbose:
                _print_progress(count, total, row)

    runs = pd.DataFrame(rows, columns=RUN_COLUMNS)
    if len(previous):
        keep = (pd.Series(list(zip(previous["collection"], previous["dataset"],
                                   previous["seed"].astype(int))),
                          index=previous.index).isin(set(units))
                & previous["detector"].isin(list(detectors)))
        runs = pd.concat([previous[keep], runs], ignore_index=True)
    return runs.astype({"seed": int, "has_maps": bool, "train_subsampled": bool,
                        "test_subsampled": bool})


def _print_progress(count, total, row):
    width = len(str(total))
    if row["error"] and np.isnan(row["auroc"]):
        outcome = ("N/A" if row["error"].startswith(NOT_APPLICABLE) else "FAILED") + \
            f" {row['error'][:100]}"
    else:
        outcome = f"AUROC={row['auroc']:.3f} AUPR={row['aupr']:.3f}"
        if not np.isnan(row["pixel_auroc"]):
            outcome += (f" pixel-AUROC={row['pixel_auroc']:.3f} AUPRO={row['aupro']:.3f} "
                        f"Dice={row['best_dice']:.3f}")
        if row["error"]:
            outcome += f" (maps FAILED {row['error'][:80]})"
    times = " ".join(f"{name}={row[f'{name}_s']:.2f}s" for name in ("fit", "score", "map")
                     if not np.isnan(row[f"{name}_s"]))
    print(f"[{count:>{width}}/{total}] {row['collection']} {row['dataset']} "
          f"seed={row['seed']} {row['detector']}: {outcome} {times}".rstrip(), flush=True)


# ---------------------------------------------------------------- summary
_PIXEL_LABELS = {"pixel_auroc": "mean pixel AUROC", "aupro": f"mean AUPRO@{PRO_MAX_FPR}",
                 "best_dice": "mean best Dice"}


def collection_table(runs):
    """Per-detector summary of one collection's runs, best mean AUROC first.

    :func:`benchmarks.tabular.detector_table` (per set: mean over seeds; then mean
    over sets; ranks per set), with the pixel metrics (``"n/a"`` for detectors
    without maps) and the map seconds added where the collection has masks.
    """
    runs = runs.copy()
    runs["error"] = error_text(runs["error"])
    table = detector_table(runs).rename(columns={"datasets": "sets"})
    not_applicable = runs["error"].str.startswith(NOT_APPLICABLE)
    table["failures"] = ((runs["error"] != "") & ~not_applicable).groupby(
        runs["detector"]).sum().reindex(table.index).astype(int)
    if not_applicable.any():
        table["n/a runs"] = not_applicable.groupby(runs["detector"]).sum().reindex(
            table.index).astype(int)
    if runs["map_s"].notna().any() or runs["pixel_auroc"].notna().any():
        mapped = runs.groupby("detector")["has_maps"].any()
        for position, (column, label) in enumerate(_PIXEL_LABELS.items(), start=2):
            per_set = runs.pivot_table(index="dataset", columns="detector", values=column,
                                       aggfunc="mean", dropna=False).mean()
            table.insert(position, label, [per_set.get(d, np.nan) if mapped[d] else "n/a"
                                           for d in table.index])
        # maps come from the scoring pass (score_s): "total s" already holds them
        table.insert(table.columns.get_loc("median score s") + 1, "median map s",
                     runs.groupby("detector")["map_s"].median())
    return table


def summary_tables(runs):
    """One :func:`collection_table` per collection, in :data:`IMAGE_COLLECTIONS` order."""
    present = list(dict.fromkeys(runs["collection"]))
    order = [c for c in IMAGE_COLLECTIONS if c in present] + [
        c for c in present if c not in IMAGE_COLLECTIONS]
    return {c: collection_table(runs[runs["collection"] == c]) for c in order}


def summarise(runs, title="Image anomaly detection benchmark", notes=()):
    """Markdown summary of :func:`run_benchmark`'s results: one section per collection.

    Each section has the per-detector table (:func:`collection_table`) and, for
    MNIST, Fashion-MNIST and any other collection of several sets (the demo's),
    the per-set AUROC table (mean over seeds; best
    in bold; † where a cap subsampled the set), then the failed runs.
    """
    runs = runs.copy()
    runs["error"] = error_text(runs["error"])
    lines = summary_lines(title, notes)
    lines += ["- Metrics are averaged over seeds per set, then over sets; mean rank: "
              "1 = best AUROC on a set. Pixel metrics pool the pixels of all test images "
              "(sets with masks only); n/a: the detector gives no map.", ""]
    for collection, table in summary_tables(runs).items():
        part = runs[runs["collection"] == collection]
        seeds = sorted(int(s) for s in part["seed"].unique())
        sizes = sorted({f"{h}x{w}" for h, w in zip(part["height"], part["width"])})
        first = part.iloc[0]
        lines += [f"## {_TITLES.get(collection, collection)}", "",
                  f"{part['dataset'].nunique()} sets, seeds {seeds}, {len(part)} runs, "
                  f"images {', '.join(sizes)}; e.g. {first['dataset']} seed "
                  f"{first['seed']}: {first['n_train']} training images, "
                  f"{first['n_test']} test images ({first['n_test_anomalies']} anomalies).",
                  "", markdown_table(table, "detector"), ""]
        if collection in IMAGE_COLLECTIONS[:2] or (collection not in IMAGE_COLLECTIONS
                                                   and part["dataset"].nunique() > 1):
            lines += [f"### {_TITLES.get(collection, collection)}: AUROC per class "
                      "(mean over seeds)", "",
                      markdown_table(dataset_table(part, list(table.index)), "set"), ""]
            per_set = part.groupby("dataset")["seed"].apply(
                lambda s: ",".join(map(str, sorted(set(s)))))
            several = per_set[per_set.str.contains(",")]
            if len(several):
                lines += ["Sets with several seeds: " + ", ".join(
                    f"{d} ({s})" for d, s in several.items()) + ".", ""]
        failed = part[part["error"] != ""]
        if len(failed):
            lines += [f"### {_TITLES.get(collection, collection)}: failed and "
                      "not-applicable runs", ""]
            for (detector, error), group in failed.groupby(["detector", "error"]):
                lines.append(f"- {detector} ({len(group)} runs; "
                             f"{', '.join(sorted(group['dataset'].unique()))}): {error}")
            lines.append("")
    return "\n".join(lines)


def _stored_examples(directories):
    """The example maps kept in ``<dir>/image_maps/``, merged over directories."""
    merged = {}
    for directory in directories:
        path = _maps_path(Path(directory) / "image_maps")
        if not path.exists():
            continue
        with np.load(path, allow_pickle=False) as archive:
            stored = {k: archive[k] for k in archive.files}
        if not merged:
            merged = stored
        elif (str(stored["dataset"]), int(stored["seed"])) == (str(merged["dataset"]),
                                                                int(merged["seed"])):
            merged.update({k: v for k, v in stored.items() if k.startswith("map__")})
    return merged


def plot_tile_examples(runs, directories, path):
    """Magnetic-tile test images, their masks and each map detector's maps.

    Columns are the stored example images (the first test image of each defect
    class, then a normal one); rows are the images, the masks, then one row per
    detector with maps, the default detector first, each map with its own colour
    scale. Returns whether a figure was written.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stored = _stored_examples(directories)
    detectors = [k.removeprefix("map__") for k in stored if k.startswith("map__")]
    if not detectors:
        return False
    detectors.sort(key=lambda d: (d != DEFAULT_DETECTOR, list(DETECTORS).index(d)
                                  if d in DETECTORS else len(DETECTORS), d))
    tile_runs = runs[runs["collection"] == TILE]
    pixel = tile_runs.groupby("detector")["pixel_auroc"].mean()
    rows = [("image", stored["images"], "gray"), ("mask", stored["masks"], "gray")] + [
        (f"{d}\n(pixel AUROC {pixel.get(d, np.nan):.3f})", stored[f"map__{d}"], "inferno")
        for d in detectors]  # images in [0, 1]; each detector's maps on one colour scale
    n_cols = len(stored["images"])
    fig, axes = plt.subplots(len(rows), n_cols, squeeze=False,
                             figsize=(1.9 * n_cols + 1.2, 1.9 * len(rows)))
    for r, (label, images, cmap) in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r, c]
            low, high = (0, 1) if r < 2 else (images.min(), images.max())
            ax.imshow(images[c], cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(str(stored["classes"][c]).removeprefix("MT_"), fontsize=9)
        axes[r, 0].set_ylabel(label, fontsize=8)
    fig.suptitle(f"Magnetic tile, seed {int(stored['seed'])}: test images, masks and maps "
                 "(one colour scale per detector)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_outputs(runs, out, notes, directories):
    """Write :data:`OUTPUT_FILES` to ``out``; returns the Markdown summary.

    The figure is drawn from the example maps kept in ``directories`` (none: no figure).
    """
    summary, table, figure = (Path(out) / name for name in OUTPUT_FILES)
    text = summarise(runs, notes=notes)
    summary.write_text(text + "\n")
    stacked_tables(summary_tables(runs)).to_csv(table, index=False)
    plot_tile_examples(runs, directories, figure)
    return text


def _notes(command, threads, device, max_train, max_test, tile_size, quick=False):
    notes = environment_notes(command, threads, device) + [
        "Protocol: one-class. Training: a random half of a set's normal images, "
        + (f"at most {max_train} (normal images left out by the cap are tested)"
           if max_train else "uncapped") + "; test: the other normal images and every "
        "anomaly, "
        + (f"at most {max_test} (stratified random subset, anomaly rate kept)."
           if max_test else "uncapped."),
        f"Magnetic tiles resized to {tile_size[0]}x{tile_size[1]} (images bilinear, masks "
        "nearest); grey levels scaled to [0, 1] for every detector.",
        f"PyOD baselines on flattened pixels: AutoEncoder epoch_num={AUTOENCODER_EPOCHS}, "
        f"DeepSVDD epochs={DEEPSVDD_EPOCHS}; every other setting is PyOD's default.",
        f"Localisation baselines: ConvAE {CONV_AE_STEPS} Adam steps (batch 32, lr 1e-3), "
        f"squared-residual maps; PatchNN raw {PATCH_SIZE}x{PATCH_SIZE} patches, stride "
        f"{PATCH_STRIDE}, a random bank of at most {PATCH_BANK_SIZE} training patches; both "
        f"smoothed with a Gaussian of sigma {SMOOTHING}, image score = map maximum.",
        ANOMALIB_NOTE,
    ]
    if quick:
        notes.append(f"--quick smoke run, not a result: trained models cut to {QUICK_STEPS} "
                     f"steps (max_steps) and {QUICK_EPOCHS} epochs (epochs / epoch_num).")
    return notes


# ---------------------------------------------------------------- command line
def parse_size(text):
    """``"128x96"`` or ``"128"`` -> ``(128, 96)`` / ``(128, 128)``."""
    try:
        sides = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        sides = ()
    if len(sides) == 1:
        sides = sides * 2
    if len(sides) != 2 or min(sides) < 1:
        raise ValueError(f"--tile-size must look like 128x128 or 128, got {text!r}")
    return sides


def _parse_args(argv):
    parser = benchmark_parser(
        "python -m benchmarks.image",
        "MNIST / Fashion-MNIST / magnetic-tile benchmark: DiffusionImageDetector vs PyOD "
        "and localisation baselines.", DETECTORS, "image_runs.csv", data="images/",
        devices="the diffusion detectors (and ConvAE, PatchNN)")
    parser.add_argument("--collections", default=",".join(IMAGE_COLLECTIONS),
                        help="comma list of collections (default: %(default)s)")
    parser.add_argument("--sets", default=None,
                        help="comma list of set names or substrings, e.g. mnist3,fashion0 "
                             "(default: every set found)")
    parser.add_argument("--seeds", default=None,
                        help="comma list of seeds for every selected set (default: the grid "
                             "of the module docstring: 0 everywhere, 1,2 on the first "
                             f"{EXTRA_SEED_SETS} MNIST/Fashion sets and on the tiles)")
    parser.add_argument("--max-train", type=int, default=None,
                        help=f"cap on training images per run, 0 = none (default: {MAX_TRAIN}; "
                             f"{QUICK['max_train']} with --quick)")
    parser.add_argument("--max-test", type=int, default=None,
                        help=f"cap on test images per run, stratified, 0 = none (default: "
                             f"{MAX_TEST}; {QUICK['max_test']} with --quick)")
    parser.add_argument("--tile-size", default=None, metavar="HxW",
                        help="working size of the magnetic tiles (default: "
                             f"{TILE_SIZE[0]}x{TILE_SIZE[1]}; 64x64 with --quick)")
    parser.add_argument("--shard", default=None, metavar="i/n",
                        help="run only the i-th of n interleaved shares of the (set, seed) "
                             "units (i from 1); give each shard its own --out")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: first set of each collection, seed 0, few images, "
                             "trained models cut short (numbers are not results)")
    return parser.parse_args(argv)


def plan_units(collections, data_dir, tile_size, sets=None, seeds=None, quick=False):
    """``(collection, set, seed)`` -> loader of every unit, in run order, and the example unit."""
    units, example = {}, None
    for collection in collections:
        loaders = image_sets(collection, data_dir, tile_size)
        if not loaders:
            print(f"warning: no {collection} sets under {Path(data_dir) / 'images'}",
                  file=sys.stderr, flush=True)
        names = list(loaders)
        grid = ([(n, s) for n in names for s in seeds] if seeds is not None
                else default_grid(collection, names))
        chosen = choose_names(names, sets)[:1] if quick else choose_names(names, sets)
        for name, seed in grid:
            if name in chosen:
                units[(collection, name, seed)] = loaders[name]
                if collection == TILE and example is None:
                    example = (collection, name, seed)
    return units, example


def summarise_directories(directories, out, command):
    """Merge the ``image_runs.csv`` of several runs (shards) and write one summary."""
    runs = merge_run_files(directories, "image_runs.csv",
                           ["collection", "dataset", "seed", "detector"], out)
    notes = environment_notes(command, 1, SHARDS_DEVICE) + [
        merged_from(directories)
        + " (caps and sizes: see the shards' summaries and the CSV columns)."]
    text = write_outputs(runs, out, notes, list(directories))
    print(text, flush=True)
    return runs


def main(argv=None):
    """Command-line entry point; see ``python -m benchmarks.image --help``."""
    args, command = _parse_args(argv), command_line("benchmarks.image", argv)
    if args.summarise:
        return summarise_directories(args.summarise, args.out, command)
    set_threads(args.threads)
    data_dir = resolve_data_dir(args.data_dir)
    collections = [c.strip() for c in args.collections.split(",") if c.strip()]
    unknown = [c for c in collections if c not in IMAGE_COLLECTIONS]
    if unknown:
        raise SystemExit(f"unknown collection(s) {unknown}; choose from "
                         f"{list(IMAGE_COLLECTIONS)}")
    defaults = QUICK if args.quick else {"max_train": MAX_TRAIN, "max_test": MAX_TEST,
                                         "tile_size": TILE_SIZE}
    max_train = defaults["max_train"] if args.max_train is None else args.max_train
    max_test = defaults["max_test"] if args.max_test is None else args.max_test
    tile_size = parse_size(args.tile_size) if args.tile_size else defaults["tile_size"]
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else (
        [0] if args.quick else None)
    detectors = select_detectors(args.detectors)
    if args.quick:
        detectors = {name: with_budget(make, QUICK_STEPS, QUICK_EPOCHS)
                     for name, make in detectors.items()}
    shard = parse_shard(args.shard) if args.shard else None

    units, example = plan_units(collections, data_dir, tile_size, args.sets, seeds,
                                args.quick)
    mine = {key: units[key] for key in take_shard(units, shard)}
    if not mine:
        raise SystemExit("no image set selected (check --collections, --sets, --data-dir)")
    out = Path(args.out)
    csv_path = results_csv(out, "image_runs.csv", args.resume)
    shard_text = f" (shard {shard[0]}/{shard[1]} of {len(units)})" if shard else ""
    print(f"{len(mine)} (set, seed) units{shard_text} x {len(detectors)} detectors; "
          f"results -> {csv_path}", flush=True)

    start = time.perf_counter()
    runs = run_benchmark(mine, detectors, max_train=max_train, max_test=max_test,
                         device=args.device, csv_path=csv_path, resume=args.resume,
                         example_unit=example, maps_dir=out / "image_maps")
    elapsed = time.perf_counter() - start
    notes = _notes(command, args.threads, args.device, max_train, max_test, tile_size,
                   args.quick) + [f"Data: {data_dir / 'images'}; wall time of this "
                                  f"invocation: {elapsed_text(elapsed)}."]
    text = write_outputs(runs, out, notes, [out])
    print(f"\n{text}\nwrote {csv_path} and, next to it, {', '.join(OUTPUT_FILES)}", flush=True)
    return runs


if __name__ == "__main__":
    main()
