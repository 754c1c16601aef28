"""The main job in about three minutes: diffusion detectors against PyOD baselines.

Run from the repository root (``make demo`` does the same)::

    python -m benchmarks.demo

No download is needed. The datasets are built from data scikit-learn ships and
from :func:`skdiffad.datasets.make_tabular_anomalies`:

- ``sklearn_breast_cancer``: benign tumours are normal; malignant ones, subsampled
  to 10% of the rows, are the anomalies;
- ``sklearn_wine_1``, ``sklearn_digits_0``: one class (wine cultivar 1, the digit 0)
  is normal and a random 10% of rows from the other classes are the anomalies;
- ``synthetic_dependency``: anomalies that keep every feature's distribution but
  break the correlations, from the generator (1000 rows, 8 features).

When the ADBench files are found (under ``--data-dir``, else ``$SKDIFFAD_DATA``,
else the ``shared/data`` folder next to the checkout, found from this file's
location: :func:`benchmarks._common.resolve_data_dir`), four small ADBench sets are
added (:data:`DEMO_ADBENCH`); without them the demo runs on the rest.
The demo uses one thread. On a 2-core CPU (our development machine) it takes about
three minutes in all, after about 4 seconds of start-up, and the tabular part about
2¾ minutes of that; README.md gives the time of every part, and each part prints
its own wall time.

Every tabular detector is run under the semi-supervised (one-class) protocol of
:mod:`benchmarks.tabular`, seed 0: train on half of the normal rows, test on the
rest plus every anomaly. ``Diffusion-nonparametric`` is ``TabDiffusionDetector()``
exactly as a user gets it (``denoiser="exact", scoring="time"``; the row keeps the
name 0.1 gave it); every other ``Diffusion-<scoring>`` row is
``TabDiffusionDetector(denoiser="mlp", scoring=...)`` with every other setting at its
default. The table and the runs go to ``benchmarks/results/demo_*``.

A second, shorter part (about 7 seconds) runs :class:`~skdiffad.DiffusionTSDetector`
against PyOD's windowed time-series detectors on three generated machines (1, 3 and 8
sensors, :func:`synthetic_series`), with the protocol of :mod:`benchmarks.timeseries`;
its table goes to ``benchmarks/results/demo_timeseries_*``. Next to the default it runs
``Diffusion-window-max``, the default of skdiffad 0.2.0 and before (each window
length's largest covering window): these series hold short anomalies labelled over their own
steps, where lending each anomaly's error at full height to up to 255 neighbouring
steps costs (the time-series guide, "How far a detection reaches").

A third part, about 4 seconds (about 10 run alone, ``--parts image``, which also pays
for the start-up and the first calls), runs :class:`~skdiffad.DiffusionImageDetector` on
images with the harness of :mod:`benchmarks.image` (its protocol, metrics and
tables; :func:`digit_units` builds its units from :func:`sklearn.datasets.load_digits`,
8x8 digits, grey levels 0-16):

- ``digits_0``, ``digits_1``: one digit is normal and a random 10% of the set are
  other digits;
- ``digits_defects``: every digit is normal and a random 10% of the images carry one
  planted defect (:func:`plant_defect`: a 2x2 blob or a 3-pixel scratch, white on
  background, black on strokes) with its pixel mask, so pixel AUROC, AUPRO and Dice
  are measured too.

Training images are a random half of the normal ones; the test images are the rest
plus every anomaly (seed 0, no caps). Detectors: ``Diffusion-default``
(``DiffusionImageDetector()`` as a user gets it), PyOD's ``KNN``, ``IForest`` and
``LOF`` on the 64 pixels, and the localisation baselines of :mod:`benchmarks.image`:
``ConvAE`` as it is, although at 8x8 it has no stride-2 level (its levels halve only
sides above 8), so no spatial bottleneck and weak numbers here; ``PatchNN-p4`` is
``PatchNN`` with 4x4 patches every 2 pixels, since its default 8x8 patch is the whole
digit (one patch per image, a flat map). Its table goes to
``benchmarks/results/demo_image_*``.

A fourth part, about a second, runs :class:`~skdiffad.DiffusionVideoDetector` on
generated clips (:func:`walkway_data`, from :func:`skdiffad.datasets.make_walkway`:
a fixed camera's 32x32 view of a walkway, 60 frames a clip, pedestrians walking at
0.5-1 px/frame). The detectors fit on 6 normal clips and score 6 clips of the same
scene, 3 of which hold, for a stretch of frames, a cyclist (a pedestrian 3-4 times
too fast) or a cart (a box about 8x8 px, far larger than a pedestrian, at walking
speed), labelled per frame. Detectors (:func:`video_detectors`): ``Diffusion-default``
(``DiffusionVideoDetector()`` as a user gets it: the motion of 8x8 patches, each
restored from the nearest stored training patch), ``Diffusion-framelevel``
(``stream="frames", n_past=0``: each frame alone), and :mod:`benchmarks.video`'s
``Motion energy`` (mean absolute frame difference) and PyOD's ``KNN`` per frame on
the pixels. Metrics: frame AUROC and AUPR micro over every test frame on the raw
scores, the AUROC of each anomaly kind, and fit / score times. Its table goes to
``benchmarks/results/demo_video_*``.

``--parts`` runs a subset of the four parts, e.g. ``--parts image`` or
``--parts video``.
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._common import (
    add_run_arguments,
    append_row,
    command_line,
    environment_notes,
    error_message,
    markdown_table,
    resolve_data_dir,
    select_from,
    set_threads,
    start_runs_csv,
    summary_lines,
)
from benchmarks.synthetic_series import generated_machine
from benchmarks.tabular import run_benchmark, select_detectors, summarise
from skdiffad.datasets import (
    list_adbench,
    load_adbench,
    make_tabular_anomalies,
    make_walkway,
)
from skdiffad.datasets.video import WALKWAY_KINDS

DEMO_DETECTORS = [
    "Diffusion-nonparametric", "Diffusion-time", "Diffusion-reconstruction", "Diffusion-density",
    "Diffusion-score",
    "IForest", "KNN", "LOF", "ECOD", "OCSVM", "HBOS",
]
# A diffusion fit costs about the same on any small table (a fixed step budget), so
# the demo's time is set by the number of datasets: eight keep the tabular part to
# about 2¾ minutes on one thread. Left out: 42_WBC and synthetic_local (every detector
# scores close to 1.0 on them) and 45_wine (the UCI wine data of sklearn_wine_1).
DEMO_ADBENCH = ["4_breastw", "6_cardio", "14_glass", "47_yeast"]
ANOMALY_SHARE = 0.10
TS_DEMO_DETECTORS = ["Diffusion-default", "Diffusion-window-max", "Diffusion-imputation",
                     "TSOD-IForest", "TSOD-KNN", "TSOD-LOF", "SpectralResidual"]
#: Image part: these entries of :data:`benchmarks.image.DETECTORS`, plus ``PatchNN-p4``.
IMAGE_DEMO_DETECTORS = ["Diffusion-default", "KNN", "IForest", "LOF", "ConvAE"]
IMAGE_DEMO_DIGITS = (0, 1)
DIGIT_MAX = 16.0  # load_digits' grey levels run 0-16
#: Planted defects: a 2x2 blob or a 3-pixel scratch (across, down or diagonal).
DEFECT_SHAPES = (np.ones((2, 2), bool), np.ones((1, 3), bool), np.ones((3, 1), bool),
                 np.eye(3, dtype=bool))
#: Video part: clips of :func:`~skdiffad.datasets.make_walkway` (frames of VIDEO_SIZE
#: pixels a side); the detectors fit on VIDEO_TRAIN_CLIPS normal clips (seed 0) and score
#: VIDEO_TEST_CLIPS clips (seed 1), half of them with an anomalous object.
VIDEO_TRAIN_CLIPS, VIDEO_TEST_CLIPS, VIDEO_FRAMES, VIDEO_SIZE = 6, 6, 60, 32
#: The diffusion detectors' patch side, passed although it is the default: 16 patches
#: (sites) per 32x32 frame.
VIDEO_PATCH = 8
VIDEO_RUN_COLUMNS = ["detector", "auroc", "aupr", *[f"auroc_{kind}" for kind in WALKWAY_KINDS],
                     "fit_s", "score_s", "frames_per_s", "n_train_clips", "n_train_frames",
                     "n_test_clips", "n_test_frames", "n_abnormal_frames", "device", "error"]
PARTS = ("tabular", "timeseries", "image", "video")


def _one_class(X, target, normal_class, rng, share=ANOMALY_SHARE):
    """``normal_class`` rows are normal; other rows, subsampled to ``share`` of the total,
    are anomalies."""
    normal = np.flatnonzero(target == normal_class)
    others = np.flatnonzero(target != normal_class)
    n_anomalies = int(round(share / (1 - share) * len(normal)))
    anomalies = rng.choice(others, size=min(n_anomalies, len(others)), replace=False)
    rows = np.sort(np.concatenate([normal, anomalies]))
    return X[rows].astype(np.float64), (target[rows] != normal_class).astype(int)


def sklearn_datasets(random_state=0):
    """Anomaly-detection sets made from scikit-learn's bundled data and the generator.

    Parameters
    ----------
    random_state : int, default=0
        Seeds which anomaly rows are kept and the synthetic tables.

    Returns
    -------
    datasets : dict
        Name -> ``(X, y)``, ``y`` = 1 for anomalies.
    """
    from sklearn.datasets import load_breast_cancer, load_digits, load_wine

    rng = np.random.default_rng(random_state)
    cancer, wine, digits = load_breast_cancer(), load_wine(), load_digits()
    datasets = {
        # target 1 = benign, so benign is the normal class
        "sklearn_breast_cancer": _one_class(cancer.data, cancer.target, 1, rng),
        "sklearn_wine_1": _one_class(wine.data, wine.target, 1, rng),
        "sklearn_digits_0": _one_class(digits.data, digits.target, 0, rng),
    }
    # Correlations broken, marginals kept: invisible to per-feature detectors.
    datasets["synthetic_dependency"] = make_tabular_anomalies(
        n_samples=1000, n_features=8, contamination=0.05, kind="dependency",
        random_state=random_state)
    return datasets


def adbench_datasets(data_dir=None, names=DEMO_ADBENCH):
    """The small ADBench sets of the demo that exist under ``data_dir`` (may be none).

    ``data_dir=None`` uses :func:`benchmarks._common.resolve_data_dir`'s default.
    """
    data_dir = resolve_data_dir(data_dir)
    available = set(list_adbench(data_dir))
    return {name: load_adbench(name, data_dir) for name in names if name in available}


def synthetic_series(random_state=0):
    """Three generated machines (1, 3 and 8 sensors) for the time-series part.

    Each is :func:`~skdiffad.datasets.make_timeseries_anomalies` with 8 anomalies
    over 8000 steps; the detectors train on the first 3000 steps of the same
    machine generated without anomalies (normal operation) and score the rest.
    """
    return {("synthetic", f"machine_{channels}ch"): generated_machine(random_state + k, channels)
            for k, channels in enumerate((1, 3, 8))}


def timeseries_demo(out, device, command, threads):
    """Time-series part: DiffusionTSDetector against PyOD's windowed detectors."""
    from benchmarks import timeseries

    runs = timeseries.run_benchmark(synthetic_series(), TS_DEMO_DETECTORS, seeds=[0],
                                    device=device, csv_path=out / "demo_timeseries_runs.csv")
    notes = [command, f"{threads} thread(s)",
             "Diffusion-default is DiffusionTSDetector() as a user gets it; "
             "Diffusion-window-max is the default of skdiffad 0.2.0 and before "
             "(aggregation='window', aggregation_window=None), which lends each "
             "anomaly's error at full height to its neighbours; Diffusion-imputation "
             "changes only `scoring`. "
             "Baselines use PyOD defaults."]
    text = timeseries.summarise(runs, title="skdiffad demo: time series", notes=notes)
    (out / "demo_timeseries_summary.md").write_text(text + "\n")
    print("\n" + text, flush=True)
    return runs


