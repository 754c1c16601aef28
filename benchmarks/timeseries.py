"""Time-series benchmark: skdiffad's diffusion detector against PyOD's time-series baselines.

Run from the repository root::

    python -m benchmarks.timeseries                          # everything (hours on 2 cores)
    python -m benchmarks.timeseries --collections SKAB --detectors TSOD-IForest,LSTMAD
    python -m benchmarks.timeseries --max-series 3 --out /tmp/ts   # a short look
    python -m benchmarks.timeseries --resume                 # carry on after an interruption

    # two shards, one process per core, then one summary:
    python -m benchmarks.timeseries --shard 1/2 --out S1 &
    python -m benchmarks.timeseries --shard 2/2 --out S2 &
    wait; python -m benchmarks.timeseries --summarise S1 S2 --out benchmarks/results

    python -m benchmarks.timeseries --split evaluation       # only the evaluation split
    python -m benchmarks.timeseries --speed                  # the 100k x 25 speed target
    python -m benchmarks.timeseries --units training         # channels scaled on training

Data: ``<data-dir>/timeseries/{NAB,SKAB,SMAP_MSL,SMD,UCR_KDD21,MGAB}`` (see the data README; without
``--data-dir``, :func:`benchmarks._common.resolve_data_dir` picks ``$SKDIFFAD_DATA``
or the ``shared/data`` folder next to the checkout), read at run time with
:func:`skdiffad.datasets.load_timeseries`. Protocols, one split per series:

- NAB (52 univariate series): train on the first 15% of the series (NAB's
  probationary period, not capped at 750 steps as NAB's scorer does), score the
  remaining 85%; a step is anomalous when its timestamp lies in one of the
  inclusive windows of ``labels/combined_windows.json``. The six series whose
  test part has no window (``artificialNoAnomaly/*`` and
  ``realAWSCloudwatch/ec2_cpu_utilization_c6585a``) are left out; six others have
  labelled steps in their training part and are kept as they are.
- SKAB (34 runs, 8 sensors): train on the first 400 rows (normal operation, as
  SKAB's leaderboard does), score the rest; the ``changepoint`` column is not a
  feature. ``anomaly-free/`` is not used.
- SMAP_MSL (81 channels of NASA telemanom: SMAP 25 dimensions, MSL 55): the
  files' own ``train`` / ``test`` / ``test_label``, as given.
- SMD (11 server machines, 38 metrics, about 23.7k steps per part): the files'
  own ``train`` (unlabelled, taken as normal) / ``test`` / ``test_label``.
- UCR_KDD21 (101 univariate series of the UCR/KDD-Cup-2021 archive, one
  anomaly each): the files' own ``train`` (anomaly-free) / ``test`` /
  ``test_label``. The archive's own measure is reported too: ``top_hit``, whether
  the highest test score lies in the anomaly or within 100 steps of it; its mean
  is the share of series solved.
- MGAB (10 Mackey-Glass series of 100k steps, 10 anomalies each): the 257
  warm-up steps dropped, steps up to 25 000 train (anomaly-free), the rest
  (75 000) scored; a step is anomalous inside the 401-step window around an
  anomaly. MGAB's own window precision/recall counts one detection per window;
  the best range-F1 over thresholds (below) is the closest of our metrics.
- GENERATED (12) and ECG_LIKE (5): generated series, no data needed, not run unless
  named in ``--collections`` (:mod:`benchmarks.synthetic_series`): sensor machines
  as in ``make demo``, and heartbeats with abnormal beats. Both are kinds no
  default was chosen on, reported in the evaluation split.
- GENERATED_HOLDOUT (12) and ECG_LIKE_HOLDOUT (5): fresh series of the same two
  kinds (other seeds and beat periods), declared before issue #27's fifth round
  chose its default with GENERATED and ECG_LIKE in view, and run once after it.
- SERVER_LIKE (8): an application server's 11 metrics under a bursty load, with
  faults that break how the metrics move together (a leak, a runaway CPU, latency
  without load, ...); a kind none of the others has, added after every choice.
- ECG_RHYTHM (6): heart rhythms at 250 or 360 Hz whose waves keep their duration
  while the rate varies, with premature ventricular and atrial beats; closer to
  real ECG than ECG_LIKE, added in issue #27's tenth round and run once;
  ECG_RHYTHM_HOLDOUT (6): the same kind at other rates, declared after that run.

The collections are split (:data:`TUNING_SPLIT`) into a **tuning** split, on
which every default and rule of the detector is chosen (NAB, SKAB, SMAP_MSL and
SMD's machine group 1: ``machine-1-*``), and an **evaluation** split that is only
ever reported (SMD's groups 2 and 3, UCR_KDD21, MGAB). The summary shows SMD's
two parts as separate tables and starts with a collections x detectors table of
mean VUS-PR headed by split. ``--split`` runs one split only.

By default no scaling is applied: every detector sees the raw values (PyOD's windowed
detectors standardise internally where they do so by default). Those values are
each collection's own units, and SMD's were fitted on more than the training part:
every varying channel of every machine spans exactly [0, 1] over training and test
together, most reaching 1 only in the test part. ``--units training``
(:func:`training_units`) re-expresses every channel in a min-max fitted on the
training part alone, as a deployment would have to; detectors that scale each
channel from their training data (the diffusion detectors, IForest, PCA) score the
same either way, windowed KNN and LOF do not (they lose on SMD and gain on SKAB,
whose sensors keep their physical units). Each output directory's
``units.txt`` says which units its runs were made in; ``--summarise`` refuses to
merge runs made in different units, and ``--resume`` to continue them in others.

Detectors (:data:`DETECTORS`, chosen with ``--detectors``; each factory gets
``(seed, n_channels, device)``):

- ``Diffusion-default`` is ``DiffusionTSDetector()`` as a user gets it (exact
  denoiser, reconstruction, ``window_size="auto"``: windows of 32, 64 and 128
  steps plus half, one and two of the training series' periods, each length's
  errors aggregated by the covering mean over windows of at most 128 steps, and
  the errors of a channel that bursts weighted by its nearest windows' spread,
  ``spread_floor=300``); ``Diffusion-no-spread`` is the default before issue #27's
  eighth round (``spread_floor=None``); ``Diffusion-window-max`` is the default
  before its fifth round (each length's largest covering window, over its own
  windows) and ``Diffusion-window-mean`` the covering mean over each length's own
  windows (round 4's option), both with the spread weighting since round 8;
  ``Diffusion-fixed`` is the fixed 32/64/128 default of issues #12 to #26 and
  ``Diffusion-w32`` one 32-step window, both with the window maximum;
  ``Diffusion-w64`` is the single 64-step window that was the default before
  issue #12; ``Diffusion-64`` is one 64-step length with the default's covering
  mean (issue #27 round 10: the setting for ECG whose labels cover single beats);
  ``Diffusion-reconstruction`` and
  ``Diffusion-imputation`` change only ``scoring``; ``Diffusion-unet-*`` use the
  trained 1-D U-Net instead of the exact denoiser (its default budget: 600
  gradient steps per window length); ``Diffusion-unet-w64-2400`` is one 64-step
  U-Net trained for 2400 steps, four times the default budget at about the
  training cost of the default's three lengths. The class is imported when a
  run starts, so a missing or broken detector is a failed run, not a crash.
- ``TSOD-IForest``, ``TSOD-KNN``, ``TSOD-LOF``, ``TSOD-PCA``: PyOD's
  ``TimeSeriesOD`` (sliding windows of 50 steps, flattened over channels, one
  score per step = max over the windows that hold it) around PyOD's default
  detector; IForest and PCA get ``random_state=seed``.
- ``MatrixProfile`` (STOMP, 50-step subsequences, per-channel profiles
  z-scored and max-combined). PyOD's class is transductive (it only scores the
  series it was fitted on), so a test series is scored by running it on
  training + test steps joined and keeping the test steps' scores: a test
  subsequence's nearest neighbour may then lie in the training part. Its fit
  time is therefore ~0 and its score time holds the whole cost. A z-normalised
  distance is undefined on a constant subsequence (PyOD returns infinity), so a
  series with a constant 50-step stretch in any channel is recorded as *not
  applicable*: every SMAP/MSL channel (their command channels are mostly
  constant) and 8 of the 52 NAB series. PyOD's STOMP is pure NumPy and
  quadratic in the steps (12 minutes for 175k steps on one core), so series of
  more than :data:`MATRIX_PROFILE_MAX_STEPS` (60 000) training + test steps are
  recorded as not applicable too (a time budget: every MGAB series and the
  longest UCR ones).
- ``SpectralResidual`` (PyOD defaults; per-channel saliency, max-combined).
- ``LSTMAD`` (50-step context, 2 x 64 LSTM) and ``AnomalyTransformer``
  (100-step windows). Neither takes a ``random_state``: the factory seeds torch's
  global generator with the seed before building them. Changed from PyOD's
  defaults to keep the whole benchmark affordable on a 2-core CPU: LSTMAD trains
  10 epochs instead of 50; AnomalyTransformer trains 2 epochs instead of 10,
  with ``d_model=64`` instead of 512 and windows every ``step=10`` steps instead
  of every step (each step is still scored by the 10 windows that hold it). At
  PyOD's defaults one epoch alone costs ~15 minutes per SMAP channel on one core.
  ``AnomalyTransformer`` gets ``--device``; LSTMAD always runs on the CPU.

Every PyOD detector above accepts multivariate input, so none is ruled out by a
collection's channel count; a factory or a detector that cannot handle a series
by design raises :class:`~benchmarks._common.NotApplicable`, recorded as
``not applicable: ...`` in the ``error`` column and counted apart from failures.

Metrics (:mod:`skdiffad.metrics`, per series): VUS-PR and VUS-ROC (buffer up to
100 steps: ``window=100``, TSB-AD's ``slidingWindow=100``), AUPR, AUROC, the
best range-F1 over thresholds, ``top_hit`` (above; meaningful for
collections with one anomaly per series, UCR_KDD21), and ``vus_pr_tsb``: VUS-PR
with the buffer TSB-AD's benchmark protocol gives each series
(:func:`protocol_window`: the period of its first channel by autocorrelation, 6-303
steps, else 125), added in issue #27's tenth round. Each finished run
is appended at once to ``<out>/timeseries_runs.csv`` (columns :data:`RUN_COLUMNS`),
so ``--resume`` skips the (collection, series, seed, detector) rows already there
(failed runs included: delete their rows to retry them). A detector that raises,
or returns a non-finite score, does not stop the run: its metrics are NaN and the
error text is kept. At the end ``timeseries_summary.csv``, ``timeseries_summary.md``
(an overview by split, *paired* means that compare every detector on the same
series (:func:`paired_overview`; quote these), the default's paired differences
from every other detector with a bootstrap interval over series and a verdict
(above / level / below; :func:`paired_differences`), then one table per collection,
sorted by mean VUS-PR) and ``timeseries_examples.png`` are written; the scores
of one example series per collection are kept, min-max scaled, in
``<out>/timeseries_scores/`` for that figure.

Timing: ``fit_s`` and ``score_s`` are ``time.perf_counter`` around ``fit`` and
``decision_function``. Every detector is first fitted once on a tiny series
(:func:`warm_up`), so one-off costs are not charged to the first series. Torch
and BLAS use one thread unless ``--threads`` says more.

``--speed`` measures the speed target instead: a seeded 100k-step, 25-channel
series from :func:`skdiffad.datasets.make_timeseries_anomalies`, each detector
fitted on its first 10k steps and scoring all 100k, reported with the ratio of
its score time to ``TSOD-IForest``'s in the same run (``speed.csv``, ``speed.md``).
"""

