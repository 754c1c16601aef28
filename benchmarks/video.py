"""Video benchmark: ``DiffusionVideoDetector`` on UCSD Ped1 against frame and motion baselines.

Run from the repository root::

    python -m benchmarks.video                                   # everything (long on a CPU)
    python -m benchmarks.video --quick --out /tmp/video_quick    # a smoke run, seconds
    python -m benchmarks.video --only Diffusion-default,KNN      # some detectors
    python -m benchmarks.video --only unet,predictor --device cuda --unet-steps 2000
    python -m benchmarks.video --resume                          # carry on after an interruption

    # detector groups in separate processes (e.g. the U-Nets on a GPU), then one summary:
    python -m benchmarks.video --only unet,predictor --device cuda --out V1
    python -m benchmarks.video --only Diffusion-default,Diffusion-k1,KNN --out V2
    python -m benchmarks.video --summarise V1 V2 --out benchmarks/results

Data: ``<data-dir>/video/ucsd_ped1/ped1_gray_64x64.npz`` (without ``--data-dir``,
:func:`benchmarks._common.resolve_data_dir` picks ``$SKDIFFAD_DATA`` or the
``shared/data`` folder next to the checkout): UCSD Ped1 in grey levels at 64x64,
``train_XX`` (34 clips of normal walking, uint8 ``(200, 64, 64)``), ``test_XX``
(36 clips) and ``label_test_XX`` (uint8 ``(T,)``, 1 = abnormal frame: bikes,
skaters, carts, people walking across the walkway or on the grass). Keys are
read in sorted order; a clip's number is its position in that order.

Protocol
--------
- Every detector is fitted on all 34 training clips (a list of clips) and scores
  all 36 test clips, one ``decision_function`` call per clip (``(T,)`` scores,
  higher = more abnormal). The diffusion detectors get the clips as stored (uint8);
  the baselines scale grey levels to [0, 1].
- Frame-level metrics, micro over the frames of a split's clips:
  ``auroc_raw`` (the raw scores of the clips concatenated), ``auroc_clipnorm``
  (each clip's scores min-max normalised within the clip first, the convention of
  the video literature, which hides differences of level between clips) and
  ``aupr_raw``.
- Splits of the test clips: ``tune`` = clips 1-12 (the first 12 sorted keys; the
  detector's defaults were chosen on these), ``eval`` = clips 13-36 (never used
  for any choice; the headline) and ``all`` = the 36 clips. Each metric is
  reported on each split (CSV columns ``<metric>_<split>``, e.g. ``auroc_raw_eval``).
- Timing (``time.perf_counter``): ``fit_s`` around ``fit`` (for the diffusion
  detectors it includes scoring the training frames, which sets ``threshold_``),
  ``score_s`` the sum over the test clips of the ``decision_function`` calls,
  ``frames_per_s`` = test frames / ``score_s``. Every detector is first fitted once
  on two tiny random clips (:func:`warm_up`), so one-off costs are not charged to the
  first one. Torch and BLAS use one thread unless ``--threads`` says more.

Detectors (:data:`DETECTORS`, chosen with ``--only``; every diffusion detector has
``random_state=0`` and ``device=--device``):

- ``Diffusion-default``: ``DiffusionVideoDetector()`` as a user gets it (exact
  diffusion of motion patches, ``n_past=2``, restored from any place, reconstruction).
- ``Diffusion-prediction``: ``scoring="prediction"`` (the exact conditional: the
  current frame's channels from the stored patch nearest on the past).
- ``Diffusion-frames``: ``stream="frames"``, ``n_past=2`` (appearance, not motion).
- ``Diffusion-both``: ``stream="both"``.
- ``Diffusion-framelevel``: ``stream="frames"``, ``n_past=0``: the image method per
  frame, with the detector's temporal smoothing.
- ``Diffusion-k1``, ``Diffusion-k4``: ``n_past=1``, ``n_past=4``.
- ``Diffusion-persite``: ``per_site=True`` (each patch restored from the training
  patches of its own place only).
- ``Diffusion-nosmooth``: ``temporal_smoothing=0``.
- ``Diffusion-unet-prediction``: ``denoiser="unet"``, ``scoring="prediction"``
  (the conditional U-Net), ``max_steps=--unet-steps`` (default
  :data:`UNET_STEPS`).
- ``Diffusion-unet-reconstruction``: ``denoiser="unet"``,
  ``scoring="reconstruction"``, the same budget.
- ``Predictor-unet``: ``denoiser="predictor"``, ``scoring="prediction"``, the same
  budget: the same U-Net trained by mean squared error to output the current frame
  from its past, without noise (the no-diffusion ablation).
- ``KNN (PyOD)``, ``IForest (PyOD)``: per frame on raw pixels in [0, 1] (each frame
  flattened to 4096 values), fitted on every :data:`FRAME_STEP`-nd frame of each
  training clip to bound the cost; KNN ``n_neighbors=5``, IForest
  ``random_state=0``, PyOD's defaults otherwise.
- ``Motion energy``: the mean absolute difference between a frame and the one
  before it (a clip's first frame takes the second's value); nothing is fitted.
- ``ImageDetector per frame``: ``DiffusionImageDetector(random_state=0)`` fitted on
  every :data:`FRAME_STEP`-nd training frame (an ``(N, 64, 64)`` array in [0, 1]),
  each test frame scored alone, raw (no temporal smoothing).

A detector that raises, or returns scores of the wrong shape or not finite, does
not stop the run: its metrics are NaN and its error text is kept.

Outputs in ``--out`` (default ``benchmarks/results``): ``video_runs.csv`` (one row
per detector, appended as each ends, so ``--resume`` skips the detectors already
there, failed ones included: delete their rows to retry), ``video_scores/`` (each
detector's test scores, one ``.npz`` holding an array per clip, for analyses
without a rerun), ``video_summary.md`` (the notes and the table, also printed:
sorted by eval AUROC raw), ``video_example.npz`` and ``video_ped1.png`` (the
figure: for the first eval clip with both normal and abnormal frames,
``Diffusion-default``'s score curve with the abnormal frames shaded, and three of
its abnormal frames with their ``anomaly_map`` overlaid where it exceeds
:data:`MAP_SHOWN_FROM` of the three maps' range; drawn when
``Diffusion-default`` runs, or from a stored ``video_example.npz``; ``--no-figure``
leaves both out).

``--quick`` is a smoke run of the harness, not a result: the first
:data:`QUICK_TRAIN_CLIPS` training clips, three test clips (clip 1 of the tune
split and clips 13 and 14 of the eval split) and the U-Net configurations cut to
:data:`QUICK_UNET` (and ``--unet-steps`` to :data:`QUICK_STEPS` unless given).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from benchmarks._common import (
    SHARDS_DEVICE,
    add_run_arguments,
    append_row,
    choose_names,
    command_line,
    elapsed_text,
    environment_notes,
    error_message,
    error_text,
    markdown_table,
    merge_run_files,
    merged_from,
    resolve_data_dir,
    results_csv,
    set_threads,
    start_runs_csv,
    summary_lines,
    warm_up_budget,
)

#: The data file, under the data root.
DATA_FILE = Path("video") / "ucsd_ped1" / "ped1_gray_64x64.npz"
#: Test clips 1..TUNE_CLIPS (sorted keys) form the tune split, the rest the eval split.
TUNE_CLIPS = 12
SPLITS = ("tune", "eval", "all")
METRICS = ("auroc_raw", "auroc_clipnorm", "aupr_raw")
#: The frames the per-frame baselines are fitted on: every FRAME_STEP-th of each training clip.
FRAME_STEP = 2
KNN_NEIGHBOURS = 5
#: ``--unet-steps``' default: the U-Net configurations' ``max_steps``.
UNET_STEPS = 300
QUICK_TRAIN_CLIPS = 2
QUICK_STEPS = 2
#: The U-Net configurations' scoring budget on the CPU (the full run): every training
#: and test frame is scored, each costing n_inference_steps (x n_scoring_timesteps for
#: reconstruction) U-Net passes, so a smaller network and fewer steps than the
#: detector's defaults keep the run to minutes; a GPU run can pass --unet-full.
CPU_UNET = {"widths": (16, 32), "n_inference_steps": 2, "n_scoring_timesteps": 1}
#: ``--quick``: the U-Net configurations' other settings, a tiny network and one step.
QUICK_UNET = {"widths": (8,), "n_inference_steps": 1, "n_scoring_timesteps": 1,
              "batch_size": 8}
DEFAULT_DETECTOR = "Diffusion-default"
#: Abnormal frames of the example clip drawn with their maps.
N_EXAMPLE_FRAMES = 3
#: The figure colours a map only where it exceeds this fraction of the maps' range.
MAP_SHOWN_FROM = 0.2

CSV_NAME = "video_runs.csv"
SUMMARY_NAME = "video_summary.md"
FIGURE_NAME = "video_ped1.png"
EXAMPLE_NAME = "video_example.npz"
SCORES_DIR = "video_scores"
RUN_COLUMNS = [
    "detector", *[f"{m}_{s}" for s in SPLITS for m in METRICS],
    "fit_s", "score_s", "frames_per_s", "n_train_clips", "n_train_frames",
    "n_test_clips", "n_test_frames", "n_eval_clips", "device", "error",
]
#: The summary table: heading -> CSV column, in order.
TABLE_COLUMNS = {
    "eval AUROC raw": "auroc_raw_eval", "eval AUROC clip-norm": "auroc_clipnorm_eval",
    "eval AUPR": "aupr_raw_eval", "all AUROC raw": "auroc_raw_all",
    "all AUROC clip-norm": "auroc_clipnorm_all", "tune AUROC raw": "auroc_raw_tune",
    "fit s": "fit_s", "score s": "score_s", "frames/s": "frames_per_s",
}


# ------------------------------------------------------------------ baselines
def _unit_frames(clip):
    """A clip's frames as float32 in [0, 1] (uint8 grey levels divided by 255)."""
    frames = np.asarray(clip)
    if frames.dtype == np.uint8:
        return frames.astype(np.float32) / np.float32(255)
    return frames.astype(np.float32)


