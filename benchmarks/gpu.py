"""GPU check: every detector's CUDA path against its CPU path, and data-parallel training.

One short run; without a GPU, its CPU half.

For each configuration (the tabular, time-series and image detectors, exact
and learned models) the script fits on generated data (nothing is downloaded)
on the CPU and on CUDA and reports, side by side: AUROC on each device, the
largest relative difference between the CPU and CUDA scores, fit and score
seconds on each device, how many test rows, time steps or images each device
scores per second, whether CUDA scoring is bit-for-bit repeatable, whether a
CUDA-fitted detector pickles with CPU tensors and scores identically after
loading, and bfloat16 against float32 training (``mixed_precision``). PyOD's
KNN and IForest (CPU) are timed in the same process as the baselines. The
images are smooth random textures, the anomalies among them carry a bright
square (64x64, 300 training images; 32x32 and 100 with ``--quick``); the image
U-Nets are cut to small budgets (``IMAGE_UNET``) because the CPU fits them too.

Real images at 256x256 (CUDA only, no CPU comparison): when the data root
(``--data-dir``, else ``$SKDIFFAD_DATA``) holds ``images/mnist`` and/or
``images/magnetic_tile``, the default detector and the default U-Net
(``max_steps=1000``) are fitted and timed on mnist0 (2000 training images, a
stratified 1000 of the rest to score, at 28x28) and on the magnetic tiles
resized to 256x256 (476 defect-free training images; the other 476 and all
392 defective ones scored), with image AUROC and, for the tiles, pixel AUROC
of the anomaly maps (which costs one more scoring pass). Without the data the
section is skipped with a note. Its budget (an estimate: it has not run on a
GPU yet): the U-Net (widths (32, 64), batch 32) costs 12.6 GFLOP per 256x256
image and forward pass, so its 1000 training steps are about 1.2 PFLOP
(bfloat16) and scoring the tiles (476 training images in ``fit``, 868 test
images twice: scores, then maps) at most 20 passes an image (2 levels, an
antithetic pair, 5 DDIM steps), about 0.56 PFLOP (float32/TF32); at 5% of an
H200's dense peak that is under a minute, and a few minutes if the small
convolutions are that much slower still. The U-Net's ``max_steps`` and the
stratified 1000-image MNIST test set are what bound it; the exact model,
MNIST at 28x28 and loading the tiles add well under a minute. ``--quick`` cuts
the U-Net to 200 steps and the test sets to 300 MNIST and 200 tile images.

Video (``DiffusionVideoDetector``, on CUDA; on the CPU only with ``--quick``): the
default detector (exact diffusion of motion patches, nothing trained) and the
conditional U-Net (``denoiser="unet", scoring="prediction"``, the default network
and 5 DDIM steps, ``max_steps=500``) are fitted and timed at 64x64 and at 158x238
(UCSD Ped1's original size): fit and score seconds, training frames fitted and
test frames scored per second, peak CUDA memory and frame AUROC (a few clips and a
cut budget: a timing, not the benchmark's accuracy, which is
``benchmarks/video.py``'s). Each is warmed up first on two 4-frame clips. The
clips: the first 4 training and 4 test clips of
``<data root>/video/ucsd_ped1/ped1_gray_64x64.npz`` (200 frames each; the data root
is ``--data-dir``, else ``$SKDIFFAD_DATA``, else the ``shared/data`` folder next to
the checkout), resized by the detector (``image_size``) for 158x238; without the
file, synthetic clips of each size (a square crossing a noisy frame, three times as
fast in the test clips' second halves). Budget (an estimate, not yet run on a GPU):
the U-Net costs about 57 GFLOP per training step of 32 frames at 64x64 and 0.53
TFLOP at 158x238, and 11 and 98 GFLOP per frame scored, so its 500 steps and 1600
frames scored (800 training frames in ``fit``, 800 test frames) are about 0.05 and
0.42 PFLOP (training in bfloat16, scoring in float32/TF32): under a minute at 1% of
an H100's dense bfloat16 peak; the exact model and the warm-ups add seconds.
``--quick`` cuts the clips to 2 training and 1 test clip of 8 frames and the U-Net
to a tiny network and 2 steps.
The tables are printed as Markdown and, with ``--out``, written there.

Usage (on a machine with a CUDA build of PyTorch)::

    python -m benchmarks.gpu               # the table
    python -m benchmarks.gpu --quick       # smaller data, a smoke run
    python -m benchmarks.gpu --data-dir ../shared/data   # also MNIST and tiles at 256x256
    python -m benchmarks.gpu --parts video --data-dir ../shared/data   # the video timings only
    make gpu-check                         # tests/test_cuda.py, then this

Without CUDA it runs its CPU half: every configuration's CPU fit and scoring,
repeatability, pickling and throughput (and, with ``--quick``, the video timings).
Data-parallel training (``torch.distributed``) is checked on 2 gloo processes on the
CPU, and with CUDA on one GPU through NCCL: every rank ends with the same weights, and
the final validation loss (fixed held-out rows and noise) stays within 10% of
single-process training at the same step budget.

``--parts`` chooses the sections (``checks``, ``ddp``, ``real``, ``video``; all by
default).

Exits with status 1 when a check fails: scores too far from the CPU's, scoring not
repeatable, a pickle that does not round-trip, ranks that disagree, or a run that
raised.
"""