from __future__ import annotations

import functools
import sys
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from pyod.models.iforest import IForest
from pyod.models.knn import KNN
from pyod.models.lof import LOF
from pyod.models.pca import PCA
from pyod.models.ts_anomaly_transformer import AnomalyTransformer
from pyod.models.ts_lstm import LSTMAD
from pyod.models.ts_matrix_profile import MatrixProfile
from pyod.models.ts_od import TimeSeriesOD
from pyod.models.ts_spectral_residual import SpectralResidual
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
    warm_up_budget,
)
from benchmarks.synthetic_series import SYNTHETIC_COLLECTIONS, synthetic_collection
from skdiffad._encoders.series import lagged_products
from skdiffad.datasets import (
    TIMESERIES_COLLECTIONS,
    list_timeseries,
    load_timeseries,
    make_timeseries_anomalies,
)

REFERENCE_DETECTOR = "TSOD-IForest"
SPEED_ANOMALIES = 10
VUS_WINDOW = 100
#: Steps either side of an anomaly in which the top score still counts for the
#: UCR archive's own measure (:func:`skdiffad.metrics.top_score_hit`).
TOP_HIT_TOLERANCE = 100
METRICS = ("vus_pr", "vus_roc", "aupr", "auroc", "range_f1", "top_hit", "vus_pr_tsb")
#: TSB-AD's protocol (tsb-ad 1.5's benchmark scripts) takes each series' VUS buffer from
#: its autocorrelation (:func:`protocol_window`): the strongest local maximum of the
#: first channel's autocorrelation over the first PROTOCOL_STEPS steps of the whole
#: series, at lags PROTOCOL_MIN_LAG .. PROTOCOL_LAGS, kept between PROTOCOL_WINDOWS and
#: PROTOCOL_FALLBACK otherwise. ``vus_pr_tsb`` is VUS-PR with that buffer.
PROTOCOL_STEPS, PROTOCOL_LAGS, PROTOCOL_MIN_LAG = 20_000, 400, 3
PROTOCOL_WINDOWS, PROTOCOL_FALLBACK = (6, 303), 125

# PyOD's deep baselines, cut down so the whole benchmark runs on a 2-core CPU
# (see the module docstring): LSTMAD 50 -> 10 epochs; AnomalyTransformer 10 -> 2
# epochs, d_model 512 -> 64, a window every 10 steps instead of every step.
LSTMAD_EPOCHS = 10
#: PyOD's MatrixProfile is a pure-NumPy STOMP, quadratic in the steps (about
#: 0.4 s at 4k steps, 12 minutes at 175k on one core): longer joined series are
#: recorded as not applicable (a time budget, stated in the summary).
MATRIX_PROFILE_MAX_STEPS = 60_000
ANOMALY_TRANSFORMER_PARAMS = {"epochs": 2, "d_model": 64, "step": 10}

#: Series drawn in the figure when they are among those run; otherwise the
#: collection's first series is.
EXAMPLE_SERIES = {"NAB": "realKnownCause/nyc_taxi", "SKAB": "valve1/0",
                  "SMAP_MSL": "SMAP_P-1", "SMD": "machine-2-3",
                  "UCR_KDD21": "044_UCR_Anomaly_DISTORTEDPowerDemand1_9000_18485_18821",
                  "MGAB": "1"}

TUNING, EVALUATION = "tuning", "evaluation"
#: Series on which defaults and rules may be chosen; everything else is the
#: evaluation split, only ever reported. SMD is split by machine group: group 1
#: (5 machines) tunes, groups 2 and 3 (6 machines) evaluate.
TUNING_SPLIT = {"NAB": "*", "SKAB": "*", "SMAP_MSL": "*", "SMD": "machine-1-"}

#: Columns of ``timeseries_runs.csv`` read back as text (series names may look like numbers).
TEXT_COLUMNS = ("series", "collection")
RUN_COLUMNS = [
    "collection", "series", "seed", "detector", "n_train", "n_test", "n_channels",
    "vus_pr", "vus_roc", "aupr", "auroc", "range_f1", "top_hit", "vus_pr_tsb", "fit_s",
    "score_s", "error",
]
SPEED_COLUMNS = ["detector", "n_train", "n_test", "n_channels", "fit_s", "score_s",
                 "rows_per_s", "score_ratio_to_" + REFERENCE_DETECTOR, "error"]


# ---------------------------------------------------------------- detectors
class MatrixProfileJoined(BaseEstimator):
    """PyOD's transductive ``MatrixProfile`` made to score new series.

    ``fit`` keeps the training series; ``decision_function`` runs the matrix
    profile on training and test steps joined and returns the test steps' scores.

    Parameters
    ----------
    window_size : int, default=MatrixProfile's default (50)
        Subsequence length.
    """

    def __init__(self, window_size=MatrixProfile().window_size):
        self.window_size = window_size

    def fit(self, X, y=None):
        self.X_train_ = _as_2d(X)
        return self

    def decision_function(self, X):
        X = _as_2d(X)
        joined = np.vstack([self.X_train_, X])
        if len(joined) > MATRIX_PROFILE_MAX_STEPS:
            raise NotApplicable(
                f"{len(joined)} joined steps, more than the {MATRIX_PROFILE_MAX_STEPS} "
                "this benchmark's time budget allows PyOD's quadratic STOMP")
        channel = _constant_window_channel(joined, self.window_size)
        if channel is not None:
            raise NotApplicable(
                f"channel {channel} has a constant {self.window_size}-step stretch, where "
                "the z-normalised distance is undefined (PyOD returns infinity)")
        fitted = MatrixProfile(window_size=self.window_size).fit(joined)
        return fitted.decision_scores_[len(self.X_train_):]


def _as_2d(X):
    X = np.asarray(X, dtype=np.float64)
    return X.reshape(len(X), -1)