def _training_frames(clips, step=FRAME_STEP):
    """Every ``step``-th frame of each training clip, stacked: ``(N, H, W)`` in [0, 1]."""
    return np.concatenate([_unit_frames(clip)[::step] for clip in clips])


class FramePyOD(BaseEstimator):
    """A PyOD detector per frame on the flattened pixels in [0, 1].

    Parameters
    ----------
    name : {"KNN", "IForest"}
        The PyOD detector: KNN with ``n_neighbors`` neighbours, IForest with
        ``random_state``; PyOD's defaults otherwise.
    n_neighbors : int, default=KNN_NEIGHBOURS
    random_state : int, default=0
    step : int, default=FRAME_STEP
        Fitted on every ``step``-th frame of each training clip.
    """

    def __init__(self, name="KNN", n_neighbors=KNN_NEIGHBOURS, random_state=0,
                 step=FRAME_STEP):
        self.name = name
        self.n_neighbors = n_neighbors
        self.random_state = random_state
        self.step = step

    def fit(self, clips, y=None):
        if self.name == "KNN":
            from pyod.models.knn import KNN
            detector = KNN(n_neighbors=self.n_neighbors)
        elif self.name == "IForest":
            from pyod.models.iforest import IForest
            detector = IForest(random_state=self.random_state)
        else:
            raise ValueError(f"unknown PyOD detector {self.name!r}")
        frames = _training_frames(clips, self.step)
        self.detector_ = detector.fit(frames.reshape(len(frames), -1))
        return self

    def decision_function(self, clip):
        frames = _unit_frames(clip)
        return self.detector_.decision_function(frames.reshape(len(frames), -1))