from __future__ import annotations

import argparse
import io
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from sklearn.metrics import roc_auc_score

from benchmarks._common import plain_table, resolve_data_dir
from benchmarks.video import DATA_FILE
from skdiffad import (
    DiffusionImageDetector,
    DiffusionTSDetector,
    DiffusionVideoDetector,
    TabDiffusionDetector,
)
from skdiffad.datasets import DATA_ENV_VAR, make_tabular_anomalies, make_timeseries_anomalies

# Relative CPU-CUDA score difference accepted (float32 rounding through TF32-free
# kernels; learned models trained in bfloat16 differ more, see the table).
EXACT_TOLERANCE = 1e-4

# The CPU fits every configuration too: the image U-Nets get small networks,
# few steps and a cheap scoring plan (a 64x64 fit is then seconds on the CPU).
IMAGE_UNET = {"denoiser": "unet", "widths": (16, 32), "max_steps": 100, "batch_size": 16,
              "n_scoring_timesteps": 2, "n_inference_steps": 2}

CONFIGS = [
    ("tab-nonparametric", TabDiffusionDetector, {}),
    ("tab-nonparametric-outlier", TabDiffusionDetector, {"novelty": False}),
    ("tab-density", TabDiffusionDetector, {"denoiser": "mlp", "scoring": "density"}),
    ("tab-time", TabDiffusionDetector, {"denoiser": "mlp", "scoring": "time"}),
    ("ts-exact-reconstruction", DiffusionTSDetector, {}),
    ("ts-exact-imputation", DiffusionTSDetector, {"scoring": "imputation"}),
    ("ts-unet-reconstruction", DiffusionTSDetector, {"denoiser": "unet"}),
    ("ts-unet-imputation", DiffusionTSDetector, {"denoiser": "unet", "scoring": "imputation"}),
    ("img-exact", DiffusionImageDetector, {}),
    ("img-unet-reconstruction", DiffusionImageDetector, IMAGE_UNET),
    ("img-unet-feature", DiffusionImageDetector, {**IMAGE_UNET, "scoring": "feature"}),
    ("img-unet-discriminative", DiffusionImageDetector,
     {**IMAGE_UNET, "scoring": "discriminative"}),
]

# The real-image section: sets, sizes and the U-Net's budget.
TILE_SIZE = (256, 256)
MNIST_SET, MNIST_TRAIN, MNIST_TEST = "mnist0", 2000, 1000
REAL_UNET = {"denoiser": "unet", "max_steps": 1000}
QUICK_REAL = {"max_steps": 200, "mnist_test": 300, "tile_test": 200}