def _constant_window_channel(X, m):
    """First channel with a constant ``m``-step window, as PyOD's STOMP tests it; else None."""
    for channel in range(X.shape[1]):
        cumsum = np.r_[0.0, np.cumsum(X[:, channel])]
        cumsum2 = np.r_[0.0, np.cumsum(X[:, channel] ** 2)]
        mean = (cumsum[m:] - cumsum[:-m]) / m
        var = np.maximum((cumsum2[m:] - cumsum2[:-m]) / m - mean ** 2, 0.0)
        if (np.sqrt(var) < 1e-10).any():
            return channel
    return None


def _diffusion(**params):
    def make(seed, n_channels, device):
        from skdiffad import DiffusionTSDetector  # lazily: a failed import is a failed run

        return DiffusionTSDetector(random_state=seed, device=device, **params)
    return make


def _windowed(make_inner):
    def make(seed, n_channels, device):
        return TimeSeriesOD(detector=make_inner(seed))
    return make


def _torch_seeded(cls, **params):
    def make(seed, n_channels, device):
        import torch

        torch.manual_seed(seed)  # the class takes no random_state
        extra = {"device": device} if "device" in cls().get_params() else {}
        return cls(**params, **extra)
    return make


#: Every detector of the benchmark: name -> factory(seed, n_channels, device).
#: Settings not given here are the library defaults. Adding a detector is one line.
DETECTORS = {
    "Diffusion-default": _diffusion(),
    # the single-length default before #12 (with the window maximum of its time)
    "Diffusion-w64": _diffusion(window_size=64, aggregation="window"),
    # the fixed multi-scale default of #12, before the period's lengths (#27)
    "Diffusion-fixed": _diffusion(window_size=(32, 64, 128), aggregation="window"),
    # one 32-step length with the window maximum (#27 round 3)
    "Diffusion-w32": _diffusion(window_size=32, aggregation="window"),
    # the default before #27 round 5: each length's largest covering window
    "Diffusion-window-max": _diffusion(aggregation="window", aggregation_window=None),
    # #27 round 4's option: the covering mean over each length's own windows
    "Diffusion-window-mean": _diffusion(aggregation="window_mean", aggregation_window=None),
    # one 64-step length, the covering mean: the setting for beat-labelled ECG (#27 round 10)
    "Diffusion-64": _diffusion(window_size=64),
    # the default before #27 round 8: every restoration error counted in full
    "Diffusion-no-spread": _diffusion(spread_floor=None),
    "Diffusion-ivf": _diffusion(search="ivf"),  # the default with the IVF index (#28)
    "Diffusion-reconstruction": _diffusion(scoring="reconstruction"),
    "Diffusion-imputation": _diffusion(scoring="imputation"),
    "Diffusion-unet-reconstruction": _diffusion(denoiser="unet", scoring="reconstruction"),
    "Diffusion-unet-imputation": _diffusion(denoiser="unet", scoring="imputation"),
    # a larger training budget, for series with more windows than 600 steps visit once
    "Diffusion-unet-w64-2400": _diffusion(denoiser="unet", window_size=64, max_steps=2400),
    "TSOD-IForest": _windowed(lambda seed: IForest(random_state=seed)),
    "TSOD-KNN": _windowed(lambda seed: KNN()),
    "TSOD-LOF": _windowed(lambda seed: LOF()),
    "TSOD-PCA": _windowed(lambda seed: PCA(random_state=seed)),
    "MatrixProfile": lambda seed, n_channels, device: MatrixProfileJoined(),
    "SpectralResidual": lambda seed, n_channels, device: SpectralResidual(),
    "LSTMAD": _torch_seeded(LSTMAD, epochs=LSTMAD_EPOCHS),
    "AnomalyTransformer": _torch_seeded(AnomalyTransformer, **ANOMALY_TRANSFORMER_PARAMS),
}


def select_detectors(names=None) -> dict:
    """:func:`benchmarks._common.select_from` over this module's :data:`DETECTORS`."""
    return select_from(DETECTORS, names)


# ---------------------------------------------------------------- data
def collection_series(collection, data_dir=None) -> dict:
    """Name -> zero-argument loader of every labelled series of a collection.

    The one place the benchmark reads data (the tests replace it with a
    synthetic collection). A loader returns :func:`~skdiffad.datasets.load_timeseries`'s dict.
    The generated collections of :mod:`benchmarks.synthetic_series` need no data.
    """
    if collection in SYNTHETIC_COLLECTIONS:
        return synthetic_collection(collection)
    return {name: functools.partial(load_timeseries, collection, name, data_dir)
            for name in list_timeseries(collection, data_dir)}


UNITS = ("given", "training")
#: The file in an output directory that says in which units its runs were made.
UNITS_FILE = "units.txt"


def _units_notes(units):
    """The summary's note on the units of its runs: none for the given units."""
    if units == "given":
        return []
    return ["Units: every channel min-max scaled on its series' training part "
            "(--units training)."]


def units_of(directory):
    """The units (:data:`UNITS`) the runs in ``directory`` were made in: what its
    :data:`UNITS_FILE` says, ``"given"`` when it has none (runs made before the option)."""
    path = Path(directory) / UNITS_FILE
    if not path.exists():
        return "given"
    units = path.read_text().strip()
    if units not in UNITS:
        raise SystemExit(f"{path} says {units!r}; expected one of {list(UNITS)}")
    return units


def training_units(series):
    """``series`` with every channel min-max scaled on its training part.

    Each channel ``c`` of ``X_train`` and ``X_test`` becomes
    ``(x - min_c) / (max_c - min_c)`` with the training part's minimum and maximum
    (missing values ignored, and kept missing), so the training part spans
    [0, 1] and the test part may leave it. A channel constant (or unobserved) in
    training is only shifted by its minimum (0 when unobserved). The other keys
    are kept as they are.

    These are the units a deployment can fit. A collection whose own units were
    fitted over its training and test parts together (SMD's) tells a detector
    that reads them as they are the test part's range in advance.
    """
    X_train = _as_2d(series["X_train"])
    X_test = _as_2d(series["X_test"])
    if X_train.shape[1] != X_test.shape[1]:
        raise ValueError(f"X_train has {X_train.shape[1]} channels and X_test "
                         f"{X_test.shape[1]}; they must match")
    observed = ~np.isnan(X_train)
    lo = np.where(observed, X_train, np.inf).min(axis=0)
    hi = np.where(observed, X_train, -np.inf).max(axis=0)
    seen = observed.any(axis=0)
    lo = np.where(seen, lo, 0.0)
    spread = np.where(seen & (hi > lo), hi - lo, 1.0)
    return {**series, "X_train": (X_train - lo) / spread, "X_test": (X_test - lo) / spread}


def pick_evenly(names, k):
    """``k`` names spread evenly over ``names`` (all of them when ``k`` is None or larger)."""
    names = list(names)
    if k is None or k >= len(names):
        return names
    if k <= 0:
        return []
    return [names[i] for i in np.unique(np.linspace(0, len(names) - 1, k).round().astype(int))]


def split_of(collection, series):
    """``"tuning"`` or ``"evaluation"``: the split a series belongs to (:data:`TUNING_SPLIT`)."""
    rule = TUNING_SPLIT.get(collection)
    if rule is None:
        return EVALUATION
    return TUNING if rule == "*" or series.startswith(rule) else EVALUATION


def group_label(collection, series):
    """The summary's table a series is counted in: its collection, SMD by split."""
    if collection in TUNING_SPLIT and TUNING_SPLIT[collection] != "*":
        return f"{collection} ({split_of(collection, series)})"
    return collection


def group_parts(group):
    """``(collection, split)`` of a :func:`group_label`."""
    collection, _, split = group.partition(" (")
    if split:
        return collection, split.rstrip(")")
    return collection, TUNING if TUNING_SPLIT.get(collection) == "*" else EVALUATION


# ---------------------------------------------------------------- running
def protocol_window(series):
    """The VUS buffer TSB-AD's protocol gives a series: its period by autocorrelation.

    The first channel of the whole series (training part, then test part), its first
    :data:`PROTOCOL_STEPS` finite values; their autocorrelation (the sample
    autocovariance over the mean-removed values, divided by the lag-0 one) at lags
    :data:`PROTOCOL_MIN_LAG` to :data:`PROTOCOL_LAGS`; the lag of its highest strict
    local maximum there (the lags at either end never count), if within
    :data:`PROTOCOL_WINDOWS`, else :data:`PROTOCOL_FALLBACK`, which is also the
    answer when there is no maximum (a constant series) or fewer steps than lags
    (where TSB-AD's own scripts stop with an error).

    Parameters
    ----------
    series : dict
        ``X_train`` and ``X_test``, 2-D arrays.

    Returns
    -------
    window : int
    """
    x = np.concatenate([np.asarray(series["X_train"], dtype=np.float64)[:, 0],
                        np.asarray(series["X_test"], dtype=np.float64)[:, 0]])
    x = x[np.isfinite(x)][:PROTOCOL_STEPS]
    n = len(x)
    if n <= PROTOCOL_LAGS:
        return PROTOCOL_FALLBACK
    products = lagged_products((x - x.mean())[:, None], PROTOCOL_LAGS)
    if products[0] <= 0:
        return PROTOCOL_FALLBACK
    ac = products[PROTOCOL_MIN_LAG:] / products[0]
    inner = np.flatnonzero((ac[1:-1] > ac[:-2]) & (ac[1:-1] > ac[2:])) + 1
    if not len(inner):
        return PROTOCOL_FALLBACK
    lag = int(inner[np.argmax(ac[inner])]) + PROTOCOL_MIN_LAG
    low, high = PROTOCOL_WINDOWS
    return lag if low <= lag <= high else PROTOCOL_FALLBACK