class MotionEnergy(BaseEstimator):
    """Score of frame ``t``: the mean absolute difference between it and frame ``t - 1``.

    Frame 0 takes frame 1's value. Nothing is fitted.
    """

    def fit(self, clips, y=None):
        return self

    def decision_function(self, clip):
        frames = _unit_frames(clip)
        if len(frames) < 2:
            return np.zeros(len(frames))
        energy = np.abs(np.diff(frames, axis=0)).reshape(len(frames) - 1, -1).mean(axis=1)
        return np.concatenate([energy[:1], energy]).astype(np.float64)


class ImagePerFrame(BaseEstimator):
    """``DiffusionImageDetector`` on single frames: fitted on every ``step``-th training
    frame, each test frame scored alone, no temporal smoothing."""

    def __init__(self, random_state=0, device="auto", step=FRAME_STEP):
        self.random_state = random_state
        self.device = device
        self.step = step

    def fit(self, clips, y=None):
        from skdiffad import DiffusionImageDetector

        self.detector_ = DiffusionImageDetector(random_state=self.random_state,
                                                device=self.device)
        self.detector_.fit(_training_frames(clips, self.step))
        self.device_ = getattr(self.detector_, "device_", None)
        return self

    def decision_function(self, clip):
        return self.detector_.decision_function(_unit_frames(clip))


# ------------------------------------------------------------------ registry
def _diffusion(trained=False, **params):
    """A factory ``(device, unet_budget) -> DiffusionVideoDetector(**params)``; a trained
    configuration (a U-Net) also gets ``unet_budget`` (its ``max_steps`` and, with
    ``--quick``, :data:`QUICK_UNET`)."""
    def make(device, unet_budget):
        # imported at run time, so a broken class is a failed run, not a crash
        from skdiffad import DiffusionVideoDetector

        budget = dict(unet_budget) if trained else {}
        return DiffusionVideoDetector(random_state=0, device=device, **params, **budget)
    make.params = dict(params)
    make.trained = trained
    return make