def plant_defect(image, rng, high=DIGIT_MAX):
    """A copy of ``image`` with one defect at a random place, and the defect's mask.

    The defect is one of :data:`DEFECT_SHAPES`; its pixels go to the end of the
    grey range ``[0, high]`` farther from the region's mean (white on background,
    black on a stroke). The mask holds the pixels that changed by at least a
    quarter of the range; it is never empty, since some pixel of the region lies
    on the far side of the middle.
    """
    shape = DEFECT_SHAPES[rng.integers(len(DEFECT_SHAPES))]
    top = rng.integers(image.shape[0] - shape.shape[0] + 1)
    left = rng.integers(image.shape[1] - shape.shape[1] + 1)
    region = np.zeros(image.shape, bool)
    region[top:top + shape.shape[0], left:left + shape.shape[1]] = shape
    defective = image.copy()
    defective[region] = high if image[region].mean() < high / 2 else 0.0
    return defective, np.abs(defective - image) >= high / 4


def digit_defects(images, random_state=0, share=ANOMALY_SHARE):
    """Every image normal except a random ``share`` of them, each given one planted defect.

    Returns a dict as :func:`benchmarks.image.image_sets`' loaders do: ``X``
    (grey levels scaled to 0-255), ``y`` (1 = defective) and ``masks``.
    """
    rng = np.random.default_rng(random_state)
    X = np.array(images, dtype=np.float64)
    y, masks = np.zeros(len(X), int), np.zeros(X.shape, bool)
    for i in rng.choice(len(X), size=round(share * len(X)), replace=False):
        X[i], masks[i] = plant_defect(X[i], rng)
        y[i] = 1
    return {"X": X * (255 / DIGIT_MAX), "y": y, "masks": masks}