def score_metrics(y, scores, window=None):
    """The benchmark's metrics of one scored series (see :data:`METRICS`); ``window``:
    the series' :func:`protocol_window` (``vus_pr_tsb`` is NaN without it)."""
    from skdiffad import metrics  # lazily: the module may be newer than this script

    return {
        "vus_pr": float(metrics.vus_pr(y, scores, window=VUS_WINDOW)),
        "vus_roc": float(metrics.vus_roc(y, scores, window=VUS_WINDOW)),
        "aupr": float(metrics.aupr(y, scores)),
        "auroc": float(metrics.auroc(y, scores)),
        "range_f1": float(metrics.best_range_f1(y, scores)[0]),
        "top_hit": float(metrics.top_score_hit(y, scores, tolerance=TOP_HIT_TOLERANCE)),
        "vus_pr_tsb": np.nan if window is None
        else float(metrics.vus_pr(y, scores, window=int(window))),
    }


def evaluate(make_detector, series, seed, device="auto"):
    """Fit one detector on ``series["X_train"]``, score ``series["X_test"]``, never raise.

    Parameters
    ----------
    make_detector : callable
        ``factory(seed, n_channels, device)`` returning a detector with ``fit`` and
        ``decision_function`` (one score per time step, higher = more abnormal).
    series : dict
        ``X_train``, ``X_test`` (2-D arrays) and ``y_test``, as
        :func:`skdiffad.datasets.load_timeseries` returns them.
    seed : int
        Passed to the factory.
    device : str, default="auto"
        Passed to the factory.

    Returns
    -------
    result : dict
        The metrics of :data:`METRICS`, ``fit_s``, ``score_s`` (NaN where not
        reached), ``error`` (empty, ``"not applicable: ..."`` or
        ``"ExceptionType: message"``) and ``scores`` (the test scores, or None).
    """
    result = {**{name: np.nan for name in METRICS}, "fit_s": np.nan, "score_s": np.nan,
              "error": "", "scores": None}
    X_train, X_test, y_test = series["X_train"], series["X_test"], series["y_test"]
    try:
        detector = make_detector(seed, X_train.shape[1], device)
        start = time.perf_counter()
        detector.fit(X_train)
        result["fit_s"] = time.perf_counter() - start
        start = time.perf_counter()
        scores = np.asarray(detector.decision_function(X_test), dtype=np.float64)
        result["score_s"] = time.perf_counter() - start
        if scores.shape != (len(X_test),):
            raise ValueError(f"expected {len(X_test)} scores, one per test step, got an "
                             f"array of shape {scores.shape}")
        n_bad = int((~np.isfinite(scores)).sum())
        if n_bad:
            raise FloatingPointError(f"{n_bad} non-finite scores of {len(scores)}")
        result["scores"] = scores
        result.update(score_metrics(y_test, scores, protocol_window(series)))
    except Exception as exc:  # noqa: BLE001 - one detector must not end the benchmark
        result["error"] = error_message(exc)
    return result


def warm_up(detectors, device="auto"):
    """Fit and score every detector once on a tiny series, results discarded.

    The first call of a library pays one-off costs (lazy imports, thread-pool
    and torch start-up) that would otherwise be charged to the first series'
    timings. Training budgets are set to one step or epoch here
    (:func:`benchmarks._common.warm_up_budget`), since only the first call matters.
    """
    X, _ = make_timeseries_anomalies(n_timestamps=300, n_channels=2, n_anomalies=1,
                                     random_state=0)
    for make_detector in detectors.values():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                detector = make_detector(0, X.shape[1], device)
                detector.set_params(**warm_up_budget(detector.get_params()))
                detector.fit(X[:200]).decision_function(X[200:])
            except Exception:  # noqa: BLE001 - a failing detector fails again, recorded, later
                pass


def _scores_path(scores_dir, collection):
    return Path(scores_dir) / f"{collection}.npz"


def _min_max(scores):
    scores = np.asarray(scores, dtype=np.float64)
    span = scores.max() - scores.min()
    return (scores - scores.min()) / span if span > 0 else np.zeros_like(scores)


def _save_example_scores(scores_dir, collection, series, seed, detector, scores):
    """Add one detector's scores, min-max scaled to float32, to the collection's example file.

    Scaled before the cast: some raw scores (PyOD's PCA on SMAP/MSL windows)
    exceed float32's range.
    """
    path = _scores_path(scores_dir, collection)
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = {}
    if path.exists():
        with np.load(path, allow_pickle=False) as archive:
            if str(archive["series"]) == series and int(archive["seed"]) == seed:
                stored = {k: archive[k] for k in archive.files if k not in ("series", "seed")}
    stored[detector] = _min_max(scores).astype(np.float32)
    np.savez_compressed(path, series=np.array(series), seed=np.array(seed), **stored)


def run_benchmark(series, detectors=None, seeds=(0,), *, device="auto", csv_path=None,
                  resume=False, verbose=True, warm=True, examples=None, scores_dir=None):
    """Run every (collection, series, seed, detector) and collect the results.

    Parameters
    ----------
    series : dict
        ``(collection, name)`` -> a dict as :func:`skdiffad.datasets.load_timeseries`
        returns (``X_train``, ``X_test``, ``y_test``), or a zero-argument callable
        returning one (called only when one of its runs is still to do).
    detectors : None, str, list of str or dict, default=None
        Names from :data:`DETECTORS` (``None``: all of them), or a dict
        name -> ``factory(seed, n_channels, device)``.
    seeds : iterable of int, default=(0,)
        Seeds passed to the factories.
    device : str, default="auto"
        Passed to the factories.
    csv_path : path-like or None, default=None
        Append each finished run to this CSV as soon as it ends.
    resume : bool, default=False
        Keep ``csv_path``'s rows and skip the runs they hold; otherwise the file is
        started afresh.
    verbose : bool, default=True
        Print one progress line per run.
    warm : bool, default=True
        Call :func:`warm_up` before the first timed run.
    examples : dict or None, default=None
        Collection -> series name whose scores (first seed) are kept for the figure.
    scores_dir : path-like or None, default=None
        Where the example scores go, one ``<collection>.npz`` each.

    Returns
    -------
    runs : pandas.DataFrame
        One row per run of this selection (resumed rows included), columns
        :data:`RUN_COLUMNS`.

    Examples
    --------
    >>> from skdiffad.datasets import make_timeseries_anomalies
    >>> X, y = make_timeseries_anomalies(n_timestamps=600, random_state=0)
    >>> toy = {"X_train": X[:200], "X_test": X[200:], "y_test": y[200:]}
    >>> runs = run_benchmark({("toy", "a"): toy}, ["TSOD-KNN", "SpectralResidual"],
    ...                      verbose=False, warm=False)  # doctest: +SKIP
    >>> runs[["detector", "vus_pr"]].shape  # doctest: +SKIP
    (2, 2)
    """
    if not isinstance(detectors, dict):
        detectors = select_detectors(detectors)
    seeds = [int(s) for s in seeds]
    examples = examples or {}

    csv_path, previous = start_runs_csv(csv_path, resume, RUN_COLUMNS, TEXT_COLUMNS)
    done = set(zip(previous["collection"], previous["series"],
                   previous["seed"].astype(int), previous["detector"]))

    total = len(series) * len(seeds) * len(detectors)
    rows, count = [], 0
    for (collection, name), data in series.items():
        todo = [(s, d) for s in seeds for d in detectors
                if (collection, name, s, d) not in done]
        count += len(seeds) * len(detectors) - len(todo)
        if not todo:
            continue
        if warm:
            warm_up(detectors, device)
            warm = False
        loaded = data() if callable(data) else data
        loaded = {**loaded, "X_train": _as_2d(loaded["X_train"]),
                  "X_test": _as_2d(loaded["X_test"]),
                  "y_test": np.asarray(loaded["y_test"]).astype(int)}
        keep_scores = scores_dir is not None and examples.get(collection) == name
        for seed, detector in todo:
            count += 1
            result = evaluate(detectors[detector], loaded, seed, device)
            row = {"collection": collection, "series": name, "seed": seed,
                   "detector": detector, **result,
                   "n_train": len(loaded["X_train"]), "n_test": len(loaded["X_test"]),
                   "n_channels": loaded["X_train"].shape[1]}
            if keep_scores and seed == seeds[0] and result["scores"] is not None:
                _save_example_scores(scores_dir, collection, name, seed, detector,
                                     result["scores"])
            row.pop("scores")
            rows.append(row)
            if csv_path is not None:
                append_row(csv_path, row, RUN_COLUMNS)
            if verbose:
                _print_progress(count, total, row)
        del loaded

    runs = pd.DataFrame(rows, columns=RUN_COLUMNS)
    if len(previous):
        keys = set(series)
        keep = (pd.Series(list(zip(previous["collection"], previous["series"])),
                          index=previous.index).isin(keys)
                & previous["seed"].astype(int).isin(seeds)
                & previous["detector"].isin(list(detectors)))
        runs = pd.concat([previous[keep], runs], ignore_index=True)
    return runs.astype({"seed": int})