DETECTORS = {
    "Diffusion-default": _diffusion(),
    "Diffusion-prediction": _diffusion(scoring="prediction"),
    "Diffusion-frames": _diffusion(stream="frames", n_past=2),
    "Diffusion-both": _diffusion(stream="both"),
    "Diffusion-framelevel": _diffusion(stream="frames", n_past=0),
    "Diffusion-k1": _diffusion(n_past=1),
    "Diffusion-k4": _diffusion(n_past=4),
    "Diffusion-persite": _diffusion(per_site=True),
    "Diffusion-nosmooth": _diffusion(temporal_smoothing=0),
    "Diffusion-unet-prediction": _diffusion(True, denoiser="unet", scoring="prediction"),
    "Diffusion-unet-reconstruction": _diffusion(True, denoiser="unet",
                                                scoring="reconstruction"),
    "Predictor-unet": _diffusion(True, denoiser="predictor", scoring="prediction"),
    "KNN (PyOD)": lambda device, unet_budget: FramePyOD("KNN"),
    "IForest (PyOD)": lambda device, unet_budget: FramePyOD("IForest"),
    "Motion energy": lambda device, unet_budget: MotionEnergy(),
    "ImageDetector per frame": lambda device, unet_budget: ImagePerFrame(device=device),
}


def select_detectors(spec=None) -> dict:
    """The detectors a ``--only`` comma list names, in registry order.

    An entry chooses the names it equals or is part of, case-insensitively
    (``knn`` chooses ``KNN (PyOD)``, ``unet`` the three U-Net configurations);
    None or ``""`` chooses all.

    Raises
    ------
    ValueError
        When an entry chooses no detector.
    """
    if not spec:
        return dict(DETECTORS)
    entries = [e.strip() for e in spec.split(",") if e.strip()]
    unknown = [e for e in entries if not choose_names(DETECTORS, e)]
    if unknown:
        raise ValueError(f"unknown detector(s) {unknown}; choose from {list(DETECTORS)}")
    chosen = set(choose_names(DETECTORS, spec))
    return {name: make for name, make in DETECTORS.items() if name in chosen}


def unet_budget(steps=None, quick=False, full=False):
    """The settings the U-Net configurations get: ``max_steps`` (``--unet-steps``; None:
    :data:`UNET_STEPS`, or :data:`QUICK_STEPS` with ``quick``) and, with ``quick``,
    :data:`QUICK_UNET`; else :data:`CPU_UNET` unless ``full`` (the detector's own
    network and scoring steps)."""
    if steps is None:
        steps = QUICK_STEPS if quick else UNET_STEPS
    extra = QUICK_UNET if quick else {} if full else CPU_UNET
    return {"max_steps": int(steps), **extra}


# ------------------------------------------------------------------ data
def data_path(data_dir=None) -> Path:
    """Where the Ped1 file is: ``<data root>/video/ucsd_ped1/ped1_gray_64x64.npz``."""
    return resolve_data_dir(data_dir) / DATA_FILE


def load_ped1(path, quick=False):
    """Training clips, test clips, frame labels and each test clip's split.

    Parameters
    ----------
    path : path-like
        The ``.npz`` file.
    quick : bool, default=False
        Keep the first :data:`QUICK_TRAIN_CLIPS` training clips and three test
        clips: the first of the tune split and the first two of the eval split
        (the first three when there are too few clips for that).

    Returns
    -------
    data : dict
        ``train`` (name -> clip), ``test`` (name -> clip), ``labels`` (name ->
        int array, 1 = abnormal frame) and ``split`` (name -> ``"tune"`` or
        ``"eval"``, from the clip's position among all the sorted test keys).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"UCSD Ped1 not found at {path} (set --data-dir or "
                                "SKDIFFAD_DATA)")
    with np.load(path) as archive:
        keys = sorted(archive.files)
        train_names = [k for k in keys if k.startswith("train_")]
        test_names = [k for k in keys if k.startswith("test_")]
        split = {name: "tune" if i < TUNE_CLIPS else "eval"
                 for i, name in enumerate(test_names)}
        if quick:
            train_names = train_names[:QUICK_TRAIN_CLIPS]
            picked = test_names[:1] + test_names[TUNE_CLIPS:TUNE_CLIPS + 2]
            test_names = picked if len(picked) == 3 else test_names[:3]
        data = {"train": {k: archive[k] for k in train_names},
                "test": {k: archive[k] for k in test_names},
                "labels": {k: archive[f"label_{k}"].astype(int) for k in test_names},
                "split": {k: split[k] for k in test_names}}
    if not data["train"] or not data["test"]:
        raise ValueError(f"{path} holds no train_XX or test_XX clips")
    for name, clip in data["test"].items():
        if len(data["labels"][name]) != len(clip):
            raise ValueError(f"label_{name} has {len(data['labels'][name])} frames, "
                             f"{name} {len(clip)}")
    return data


# ------------------------------------------------------------------ metrics
def clip_normalised(scores):
    """A clip's scores min-max normalised within the clip (a constant clip gives zeros)."""
    scores = np.asarray(scores, dtype=np.float64)
    span = scores.max() - scores.min()
    return (scores - scores.min()) / span if span > 0 else np.zeros_like(scores)


def split_clips(split, splits):
    """The clips (names, in order) of ``split``: ``"all"`` or a value of ``splits``."""
    return [name for name, s in splits.items() if split == "all" or s == split]