def digit_units(random_state=0, digits=IMAGE_DEMO_DIGITS):
    """The image part's units, in :func:`benchmarks.image.run_benchmark`'s form.

    ``(collection, set, seed)`` -> zero-argument loader of a dict with ``X``
    (``(n, 8, 8)``, grey levels 0-255, as the benchmark's loaders give), ``y``
    and, for the defects, ``masks``. From :func:`sklearn.datasets.load_digits`:

    - ``sklearn_digits`` / ``digits_<k>``: the digit ``k`` is normal and a random
      10% of the set are images of other digits (built like the tabular part's
      ``sklearn_digits_0``);
    - ``sklearn_digits_defects`` / ``digits_defects``: every digit is normal and a
      random 10% of the images carry one :func:`plant_defect`, with its mask.
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    images = data.images * (255 / DIGIT_MAX)
    units = {}
    for digit in digits:
        X, y = _one_class(images, data.target, digit, np.random.default_rng([random_state, digit]))
        units[("sklearn_digits", f"digits_{digit}", random_state)] = functools.partial(
            dict, X=X, y=y)
    defects = digit_defects(data.images, random_state)
    units[("sklearn_digits_defects", "digits_defects", random_state)] = functools.partial(
        dict, **defects)
    return units


def image_detectors(names=None):
    """:data:`IMAGE_DEMO_DETECTORS` and ``PatchNN-p4`` (name -> factory), or those of ``names``.

    ``PatchNN-p4`` is :class:`benchmarks.image.PatchNearestNeighbours` with 4x4
    patches every 2 pixels: its default 8x8 patch is a whole digit, which leaves
    one patch per image and a flat map.
    """
    from benchmarks import image

    def patch_nn_p4(seed, image_shape, device):
        return image.PatchNearestNeighbours(patch_size=4, stride=2, random_state=seed,
                                            device=device)

    registry = {**image.select_detectors(IMAGE_DEMO_DETECTORS), "PatchNN-p4": patch_nn_p4}
    return select_from(registry, names)


def image_demo(out, device, command, threads, detectors=None):
    """Image part: DiffusionImageDetector against PyOD and localisation baselines on digits."""
    from benchmarks import image

    start = time.perf_counter()
    runs = image.run_benchmark(digit_units(), image_detectors(detectors), max_train=0,
                               max_test=0, device=device,
                               csv_path=out / "demo_image_runs.csv")
    notes = environment_notes(command, threads, device) + [
        ("Data: sklearn.datasets.load_digits (8x8, grey levels 0-16 scaled to [0, 1]). "
         "sklearn_digits: one digit normal, a random 10% of the set other digits. "
         "sklearn_digits_defects: every digit normal, a random 10% of the images with one "
         "planted 2x2 blob or 3-pixel scratch (white on background, black on strokes); "
         "the mask is the pixels it changed by at least 4 grey levels of 16."),
        ("Protocol of benchmarks.image, seed 0: train on a random half of the normal "
         "images, test on the other half plus every anomaly; no caps. Pixel metrics "
         f"(pooled test pixels, AUPRO up to FPR {image.PRO_MAX_FPR}) on the defects only."),
        ("Diffusion-default is DiffusionImageDetector() as a user gets it. KNN, IForest, "
         "LOF: PyOD defaults on the 64 pixels. ConvAE: benchmarks.image's "
         f"({image.CONV_AE_STEPS} Adam steps; at 8x8 it has no stride-2 level, so no "
         "spatial bottleneck). PatchNN-p4: benchmarks.image's PatchNN with 4x4 patches "
         "every 2 pixels (its default 8x8 patch is the whole image). Map detectors score "
         "an image by its map's maximum."),
        f"Wall time of the image part: {time.perf_counter() - start:.0f} s.",
    ]
    text = image.summarise(runs, title="skdiffad demo: images", notes=notes)
    (out / "demo_image_summary.md").write_text(text + "\n")
    print("\n" + text, flush=True)
    return runs


def walkway_data(random_state=0):
    """The video part's clips, in the form :func:`benchmarks.video.evaluate` takes.

    :data:`VIDEO_TRAIN_CLIPS` normal clips of :func:`~skdiffad.datasets.make_walkway`
    (seed ``random_state``) to fit on, and :data:`VIDEO_TEST_CLIPS` clips of the same
    scene (seed ``random_state + 1``) to score, half of them with an anomalous object.

    Returns
    -------
    data : dict
        ``train`` and ``test`` (name -> ``(T, H, W)`` clip, grey levels in [0, 1]),
        ``labels`` (name -> ``(T,)`` 0/1 frame labels), ``split`` (every test clip
        ``"eval"``) and ``kind`` (name -> ``"normal"`` or the anomaly's kind: the
        generator gives the anomalous clips, in order, the kinds in turn).
    """
    train, _ = make_walkway(VIDEO_TRAIN_CLIPS, n_frames=VIDEO_FRAMES, size=VIDEO_SIZE,
                            random_state=random_state)
    test, labels = make_walkway(VIDEO_TEST_CLIPS, n_frames=VIDEO_FRAMES, size=VIDEO_SIZE,
                                n_anomalous=VIDEO_TEST_CLIPS // 2,
                                random_state=random_state + 1)
    names = [f"test_{i:02d}" for i in range(1, len(test) + 1)]
    kinds = iter(WALKWAY_KINDS * len(test))
    return {"train": {f"train_{i:02d}": clip for i, clip in enumerate(train, 1)},
            "test": dict(zip(names, test)),
            "labels": dict(zip(names, labels)),
            "split": dict.fromkeys(names, "eval"),
            "kind": {n: next(kinds) if y.any() else "normal" for n, y in zip(names, labels)}}


def video_detectors(names=None):
    """The video part's detectors (name -> factory ``(device, unet_budget)``, as
    :mod:`benchmarks.video` takes them), or those of ``names``.

    ``Diffusion-default`` is ``DiffusionVideoDetector()`` as a user gets it (motion
    of 8x8 patches; ``patch_size=8``, the default, is pinned:
    :data:`VIDEO_PATCH`); ``Diffusion-framelevel`` sees each frame alone
    (``stream="frames", n_past=0``). ``Motion energy`` and ``KNN`` (PyOD, per
    frame on the pixels, fitted on every training frame) are
    :mod:`benchmarks.video`'s baselines.
    """
    from benchmarks import video

    def diffusion(**params):
        def make(device, unet_budget):
            from skdiffad import DiffusionVideoDetector

            return DiffusionVideoDetector(random_state=0, device=device,
                                          patch_size=VIDEO_PATCH, **params)
        return make

    registry = {
        "Diffusion-default": diffusion(),
        "Diffusion-framelevel": diffusion(stream="frames", n_past=0),
        "Motion energy": lambda device, unet_budget: video.MotionEnergy(),
        "KNN": lambda device, unet_budget: video.FramePyOD("KNN", step=1),
    }
    return select_from(registry, names)


def _kind_aurocs(scores, data):
    """Frame AUROC of each anomaly kind: every normal frame of the test clips against
    the abnormal frames of that kind's clips (raw scores)."""
    from skdiffad.metrics import auroc

    normal = np.concatenate([scores[n][data["labels"][n] == 0] for n in data["test"]])
    result = {}
    for kind in WALKWAY_KINDS:
        abnormal = [scores[n][data["labels"][n] == 1] for n in data["test"]
                    if data["kind"][n] == kind]
        abnormal = np.concatenate(abnormal) if abnormal else np.zeros(0)
        result[f"auroc_{kind}"] = (
            auroc(np.r_[np.zeros(len(normal)), np.ones(len(abnormal))],
                  np.r_[normal, abnormal]) if len(abnormal) else np.nan)
    return result