def _print_progress(count, total, row):
    width = len(str(total))
    if not row["error"]:
        outcome = f"VUS-PR={row['vus_pr']:.3f} AUROC={row['auroc']:.3f}"
    else:
        outcome = ("N/A" if row["error"].startswith(NOT_APPLICABLE) else "FAILED") + \
            f" {row['error'][:100]}"
    print(f"[{count:>{width}}/{total}] {row['collection']} {row['series']} "
          f"seed={row['seed']} {row['detector']}: {outcome} "
          f"fit={row['fit_s']:.2f}s score={row['score_s']:.2f}s", flush=True)


# ---------------------------------------------------------------- summary
_TABLE_COLUMNS = {"vus_pr": "mean VUS-PR", "aupr": "mean AUPR", "auroc": "mean AUROC",
                  "vus_roc": "mean VUS-ROC", "range_f1": "mean range-F1",
                  "top_hit": "top-score hit rate",
                  "vus_pr_tsb": "mean VUS-PR, TSB-AD's window"}


def with_every_metric(runs):
    """``runs`` with every column of :data:`METRICS`: runs made before a metric existed
    (``vus_pr_tsb``: before issue #27's tenth round) get NaN there."""
    missing = [m for m in METRICS if m not in runs.columns]
    if not missing:
        return runs
    runs = runs.copy()
    for m in missing:
        runs[m] = np.nan
    return runs


def collection_table(runs):
    """Per-detector summary of one collection's runs, best mean VUS-PR first.

    Metrics are averaged over seeds per series, then over the series where the
    detector ran without error (:func:`paired_overview` compares detectors on the
    same series instead). A series counts as *ok* when all its runs ended
    without error, *failed* when one raised or gave non-finite scores, *n/a* when
    the detector does not apply to it.

    Parameters
    ----------
    runs : pandas.DataFrame
        Rows of :func:`run_benchmark` for one collection.

    Returns
    -------
    table : pandas.DataFrame
        Indexed by detector.
    """
    runs = with_every_metric(runs).copy()
    runs["error"] = error_text(runs["error"])
    ok = runs[runs["error"] == ""]
    per_series = ok.groupby(["detector", "series"])[list(METRICS)].mean()
    means = per_series.groupby("detector").mean()
    status = np.where(runs["error"] == "", "ok",
                      np.where(runs["error"].str.startswith(NOT_APPLICABLE), "n/a", "failed"))
    by_series = pd.Series(status, index=runs.index).groupby(
        [runs["detector"], runs["series"]]).agg(
        lambda s: "failed" if (s == "failed").any() else ("n/a" if (s == "n/a").any()
                                                          else "ok"))
    counts = by_series.groupby(level="detector").value_counts().unstack(fill_value=0)
    detectors = sorted(runs["detector"].unique())
    table = pd.DataFrame(index=pd.Index(detectors, name="detector"))
    for column, label in _TABLE_COLUMNS.items():
        table[label] = means[column].reindex(detectors) if len(means) else np.nan
    by_detector = runs.groupby("detector")
    table["median fit s"] = by_detector["fit_s"].median()
    table["median score s"] = by_detector["score_s"].median()
    for label in ("ok", "failed", "n/a"):
        column = counts[label] if label in counts else pd.Series(0, index=counts.index)
        table[f"series {label}" if label == "ok" else label] = (
            column.reindex(detectors).fillna(0).astype(int))
    return table.sort_values(["mean VUS-PR", "mean AUROC"], ascending=False,
                             na_position="last")


def _groups(runs):
    """Each run's :func:`group_label`, as a Series aligned with ``runs``."""
    return pd.Series([group_label(c, s) for c, s in zip(runs["collection"], runs["series"])],
                     index=runs.index, dtype=object)


def _group_order(groups):
    """Groups in :data:`TIMESERIES_COLLECTIONS` order, a tuning part before its evaluation part."""
    present = list(dict.fromkeys(groups))
    rank = {c: i for i, c in enumerate(TIMESERIES_COLLECTIONS + SYNTHETIC_COLLECTIONS)}
    def key(group):
        collection, split = group_parts(group)
        return rank.get(collection, len(rank)), split == EVALUATION, group
    return sorted(present, key=key)


def summary_tables(runs):
    """One :func:`collection_table` per collection (SMD per split), in a fixed order."""
    groups = _groups(runs)
    return {g: collection_table(runs[groups == g]) for g in _group_order(groups)}


def split_overview(tables, metric="mean VUS-PR"):
    """Detectors x collections of one metric, each column headed with its split.

    Parameters
    ----------
    tables : dict
        :func:`summary_tables`' output.
    metric : str, default="mean VUS-PR"
        A column of the tables.

    Returns
    -------
    overview : pandas.DataFrame
        Indexed by detector, columns ``"<split>: <collection>"``, tuning first,
        rows sorted by the mean over the evaluation columns.
    """
    columns = {}
    for group, table in tables.items():
        collection, split = group_parts(group)
        columns[f"{split}: {collection}"] = table[metric]
    overview = pd.DataFrame(columns)
    ordered = sorted(overview.columns, key=lambda c: not c.startswith(TUNING))
    overview = overview[ordered]
    evaluation = [c for c in ordered if c.startswith(EVALUATION)]
    key = overview[evaluation].mean(axis=1) if evaluation else overview.mean(axis=1)
    return overview.loc[key.sort_values(ascending=False).index]


#: The detector the paired tables show next to every detector that scored only some series.
PAIRED_REFERENCE = "Diffusion-default"


def paired_overview(runs, metric="vus_pr", reference=PAIRED_REFERENCE):
    """Paired means: every detector averaged over the same series of each group.

    :func:`collection_table` averages each detector over the series *it* scored, so
    a detector that failed, was not applicable or was not run on some series is
    averaged over a different set. Here each group's *full* detectors (those that
    scored every series of the group without error) are averaged over all its
    series. A *partial* detector (failed on, not applicable to or not run on some
    series: MatrixProfile above its step budget, a detector run on a
    ``--max-series`` subset) is averaged over the series it scored,
    and a row ``"(<reference> on the <n> series of <detectors>)"`` gives ``reference``
    on the same series, so it is still a like-for-like comparison.

    Parameters
    ----------
    runs : pandas.DataFrame
        Rows of :func:`run_benchmark` (one or several runs merged).
    metric : str, default="vus_pr"
        A key of :data:`METRICS`.
    reference : str, default=PAIRED_REFERENCE
        The detector shown on each partial detector's series.

    Returns
    -------
    overview : pandas.DataFrame
        Indexed by detector (and reference rows), columns ``"<split>: <group> (n)"``
        with ``n`` the series of the group; tuning columns first, detectors
        sorted by the mean over the evaluation columns, each reference row under
        the detectors it is paired with.
    """
    runs = runs.copy()
    runs["error"] = error_text(runs["error"])
    groups = _groups(runs)
    columns, ordered, anchors = {}, [], {}
    for group in _group_order(groups):
        part = runs[groups == group]
        every = set(part["series"])
        finished = part[part["error"] == ""]
        detectors = sorted(part["detector"].unique())
        ok = (finished.groupby(["detector", "series"])[metric].mean().unstack("detector")
              .reindex(index=sorted(every), columns=detectors))
        bad = part.loc[part["error"] != "", "series"].groupby(part["detector"]).agg(set)
        done = finished.groupby("detector")["series"].agg(set)
        full = [d for d in detectors
                if done.get(d, set()) == every and not bad.get(d, set())]
        common = ok.index if not full else ok.index[ok[full].notna().all(axis=1)]
        values = {d: ok.loc[common, d].mean() for d in full}
        shown = {}
        for d in [d for d in detectors if d not in full]:
            series = ok.index[ok[d].notna()].intersection(common)
            values[d] = ok.loc[series, d].mean() if len(series) else np.nan
            if reference in ok and len(series):
                shown.setdefault(tuple(sorted(series)), []).append(d)
        for series, names in shown.items():
            label = f"({reference} on the {len(series)} series of {', '.join(names)})"
            values[label] = ok.loc[list(series), reference].mean()
            anchors[label] = names[-1]  # the row goes under the last detector it names
        collection, split = group_parts(group)
        column = f"{split}: {collection} ({len(common)})"
        columns[column] = pd.Series(values, dtype=float)
        ordered.append((split != TUNING, column))
    overview = pd.DataFrame(columns)
    if overview.empty:
        return overview
    order = [c for _, c in sorted(ordered, key=lambda item: item[0])]
    overview = overview[order]
    evaluation = [c for c in order if c.startswith(EVALUATION)]
    key = overview.drop(index=list(anchors))[evaluation or order].mean(axis=1)
    rows = []
    for detector in key.sort_values(ascending=False).index:
        rows += [detector] + [label for label, d in anchors.items() if d == detector]
    return overview.loc[rows]