def split_metrics(scores, labels, splits):
    """:data:`METRICS` on every split of :data:`SPLITS`, micro over the split's frames.

    Parameters
    ----------
    scores, labels : dict
        Clip name -> ``(T,)`` scores / 0-1 labels.
    splits : dict
        Clip name -> ``"tune"`` or ``"eval"``.

    Returns
    -------
    metrics : dict
        ``<metric>_<split>`` -> float; NaN where the split has no clip, AUROC NaN
        where its frames hold one class, AUPR NaN where they hold no anomaly.
    """
    from skdiffad.metrics import aupr, auroc

    result = {}
    for split in SPLITS:
        names = split_clips(split, splits)
        values = dict.fromkeys(METRICS, np.nan)
        if names:
            y = np.concatenate([labels[n] for n in names])
            raw = np.concatenate([scores[n] for n in names])
            normed = np.concatenate([clip_normalised(scores[n]) for n in names])
            if 0 < y.sum() < len(y):
                values["auroc_raw"] = auroc(y, raw)
                values["auroc_clipnorm"] = auroc(y, normed)
            if y.sum() > 0:
                values["aupr_raw"] = aupr(y, raw)
        result.update({f"{m}_{split}": float(v) for m, v in values.items()})
    return result


def _checked(values, n_frames, clip):
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (n_frames,):
        raise ValueError(f"expected scores of shape ({n_frames},) for {clip}, got "
                         f"{values.shape}")
    n_bad = int((~np.isfinite(values)).sum())
    if n_bad:
        raise FloatingPointError(f"{n_bad} non-finite scores of {n_frames} for {clip}")
    return values


# ------------------------------------------------------------------ runs
def evaluate(detector, data):
    """Fit ``detector`` on every training clip, score every test clip; never raise.

    Returns
    -------
    row : dict
        :data:`RUN_COLUMNS` but ``detector`` (metrics NaN where not reached).
    scores : dict or None
        Clip name -> ``(T,)`` test scores; None when the run failed.
    """
    train, test = data["train"], data["test"]
    row = {**{c: np.nan for c in RUN_COLUMNS[1:]}, "error": "",
           "n_train_clips": len(train), "n_train_frames": sum(map(len, train.values())),
           "n_test_clips": len(test), "n_test_frames": sum(map(len, test.values())),
           "n_eval_clips": len(split_clips("eval", data["split"]))}
    try:
        start = time.perf_counter()
        detector.fit(list(train.values()))
        row["fit_s"] = time.perf_counter() - start
        scores, score_s = {}, 0.0
        for name, clip in test.items():
            start = time.perf_counter()
            values = detector.decision_function(clip)
            score_s += time.perf_counter() - start
            scores[name] = _checked(values, len(clip), name)
        row["score_s"] = score_s
        row["frames_per_s"] = row["n_test_frames"] / score_s if score_s > 0 else np.inf
        row.update(split_metrics(scores, data["labels"], data["split"]))
    except Exception as exc:  # a failed run is recorded, not fatal
        row["error"] = error_message(exc)
        scores = None
    row["device"] = str(getattr(detector, "device_", None) or "cpu")
    return row, scores


def warm_up(detectors, budget, device="auto", shape=(64, 64)):
    """Fit every detector once on two tiny random clips and score one (results discarded),
    its training budget cut to one step, so one-off costs (imports, torch's first calls)
    are not charged to the first run."""
    rng = np.random.default_rng(0)
    clips = [rng.integers(0, 256, size=(12, *shape), dtype=np.uint8) for _ in range(2)]
    for name, make in detectors.items():
        try:
            detector = make(device, budget)
            params = detector.get_params() if hasattr(detector, "get_params") else {}
            cut = {k: v for k, v in warm_up_budget(params).items() if k != "max_iter"}
            if cut:
                detector.set_params(**cut)
            detector.fit(clips)
            detector.decision_function(clips[0])
        except Exception as exc:  # the real run records the error
            print(f"warm-up of {name} failed: {error_message(exc)}", file=sys.stderr,
                  flush=True)


def _slug(name):
    return re.sub(r"[^A-Za-z0-9.-]+", "_", name).strip("_")


def save_scores(scores_dir, name, scores):
    """Keep a detector's test scores: ``<scores_dir>/<name>.npz``, one array per clip."""
    scores_dir = Path(scores_dir)
    scores_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(scores_dir / f"{_slug(name)}.npz", **scores)


def example_clip(data):
    """The clip of the figure: the first eval clip with both normal and abnormal
    frames (else the first such clip; None when there is none)."""
    mixed = [n for n in data["test"] if 0 < data["labels"][n].sum() < len(data["labels"][n])]
    evaluated = [n for n in mixed if data["split"][n] == "eval"]
    return (evaluated or mixed or [None])[0]