# The video section: frame sizes (Ped1 as stored, and its original size), the data
# file under the data root, how much of it is timed, and the two detectors.
VIDEO_SIZES = ((64, 64), (158, 238))
VIDEO_FILE = DATA_FILE  # the one place the Ped1 file's path is written: benchmarks/video.py
VIDEO_CLIPS = {"train": 4, "test": 4, "frames": 200}
QUICK_VIDEO_CLIPS = {"train": 2, "test": 1, "frames": 8}
VIDEO_UNET = {"denoiser": "unet", "scoring": "prediction", "max_steps": 500}
QUICK_VIDEO_UNET = {"max_steps": 2, "widths": (8,), "n_inference_steps": 1, "batch_size": 8}


def _textures(n_normal, n_anomalous, side, seed):
    """Smooth random grey textures ``(n, side, side)`` in [0, 1]; each anomaly
    holds a bright square (an eighth of the side) of its own brightness.

    Returns the images, their labels (1 = anomaly) and the defect masks.
    """
    rng = np.random.default_rng(seed)
    n = n_normal + n_anomalous
    texture = gaussian_filter(rng.normal(size=(n, side, side)), sigma=(0, side / 16, side / 16))
    X = 0.5 + 0.1 * texture / texture.std()
    y = np.zeros(n, dtype=int)
    y[rng.permutation(n)[:n_anomalous]] = 1
    masks = np.zeros(X.shape, dtype=bool)
    square = max(side // 8, 2)
    for i in np.flatnonzero(y):
        r, c = rng.integers(0, side - square, size=2)
        X[i, r:r + square, c:c + square] += rng.uniform(0.3, 0.6)
        masks[i, r:r + square, c:c + square] = True
    return np.clip(X, 0.0, 1.0).astype(np.float32), y, masks


def _data(quick):
    n_rows = 4000 if quick else 40_000
    X, y = make_tabular_anomalies(n_samples=n_rows, n_features=16, contamination=0.05,
                                  random_state=0)
    n_train = n_rows // 2
    tab = (X[:n_train][y[:n_train] == 0], X[n_train:], y[n_train:])
    steps = 4000 if quick else 40_000
    S, s = make_timeseries_anomalies(n_timestamps=2 * steps, n_channels=8, n_anomalies=0,
                                     random_state=0)
    T, t = make_timeseries_anomalies(n_timestamps=steps, n_channels=8, n_anomalies=12,
                                     random_state=1)
    ts = (S[:steps], T, t)
    side, n_train, n_normal, n_anomalous = (32, 100, 40, 20) if quick else (64, 300, 150, 50)
    train, _, _ = _textures(n_train, 0, side, seed=0)
    test, labels, _ = _textures(n_normal, n_anomalous, side, seed=1)
    return {TabDiffusionDetector: tab, DiffusionTSDetector: ts,
            DiffusionImageDetector: (train, test, labels)}


def _timed(fn):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def _run(cls, params, train, test, device, **extra):
    det = cls(random_state=0, device=device, **params, **extra)
    _, fit_s = _timed(lambda: det.fit(train))
    scores, score_s = _timed(lambda: det.decision_function(test))
    return det, scores, fit_s, score_s


def _check_cpu(name, cls, params, data):
    """The CPU half of a configuration: fit, scoring, repeatability, pickling, speed."""
    train, test, y = data
    cpu, scores, fit_s, score_s = _run(cls, params, train, test, "cpu")
    again = cpu.decision_function(test)
    restored = pickle.loads(pickle.dumps(cpu))
    row = {"config": name, "auroc_cpu": roc_auc_score(y, scores), "fit_cpu_s": fit_s,
           "score_cpu_s": score_s, "scored_per_s_cpu": len(test) / score_s,
           "repeatable": bool(np.array_equal(again, scores)),
           "pickle_ok": bool(np.array_equal(restored.decision_function(test), scores)),
           "auroc_cuda": "no CUDA"}
    row["ok"] = row["repeatable"] and row["pickle_ok"] and bool(np.isfinite(scores).all())
    return row


def _check_config(name, cls, params, data):
    train, test, y = data
    rows = {}
    cpu, cpu_scores, cpu_fit, cpu_score = _run(cls, params, train, test, "cpu")
    gpu, gpu_scores, gpu_fit, gpu_score = _run(cls, params, train, test, "cuda")
    again = gpu.decision_function(test)
    restored = pickle.loads(pickle.dumps(gpu))
    saved_on_cpu = all(t.device.type == "cpu" for t in _tensors(gpu.model_.__getstate__()))
    rel = float(np.max(np.abs(gpu_scores - cpu_scores)) / max(np.max(np.abs(cpu_scores)), 1e-12))
    learned = gpu.network_ is not None
    rows.update(
        config=name, auroc_cpu=roc_auc_score(y, cpu_scores),
        auroc_cuda=roc_auc_score(y, gpu_scores),
        max_rel_diff=rel, fit_cpu_s=cpu_fit, fit_cuda_s=gpu_fit, score_cpu_s=cpu_score,
        score_cuda_s=gpu_score, scored_per_s_cpu=len(test) / cpu_score,
        scored_per_s_cuda=len(test) / gpu_score,
        repeatable=bool(np.array_equal(again, gpu_scores)),
        pickle_ok=bool(np.array_equal(restored.decision_function(test), gpu_scores)
                       and restored.device_.type == "cuda" and saved_on_cpu),
    )
    rows["ok"] = rows["repeatable"] and rows["pickle_ok"] and (learned or rel < EXACT_TOLERANCE)
    if learned:
        _, fp32, fit32, _ = _run(cls, params, train, test, "cuda", mixed_precision=False)
        rows["auroc_cuda_fp32"] = roc_auc_score(y, fp32)
        rows["fit_cuda_fp32_s"] = fit32
    return rows


def _tensors(state):
    if isinstance(state, torch.Tensor):
        yield state
    elif isinstance(state, dict):
        for value in state.values():
            yield from _tensors(value)
    elif isinstance(state, (list, tuple)):
        for value in state:
            yield from _tensors(value)
    elif hasattr(state, "__dict__") and not isinstance(state, torch.nn.Module):
        yield from _tensors(state.__getstate__())  # a model inside a model (ScaleEnsemble)


# ---------------------------------------------------------------- data-parallel
# Early stopping only for its validation loss (fixed rows, fixed noise: comparable
# between runs); the patience never runs out within the step budget.
DDP_CASE = {"denoiser": "mlp", "scoring": "reconstruction", "widths": (32, 32),
            "batch_size": 64, "max_steps": 150, "n_timesteps": 100, "ema_decay": 0.9,
            "early_stopping": True, "n_iter_no_change": 10_000}
DDP_ROWS = 1000


def _ddp_data():
    X, _ = make_tabular_anomalies(n_samples=DDP_ROWS, n_features=8, contamination=0.0,
                                  random_state=0)
    return X


def _ddp_rank(rank, world, port, device, out, X, params):
    """One rank of a data-parallel fit: save its weights and validation losses."""
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("nccl" if device == "cuda" else "gloo", rank=rank,
                            world_size=world)
    try:
        det = TabDiffusionDetector(random_state=0, device=device, **params).fit(X)
        weights = [p.detach().cpu().numpy()
                   for p in det.model_.networks_["denoiser"].parameters()]
        np.savez(Path(out) / f"rank{rank}.npz", loss=np.asarray(det.validation_loss_curve_),
                 world=det.history_["world_size"], fit_s=det.history_["fit_seconds"],
                 *weights)
    finally:
        dist.destroy_process_group()


def check_ddp(device, world, X=None, params=None, name=None):
    """Data-parallel training on ``world`` processes (gloo on the CPU, NCCL on one GPU):
    every rank ends with the same weights, and the final validation loss is that of
    single-process training at the same step budget, within 10%.

    ``X`` and ``params`` (a ``TabDiffusionDetector`` with early stopping, for its
    validation loss) default to :data:`DDP_CASE` on a generated table.
    """
    import socket
    import tempfile

    import torch.multiprocessing as mp

    X = _ddp_data() if X is None else X
    params = DDP_CASE if params is None else params
    name = name or f"ddp-{device}-{world}-process{'es' if world > 1 else ''}"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(_ddp_rank, args=(world, port, device, out, X, params), nprocs=world,
                 join=True)
        ranks = [dict(np.load(Path(out) / f"rank{r}.npz")) for r in range(world)]
    single = TabDiffusionDetector(random_state=0, device=device, **params).fit(X)
    weights = [k for k in ranks[0] if k.startswith("arr_")]
    same = all(np.array_equal(r[k], ranks[0][k]) for r in ranks for k in weights)
    # the final validation loss: the same held-out rows and noise in both runs
    ratio = float(ranks[0]["loss"][-1] / single.validation_loss_curve_[-1])
    row = {"config": name, "ranks_equal": same, "world": int(ranks[0]["world"]),
           "val_loss_ratio": ratio, "fit_s": float(ranks[0]["fit_s"]),
           "single_fit_s": single.history_["fit_seconds"]}
    row["ok"] = bool(same and row["world"] == world and abs(ratio - 1) < 0.1)
    return row


DDP_COLUMNS = ["config", "world", "ranks_equal", "val_loss_ratio", "fit_s", "single_fit_s",
               "ok"]


def _baselines(data):
    from pyod.models.iforest import IForest
    from pyod.models.knn import KNN

    train, test, y = data
    rows = []
    for name, det in (("KNN (PyOD, CPU)", KNN()), ("IForest (PyOD, CPU)", IForest(random_state=0))):
        _, fit_s = _timed(lambda: det.fit(train))
        scores, score_s = _timed(lambda: det.decision_function(test))
        rows.append({"config": name, "auroc_cpu": roc_auc_score(y, scores),
                     "fit_cpu_s": fit_s, "score_cpu_s": score_s})
    return rows


def _real_image_sets(data_dir, quick):
    """Name -> (training images, test images, test labels, test masks or None)
    of the real sets found under ``data_dir``, as float32 in [0, 1]; a note for
    each set that is absent."""
    from benchmarks.image import prepare
    from skdiffad.datasets import list_images, load_magnetic_tile, load_one_class_images

    found, notes = {}, []
    names = list_images(None, data_dir)
    if MNIST_SET in names:
        X, y = load_one_class_images(MNIST_SET, data_dir)
        n_test = QUICK_REAL["mnist_test"] if quick else MNIST_TEST
        run = prepare({"X": X, "y": y}, 0, MNIST_SET, max_train=MNIST_TRAIN, max_test=n_test)
        found[MNIST_SET] = (run["X_train"], run["X_test"], run["y_test"], None)
    else:
        notes.append(f"{MNIST_SET} not found under {data_dir}/images/mnist")
    if "magnetic_tile" in names:
        tiles = load_magnetic_tile(data_dir, size=TILE_SIZE)
        # a random half of the defect-free tiles (476) trains; the test set is the rest
        run = prepare(tiles, 0, "magnetic_tile", max_train=None,
                      max_test=QUICK_REAL["tile_test"] if quick else None)
        found["magnetic_tile"] = (run["X_train"], run["X_test"], run["y_test"],
                                  run["masks_test"])
    else:
        notes.append(f"magnetic_tile not found under {data_dir}/images/magnetic_tile")
    return found, notes


def _time_real_set(name, detector_name, params, sets):
    """Fit and scoring seconds on CUDA, images/s, image AUROC, and pixel AUROC with masks."""
    from skdiffad.metrics import pixel_auroc

    train, test, y, masks = sets[name]
    row = {"set": name, "detector": detector_name, "size": "x".join(map(str, train.shape[1:])),
           "n_train": len(train), "n_test": len(test)}
    try:
        det = DiffusionImageDetector(random_state=0, device="cuda", **params)
        _, row["fit_cuda_s"] = _timed(lambda: det.fit(train))
        scores, row["score_cuda_s"] = _timed(lambda: det.decision_function(test))
        row["images_per_s"] = len(test) / row["score_cuda_s"]
        row["auroc"] = roc_auc_score(y, scores)
        if masks is not None:
            maps, row["map_cuda_s"] = _timed(lambda: det.anomaly_map(test))
            row["pixel_auroc"] = pixel_auroc(masks, maps)
        row["ok"] = True
    except Exception as exc:  # report and go on, like the configurations
        row["ok"] = f"error: {type(exc).__name__}: {exc}"
    return row


def _real_images(data_dir, quick):
    """The real-image timing rows, or none with a printed note when the data is absent."""
    if data_dir is None:
        print(f"\nreal images at {TILE_SIZE[0]}x{TILE_SIZE[1]}: skipped, no data root "
              f"(pass --data-dir or set {DATA_ENV_VAR})")
        return []
    data_dir = Path(data_dir).expanduser()
    try:
        sets, notes = _real_image_sets(data_dir, quick)
    except Exception as exc:
        print(f"\nreal images: could not be loaded from {data_dir}")
        return [{"set": "loading", "ok": f"error: {type(exc).__name__}: {exc}"}]
    for note in notes:
        print(f"\nreal images: {note}: skipped")
    unet = {**REAL_UNET, "max_steps": QUICK_REAL["max_steps"]} if quick else REAL_UNET
    rows = []
    for name in sets:
        for detector_name, params in (("default", {}), (f"unet-{unet['max_steps']}-steps", unet)):
            rows.append(_time_real_set(name, detector_name, params, sets))
            print(_markdown(rows[-1:], REAL_COLUMNS).splitlines()[-1], flush=True)
    return rows


# ---------------------------------------------------------------- video
def _moving_squares(n_clips, n_frames, shape, fast, seed):
    """Synthetic clips ``(n_frames, H, W)`` in [0, 1] of a fixed noisy scene, each with a
    bright square (an eighth of the frame's height) crossing it at ``W / 64`` pixels per
    frame; with ``fast``, three times as fast in the second half of every clip (the
    abnormal frames). Returns the clips and their frame labels, concatenated."""
    rng = np.random.default_rng(seed)
    height, width = shape
    side, speed = max(height // 8, 2), width / 64
    clips, labels = [], []
    for _ in range(n_clips):
        frames = 0.2 + 0.02 * rng.normal(size=(n_frames, height, width))
        row, x = rng.integers(0, height - side), rng.uniform(0, width - side)
        y = np.zeros(n_frames, dtype=int)
        if fast:
            y[n_frames // 2:] = 1
        for t in range(n_frames):
            x = (x + speed * (3 if y[t] else 1)) % (width - side)
            frames[t, row:row + side, int(x):int(x) + side] += 0.6
        clips.append(np.clip(frames, 0.0, 1.0).astype(np.float32))
        labels.append(y)
    return clips, np.concatenate(labels)


def _ped1_clips(path, counts):
    """The first ``counts["train"]`` training and ``counts["test"]`` test clips of the
    Ped1 file (sorted keys), each cut to its first ``counts["frames"]`` frames (uint8),
    and the test frames' labels, concatenated."""
    with np.load(path) as archive:
        keys = sorted(archive.files)
        train = [archive[k][:counts["frames"]]  # read only the clips kept
                 for k in [k for k in keys if k.startswith("train_")][:counts["train"]]]
        names = [k for k in keys if k.startswith("test_")][:counts["test"]]
        test = [archive[k][:counts["frames"]] for k in names]
        labels = [archive[f"label_{k}"][:counts["frames"]].astype(int) for k in names]
    if not train or not test:
        raise ValueError(f"{path} holds no train_XX or test_XX clips")
    return train, test, np.concatenate(labels)


def _video_sets(data_dir, quick):
    """``[(source, size, train clips, test clips, labels, extra detector params)]``: Ped1
    at 64x64 and resized by the detector to 158x238 when its file is under the data
    root, else synthetic clips made at each size."""
    counts = QUICK_VIDEO_CLIPS if quick else VIDEO_CLIPS
    path = resolve_data_dir(data_dir) / VIDEO_FILE
    if path.exists():
        train, test, labels = _ped1_clips(path, counts)
        stored = tuple(train[0].shape[1:3])
        return [("ucsd_ped1", size, train, test, labels,
                 {} if size == stored else {"image_size": size}) for size in VIDEO_SIZES]
    print(f"\nvideo: {path} not found: synthetic clips (a square moving across a noisy "
          "frame) instead")
    sets = []
    for size in VIDEO_SIZES:
        train, _ = _moving_squares(counts["train"], counts["frames"], size, False, seed=0)
        test, labels = _moving_squares(counts["test"], counts["frames"], size, True, seed=1)
        sets.append(("synthetic", size, train, test, labels, {}))
    return sets


def _video_detectors(quick):
    """(name, parameters) of the timed video detectors: the default and the conditional
    U-Net (cut to a tiny network and two steps with ``--quick``)."""
    unet = {**VIDEO_UNET, **QUICK_VIDEO_UNET} if quick else VIDEO_UNET
    return [("exact-default", {}), (f"unet-prediction-{unet['max_steps']}-steps", unet)]


def _warm_up_video(params, train, device):
    """Fit and score the configuration on two 4-frame clips of the training frames (two
    training steps): the one-off costs of a CUDA run (lazily loaded kernels, kernel
    choice for these shapes, allocator growth) are then not charged to the timed fit."""
    warm = {**params, "max_steps": min(params.get("max_steps", 2), 2)}
    short = [clip[:4] for clip in (list(train) * 2)[:2]]
    DiffusionVideoDetector(random_state=0, device=device, **warm).fit(short) \
        .decision_function(short[0])


def _time_video(source, size, detector_name, params, train, test, labels, device):
    """Fit and score seconds and frames per second of one video detector on ``device``
    (after a warm-up on CUDA), its peak CUDA memory, and frame AUROC on the test clips."""
    n_train, n_test = sum(len(c) for c in train), sum(len(c) for c in test)
    row = {"video": source, "detector": detector_name, "size": "x".join(map(str, size)),
           "device": device, "n_train_frames": n_train, "n_test_frames": n_test}
    try:
        if device == "cuda":
            _warm_up_video(params, train, device)
            torch.cuda.reset_peak_memory_stats()
        det = DiffusionVideoDetector(random_state=0, device=device, **params)
        _, row["fit_s"] = _timed(lambda: det.fit(train))
        scores, row["score_s"] = _timed(lambda: det.decision_function(test))
        row["fit_frames_per_s"] = n_train / row["fit_s"]
        row["frames_per_s"] = n_test / row["score_s"]
        if device == "cuda":
            row["cuda_peak_gib"] = torch.cuda.max_memory_allocated() / 2 ** 30
        if len(np.unique(labels)) == 2:
            row["auroc"] = roc_auc_score(labels, scores)
        row["ok"] = bool(scores.shape == (n_test,) and np.isfinite(scores).all())
    except Exception as exc:  # report and go on, like the configurations
        row["ok"] = f"error: {type(exc).__name__}: {exc}"
    return row


def _video(data_dir, quick, device):
    """The video timing rows: each detector of :func:`_video_detectors` at each size of
    :data:`VIDEO_SIZES`, on ``device``."""
    try:
        sets = _video_sets(data_dir, quick)
    except Exception as exc:
        print("\nvideo: the clips could not be loaded")
        return [{"video": "loading", "ok": f"error: {type(exc).__name__}: {exc}"}]
    rows = []
    for source, size, train, test, labels, extra in sets:
        for detector_name, params in _video_detectors(quick):
            rows.append(_time_video(source, size, detector_name, {**params, **extra}, train,
                                    test, labels, device))
            print(_markdown(rows[-1:], VIDEO_COLUMNS).splitlines()[-1], flush=True)
    return rows


CHECK_COLUMNS = ["config", "auroc_cpu", "auroc_cuda", "auroc_cuda_fp32", "max_rel_diff",
                 "fit_cpu_s", "fit_cuda_s", "fit_cuda_fp32_s", "score_cpu_s", "score_cuda_s",
                 "scored_per_s_cpu", "scored_per_s_cuda", "repeatable", "pickle_ok", "ok"]
REAL_COLUMNS = ["set", "detector", "size", "n_train", "n_test", "fit_cuda_s", "score_cuda_s",
                "images_per_s", "map_cuda_s", "auroc", "pixel_auroc", "ok"]
VIDEO_COLUMNS = ["video", "detector", "size", "device", "n_train_frames", "n_test_frames",
                 "fit_s", "fit_frames_per_s", "score_s", "frames_per_s", "cuda_peak_gib",
                 "auroc", "ok"]
PARTS = ("checks", "ddp", "real", "video")


def _cell(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _markdown(rows, cols=CHECK_COLUMNS):
    return plain_table(rows, cols, cell=_cell)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data: a smoke run")
    parser.add_argument("--out", default=None, help="also write the Markdown tables here")
    parser.add_argument("--data-dir", default=None,
                        help="data root holding images/mnist and/or images/magnetic_tile for "
                             f"the 256x256 timings (default: ${DATA_ENV_VAR} when set; "
                             "without either the section is skipped) and "
                             f"{VIDEO_FILE.as_posix()} for the video timings (default: "
                             f"${DATA_ENV_VAR}, else the shared/data folder next to the "
                             "checkout; without it, synthetic clips)")
    parser.add_argument("--configs", default=None,
                        help="comma list of configurations (default: all of "
                             + ", ".join(name for name, _, _ in CONFIGS) + ")")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help="comma list of the sections to run: checks (every configuration "
                             "on the CPU and CUDA, and PyOD's baselines), ddp (data-parallel "
                             "training), real (real images at 256x256, CUDA only), video "
                             "(DiffusionVideoDetector at 64x64 and 158x238; CUDA, or the CPU "
                             "with --quick); default: all")
    parser.add_argument("--no-ddp", action="store_true", help="skip the data-parallel checks")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown parts {unknown}; choose from {list(PARTS)}")
    if args.no_ddp and "ddp" in parts:
        parts.remove("ddp")
    configs = CONFIGS
    if args.configs:
        wanted = [c.strip() for c in args.configs.split(",") if c.strip()]
        unknown = sorted(set(wanted) - {name for name, _, _ in CONFIGS})
        if unknown:
            parser.error(f"unknown configurations {unknown}")
        configs = [c for c in CONFIGS if c[0] in wanted]
    cuda = torch.cuda.is_available()
    if cuda:
        print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}, "
              f"{torch.cuda.device_count()} device(s)")
    else:
        print(f"torch {torch.__version__}, no CUDA device visible: the CPU half only "
              "(every configuration's CPU fit, scoring, repeatability and pickling; "
              "data-parallel training on 2 gloo processes; the video timings on the CPU "
              "with --quick)")
    tables, rows = [], []
    if "checks" in parts:
        data_by_class = _data(args.quick)
        checks = []
        for name, cls, params in configs:
            try:
                check = _check_config if cuda else _check_cpu
                checks.append(check(name, cls, params, data_by_class[cls]))
            except Exception as exc:  # report and go on: one table for the whole run
                checks.append({"config": name, "ok": f"error: {type(exc).__name__}: {exc}"})
            print(_markdown(checks[-1:]).splitlines()[-1], flush=True)
        checks += _baselines(data_by_class[TabDiffusionDetector])
        tables.append(_markdown(checks))
        print("\n" + tables[-1])
        rows += checks
    if "ddp" in parts:
        ddp = []
        for device, world in (("cpu", 2),) + ((("cuda", 1),) if cuda else ()):
            try:
                ddp.append(check_ddp(device, world))
            except Exception as exc:
                ddp.append({"config": f"ddp-{device}", "ok": f"error: {type(exc).__name__}: "
                                                            f"{exc}"})
        tables.append(_markdown(ddp, DDP_COLUMNS))
        print("\n" + tables[-1])
        rows += ddp
    if "real" in parts and cuda:
        real = _real_images(args.data_dir or os.environ.get(DATA_ENV_VAR), args.quick)
        if real:
            tables.append(_markdown(real, REAL_COLUMNS))
            print("\n" + tables[-1])
        rows += real
    if "video" in parts:
        if cuda or args.quick:
            video = _video(args.data_dir, args.quick, "cuda" if cuda else "cpu")
            tables.append(_markdown(video, VIDEO_COLUMNS))
            print("\n" + tables[-1])
            rows += video
        else:
            print("\nvideo: skipped without CUDA (the U-Net at 158x238 is for a GPU); "
                  "--quick times it on the CPU at a smoke-run size")
    if args.out:
        with io.open(args.out, "w") as fh:
            fh.write("\n\n".join(tables) + "\n")
    return 0 if all(r.get("ok", True) is True for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