#: Resamples and level of :func:`paired_differences`' bootstrap interval, and the
#: fewest series it is drawn from (one or two series cannot say how others would go).
N_BOOTSTRAP = 2000
INTERVAL_LEVEL = 0.95
MIN_INTERVAL_SERIES = 3


def paired_differences(runs, metric="vus_pr", reference=PAIRED_REFERENCE,
                       n_bootstrap=N_BOOTSTRAP, level=INTERVAL_LEVEL, random_state=0):
    """The reference minus every other detector, series by series, with an interval.

    Each run's metric is first averaged over its seeds per series (a stochastic
    baseline run with several ``--seeds`` counts once per series, at its mean).
    For every group and every other detector, the differences ``reference -
    detector`` on the series both scored without error are averaged; the interval
    is the percentile bootstrap of that mean over series (``n_bootstrap``
    resamples of the series, seeded per group and detector, so adding a detector to
    the runs moves no other interval). The verdict reads the interval from the
    reference's side: ``"above"`` when it lies above zero, ``"below"`` when below,
    ``"level"`` when it holds zero. The interval covers which series a collection
    happens to hold, not a baseline's seed-to-seed spread: run such a baseline
    with several seeds for that. With a handful of series (SMD's groups hold 5 and
    6) it is wide and only indicative; on fewer than :data:`MIN_INTERVAL_SERIES`
    there is none (``low`` and ``high`` NaN, verdict ``"too few series"``).

    Parameters
    ----------
    runs : pandas.DataFrame
        Rows of :func:`run_benchmark` (one or several runs merged).
    metric : str, default="vus_pr"
        A key of :data:`METRICS`.
    reference : str, default=PAIRED_REFERENCE
        The detector every other one is compared with.
    n_bootstrap : int, default=N_BOOTSTRAP
        Resamples of the series.
    level : float, default=INTERVAL_LEVEL
        Coverage of the interval, in (0, 1).
    random_state : int, default=0
        Seed of the resampling.

    Returns
    -------
    differences : pandas.DataFrame
        One row per group and detector (groups in :func:`summary_tables`' order,
        detectors by difference), columns ``collection``, ``detector``,
        ``series``, ``reference``, ``other`` (the two means), ``difference``,
        ``low``, ``high`` and ``verdict``; empty when ``reference`` did not run.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be a positive int, got {n_bootstrap!r}")
    runs = runs.copy()
    runs["error"] = error_text(runs["error"])
    groups = _groups(runs)
    tail = (1 - level) / 2
    rows = []
    for group in _group_order(groups):
        part = runs[(groups == group) & (runs["error"] == "")]
        table = part.groupby(["detector", "series"])[metric].mean().unstack("detector")
        if reference not in table:
            continue
        found = []
        for detector in table.columns.drop(reference):
            both = table[[reference, detector]].dropna()
            if both.empty:
                continue
            diff = (both[reference] - both[detector]).to_numpy()
            if len(diff) < MIN_INTERVAL_SERIES:
                low = high = np.nan
                verdict = "too few series"
            else:
                # one stream per comparison: adding detectors moves no other interval
                rng = np.random.default_rng(
                    [random_state, zlib.crc32(f"{group}|{detector}".encode())])
                draws = diff[rng.integers(0, len(diff), (n_bootstrap, len(diff)))].mean(axis=1)
                low, high = np.quantile(draws, [tail, 1 - tail])
                verdict = "above" if low > 0 else ("below" if high < 0 else "level")
            found.append({"collection": group, "detector": detector, "series": len(diff),
                          "reference": both[reference].mean(),
                          "other": both[detector].mean(), "difference": diff.mean(),
                          "low": low, "high": high, "verdict": verdict})
        rows += sorted(found, key=lambda r: r["difference"])
    return pd.DataFrame(rows, columns=["collection", "detector", "series", "reference",
                                       "other", "difference", "low", "high", "verdict"])


def _differences_markdown(differences, reference, level):
    """:func:`paired_differences` as a Markdown table, the interval in one column."""
    shown = differences.set_index("collection")[["detector", "series", "reference", "other"]]
    shown = shown.rename(columns={"reference": reference, "other": "detector's"})
    shown["difference"] = [f"{v:+.3f}" for v in differences["difference"]]
    shown[f"{level:.0%} interval"] = [
        "–" if np.isnan(lo) else f"[{lo:+.3f}, {hi:+.3f}]"
        for lo, hi in zip(differences["low"], differences["high"])]
    shown["verdict"] = differences["verdict"].to_numpy()
    return markdown_table(shown, "collection")


def summarise(runs, title="Time-series anomaly detection benchmark", notes=()):
    """Markdown summary of :func:`run_benchmark`'s results: one table per collection.

    Parameters
    ----------
    runs : pandas.DataFrame
        Output of :func:`run_benchmark` (or ``timeseries_runs.csv`` read back).
    title : str
        First heading.
    notes : iterable of str
        Lines printed under the title (the command, versions, settings).

    Returns
    -------
    text : str
        Markdown.
    """
    runs = with_every_metric(runs).copy()
    runs["error"] = error_text(runs["error"])
    lines = summary_lines(title, notes)
    lines += [f"- VUS-PR / VUS-ROC with buffers up to {VUS_WINDOW} steps; range-F1 is the "
              "best over thresholds. Metrics are averaged over seeds per series, then "
              "over the series a detector scored without error (the ok column), so "
              "detectors with n/a or failed series are averaged over fewer series.",
              "- VUS-PR, TSB-AD's window: VUS-PR with the buffer TSB-AD's protocol gives "
              "each series (its period by autocorrelation, 6-303 steps, else "
              f"{PROTOCOL_FALLBACK}; `protocol_window`); empty for runs made before it.", ""]
    tables = summary_tables(runs)
    groups = _groups(runs)
    if len(tables) > 1:
        lines += ["## Mean VUS-PR by collection and split", "",
                  "Defaults and rules are chosen on the tuning split only "
                  f"({', '.join(f'{c}: {r}' for c, r in TUNING_SPLIT.items())}; "
                  "`*` = all series, otherwise the series whose names start so); the "
                  "evaluation split is only reported. Rows sorted by the mean over the "
                  "evaluation columns.", "",
                  markdown_table(split_overview(tables), "detector"), ""]
    paired = paired_overview(runs)
    if not paired.empty:
        lines += ["## Paired mean VUS-PR", "",
                  "Each detector over the same series: in each column (n = its series) "
                  "the detectors that finished every series are averaged over the series "
                  "all of them scored; a detector run on or applicable to only some "
                  f"series is averaged over its part of them, next to {PAIRED_REFERENCE} "
                  "on that part (the bracketed rows). Quote these for comparisons.", "",
                  markdown_table(paired, "detector"), ""]
        if runs["vus_pr_tsb"].notna().any():
            lines += ["## Paired mean VUS-PR, TSB-AD's window", "",
                      "As above, with each series' buffer as TSB-AD's protocol sets it "
                      "(`protocol_window`).", "",
                      markdown_table(paired_overview(runs, "vus_pr_tsb"), "detector"), ""]
        if "UCR_KDD21" in set(runs["collection"]):
            lines += ["## Paired top-score hit rate", "",
                      "UCR's own measure (top score within 100 steps of the anomaly); "
                      "meaningful where a series has one anomaly (UCR_KDD21).", "",
                      markdown_table(paired_overview(runs, "top_hit"), "detector"), ""]
    differences = paired_differences(runs)
    if not differences.empty:
        lines += [f"## Paired differences from {PAIRED_REFERENCE}", "",
                  f"VUS-PR of {PAIRED_REFERENCE} minus each detector's, averaged over the "
                  "series both scored (each detector's seeds averaged per series first), "
                  f"with a {INTERVAL_LEVEL:.0%} percentile-bootstrap interval over those "
                  f"series ({N_BOOTSTRAP} resamples, seed 0). *above* / *below*: the "
                  f"interval excludes zero; *level*: it holds zero. Few series (SMD's groups) "
                  f"make the interval wide, and fewer than {MIN_INTERVAL_SERIES} give none; a "
                  "stochastic baseline's seed spread is not in it.",
                  "", _differences_markdown(differences, PAIRED_REFERENCE, INTERVAL_LEVEL),
                  ""]
    for collection, table in tables.items():
        part = runs[groups == collection]
        seeds = sorted(int(s) for s in part["seed"].unique())
        channels = sorted(int(c) for c in part["n_channels"].unique())
        lines += [f"## {collection}", "",
                  f"{part['series'].nunique()} series, channels: "
                  f"{' or '.join(map(str, channels))}, seeds {seeds}, {len(part)} runs.", "",
                  markdown_table(table, "detector"), ""]
        failed = part[part["error"] != ""]
        if len(failed):
            lines += [f"### {collection}: failed and not-applicable runs", ""]
            for (detector, error), group in failed.groupby(["detector", "error"]):
                names = sorted(group["series"].unique())
                shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more"
                                                 if len(names) > 8 else "")
                lines.append(f"- {detector} ({len(group)} runs; {shown}): {error}")
            lines.append("")
    return "\n".join(lines)


def _label_ranges(y):
    """``(start, stop)`` of each run of ones in ``y``."""
    edges = np.diff(np.r_[0, np.asarray(y).astype(int), 0])
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def _example_files(directories):
    files = {}
    for directory in directories:
        folder = Path(directory) / "timeseries_scores"
        for path in sorted(folder.glob("*.npz")) if folder.is_dir() else []:
            with np.load(path, allow_pickle=False) as archive:
                stored = files.setdefault(path.stem, {"series": str(archive["series"]),
                                                      "scores": {}})
                if stored["series"] == str(archive["series"]):
                    stored["scores"].update({k: archive[k] for k in archive.files
                                             if k not in ("series", "seed")})
    return files


_SCORE_COLOURS = ("black", "tab:purple", "tab:olive")


def plot_examples(runs, score_dirs, path, data_dir=None, top=3):
    """One example series per collection, its labelled ranges, and the best detectors' scores.

    For each collection with stored example scores: the series (its first three
    non-constant channels, each min-max scaled, stacked) with the labelled anomaly ranges
    shaded, and below it the min-max scaled scores of the ``top`` detectors by
    the collection's mean VUS-PR among those scored on that series.

    Returns
    -------
    drawn : list of str
        The collections drawn (empty when nothing could be drawn: no file is written).
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = _example_files(score_dirs)
    tables = summary_tables(runs)
    panels = []
    for group, table in tables.items():
        collection = group_parts(group)[0]
        stored = files.get(collection)
        if (not stored or not stored["scores"]
                or group_label(collection, stored["series"]) != group):
            continue
        try:
            series = collection_series(collection, data_dir)[stored["series"]]()
        except Exception:  # noqa: BLE001 - no data here (e.g. merging elsewhere): no panel
            continue
        ranked = [d for d in table.index if d in stored["scores"]
                  and not np.isnan(table.loc[d, "mean VUS-PR"])][:top]
        if ranked:
            panels.append((collection, stored["series"], series, ranked, stored["scores"],
                           table))
    if not panels:
        return []
    fig, axes = plt.subplots(2 * len(panels), 1, figsize=(11, 3.6 * len(panels)),
                             gridspec_kw={"height_ratios": [1.3, 1] * len(panels)})
    for i, (collection, name, series, ranked, scores, table) in enumerate(panels):
        ax_x, ax_s = axes[2 * i], axes[2 * i + 1]
        X, y = _as_2d(series["X_test"]), np.asarray(series["y_test"])
        steps = np.arange(len(y))
        varying = np.flatnonzero(X.std(axis=0) > 0)
        picked = varying[:3] if len(varying) else np.arange(1)
        shown = X[:, picked]
        if len(picked) > 1:
            low, high = shown.min(axis=0), shown.max(axis=0)
            shown = (shown - low) / (high - low) - 1.2 * np.arange(len(picked))
        for j in range(shown.shape[1]):
            ax_x.plot(steps, shown[:, j], linewidth=0.6, color=f"C{j}")
        if len(picked) > 1:
            ax_x.set_yticks([])
        for ax in (ax_x, ax_s):
            for start, stop in _label_ranges(y):
                ax.axvspan(start, stop, color="tab:red", alpha=0.15, linewidth=0)
        channels = ("channel 0" if X.shape[1] == 1 else
                    f"channel{'s' if len(picked) > 1 else ''} "
                    f"{', '.join(map(str, picked))} of {X.shape[1]}"
                    + (", each min-max scaled" if len(picked) > 1 else ""))
        ax_x.set_title(f"{collection}: {name} (test part, {channels}; labelled ranges shaded)",
                       fontsize=10)
        ax_x.set_xlim(0, len(y))
        for j, detector in enumerate(ranked):
            scaled = _min_max(scores[detector])
            vus = table.loc[detector, "mean VUS-PR"]
            colour = _SCORE_COLOURS[j % len(_SCORE_COLOURS)]
            ax_s.plot(steps, scaled, linewidth=0.7, color=colour,
                      label=f"{detector} (mean VUS-PR {vus:.3f})")
        ax_s.set_xlim(0, len(y))
        ax_s.set_ylabel("scaled score")
        ax_s.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize=8,
                    ncol=len(ranked), frameon=False, borderaxespad=0.1)
    axes[-1].set_xlabel("test step")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [panel[0] for panel in panels]