def save_example(path, detector, data, scores, name=DEFAULT_DETECTOR):
    """Store the figure's material: the example clip's scores and labels, and
    :data:`N_EXAMPLE_FRAMES` of its abnormal frames (spread over them) with their maps.

    Returns the path, or None when no clip has both classes.
    """
    clip_name = example_clip(data)
    if clip_name is None:
        return None
    clip, labels = data["test"][clip_name], data["labels"][clip_name]
    abnormal = np.flatnonzero(labels)
    quantiles = np.linspace(0, 1, N_EXAMPLE_FRAMES + 2)[1:-1]
    picked = np.unique(abnormal[np.round(quantiles * (len(abnormal) - 1)).astype(int)])
    maps = np.asarray(detector.anomaly_map(clip), dtype=np.float32)
    np.savez_compressed(path, clip=np.array(clip_name), detector=np.array(name),
                        scores=scores[clip_name], labels=labels, frames_index=picked,
                        frames=_unit_frames(clip)[picked], maps=maps[picked])
    return Path(path)


def run_benchmark(data, detectors=None, *, device="auto", budget=None, csv_path=None,
                  resume=False, scores_dir=None, example_path=None, verbose=True,
                  warm=True):
    """Run every detector on ``data`` (:func:`load_ped1`) and collect the rows.

    Parameters
    ----------
    data : dict
        As :func:`load_ped1` returns it.
    detectors : dict or None, default=None
        Name -> factory ``(device, unet_budget)``; None: :data:`DETECTORS`.
    device : str, default="auto"
    budget : dict or None, default=None
        The U-Net configurations' settings (:func:`unet_budget`; None: its default).
    csv_path : path-like or None, default=None
        The per-run CSV, a row appended as each detector ends.
    resume : bool, default=False
        Keep the rows already in ``csv_path`` and skip their detectors.
    scores_dir : path-like or None, default=None
        Where each detector's test scores are kept (:func:`save_scores`).
    example_path : path-like or None, default=None
        Where :data:`DEFAULT_DETECTOR`'s example for the figure is stored when it runs.
    verbose, warm : bool, default=True
        Print a line per detector; warm the detectors up first (:func:`warm_up`).

    Returns
    -------
    runs : pandas.DataFrame
        One row per selected detector (:data:`RUN_COLUMNS`), the kept ones first.
    """
    detectors = dict(DETECTORS if detectors is None else detectors)
    budget = unet_budget() if budget is None else budget
    csv_path, previous = start_runs_csv(csv_path, resume, RUN_COLUMNS)
    done = set(previous["detector"])
    todo = {name: make for name, make in detectors.items() if name not in done}
    if warm and todo:
        warm_up(todo, budget, device, shape=next(iter(data["train"].values())).shape[1:])
    rows = []
    for name, make in todo.items():
        try:
            detector = make(device, budget)
        except Exception as exc:
            row = {**{c: np.nan for c in RUN_COLUMNS}, "error": error_message(exc)}
            scores = None
        else:
            row, scores = evaluate(detector, data)
        row["detector"] = name
        append_row(csv_path, row, RUN_COLUMNS)
        rows.append(row)
        if scores is not None and scores_dir is not None:
            save_scores(scores_dir, name, scores)
        if scores is not None and name == DEFAULT_DETECTOR and example_path is not None:
            try:
                save_example(example_path, detector, data, scores, name)
            except Exception as exc:
                print(f"no example for the figure: {error_message(exc)}", file=sys.stderr,
                      flush=True)
        if verbose:
            _print_progress(len(rows), len(todo), row)
    runs = pd.DataFrame(rows, columns=RUN_COLUMNS)
    if len(previous):
        kept = previous[previous["detector"].isin(list(detectors))]
        runs = pd.concat([kept, runs], ignore_index=True) if len(runs) else kept
    runs["error"] = error_text(runs["error"])
    return runs.reset_index(drop=True)


def _print_progress(count, total, row):
    if row["error"]:
        text = row["error"]
    else:
        text = (f"eval AUROC raw {row['auroc_raw_eval']:.3f}, clip-norm "
                f"{row['auroc_clipnorm_eval']:.3f}; fit {row['fit_s']:.1f} s, score "
                f"{row['score_s']:.1f} s")
    print(f"[{count}/{total}] {row['detector']}: {text}", flush=True)


# ------------------------------------------------------------------ summary
def _seconds(value):
    return "–" if pd.isna(value) else f"{value:.1f}"


def _rate(value):
    return "–" if pd.isna(value) else f"{value:.0f}"