def video_table(runs):
    """The video part's table: a row per detector, in run order."""
    def text(values, fmt):
        return [("–" if pd.isna(v) else format(v, fmt)) for v in values]

    return pd.DataFrame(
        {"frame AUROC": runs["auroc"].to_numpy(dtype=float),
         "frame AUPR": runs["aupr"].to_numpy(dtype=float),
         **{f"AUROC {kind}s": runs[f"auroc_{kind}"].to_numpy(dtype=float)
            for kind in WALKWAY_KINDS},
         "fit s": text(runs["fit_s"], ".2f"), "score s": text(runs["score_s"], ".2f"),
         "frames/s": text(runs["frames_per_s"], ".0f")},
        index=runs["detector"].to_numpy())


def video_demo(out, device, command, threads, detectors=None):
    """Video part: DiffusionVideoDetector against motion energy and per-frame KNN on
    generated walkway clips."""
    from benchmarks import video

    start = time.perf_counter()
    data = walkway_data()
    chosen = video_detectors(detectors)
    video.warm_up(chosen, {}, device, shape=(VIDEO_SIZE, VIDEO_SIZE))
    csv_path, _ = start_runs_csv(out / "demo_video_runs.csv", False, VIDEO_RUN_COLUMNS)
    rows = []
    for name, make in chosen.items():
        try:
            detector = make(device, {})
        except Exception as exc:  # a failed run is recorded, not fatal
            row, scores = {"error": error_message(exc)}, None
        else:
            row, scores = video.evaluate(detector, data)
        row = {**dict.fromkeys(VIDEO_RUN_COLUMNS, np.nan), **row, "detector": name,
               "auroc": row.get("auroc_raw_all", np.nan), "aupr": row.get("aupr_raw_all", np.nan),
               "n_abnormal_frames": int(sum(y.sum() for y in data["labels"].values()))}
        if scores is not None:
            row.update(_kind_aurocs(scores, data))
        append_row(csv_path, row, VIDEO_RUN_COLUMNS)
        rows.append(row)
    runs = pd.DataFrame(rows, columns=VIDEO_RUN_COLUMNS)
    kinds = ", ".join(f"{n} {k}" for n, k in data["kind"].items() if k != "normal")
    notes = environment_notes(command, threads, device) + [
        (f"Data: skdiffad.datasets.make_walkway, {VIDEO_SIZE}x{VIDEO_SIZE} frames, "
         f"{VIDEO_FRAMES} per clip: a fixed walkway, sensor noise, 1-3 pedestrians at "
         "0.5-1 px/frame. Fit on "
         f"{VIDEO_TRAIN_CLIPS} normal clips (seed 0); score {VIDEO_TEST_CLIPS} clips (seed 1) "
         f"of which {VIDEO_TEST_CLIPS // 2} hold an anomalous object ({kinds}): a cyclist "
         "(a pedestrian at 2.25-3 px/frame) or a cart (a box about 8x8 px at walking "
         f"speed); {int(runs['n_abnormal_frames'].iloc[0]) if len(runs) else 0} of "
         f"{VIDEO_TEST_CLIPS * VIDEO_FRAMES} test frames are abnormal."),
        ("Frame AUROC and AUPR micro over every test frame on the raw scores; AUROC "
         "<kind>s: every normal frame against that kind's abnormal frames. Timing: fit s "
         "includes the diffusion detectors' scoring of the training frames; score s = "
         "the test clips' decision_function calls; frames/s = test frames / score s."),
        ("Diffusion-default is DiffusionVideoDetector() as a user gets it (motion of "
         f"{VIDEO_PATCH}x{VIDEO_PATCH} patches, patch_size={VIDEO_PATCH} passed although "
         "it is the default; n_past=2, temporal_smoothing=8 frames); "
         "Diffusion-framelevel: stream=\"frames\", n_past=0 (each frame alone). Motion "
         "energy: mean absolute difference with the previous frame. KNN: PyOD's KNN "
         "per frame on the 1024 pixels, fitted on every training frame."),
        ("A smoke-level demo: six test clips, one seed; the numbers move with the seed."),
        f"Wall time of the video part: {time.perf_counter() - start:.1f} s.",
    ]
    lines = summary_lines("skdiffad demo: video", notes) + [
        "", markdown_table(video_table(runs), "detector")]
    failed = runs[runs["error"].fillna("").astype(str) != ""]
    if len(failed):
        lines += ["", "Failed runs:", ""]
        lines += [f"- {d}: {e}" for d, e in zip(failed["detector"], failed["error"])]
    text = "\n".join(lines)
    (out / "demo_video_summary.md").write_text(text + "\n")
    print("\n" + text, flush=True)
    return runs


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.demo",
        description="Diffusion detectors vs fast PyOD baselines on small tables, generated "
                    "series, 8x8 digit images and generated video clips, no download.")
    add_run_arguments(parser)  # the ADBench sets under --data-dir are used when present
    parser.add_argument("--no-adbench", action="store_true",
                        help="use only the datasets built from scikit-learn's data")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help="comma list of the parts to run (default: %(default)s)")
    return parser.parse_args(argv)