def write_outputs(runs, out, notes, score_dirs, data_dir=None):
    """Write the summary CSV and Markdown and the figure; returns the Markdown."""
    out = Path(out)
    text = summarise(runs, notes=notes)
    (out / "timeseries_summary.md").write_text(text + "\n")
    stacked_tables(summary_tables(runs)).to_csv(out / "timeseries_summary.csv", index=False)
    plot_examples(runs, score_dirs, out / "timeseries_examples.png", data_dir=data_dir)
    return text


def _notes(command, threads, device):
    return environment_notes(command, threads, device) + [
        f"Deep baselines: LSTMAD epochs={LSTMAD_EPOCHS}; AnomalyTransformer "
        + ", ".join(f"{k}={v}" for k, v in ANOMALY_TRANSFORMER_PARAMS.items())
        + "; every other setting is the library default (see the module docstring).",
    ]


# ---------------------------------------------------------------- speed
def speed_benchmark(detectors, n_timestamps=100_000, n_channels=25, n_train=10_000,
                    seed=0, device="auto", verbose=True):
    """Time each detector on one long synthetic series: fit the first steps, score all.

    Parameters
    ----------
    detectors : str, list of str or dict
        As in :func:`run_benchmark`; :data:`REFERENCE_DETECTOR` is added when absent.
    n_timestamps, n_channels, n_train : int, default=100_000, 25, 10_000
        Size of the series and of its training prefix.
    seed : int, default=0
        Seeds the series and the detectors.

    Returns
    -------
    speed : pandas.DataFrame
        Columns :data:`SPEED_COLUMNS`, one row per detector.
    """
    if not isinstance(detectors, dict):
        detectors = select_detectors(detectors)
    if REFERENCE_DETECTOR not in detectors:
        detectors = {REFERENCE_DETECTOR: DETECTORS[REFERENCE_DETECTOR], **detectors}
    X, y = make_timeseries_anomalies(n_timestamps=n_timestamps, n_channels=n_channels,
                                     n_anomalies=SPEED_ANOMALIES, random_state=seed)
    series = {"X_train": X[:n_train], "X_test": X, "y_test": y}
    warm_up(detectors, device)
    rows = []
    for name, make in detectors.items():
        result = {"fit_s": np.nan, "score_s": np.nan, "error": ""}
        try:
            detector = make(seed, n_channels, device)
            start = time.perf_counter()
            detector.fit(series["X_train"])
            result["fit_s"] = time.perf_counter() - start
            start = time.perf_counter()
            scores = np.asarray(detector.decision_function(X), dtype=np.float64)
            result["score_s"] = time.perf_counter() - start
            if scores.shape != (n_timestamps,):
                raise ValueError(f"expected {n_timestamps} scores, got shape {scores.shape}")
        except Exception as exc:  # noqa: BLE001
            result["error"] = error_message(exc)
        rows.append({"detector": name, "n_train": n_train, "n_test": n_timestamps,
                     "n_channels": n_channels, **result,
                     "rows_per_s": n_timestamps / result["score_s"]})
        if verbose:
            print(f"{name}: fit={result['fit_s']:.2f}s score={result['score_s']:.2f}s "
                  f"{result['error']}", flush=True)
    speed = pd.DataFrame(rows)
    reference = speed.set_index("detector").loc[REFERENCE_DETECTOR, "score_s"]
    speed[SPEED_COLUMNS[-2]] = speed["score_s"] / reference
    return speed[SPEED_COLUMNS]