def summary_table(runs):
    """The table of the summary: a row per detector (:data:`TABLE_COLUMNS`), sorted by
    eval AUROC raw (highest first, failed runs last)."""
    runs = runs.copy()
    for column in TABLE_COLUMNS.values():
        runs[column] = pd.to_numeric(runs[column], errors="coerce")
    runs = runs.sort_values("auroc_raw_eval", ascending=False, na_position="last",
                            kind="stable")
    table = pd.DataFrame({heading: runs[column].to_numpy()
                          for heading, column in TABLE_COLUMNS.items()},
                         index=runs["detector"].to_numpy())
    table["fit s"] = table["fit s"].map(_seconds)
    table["score s"] = table["score s"].map(_seconds)
    table["frames/s"] = table["frames/s"].map(_rate)
    return table


def summarise(runs, title="Video anomaly detection benchmark: UCSD Ped1", notes=()):
    """The Markdown summary: the notes, the table (:func:`summary_table`), the failures."""
    lines = summary_lines(title, notes) + ["", markdown_table(summary_table(runs),
                                                               "detector")]
    failed = runs[error_text(runs["error"]) != ""]
    if len(failed):
        lines += ["", "Failed runs:", ""]
        lines += [f"- {d}: {e}" for d, e in zip(failed["detector"], failed["error"])]
    return "\n".join(lines)


def _label_runs(labels):
    """``(start, stop)`` of each run of abnormal frames."""
    edges = np.diff(np.r_[0, np.asarray(labels, dtype=int), 0])
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def plot_example(example_path, path):
    """Draw the figure (:data:`FIGURE_NAME`) from a stored example; returns ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with np.load(example_path) as stored:
        ex = {k: stored[k] for k in stored.files}
    n = len(ex["frames_index"])
    fig = plt.figure(figsize=(3.2 * max(n, 3), 6.4))
    grid = fig.add_gridspec(2, n, height_ratios=(1, 1.25))
    curve = fig.add_subplot(grid[0, :])
    frames = np.arange(len(ex["scores"]))
    for start, stop in _label_runs(ex["labels"]):
        curve.axvspan(start - 0.5, stop - 0.5, color="tab:red", alpha=0.15, lw=0)
    curve.plot(frames, ex["scores"], color="black", lw=1.2, label=f"{ex['detector']} score")
    for t in ex["frames_index"]:
        curve.axvline(t, color="tab:blue", ls="--", lw=0.8)
    curve.set(xlim=(0, len(frames) - 1), xlabel="frame", ylabel="anomaly score",
              title=f"UCSD Ped1 {ex['clip']} (eval split): abnormal frames shaded, "
                    "dashed = frames shown below")
    curve.legend(loc="upper left", fontsize=8)
    vmin, vmax = float(ex["maps"].min()), float(ex["maps"].max())
    shown_from = vmin + MAP_SHOWN_FROM * (vmax - vmin)
    for i, t in enumerate(ex["frames_index"]):
        ax = fig.add_subplot(grid[1, i])
        ax.imshow(ex["frames"][i], cmap="gray", vmin=0, vmax=1)
        shown = ax.imshow(np.ma.masked_less(ex["maps"][i], shown_from), cmap="jet",
                          alpha=0.55, vmin=vmin, vmax=vmax)
        ax.set_title(f"frame {int(t)} (map shown above {MAP_SHOWN_FROM:.0%} of its range)"
                     if i == 0 else f"frame {int(t)}", fontsize=8)
        ax.set_axis_off()
    fig.colorbar(shown, ax=fig.axes[1:], shrink=0.8, label="anomaly_map")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def write_outputs(runs, out, notes, example_dirs=(), figure=True):
    """Write :data:`SUMMARY_NAME` (and :data:`FIGURE_NAME` from the first stored example in
    ``example_dirs``) to ``out``; returns the summary's text."""
    out = Path(out)
    text = summarise(runs, notes=notes)
    (out / SUMMARY_NAME).write_text(text + "\n")
    if figure:
        stored = [Path(d) / EXAMPLE_NAME for d in example_dirs
                  if (Path(d) / EXAMPLE_NAME).exists()]
        if stored:
            plot_example(stored[0], out / FIGURE_NAME)
        else:
            print(f"no {EXAMPLE_NAME} (run {DEFAULT_DETECTOR}): no figure", flush=True)
    return text