def tabular_demo(out, args, command):
    """Tabular part: TabDiffusionDetector's scorings against PyOD baselines on small tables."""
    start = time.perf_counter()
    datasets = sklearn_datasets()
    data_dir = resolve_data_dir(args.data_dir)
    if not args.no_adbench:
        found = adbench_datasets(data_dir)
        datasets.update(found)
        print(f"ADBench sets from {data_dir}: {', '.join(found) or 'none found'}", flush=True)
    detectors = select_detectors(DEMO_DETECTORS)
    print(f"{len(datasets)} datasets x {len(detectors)} detectors, semi-supervised "
          "protocol, seed 0", flush=True)
    runs = run_benchmark(datasets, detectors, protocols=["semi"], seeds=[0],
                         device=args.device, csv_path=out / "demo_runs.csv")
    elapsed = time.perf_counter() - start
    notes = environment_notes(command, args.threads, args.device) + [
        "Diffusion-nonparametric is TabDiffusionDetector() with its default settings "
        "(denoiser=\"exact\", scoring=\"time\"); the other Diffusion rows are the trained "
        "MLP, denoiser=\"mlp\" with the `scoring` of their name. Baselines use PyOD "
        "defaults.",
        f"Wall time: {elapsed:.0f} s (data, warm-up and all runs).",
    ]
    text = summarise(runs, title="skdiffad demo: diffusion detectors vs PyOD baselines",
                     notes=notes)
    (out / "demo_summary.md").write_text(text + "\n")
    print("\n" + text, flush=True)
    return runs


def main(argv=None):
    """Build the datasets, run the detectors, print and write the tables.

    Returns
    -------
    runs : dict
        Part name -> its runs (a pandas.DataFrame), for the parts that ran.
    """
    start = time.perf_counter()
    args = _parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise SystemExit(f"unknown part(s) {unknown}; choose from {list(PARTS)}")
    set_threads(args.threads)
    command = command_line("benchmarks.demo", argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runners = {"tabular": lambda: tabular_demo(out, args, command),
               "timeseries": lambda: timeseries_demo(out, args.device, command, args.threads),
               "image": lambda: image_demo(out, args.device, command, args.threads),
               "video": lambda: video_demo(out, args.device, command, args.threads)}
    runs = {}
    for part in (p for p in PARTS if p in parts):
        begun = time.perf_counter()
        runs[part] = runners[part]()
        prefix = out / ("demo" if part == "tabular" else f"demo_{part}")
        print(f"\nwrote {prefix}_runs.csv and {prefix}_summary.md in "
              f"{time.perf_counter() - begun:.0f} s", flush=True)
    print(f"demo done in {time.perf_counter() - start:.0f} s", flush=True)
    return runs


if __name__ == "__main__":
    main()