def speed_markdown(speed, notes=(), target_s=60.0, seed=0):
    """Markdown of :func:`speed_benchmark`'s table, with the target's verdict."""
    lines = summary_lines("Time-series speed", notes)
    n_test, n_channels = int(speed["n_test"].iloc[0]), int(speed["n_channels"].iloc[0])
    lines += [f"- Series: make_timeseries_anomalies(n_timestamps={n_test}, n_channels="
              f"{n_channels}, n_anomalies={SPEED_ANOMALIES}, random_state={seed}); fit on "
              f"the first {int(speed['n_train'].iloc[0])} steps, score all of them.",
              f"- Target: score {n_test} x {n_channels} in <= {target_s:.0f} s with the "
              f"default configuration, reported as a ratio to {REFERENCE_DETECTOR}.", ""]
    table = speed.set_index("detector").drop(columns=["n_train", "n_test", "n_channels"])
    lines += [markdown_table(table, "detector", floatfmt=".2f"), ""]
    if "Diffusion-default" in table.index:
        row = table.loc["Diffusion-default"]
        if row["error"]:
            verdict = f"not measured ({row['error']})"
        else:
            met = "met" if row["score_s"] <= target_s else "not met"
            verdict = (f"{met}: {row['score_s']:.1f} s, "
                       f"{row[SPEED_COLUMNS[-2]]:.2f}x {REFERENCE_DETECTOR}'s score time")
        lines += [f"Diffusion-default: {verdict}.", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- command line
def _parse_args(argv):
    parser = benchmark_parser(
        "python -m benchmarks.timeseries",
        "NAB / SKAB / SMAP-MSL / SMD / UCR-KDD21 / MGAB benchmark: diffusion detectors vs "
        "PyOD time-series baselines.", DETECTORS, "timeseries_runs.csv", data="timeseries/",
        devices="the diffusion detectors (and AnomalyTransformer)")
    parser.add_argument("--collections", default=",".join(TIMESERIES_COLLECTIONS),
                        help="comma list of collections (default: %(default)s)")
    parser.add_argument("--series", default=None,
                        help="comma list of series names or substrings (default: all)")
    parser.add_argument("--seeds", default="0", help="comma list of seeds (default: 0)")
    parser.add_argument("--split", choices=(TUNING, EVALUATION), default=None,
                        help="only the series of this split (default: both; see "
                             "TUNING_SPLIT)")
    parser.add_argument("--max-series", type=int, default=None, metavar="N",
                        help="at most N series per collection, spread evenly over its "
                             "sorted list (default: all)")
    parser.add_argument("--shard", default=None, metavar="i/n",
                        help="run only the i-th of n interleaved shares of the series "
                             "(i from 1); give each shard its own --out")
    parser.add_argument("--units", choices=UNITS, default="given",
                        help="'given': each collection's own values; 'training': every "
                             "channel min-max scaled on its series' training part "
                             "(default: %(default)s)")
    parser.add_argument("--speed", action="store_true",
                        help="run the speed measurement instead (default detectors: "
                             f"Diffusion-default and {REFERENCE_DETECTOR})")
    parser.add_argument("--speed-size", default="100000,25,10000", metavar="T,C,F",
                        help="--speed series: steps, channels, fitted steps "
                             "(default: %(default)s)")
    return parser.parse_args(argv)


def summarise_directories(directories, out, command, data_dir=None):
    """Merge the ``timeseries_runs.csv`` of several runs (shards) and write one summary."""
    units = {str(d): units_of(d) for d in directories}
    if len(set(units.values())) > 1:
        raise SystemExit(f"the runs to merge were made in different units ({units}); "
                         "merge runs of one --units setting only")
    runs = with_every_metric(merge_run_files(directories, "timeseries_runs.csv",
                                             ["collection", "series", "seed", "detector"],
                                             out, TEXT_COLUMNS))
    notes = _notes(command, 1, SHARDS_DEVICE) + [merged_from(directories)]
    kind = next(iter(units.values()), "given")
    (Path(out) / UNITS_FILE).write_text(kind + "\n")
    notes += _units_notes(kind)
    text = write_outputs(runs, out, notes, list(directories), data_dir)
    print(text, flush=True)
    return runs


def _run_speed(args, argv):
    detectors = select_detectors(args.detectors or f"Diffusion-default,{REFERENCE_DETECTOR}")
    n_timestamps, n_channels, n_train = (int(v) for v in args.speed_size.split(","))
    seed = int(args.seeds.split(",")[0])
    speed = speed_benchmark(detectors, n_timestamps, n_channels, n_train, seed=seed,
                            device=args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    speed.to_csv(out / "speed.csv", index=False)
    notes = _notes(command_line("benchmarks.timeseries", argv), args.threads, args.device)
    text = speed_markdown(speed, notes=notes, seed=seed)
    (out / "speed.md").write_text(text + "\n")
    print("\n" + text, flush=True)
    return speed


def _in_training_units(loader):
    return lambda: training_units(loader())


def main(argv=None):
    """Command-line entry point; see ``python -m benchmarks.timeseries --help``."""
    args, command = _parse_args(argv), command_line("benchmarks.timeseries", argv)
    data_dir = resolve_data_dir(args.data_dir)
    if args.summarise:
        return summarise_directories(args.summarise, args.out, command, data_dir)
    set_threads(args.threads)
    if args.speed:
        return _run_speed(args, argv)

    collections = [c.strip() for c in args.collections.split(",") if c.strip()]
    known = TIMESERIES_COLLECTIONS + SYNTHETIC_COLLECTIONS
    unknown = [c for c in collections if c not in known]
    if unknown:
        raise SystemExit(f"unknown collection(s) {unknown}; choose from {list(known)}")
    shard = parse_shard(args.shard) if args.shard else None
    seeds = [int(s) for s in args.seeds.split(",")]
    detectors = select_detectors(args.detectors)

    work, examples = {}, {}
    for collection in collections:
        loaders = collection_series(collection, data_dir)
        if not loaders:
            print(f"warning: no {collection} series under {data_dir / 'timeseries'}",
                  file=sys.stderr, flush=True)
        names = [n for n in choose_names(list(loaders), args.series)
                 if args.split is None or split_of(collection, n) == args.split]
        names = pick_evenly(names, args.max_series)
        if names:
            preferred = EXAMPLE_SERIES.get(collection)
            examples[collection] = preferred if preferred in names else names[0]
        if args.units == "training":
            loaders = {name: _in_training_units(loaders[name]) for name in names}
        work.update({(collection, name): loaders[name] for name in names})
    mine = dict((key, work[key]) for key in take_shard(work, shard))
    if not mine:
        raise SystemExit("no series selected (check --collections, --series, --data-dir)")

    out = Path(args.out)
    earlier = units_of(out)
    if args.resume and (out / "timeseries_runs.csv").exists() and earlier != args.units:
        raise SystemExit(f"{out} holds runs made with --units {earlier}; resume them "
                         f"with that setting or give another --out")
    csv_path = results_csv(out, "timeseries_runs.csv", args.resume)
    (out / UNITS_FILE).write_text(args.units + "\n")
    shard_text = f" (shard {shard[0]}/{shard[1]} of {len(work)})" if shard else ""
    print(f"{len(mine)} series{shard_text} x {len(seeds)} seeds x {len(detectors)} "
          f"detectors; results -> {csv_path}", flush=True)

    start = time.perf_counter()
    runs = run_benchmark(mine, detectors, seeds, device=args.device, csv_path=csv_path,
                         resume=args.resume, examples=examples,
                         scores_dir=out / "timeseries_scores")
    elapsed = time.perf_counter() - start
    notes = _notes(command, args.threads, args.device) + [
        f"Data: {data_dir / 'timeseries'} (protocols in the module docstring).",
        f"Wall time of this invocation: {elapsed_text(elapsed)}.",
    ] + _units_notes(args.units)
    text = write_outputs(runs, out, notes, [out], data_dir)
    print("\n" + text, flush=True)
    print(f"\nwrote {csv_path}, {out / 'timeseries_summary.md'}, "
          f"{out / 'timeseries_summary.csv'}, {out / 'timeseries_examples.png'}", flush=True)
    return runs


if __name__ == "__main__":
    main()