def _notes(command, threads, device, path, data, budget, quick):
    def described(split):
        names = split_clips(split, data["split"])
        y = np.concatenate([data["labels"][n] for n in names]) if names else np.zeros(0)
        rate = f", {y.mean():.1%} abnormal" if len(y) else ""
        return f"{split} {len(names)} clips / {len(y)} frames{rate}"

    n_train = sum(map(len, data["train"].values()))
    notes = environment_notes(command, threads, device) + [
        f"Data: {path}; {len(data['train'])} training clips ({n_train} frames); test: "
        + "; ".join(described(s) for s in SPLITS) + ".",
        (f"Splits: tune = test clips 1-{TUNE_CLIPS} (defaults chosen there), eval = clips "
         f"{TUNE_CLIPS + 1}-36 (never used for a choice; the headline), all = every clip. "
         "AUROC/AUPR micro over the split's frames; clip-norm = each clip's scores min-max "
         "normalised within the clip first."),
        (f"U-Net configurations: {', '.join(f'{k}={v}' for k, v in budget.items())}; every "
         "other setting is DiffusionVideoDetector's default."),
        (f"Per-frame baselines fitted on every {FRAME_STEP}nd training frame, pixels in "
         f"[0, 1]: KNN n_neighbors={KNN_NEIGHBOURS}, IForest random_state=0 (PyOD defaults "
         "otherwise); ImageDetector per frame = DiffusionImageDetector(random_state=0), "
         "raw frame scores."),
        ("Timing: fit s includes the diffusion detectors' scoring of the training frames; "
         "score s = the test clips' decision_function calls; frames/s = test frames / "
         "score s."),
    ]
    if quick:
        notes.append(f"--quick smoke run, not a result: {QUICK_TRAIN_CLIPS} training clips, "
                     "3 test clips, U-Nets cut to the settings above.")
    return notes


# ------------------------------------------------------------------ command line
def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.video",
        description="UCSD Ped1 video benchmark: DiffusionVideoDetector configurations vs "
                    "per-frame and motion baselines (protocol: the module docstring).")
    add_run_arguments(parser, data=str(DATA_FILE.parent) + "/",
                      devices="the diffusion detectors (the U-Net configurations above all)")
    parser.add_argument("--only", "--detectors", dest="only", default=None,
                        metavar="NAME[,NAME]",
                        help="comma list of detectors; an entry chooses the names it equals "
                             "or is part of, case-insensitively (e.g. knn, unet) (default: "
                             f"all of {', '.join(DETECTORS)})")
    parser.add_argument("--unet-full", action="store_true",
                        help="the U-Net configurations keep the detector's network and "
                             "scoring steps instead of the CPU budget CPU_UNET")
    parser.add_argument("--unet-steps", type=int, default=None,
                        help="max_steps of the U-Net configurations (default: "
                             f"{UNET_STEPS}; {QUICK_STEPS} with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: {QUICK_TRAIN_CLIPS} training clips, 3 test clips, "
                             "tiny U-Nets (numbers are not results)")
    parser.add_argument("--no-figure", action="store_true",
                        help=f"write neither {EXAMPLE_NAME} nor {FIGURE_NAME}")
    parser.add_argument("--resume", action="store_true",
                        help=f"keep <out>/{CSV_NAME} and skip the detectors it holds")
    parser.add_argument("--summarise", nargs="+", metavar="DIR", default=None,
                        help=f"run nothing: merge the {CSV_NAME} of these output "
                             "directories and write the summary and figure to --out")
    return parser.parse_args(argv)


def summarise_directories(directories, out, command, figure=True):
    """Merge the ``video_runs.csv`` of several runs and write one summary."""
    runs = merge_run_files(directories, CSV_NAME, ["detector"], out)
    notes = environment_notes(command, 1, SHARDS_DEVICE) + [
        merged_from(directories) + " (see their summaries for data and settings)."]
    text = write_outputs(runs, out, notes, list(directories), figure)
    print(text, flush=True)
    return runs


def main(argv=None):
    """Command-line entry point; see ``python -m benchmarks.video --help``."""
    args, command = _parse_args(argv), command_line("benchmarks.video", argv)
    if args.summarise:
        return summarise_directories(args.summarise, args.out, command, not args.no_figure)
    set_threads(args.threads)
    try:
        detectors = select_detectors(args.only)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    path = data_path(args.data_dir)
    data = load_ped1(path, quick=args.quick)
    budget = unet_budget(args.unet_steps, args.quick, args.unet_full)

    out = Path(args.out)
    csv_path = results_csv(out, CSV_NAME, args.resume)
    example_path = None if args.no_figure else out / EXAMPLE_NAME
    print(f"{len(data['train'])} training clips, {len(data['test'])} test clips x "
          f"{len(detectors)} detectors; results -> {csv_path}", flush=True)
    start = time.perf_counter()
    runs = run_benchmark(data, detectors, device=args.device, budget=budget,
                         csv_path=csv_path, resume=args.resume,
                         scores_dir=out / SCORES_DIR, example_path=example_path)
    elapsed = time.perf_counter() - start
    notes = _notes(command, args.threads, args.device, path, data, budget, args.quick) + [
        f"Wall time of this invocation: {elapsed_text(elapsed)}."]
    text = write_outputs(runs, out, notes, [out], figure=not args.no_figure)
    print("\n" + text, flush=True)
    written = [csv_path, out / SUMMARY_NAME, out / SCORES_DIR]
    if not args.no_figure and (out / FIGURE_NAME).exists():
        written.append(out / FIGURE_NAME)
    print("\nwrote " + ", ".join(str(p) for p in written), flush=True)
    return runs


if __name__ == "__main__":
    main()
