"""Anomaly generation benchmark (issue #13): what generated tabular rows are worth, on ADBench.

Run from the repository root::

    python -m benchmarks.generation                                # every study and set (long)
    python -m benchmarks.generation --split tuning --seeds 0       # the sets that pick defaults
    python -m benchmarks.generation --studies fidelity --datasets 6,38,yeast
    python -m benchmarks.generation --studies utility --labelled 5 --split evaluation
    python -m benchmarks.generation --studies stress --detectors IForest,ECOD
    python -m benchmarks.generation --resume                       # carry on after an interruption

Data: every ``.npz`` in ``<data-dir>/tabular/adbench`` (keys ``X``, ``y``; 1 =
anomaly), read with :func:`skdiffad.datasets.load_adbench`; without ``--data-dir``
:func:`benchmarks._common.resolve_data_dir` picks ``$SKDIFFAD_DATA`` or the
``shared/data`` folder next to the checkout. ``--datasets`` takes a comma list of
names, numeric prefixes (``6`` is ``6_cardio``, never ``16_http``) or substrings.

Splits: the generator's defaults (:data:`GENERATORS`' diffusion settings,
:data:`UTILITY_KIND`, the library's ``AnomalyGenerator`` defaults) are chosen on
:data:`TUNING_SETS` only, a third of the ADBench sets mixing small and mid sizes;
every other set is the **evaluation** split, only ever reported. Each row of every
CSV records its split, and the summary reports the two apart; ``--split`` runs one.
The sets of more than 100k rows (:data:`LARGE_SETS`) are skipped unless
``--datasets`` names them.

Training rows: the normal rows a model is fitted on are capped at ``--max-train``
(default 3000) by a uniform random subset drawn with the run's seed; the
``subsampled`` column and the summary say where that happened. Features are
standardised with the (kept) normal training rows' mean and standard deviation.

Studies (``--studies``, default all three):

1. ``fidelity``: does a generator draw rows like the normal ones? Per set and
   seed, the normal rows are split at random into a *fit* half and a *held-out*
   half (each capped at ``--max-train``); each generator of :data:`GENERATORS`
   (a factory ``make_sampler(seed)`` returning an object with ``fit(X)`` and
   ``sample(n, random_state)``) is fitted on the fit half and draws as many rows
   as the held-out half holds: ``diffusion`` (``TabDiffusionDetector(denoiser="mlp",
   scoring="density", max_steps=4000)``, on the CPU), ``gmm`` (a full-covariance Gaussian
   mixture, 1-10 components chosen by BIC), ``smote`` (a random fit row moved a
   uniform fraction of the way to one of its 5 nearest fit rows) and ``copy``
   (fit rows drawn with replacement: the memorisation reference). Metrics: the
   classifier two-sample test (C2ST: mean AUROC over 5 stratified folds of
   ``HistGradientBoostingClassifier`` telling generated from held-out rows; 0.5 =
   indistinguishable, and ``copy`` shows what two real samples score), the mean
   over columns of the 1-D Wasserstein distance to the held-out rows in
   standardised units (``wasserstein_floor``: the fit half's own distance), and
   fit / sample seconds. Target: diffusion's C2ST below GMM's on at least two
   thirds of the sets. ``--generators`` runs some of them only.
2. ``utility``: do generated anomalies help a classifier that has only a few real
   ones (ADBench's weakly supervised setting)? Per set, seed and ``--labelled``
   entry (``5``: five anomalies; ``0.01``: 1 % of the training anomalies, at
   least one): a stratified 70/30 train/test split; the training set keeps that
   many anomalies labelled and drops its other anomalies (:func:`weakly_supervised_split`).
   ``HistGradientBoostingClassifier`` is trained on the labelled training rows
   (arm ``real``) or on them plus ``n_synth`` = min(500, normal training rows //
   10) generated anomalies: ``smote`` (interpolation between the labelled
   anomalies; with one anomaly, Gaussian jitter of 0.05 standard deviations),
   ``adbench`` (ADBench's four synthetic types from the normal training rows,
   mixed equally: :func:`adbench_anomalies`) or ``diffusion`` (skdiffad's
   ``AnomalyGenerator(kind=UTILITY_KIND, strength=UTILITY_STRENGTH)`` fitted on
   the normal training rows and the labelled anomalies). Metrics: AUROC and AUPR
   of ``predict_proba`` on the real test rows, generator seconds.
   ``--kind-grid`` adds an arm per setting of :data:`KIND_GRID` (one generator
   fit per run serves them all): the study the ``diffusion`` arm's setting was
   chosen by, on the tuning split.
3. ``stress``: how hard are the generated anomalies for the detectors? On
   :data:`STRESS_SETS` (or the sets ``--datasets`` names), per seed: the normal
   rows split in halves as in ``fidelity``; ``AnomalyGenerator`` fitted on the
   first half draws :data:`STRESS_N_ANOMALIES` anomalies of each kind of
   :data:`STRESS_KINDS` at each strength of :data:`STRESS_STRENGTHS`; each
   detector of :data:`STRESS_DETECTORS` (factories of
   :data:`benchmarks.tabular.DETECTORS`; ``Diffusion-nonparametric`` is
   ``TabDiffusionDetector()`` as a user gets it) is fitted on the same half.
   Metrics: detection rate (share of generated anomalies scored above the 95th
   percentile of the held-out normal rows' scores; 0.05 is chance) and AUROC
   between held-out normal rows and generated anomalies. Rows are scored
   :data:`STRESS_BATCH` at a time (:func:`batched_scores`: ECOD and COPOD rank a
   batch against itself too, so 500 anomalies at once would hide one another).
   ``--detectors`` and ``--device`` choose the detectors and their device.

Output (``--out``, default ``benchmarks/results/generation``): one CSV per study,
``generation_fidelity.csv``, ``generation_utility.csv`` and
``generation_stress.csv``, each run appended as soon as it ends, so ``--resume``
skips the runs already there (failed runs included: delete their rows to retry
them); without ``--resume`` a study's earlier CSV is moved to ``.bak``. At the end
``generation_summary.md`` is rewritten from every study CSV in ``--out`` and
``generation_stress.png`` drawn (one panel per kind: detection rate against
strength, a line per detector).

A generator, classifier or detector that raises does not stop the run: its
metrics are NaN and the error text is kept in the ``error`` column.

Torch and BLAS use one thread unless ``--threads`` says more.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import wasserstein_distance
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
from sklearn.neighbors import NearestNeighbors

from benchmarks import _common
from benchmarks._common import (
    RESULTS_DIR,
    add_run_arguments,
    append_row,
    command_line,
    dataset_order,
    elapsed_text,
    environment_notes,
    error_message,
    error_text,
    markdown_table,
    resolve_data_dir,
    results_csv,
    select_from,
    set_threads,
    start_runs_csv,
    summary_lines,
)
from benchmarks.tabular import _standardise, adbench_names, select_detectors, warm_up
from skdiffad import TabDiffusionDetector
from skdiffad.datasets import load_adbench

STUDIES = ("fidelity", "utility", "stress")
TUNING, EVALUATION = "tuning", "evaluation"
#: ADBench sets on which the generator's defaults may be chosen; every other set
#: is the evaluation split, only ever reported.
TUNING_SETS = ("6_cardio", "14_glass", "18_Ionosphere", "22_magic.gamma", "28_pendigits",
               "38_thyroid", "42_WBC", "47_yeast")
#: Sets of more than 100k rows, skipped unless ``--datasets`` names them.
LARGE_SETS = ("8_celeba", "11_donors", "16_http", "34_smtp")

FIDELITY_CSV = "generation_fidelity.csv"
UTILITY_CSV = "generation_utility.csv"
STRESS_CSV = "generation_stress.csv"
SUMMARY_MD = "generation_summary.md"
STRESS_PNG = "generation_stress.png"

#: Gradient steps of the diffusion sampler of the fidelity study.
DIFFUSION_MAX_STEPS = 4000
#: Components the Gaussian mixtures (``gmm``, ADBench's local and clustered types) try.
MAX_COMPONENTS = 10
#: Neighbours of SMOTE's interpolation.
SMOTE_NEIGHBOURS = 5
#: Standard deviation (standardised units) of the jitter around a single labelled anomaly.
SINGLE_ANOMALY_JITTER = 0.05
#: ADBench's synthetic anomaly types and their settings (Han et al., 2022: alpha = 5
#: for local and clustered anomalies, a range widened by 10 % for global ones).
ADBENCH_KINDS = ("local", "global", "dependency", "clustered")
ADBENCH_ALPHA = 5.0
ADBENCH_PERCENTAGE = 0.1
#: The mixture of ``AnomalyGenerator`` kinds the utility study's ``diffusion`` arm draws.
#: The ``diffusion`` arm's kinds and strength, chosen on TUNING_SETS (3 seeds, 5
#: labelled anomalies) as the highest mean AUROC of 16 settings: single kinds at
#: strengths 1-3 and mixtures at 1-3 (:data:`KIND_GRID`, run by ``--kind-grid``;
#: RESULTS_generation.md has the table).
UTILITY_KIND = ("local", "global", "clustered", "fewshot")
UTILITY_STRENGTH = 2.0
UTILITY_ARMS = ("real", "smote", "adbench", "diffusion")
_ALL_TABLE_KINDS = ("local", "global", "dependency", "clustered", "fewshot")
#: The settings ``--kind-grid`` adds as utility arms ``diffusion[<kinds>@<strength>]``
#: (one generator fit per run serves them all): the study UTILITY_KIND and
#: UTILITY_STRENGTH were chosen by.
KIND_GRID = (
    [(("local",), s) for s in (1.0, 2.0, 3.0)] + [(("global",), s) for s in (1.0, 2.0)]
    + [(_ALL_TABLE_KINDS, s) for s in (1.0, 2.0, 3.0)]
    + [(kinds, 2.0) for kinds in (("local", "global"), ("local", "fewshot"),
                                  ("local", "global", "fewshot"),
                                  ("local", "global", "clustered"),
                                  ("local", "global", "clustered", "fewshot"))])


def grid_arm(kinds, strength):
    """The utility arm name of one KIND_GRID setting."""
    return f"diffusion[{'+'.join(kinds)}@{strength:g}]"


def _parse_grid_arm(arm):
    kinds, strength = arm[len("diffusion["):-1].rsplit("@", 1)
    return tuple(kinds.split("+")), float(strength)
#: Generated anomalies of the utility study: normal training rows // 10, at most this.
MAX_SYNTHETIC = 500

STRESS_SETS = ("6_cardio", "30_satellite", "35_SpamBase", "40_vowels")
STRESS_KINDS = ("local", "global", "dependency", "clustered")
STRESS_STRENGTHS = (0.25, 0.5, 1.0, 2.0)
STRESS_DETECTORS = ("Diffusion-nonparametric", "IForest", "KNN", "LOF", "ECOD")
STRESS_N_ANOMALIES = 500
#: The held-out normal rows' score quantile that sets a detector's threshold.
STRESS_QUANTILE = 0.95
#: Rows per ``decision_function`` call of the stress study (see :func:`batched_scores`).
STRESS_BATCH = 50

FIDELITY_COLUMNS = [
    "dataset", "split", "seed", "generator", "c2st_auroc", "wasserstein",
    "wasserstein_floor", "fit_s", "sample_s", "n_fit", "n_heldout", "d", "subsampled",
    "error",
]
UTILITY_COLUMNS = [
    "dataset", "split", "seed", "labelled", "arm", "auroc", "aupr", "gen_s", "fit_s",
    "n_labelled", "n_synth", "n_train", "n_test", "n_test_anomalies", "d", "subsampled",
    "error",
]
STRESS_COLUMNS = [
    "dataset", "split", "seed", "detector", "kind", "strength", "detection_rate", "auroc",
    "fit_s", "gen_fit_s", "gen_s", "n_train", "n_heldout", "n_generated", "d", "subsampled",
    "error",
]
#: Columns of the studies' CSVs read back as text.
TEXT_COLUMNS = ("labelled", "dataset")
_KEYS = {"fidelity": ["dataset", "seed", "generator"],
         "utility": ["dataset", "seed", "labelled", "arm"],
         "stress": ["dataset", "seed", "detector", "kind", "strength"]}


# ---------------------------------------------------------------- datasets
def split_of(name):
    """``"tuning"`` for :data:`TUNING_SETS`, else ``"evaluation"``."""
    return TUNING if name in TUNING_SETS else EVALUATION


def choose_datasets(names, spec=None, split="all"):
    """The sets a run uses, in ``names``' order.

    Parameters
    ----------
    names : list of str
        The sets found (:func:`skdiffad.datasets.list_adbench`).
    spec : str or None, default=None
        Comma list; an entry matches a set by name (case-insensitive), by numeric
        prefix (``"6"`` is ``6_cardio`` only) or, for an entry that is not a number,
        as a substring. ``None`` selects every set but :data:`LARGE_SETS`.
    split : {"all", "tuning", "evaluation"}, default="all"
        Keep only the sets of that split.

    Returns
    -------
    chosen : list of str
    """
    if spec:
        wanted = [w.strip().lower() for w in spec.split(",") if w.strip()]

        def matches(word, name):
            if word.isdigit():
                return name.split("_")[0] == word
            return word == name.lower() or word in name.lower()

        chosen = [n for n in names if any(matches(w, n) for w in wanted)]
        missing = [w for w in wanted if not any(matches(w, n) for n in names)]
        if missing:
            print(f"warning: no dataset matches {missing}", file=sys.stderr, flush=True)
    else:
        chosen = [n for n in names if n not in LARGE_SETS]
    if split != "all":
        chosen = [n for n in chosen if split_of(n) == split]
    return chosen


def _rng(seed, name, purpose):
    """A generator seeded by the seed, the set's name and what it draws for."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode()),
                                  zlib.crc32(purpose.encode())])


def _cap(rows, max_train, rng):
    if max_train is None or len(rows) <= max_train:
        return rows, False
    return np.sort(rng.choice(rows, size=max_train, replace=False)), True


def normal_halves(X_normal, seed, max_train=3000, name=""):
    """Split normal rows at random into a fit half and a held-out half, standardised.

    Each half is capped at ``max_train`` rows (a uniform random subset); both are
    standardised with the fit half's mean and standard deviation.

    Returns
    -------
    halves : dict
        ``X_fit``, ``X_heldout`` and ``subsampled`` (whether a cap cut rows).
    """
    rng = _rng(seed, name, "halves")
    order = rng.permutation(len(X_normal))
    fit, heldout = np.sort(order[: len(order) // 2]), np.sort(order[len(order) // 2:])
    fit, cut_fit = _cap(fit, max_train, rng)
    heldout, cut_heldout = _cap(heldout, max_train, rng)
    X_fit, X_heldout = _standardise(X_normal[fit], X_normal[fit], X_normal[heldout])
    return {"X_fit": X_fit, "X_heldout": X_heldout, "subsampled": cut_fit or cut_heldout}


# ---------------------------------------------------------------- samplers
def fit_bic_gmm(X, random_state=0, max_components=None):
    """A full-covariance Gaussian mixture whose number of components (1 to
    ``max_components``, default :data:`MAX_COMPONENTS`, at most the rows) has the
    lowest BIC on ``X``."""
    max_components = MAX_COMPONENTS if max_components is None else max_components
    best, best_bic = None, np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for k in range(1, min(max_components, len(X)) + 1):
            gmm = GaussianMixture(n_components=k, covariance_type="full", reg_covar=1e-6,
                                  random_state=random_state).fit(X)
            bic = gmm.bic(X)
            if bic < best_bic:
                best, best_bic = gmm, bic
    return best


def sample_mixture(gmm, n, rng, mean_scale=1.0, cov_scale=1.0):
    """Draw ``n`` rows of a fitted full-covariance mixture, in random order, with each
    component's mean moved ``mean_scale`` times as far from the mixture's mean and
    its covariance multiplied by ``cov_scale``."""
    centre = gmm.weights_ @ gmm.means_
    counts = rng.multinomial(n, gmm.weights_)
    parts = [rng.multivariate_normal(centre + mean_scale * (mean - centre), cov_scale * cov,
                                     size=count)
             for mean, cov, count in zip(gmm.means_, gmm.covariances_, counts)]
    return rng.permutation(np.concatenate(parts).reshape(n, gmm.means_.shape[1]))


def smote(X, n, rng, k_neighbors=SMOTE_NEIGHBOURS):
    """``n`` SMOTE rows: a random row of ``X`` moved a fraction u ~ U(0, 1) of the way to
    one of its ``k_neighbors`` nearest other rows (fewer when ``X`` has fewer)."""
    X = np.asarray(X, dtype=np.float64)
    k = min(k_neighbors, len(X) - 1)
    if k < 1:
        raise ValueError(f"SMOTE needs at least 2 rows, got {len(X)}")
    neighbours = NearestNeighbors(n_neighbors=k).fit(X).kneighbors(return_distance=False)
    base = rng.integers(len(X), size=n)
    other = neighbours[base, rng.integers(k, size=n)]
    u = rng.random((n, 1))
    return X[base] + u * (X[other] - X[base])


class GMMSampler:
    """Fidelity baseline ``gmm``: :func:`fit_bic_gmm` on the fitted rows."""

    def __init__(self, random_state=0):
        self.random_state = random_state

    def fit(self, X):
        self.mixture_ = fit_bic_gmm(np.asarray(X, dtype=np.float64), self.random_state)
        return self

    def sample(self, n, random_state=None):
        return sample_mixture(self.mixture_, n, np.random.default_rng(random_state))


class SmoteSampler:
    """Fidelity baseline ``smote``: :func:`smote` between the fitted rows."""

    def fit(self, X):
        self.X_ = np.asarray(X, dtype=np.float64)
        return self

    def sample(self, n, random_state=None):
        return smote(self.X_, n, np.random.default_rng(random_state))


class CopySampler:
    """Fidelity reference ``copy``: the fitted rows themselves, drawn without
    replacement while they last (C2ST's cross-validation would find repeated
    rows: drawn with replacement, copies score about 0.69 on 22_magic.gamma
    against 0.51 for the plain fit half)."""

    def fit(self, X):
        self.X_ = np.asarray(X, dtype=np.float64)
        return self

    def sample(self, n, random_state=None):
        rng = np.random.default_rng(random_state)
        rounds = -(-n // len(self.X_))
        order = np.concatenate([rng.permutation(len(self.X_)) for _ in range(rounds)])
        return self.X_[order[:n]]


def _diffusion_sampler(seed):
    return TabDiffusionDetector(denoiser="mlp", scoring="density",
                                max_steps=DIFFUSION_MAX_STEPS, random_state=seed, device="cpu")


#: The fidelity study's generators: name -> ``make_sampler(seed)``, returning an
#: object with ``fit(X)`` and ``sample(n, random_state)``. Adding one is one line.
GENERATORS = {
    "diffusion": _diffusion_sampler,
    "gmm": lambda seed: GMMSampler(random_state=seed),
    "smote": lambda seed: SmoteSampler(),
    "copy": lambda seed: CopySampler(),
}


def make_anomaly_generator(seed, kind=None, strength=1.0):
    """skdiffad's ``AnomalyGenerator(kind=kind, random_state=seed)``.

    Imported here, at first use, so that a missing or broken
    ``skdiffad.generation`` fails the runs that need it, not the whole script.
    """
    from skdiffad.generation import AnomalyGenerator

    return AnomalyGenerator(kind=kind, strength=strength, random_state=seed)


# ---------------------------------------------------------------- ADBench anomalies
def uniform_box(X, n, rng, percentage=ADBENCH_PERCENTAGE):
    """ADBench's global anomalies: each feature uniform on its range in ``X`` widened by
    ``1 + percentage`` about the feature's mean (ADBench scales min and max by
    ``1 + percentage``, the same on standardised data)."""
    mean = X.mean(axis=0)
    low = mean + (1 + percentage) * (X.min(axis=0) - mean)
    high = mean + (1 + percentage) * (X.max(axis=0) - mean)
    return low + rng.random((n, X.shape[1])) * (high - low)


def independent_marginals(X, n, rng):
    """ADBench's dependency anomalies: each feature drawn on its own from a Gaussian KDE
    of its values in ``X`` (Scott's bandwidth), so the marginals stay and the
    dependence between features goes."""
    bandwidth = X.std(axis=0, ddof=1) * len(X) ** (-1 / 5)
    rows = rng.integers(len(X), size=(n, X.shape[1]))
    return X[rows, np.arange(X.shape[1])] + rng.normal(size=(n, X.shape[1])) * bandwidth


def adbench_anomalies(X_normal, n, kinds=ADBENCH_KINDS, random_state=None,
                      alpha=ADBENCH_ALPHA, percentage=ADBENCH_PERCENTAGE):
    """ADBench's synthetic anomalies (Han et al., NeurIPS 2022) from normal rows.

    As ADBench's ``generate_realistic_synthetic`` draws them, except that global
    anomalies take the range of the normal rows themselves (ADBench: of rows drawn
    from the fitted mixture) and the mixture's components are chosen by BIC over
    1 to :data:`MAX_COMPONENTS` (ADBench: 1 to 9).

    Parameters
    ----------
    X_normal : ndarray of shape (n_samples, n_features)
        Normal rows, standardised (the scalings below are about the mean).
    n : int
        Rows to draw, split as equally as possible between ``kinds``.
    kinds : str or tuple of str, default=ADBENCH_KINDS
        ``"local"``: the BIC-chosen Gaussian mixture of the normal rows with every
        covariance multiplied by ``alpha``; ``"global"``: uniform in the normal
        rows' range widened by ``percentage`` (:func:`uniform_box`);
        ``"dependency"``: features drawn independently from their own KDE
        (:func:`independent_marginals`); ``"clustered"``: the mixture with its
        means moved ``alpha`` times as far from the centre.
    random_state : int or None, default=None
    alpha, percentage : float, default=5.0, 0.1
        ADBench's settings.

    Returns
    -------
    X_anomalies : ndarray of shape (n, n_features), rows in random order.
    """
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    unknown = sorted(set(kinds) - set(ADBENCH_KINDS))
    if unknown:
        raise ValueError(f"unknown ADBench kind(s) {unknown}; choose from {ADBENCH_KINDS}")
    X = np.asarray(X_normal, dtype=np.float64)
    rng = np.random.default_rng(random_state)
    gmm = None
    if {"local", "clustered"} & set(kinds):
        gmm = fit_bic_gmm(X, random_state=int(rng.integers(2**31)))
    parts = []
    for kind, count in zip(kinds, [len(c) for c in np.array_split(np.arange(n), len(kinds))]):
        if kind == "local":
            parts.append(sample_mixture(gmm, count, rng, cov_scale=alpha))
        elif kind == "clustered":
            parts.append(sample_mixture(gmm, count, rng, mean_scale=alpha))
        elif kind == "global":
            parts.append(uniform_box(X, count, rng, percentage))
        else:
            parts.append(independent_marginals(X, count, rng))
    return rng.permutation(np.concatenate(parts))


# ---------------------------------------------------------------- metrics
def c2st_auroc(X_real, X_synthetic, random_state=0, n_splits=5):
    """Classifier two-sample test: mean AUROC over stratified folds of a
    ``HistGradientBoostingClassifier`` telling ``X_synthetic`` from ``X_real``
    (0.5: indistinguishable, 1: always told apart)."""
    X = np.vstack([X_real, X_synthetic])
    y = np.r_[np.zeros(len(X_real)), np.ones(len(X_synthetic))]
    n_splits = min(n_splits, len(X_real), len(X_synthetic))
    if n_splits < 2:
        raise ValueError("C2ST needs at least 2 rows in each sample")
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    classifier = HistGradientBoostingClassifier(random_state=random_state)
    return float(np.mean(cross_val_score(classifier, X, y, cv=folds, scoring="roc_auc")))


def mean_wasserstein(A, B):
    """Mean over columns of the 1-D Wasserstein distance between ``A`` and ``B``."""
    return float(np.mean([wasserstein_distance(a, b) for a, b in zip(A.T, B.T)]))


def _checked_rows(rows, n, d, what):
    rows = np.asarray(rows, dtype=np.float64)
    if rows.shape != (n, d):
        raise ValueError(f"{what} returned shape {rows.shape}, expected {(n, d)}")
    if not np.isfinite(rows).all():
        raise FloatingPointError(f"{what} returned {int((~np.isfinite(rows)).sum())} "
                                 "non-finite values")
    return rows


# ---------------------------------------------------------------- CSV bookkeeping
def read_runs(csv_path):
    """A study's CSV read back: error as str (``""`` for none), labelled as its text."""
    return _common.read_runs(csv_path, TEXT_COLUMNS)


def _key(study, row):
    return tuple(float(row[k]) if k == "strength" else int(row[k]) if k == "seed"
                 else str(row[k]) for k in _KEYS[study])


def _done(study, previous):
    return {_key(study, row) for row in previous.to_dict("records")}


def _collect(rows, previous, columns, datasets, seeds):
    runs = pd.DataFrame(rows, columns=columns)
    if len(previous):
        keep = previous["dataset"].isin(list(datasets)) & previous["seed"].isin(seeds)
        runs = pd.concat([previous[keep], runs], ignore_index=True)
    return runs


def _record(csv_path, row, columns, rows, verbose, label, outcome=""):
    """Keep one finished run, append it to the CSV at once and print a progress line."""
    rows.append(row)
    append_row(csv_path, row, columns)
    if verbose:
        print(f"{label}: " + (f"FAILED {row['error'][:100]}" if row["error"] else outcome),
              flush=True)


def _load(data):
    return data() if callable(data) else data


# ---------------------------------------------------------------- study 1: fidelity
def evaluate_generator(make_sampler, X_fit, X_heldout, seed):
    """Fit one generator on ``X_fit``, draw ``len(X_heldout)`` rows, compare; never raise.

    Returns
    -------
    result : dict
        ``c2st_auroc``, ``wasserstein``, ``fit_s``, ``sample_s`` (NaN where not
        reached) and ``error`` (empty, or ``"ExceptionType: message"``).
    """
    result = {"c2st_auroc": np.nan, "wasserstein": np.nan, "fit_s": np.nan,
              "sample_s": np.nan, "error": ""}
    try:
        sampler = make_sampler(seed)
        start = time.perf_counter()
        sampler.fit(X_fit)
        result["fit_s"] = time.perf_counter() - start
        start = time.perf_counter()
        rows = sampler.sample(len(X_heldout), random_state=seed)
        result["sample_s"] = time.perf_counter() - start
        rows = _checked_rows(rows, len(X_heldout), X_fit.shape[1], "sample")
        result["wasserstein"] = mean_wasserstein(rows, X_heldout)
        result["c2st_auroc"] = c2st_auroc(X_heldout, rows, random_state=seed)
    except Exception as exc:  # noqa: BLE001 - one generator must not end the benchmark
        result["error"] = error_message(exc)
    return result


def run_fidelity(datasets, generators=None, seeds=(0, 1, 2), *, max_train=3000,
                 csv_path=None, resume=False, verbose=True):
    """Run every (dataset, seed, generator) of the fidelity study.

    Parameters
    ----------
    datasets : dict
        Name -> ``(X, y)`` or a zero-argument callable returning it.
    generators : dict or None, default=None
        Name -> ``make_sampler(seed)``; ``None`` is :data:`GENERATORS`.
    seeds : iterable of int
    max_train : int or None, default=3000
        Cap on the rows of each half.
    csv_path : path-like or None
        Append each finished run to this CSV at once.
    resume : bool, default=False
        Keep ``csv_path``'s rows and skip the runs they hold.
    verbose : bool, default=True

    Returns
    -------
    runs : pandas.DataFrame
        Columns :data:`FIDELITY_COLUMNS`, resumed rows of this selection included.
    """
    generators = GENERATORS if generators is None else generators
    seeds = [int(s) for s in seeds]
    csv_path, previous = start_runs_csv(csv_path, resume, FIDELITY_COLUMNS, TEXT_COLUMNS)
    done = _done("fidelity", previous)
    rows = []
    for name, data in datasets.items():
        todo = [(s, g) for s in seeds for g in generators
                if (name, s, g) not in done]
        if not todo:
            continue
        X, y = _load(data)
        X_normal = np.asarray(X, dtype=np.float64)[np.asarray(y) == 0]
        for seed in seeds:
            pending = [g for s, g in todo if s == seed]
            if not pending:
                continue
            halves = normal_halves(X_normal, seed, max_train, name)
            X_fit, X_heldout = halves["X_fit"], halves["X_heldout"]
            floor = mean_wasserstein(X_fit, X_heldout)
            for generator in pending:
                result = evaluate_generator(generators[generator], X_fit, X_heldout, seed)
                row = {"dataset": name, "split": split_of(name), "seed": seed,
                       "generator": generator, **result, "wasserstein_floor": floor,
                       "n_fit": len(X_fit), "n_heldout": len(X_heldout),
                       "d": X_fit.shape[1], "subsampled": halves["subsampled"]}
                _record(csv_path, row, FIDELITY_COLUMNS, rows, verbose,
                        f"fidelity {name} seed={seed} {generator}",
                        f"C2ST={row['c2st_auroc']:.3f} W1={row['wasserstein']:.3f} "
                        f"(floor {floor:.3f}) fit={row['fit_s']:.1f}s "
                        f"sample={row['sample_s']:.1f}s")
    return _collect(rows, previous, FIDELITY_COLUMNS, datasets, seeds)


# ---------------------------------------------------------------- study 2: utility
def labelled_count(labelled, n_available):
    """Anomalies to keep labelled: ``labelled`` itself for a whole number (at most
    ``n_available``), else that fraction of ``n_available``, rounded down, at least 1."""
    if n_available < 1:
        raise ValueError("the training split holds no anomaly to label")
    text = str(labelled).strip()
    if text.isdigit():
        count = int(text)
    else:
        fraction = float(text)
        if not 0 < fraction < 1:
            raise ValueError(f"labelled must be a count or a fraction in (0, 1), got {text!r}")
        count = int(fraction * n_available)
    return max(1, min(count, n_available))


def weakly_supervised_split(X, y, labelled, random_state, test_size=0.3, max_train=None):
    """ADBench's weakly supervised split: few labelled anomalies, the rest dropped.

    The rows are split ``1 - test_size`` / ``test_size`` stratified by ``y``
    (``random_state`` seeds it). The training set keeps :func:`labelled_count`
    of its anomalies, chosen at random, and drops the others (normal rows keep
    label 0); its normal rows are capped at ``max_train`` (a random subset). Both
    sets are standardised with the kept normal training rows' statistics.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        1 = anomaly.
    labelled : int, float or str
        A count (``5``, ``"5"``) or a fraction of the training anomalies (``0.01``).
    random_state : int
    test_size : float, default=0.3
    max_train : int or None, default=None

    Returns
    -------
    split : dict
        ``X_train`` and ``y_train`` (the kept normal rows and labelled anomalies,
        in their order in ``X``), ``X_test``, ``y_test``, ``n_labelled``,
        ``n_dropped`` and ``subsampled``.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y).astype(int).ravel()
    train, test = train_test_split(np.arange(len(y)), test_size=test_size, stratify=y,
                                   random_state=random_state)
    rng = np.random.default_rng(random_state)
    anomalies = train[y[train] == 1]
    count = labelled_count(labelled, len(anomalies))
    kept_anomalies = rng.choice(anomalies, size=count, replace=False)
    normal, subsampled = _cap(np.sort(train[y[train] == 0]), max_train, rng)
    keep = np.sort(np.concatenate([normal, kept_anomalies]))
    X_train, X_test = _standardise(X[normal], X[keep], X[test])
    return {"X_train": X_train, "y_train": y[keep], "X_test": X_test, "y_test": y[test],
            "n_labelled": count, "n_dropped": len(anomalies) - count,
            "subsampled": subsampled}


def n_synthetic(n_normal):
    """Generated anomalies of the utility study: ``n_normal // 10``, in [1, 500]."""
    return max(1, min(MAX_SYNTHETIC, n_normal // 10))


def smote_anomalies(X_anomalies, n, rng, jitter=SINGLE_ANOMALY_JITTER):
    """SMOTE between labelled anomalies; around a single one, Gaussian jitter of ``jitter``."""
    X_anomalies = np.asarray(X_anomalies, dtype=np.float64)
    if len(X_anomalies) == 1:
        return X_anomalies[0] + jitter * rng.normal(size=(n, X_anomalies.shape[1]))
    return smote(X_anomalies, n, rng)


def synthetic_anomalies(arm, X_normal, X_labelled, n, seed):
    """The ``n`` anomalies one utility arm adds to the labelled training rows."""
    if arm == "real":
        return np.empty((0, X_normal.shape[1]))
    if arm == "smote":
        return smote_anomalies(X_labelled, n, np.random.default_rng(seed))
    if arm == "adbench":
        return adbench_anomalies(X_normal, n, random_state=seed)
    if arm == "diffusion" or arm.startswith("diffusion["):
        kind, strength = ((UTILITY_KIND, UTILITY_STRENGTH) if arm == "diffusion"
                          else _parse_grid_arm(arm))
        generator = _fitted_generator(X_normal, X_labelled, seed)
        rows, _ = generator.generate(n, kind=kind, strength=strength)
        return rows
    raise ValueError(f"unknown arm {arm!r}; choose from {UTILITY_ARMS} or a grid arm")


_GENERATOR_CACHE = {}


def _fitted_generator(X_normal, X_labelled, seed):
    """``AnomalyGenerator`` fitted on these rows, reused by the arms of one run
    (only the last run's generator is kept)."""
    key = (seed, hashlib.sha1(np.ascontiguousarray(X_normal).tobytes()).hexdigest(),
           hashlib.sha1(np.ascontiguousarray(X_labelled).tobytes()).hexdigest())
    if key not in _GENERATOR_CACHE:
        _GENERATOR_CACHE.clear()
        generator = make_anomaly_generator(seed, kind=UTILITY_KIND, strength=UTILITY_STRENGTH)
        _GENERATOR_CACHE[key] = generator.fit(X_normal, anomalies=X_labelled)
    return _GENERATOR_CACHE[key]


def evaluate_arm(arm, split, n_synth, seed):
    """Train the classifier of one utility arm and score the real test rows; never raise.

    Returns
    -------
    result : dict
        ``auroc``, ``aupr``, ``gen_s``, ``fit_s`` (NaN where not reached), ``error``.
    """
    result = {"auroc": np.nan, "aupr": np.nan, "gen_s": np.nan, "fit_s": np.nan, "error": ""}
    X_train, y_train = split["X_train"], split["y_train"]
    try:
        start = time.perf_counter()
        extra = synthetic_anomalies(arm, X_train[y_train == 0], X_train[y_train == 1],
                                    n_synth, seed)
        result["gen_s"] = time.perf_counter() - start
        count = 0 if arm == "real" else n_synth
        extra = _checked_rows(extra, count, X_train.shape[1], f"the {arm} generator")
        X_fit = np.vstack([X_train, extra])
        y_fit = np.r_[y_train, np.ones(count, dtype=int)]
        start = time.perf_counter()
        classifier = HistGradientBoostingClassifier(random_state=seed).fit(X_fit, y_fit)
        result["fit_s"] = time.perf_counter() - start
        proba = classifier.predict_proba(split["X_test"])[:, 1]
        result["auroc"] = roc_auc_score(split["y_test"], proba)
        result["aupr"] = average_precision_score(split["y_test"], proba)
    except Exception as exc:  # noqa: BLE001 - one arm must not end the benchmark
        result["error"] = error_message(exc)
    return result


def run_utility(datasets, labelled=("5", "0.01"), arms=UTILITY_ARMS, seeds=(0, 1, 2), *,
                max_train=3000, csv_path=None, resume=False, verbose=True):
    """Run every (dataset, seed, labelled, arm) of the utility study.

    Parameters as :func:`run_fidelity`, and ``labelled`` (entries of ``--labelled``,
    see :func:`labelled_count`) and ``arms`` (of :data:`UTILITY_ARMS`).

    Returns
    -------
    runs : pandas.DataFrame
        Columns :data:`UTILITY_COLUMNS`.
    """
    labelled = [str(spec).strip() for spec in labelled]
    seeds = [int(s) for s in seeds]
    csv_path, previous = start_runs_csv(csv_path, resume, UTILITY_COLUMNS, TEXT_COLUMNS)
    done = _done("utility", previous)
    rows = []
    for name, data in datasets.items():
        todo = [(s, spec, a) for s in seeds for spec in labelled for a in arms
                if (name, s, spec, a) not in done]
        if not todo:
            continue
        X, y = _load(data)
        for seed, spec in dict.fromkeys((s, spec) for s, spec, _ in todo):
            pending = [a for s, sp, a in todo if (s, sp) == (seed, spec)]
            base = {"dataset": name, "split": split_of(name), "seed": seed,
                    "labelled": spec, "d": np.shape(X)[1]}
            try:
                split = weakly_supervised_split(X, y, spec, seed, max_train=max_train)
            except Exception as exc:  # noqa: BLE001 - a set that cannot be split is a failed run
                for arm in pending:
                    row = dict.fromkeys(UTILITY_COLUMNS, np.nan) | base | {
                        "arm": arm, "subsampled": False, "error": error_message(exc)}
                    _record(csv_path, row, UTILITY_COLUMNS, rows, verbose,
                            f"utility {name} seed={seed} labelled={spec} {arm}")
                continue
            n_normal = int((split["y_train"] == 0).sum())
            n_synth = n_synthetic(n_normal)
            for arm in pending:
                result = evaluate_arm(arm, split, n_synth, seed)
                row = base | {"arm": arm, **result, "n_labelled": split["n_labelled"],
                              "n_synth": 0 if arm == "real" else n_synth,
                              "n_train": len(split["y_train"]),
                              "n_test": len(split["y_test"]),
                              "n_test_anomalies": int(split["y_test"].sum()),
                              "subsampled": split["subsampled"]}
                _record(csv_path, row, UTILITY_COLUMNS, rows, verbose,
                        f"utility {name} seed={seed} labelled={spec} "
                        f"(n={split['n_labelled']}) {arm}", f"AUROC={row['auroc']:.3f} "
                        f"AUPR={row['aupr']:.3f} gen={row['gen_s']:.1f}s")
    return _collect(rows, previous, UTILITY_COLUMNS, datasets, seeds)


# ---------------------------------------------------------------- study 3: stress
def _generate_stress_sets(X_fit, seed, cells):
    """(kind, strength) -> (rows or None, error text, generator fit s, generate s),
    from one ``AnomalyGenerator`` fitted on ``X_fit``."""
    try:
        start = time.perf_counter()
        generator = make_anomaly_generator(seed)
        generator.fit(X_fit)
        fit_s = time.perf_counter() - start
    except Exception as exc:  # noqa: BLE001 - a failed generator is a failed run
        return {cell: (None, f"generator fit: {error_message(exc)}", np.nan, np.nan)
                for cell in cells}
    sets = {}
    for kind, strength in cells:
        try:
            start = time.perf_counter()
            rows, _ = generator.generate(STRESS_N_ANOMALIES, kind=kind, strength=strength)
            gen_s = time.perf_counter() - start
            rows = _checked_rows(rows, STRESS_N_ANOMALIES, X_fit.shape[1], "generate")
            sets[kind, strength] = (rows, "", fit_s, gen_s)
        except Exception as exc:  # noqa: BLE001
            sets[kind, strength] = (None, f"generate: {error_message(exc)}", fit_s, np.nan)
    return sets


def _fit_detector(make_detector, X_fit, seed, device):
    start = time.perf_counter()
    detector = make_detector(seed, X_fit.shape[1], device)
    detector.fit(X_fit)
    return detector, time.perf_counter() - start


def batched_scores(detector, X, batch_size=None):
    """A fitted detector's scores of ``X``, asked for ``batch_size`` rows at a time
    (default :data:`STRESS_BATCH`).

    ECOD and COPOD rank a batch against the training rows *and the batch itself*, so
    hundreds of generated anomalies scored at once would hide one another; in small
    batches each row is scored much as it would be alone. Other detectors score a
    row the same in any batch.
    """
    batch_size = STRESS_BATCH if batch_size is None else batch_size
    scores = np.concatenate([
        np.asarray(detector.decision_function(X[i:i + batch_size]), dtype=np.float64)
        for i in range(0, len(X), batch_size)])
    if not np.isfinite(scores).all():
        raise FloatingPointError(f"{int((~np.isfinite(scores)).sum())} non-finite scores")
    return scores


def stress_metrics(normal_scores, generated_scores, quantile=STRESS_QUANTILE):
    """Detection rate (share of generated rows scored above the ``quantile`` of the
    held-out normal rows' scores) and AUROC (normal rows 0, generated rows 1)."""
    threshold = np.quantile(normal_scores, quantile)
    labels = np.r_[np.zeros(len(normal_scores)), np.ones(len(generated_scores))]
    return (float(np.mean(generated_scores > threshold)),
            float(roc_auc_score(labels, np.r_[normal_scores, generated_scores])))


def run_stress(datasets, detectors=None, seeds=(0,), *, kinds=STRESS_KINDS,
               strengths=STRESS_STRENGTHS, max_train=3000, device="auto", csv_path=None,
               resume=False, verbose=True, warm=True):
    """Run every (dataset, seed, detector, kind, strength) of the stress study.

    Parameters
    ----------
    datasets : dict
        Name -> ``(X, y)`` or a zero-argument callable returning it.
    detectors : dict or None, default=None
        Name -> ``factory(seed, n_features, device)`` (as
        :data:`benchmarks.tabular.DETECTORS`); ``None``: :data:`STRESS_DETECTORS`.
    seeds : iterable of int
    kinds, strengths : tuples
        The ``AnomalyGenerator`` kinds and strengths drawn.
    max_train, csv_path, resume, verbose
        As :func:`run_fidelity`.
    device : str, default="auto"
        Passed to the detector factories.
    warm : bool, default=True
        Call :func:`benchmarks.tabular.warm_up` before the first fit.

    Returns
    -------
    runs : pandas.DataFrame
        Columns :data:`STRESS_COLUMNS`.
    """
    if detectors is None:
        detectors = select_detectors(list(STRESS_DETECTORS))
    seeds = [int(s) for s in seeds]
    strengths = [float(s) for s in strengths]
    csv_path, previous = start_runs_csv(csv_path, resume, STRESS_COLUMNS, TEXT_COLUMNS)
    done = _done("stress", previous)
    rows = []
    for name, data in datasets.items():
        todo = [(s, det, k, st) for s in seeds for det in detectors for k in kinds
                for st in strengths if (name, s, det, k, st) not in done]
        if not todo:
            continue
        if warm:
            warm_up(detectors, device)
            warm = False
        X, y = _load(data)
        X_normal = np.asarray(X, dtype=np.float64)[np.asarray(y) == 0]
        for seed in seeds:
            pending = [t for t in todo if t[0] == seed]
            if not pending:
                continue
            halves = normal_halves(X_normal, seed, max_train, name)
            X_fit, X_heldout = halves["X_fit"], halves["X_heldout"]
            cells = list(dict.fromkeys((k, st) for _, _, k, st in pending))
            sets = _generate_stress_sets(X_fit, seed, cells)
            for detector in dict.fromkeys(det for _, det, _, _ in pending):
                fitted, fit_error, fit_s = None, "", np.nan
                try:
                    fitted, fit_s = _fit_detector(detectors[detector], X_fit, seed, device)
                    normal = batched_scores(fitted, X_heldout)
                except Exception as exc:  # noqa: BLE001 - one detector must not end the run
                    fit_error = f"detector: {error_message(exc)}"
                for _, _, kind, strength in [t for t in pending if t[1] == detector]:
                    generated, error, gen_fit_s, gen_s = sets[kind, strength]
                    row = {"dataset": name, "split": split_of(name), "seed": seed,
                           "detector": detector, "kind": kind, "strength": strength,
                           "detection_rate": np.nan, "auroc": np.nan, "fit_s": fit_s,
                           "gen_fit_s": gen_fit_s, "gen_s": gen_s, "n_train": len(X_fit),
                           "n_heldout": len(X_heldout), "n_generated": STRESS_N_ANOMALIES,
                           "d": X_fit.shape[1], "subsampled": halves["subsampled"],
                           "error": error or fit_error}
                    if not row["error"]:
                        try:
                            row["detection_rate"], row["auroc"] = stress_metrics(
                                normal, batched_scores(fitted, generated))
                        except Exception as exc:  # noqa: BLE001
                            row["error"] = f"detector: {error_message(exc)}"
                    _record(csv_path, row, STRESS_COLUMNS, rows, verbose,
                            f"stress {name} seed={seed} {detector} {kind} x{strength:g}",
                            f"detected={row['detection_rate']:.3f} "
                            f"AUROC={row['auroc']:.3f}")
    return _collect(rows, previous, STRESS_COLUMNS, datasets, seeds)


# ---------------------------------------------------------------- summary
def _ordered(names, order):
    return [n for n in order if n in set(names)] + sorted(set(names) - set(order))


def _splits(runs):
    return [s for s in (TUNING, EVALUATION) if s in set(runs["split"])]


def fidelity_tables(runs):
    """Per split: (per-dataset mean C2ST table, per-generator overview, diffusion-vs-GMM line)."""
    tables = {}
    for split in _splits(runs):
        part = runs[runs["split"] == split]
        generators = _ordered(part["generator"], list(GENERATORS))
        c2st = part.pivot_table(index="dataset", columns="generator", values="c2st_auroc",
                                aggfunc="mean", dropna=False)
        c2st = c2st.reindex(index=dataset_order(c2st.index), columns=generators)
        w1 = part.pivot_table(index="dataset", columns="generator", values="wasserstein",
                              aggfunc="mean", dropna=False).reindex(columns=generators)
        per_dataset = c2st.copy()
        per_dataset.loc["mean"] = c2st.mean()
        by = part.groupby("generator")
        overview = pd.DataFrame({
            "mean C2ST": c2st.mean(), "mean W1": w1.mean(),
            "median fit s": by["fit_s"].median(), "median sample s": by["sample_s"].median(),
            "datasets": c2st.notna().sum(),
            "failures": by["error"].apply(lambda e: int((e != "").sum())),
        }).reindex(generators)
        overview.loc["(fit half: W1 floor)"] = [
            np.nan, part.groupby("dataset")["wasserstein_floor"].mean().mean(),
            np.nan, np.nan, part["dataset"].nunique(), 0]
        overview = overview.astype({"datasets": int, "failures": int})
        tables[split] = (per_dataset, overview, diffusion_vs_gmm(part))
    return tables


def diffusion_vs_gmm(runs):
    """The fidelity target's line: on how many sets diffusion's mean C2ST is below GMM's."""
    c2st = runs.pivot_table(index="dataset", columns="generator", values="c2st_auroc",
                            aggfunc="mean")
    if not {"diffusion", "gmm"} <= set(c2st.columns):
        return "diffusion vs gmm: not both run"
    both = c2st[["diffusion", "gmm"]].dropna()
    wins, total = int((both["diffusion"] < both["gmm"]).sum()), len(both)
    met = total > 0 and wins * 3 >= 2 * total
    return (f"diffusion's C2ST below GMM's on **{wins}/{total}** sets "
            f"(target >= 2/3: {'met' if met else 'not met'})")


def utility_tables(runs):
    """Per split: (mean AUROC / AUPR by labelled x arm, diffusion's wins, per-dataset AUROC)."""
    tables = {}
    for split in _splits(runs):
        part = runs[runs["split"] == split]
        grid = part[part["arm"].str.startswith("diffusion[")]
        part = part[~part["arm"].str.startswith("diffusion[")]
        arms = _ordered(part["arm"], list(UTILITY_ARMS))
        specs = sorted(set(part["labelled"]), key=_labelled_order)
        per_set = part.groupby(["labelled", "dataset", "arm"])[["auroc", "aupr"]].mean()
        means = per_set.groupby(["labelled", "arm"]).mean().unstack("arm")
        means = pd.concat({m: means[m.lower()].reindex(index=specs, columns=arms)
                           for m in ("AUROC", "AUPR")}, axis=1)
        means.columns = [f"{m} {a}" for m, a in means.columns]
        wins = pd.DataFrame(index=specs)
        if "diffusion" in arms:
            for other in [a for a in arms if a != "diffusion"]:
                for metric in ("auroc", "aupr"):
                    table = per_set[metric].unstack("arm")[["diffusion", other]].dropna()
                    beats = (table["diffusion"] > table[other]).groupby(level="labelled")
                    wins[f"{metric.upper()} vs {other}"] = [
                        f"{int(beats.sum().get(spec, 0))}/{int(beats.size().get(spec, 0))}"
                        for spec in specs]
        auroc = part.pivot_table(index="dataset", columns=["labelled", "arm"], values="auroc",
                                 aggfunc="mean", dropna=False)
        auroc = auroc.reindex(index=dataset_order(auroc.index))
        auroc = auroc[[(spec, a) for spec in specs for a in arms
                       if (spec, a) in auroc.columns]]
        auroc.columns = [f"{a} @{spec}" for spec, a in auroc.columns]
        grid_means = None
        if len(grid):
            both = pd.concat([part, grid])
            per_arm = both.groupby(["labelled", "dataset", "arm"])[["auroc", "aupr"]].mean()
            grid_means = per_arm.groupby(["labelled", "arm"]).mean().round(3)
            grid_means = grid_means.reset_index().sort_values(["labelled", "auroc"])
            grid_means = grid_means.set_index(["labelled", "arm"])
            grid_means.columns = ["mean AUROC", "mean AUPR"]
        tables[split] = (means, wins, auroc, grid_means)
    return tables


def _labelled_order(spec):
    return (0, int(spec)) if str(spec).isdigit() else (1, float(spec))


def stress_tables(runs):
    """(mean detection rate, mean AUROC) by kind / detector (rows) and strength (columns)."""
    runs = runs.assign(row=runs["kind"] + " / " + runs["detector"])
    order = [f"{k} / {d}" for k in _ordered(runs["kind"], list(STRESS_KINDS))
             for d in _ordered(runs["detector"], list(STRESS_DETECTORS))]
    out = []
    for metric in ("detection_rate", "auroc"):
        table = runs.pivot_table(index="row", columns="strength", values=metric,
                                 aggfunc="mean", dropna=False)
        table = table.reindex(index=[r for r in order if r in table.index])
        table.columns = [f"x{s:g}" for s in table.columns]
        out.append(table)
    return tuple(out)


def _failures(runs, name_column):
    failed = runs[runs["error"] != ""]
    lines = []
    for (name, error), group in failed.groupby([name_column, "error"]):
        sets = ", ".join(dataset_order(group["dataset"]))
        lines.append(f"- {name} ({len(group)} runs; {sets}): {error}")
    return lines


def _subsampled_line(runs):
    sets = dataset_order(runs.loc[runs["subsampled"].astype(bool), "dataset"])
    return ("Training rows subsampled (cap of --max-train) on: " + ", ".join(sets)) if sets \
        else "No set needed subsampling."


def summarise(fidelity=None, utility=None, stress=None, notes=()):
    """Markdown summary of the studies' runs (any of them may be None or empty)."""
    splits = (f"- Tuning split (defaults chosen here only): {', '.join(TUNING_SETS)}; every "
              "other set is the evaluation split. Per-set numbers are means over seeds.")
    lines = [*summary_lines("Anomaly generation benchmark", notes), splits, ""]
    if fidelity is not None and len(fidelity):
        fidelity = fidelity.assign(error=error_text(fidelity["error"]))
        about = ("C2ST: cross-validated AUROC of a gradient-boosted classifier telling "
                 "generated from held-out real normal rows (0.5 = indistinguishable; "
                 "`copy` re-draws real fit rows: the memorisation reference). W1: mean "
                 "per-column Wasserstein distance, standardised units.")
        lines += ["## Fidelity: generated vs held-out normal rows", "", about, "",
                  _subsampled_line(fidelity), "",
                  f"All sets: {diffusion_vs_gmm(fidelity)}.", ""]
        for split, (per_dataset, overview, line) in fidelity_tables(fidelity).items():
            lines += [f"### {split.capitalize()} split", "", f"{line}.", "",
                      markdown_table(overview, "generator"), "",
                      "Mean C2ST per set:", "", markdown_table(per_dataset, "dataset"), ""]
        lines += _failure_section(fidelity, "generator")
    if utility is not None and len(utility):
        utility = utility.assign(error=error_text(utility["error"]),
                                 labelled=utility["labelled"].astype(str))
        about = ("HistGradientBoostingClassifier on the labelled training rows (`real`) "
                 "plus generated anomalies (`smote`, `adbench`, `diffusion` with kind "
                 f"{UTILITY_KIND} at strength {UTILITY_STRENGTH:g}); test AUROC / AUPR on "
                 "real rows. `labelled`: a count, "
                 "or a fraction of the training anomalies.")
        lines += ["## Utility: a classifier with few labelled anomalies", "", about, "",
                  _subsampled_line(utility), ""]
        for split, (means, wins, auroc, grid) in utility_tables(utility).items():
            lines += [f"### {split.capitalize()} split", "",
                      markdown_table(means, "labelled"), "",
                      "Sets where `diffusion` beats each other arm:", "",
                      markdown_table(wins, "labelled"), "",
                      "AUROC per set:", "", markdown_table(auroc, "dataset"), ""]
            if grid is not None:
                lines += ["Kind grid (`--kind-grid`), mean over sets, lowest AUROC first:",
                          "", markdown_table(grid.reset_index("labelled"), "arm"), ""]
        lines += _failure_section(utility, "arm")
    if stress is not None and len(stress):
        stress = stress.assign(error=error_text(stress["error"]))
        detection, auroc = stress_tables(stress)
        sets = ", ".join(dataset_order(stress["dataset"]))
        about = (f"Sets: {sets}. Detection rate: share of {int(stress['n_generated'].max())} "
                 f"generated anomalies scored above the {STRESS_QUANTILE:.0%} quantile of "
                 f"the held-out normal rows' scores (chance: {1 - STRESS_QUANTILE:.2f}); "
                 f"columns: generator strength. Figure: `{STRESS_PNG}`.")
        lines += ["## Stress: how often detectors catch generated anomalies", "", about, "",
                  markdown_table(detection, "kind / detector"), "",
                  "AUROC, held-out normal rows vs generated anomalies:", "",
                  markdown_table(auroc, "kind / detector"), ""]
        lines += _failure_section(stress, "detector")
    return "\n".join(lines)


def _failure_section(runs, name_column):
    failures = _failures(runs, name_column)
    return ["#### Failures", "", *failures, ""] if failures else []


def plot_stress(runs, path):
    """Detection rate against strength, one panel per kind, a line per detector
    (means over sets and seeds); the dotted line is the false-alarm rate."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = _ordered(runs["kind"], list(STRESS_KINDS))
    detectors = _ordered(runs["detector"], list(STRESS_DETECTORS))
    fig, axes = plt.subplots(1, len(kinds), squeeze=False, sharey=True,
                             figsize=(3.6 * len(kinds), 3.4))
    strengths = sorted(runs["strength"].unique())
    for ax, kind in zip(axes[0], kinds):
        part = runs[runs["kind"] == kind]
        for detector in detectors:
            curve = (part[part["detector"] == detector].groupby("strength")["detection_rate"]
                     .mean().dropna())
            if len(curve):
                ax.plot(curve.index, curve.to_numpy(), marker="o", label=detector)
        if part["detection_rate"].isna().all():
            ax.text(0.5, 0.5, "no results", ha="center", transform=ax.transAxes)
        ax.axhline(1 - STRESS_QUANTILE, color="grey", linestyle=":", linewidth=1)
        ax.set_xscale("log", base=2)
        ax.set_xlim(strengths[0] / 1.4, strengths[-1] * 1.4)
        ax.set_xticks(strengths, [f"{s:g}" for s in strengths])
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(kind)
        ax.set_xlabel("strength")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("detection rate")
    legend = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    if legend:
        fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=len(legend),
                   fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_summary(out, notes=()):
    """Rewrite ``generation_summary.md`` (and the stress figure) from every study CSV in ``out``."""
    out = Path(out)
    runs = {}
    for study, name in zip(STUDIES, (FIDELITY_CSV, UTILITY_CSV, STRESS_CSV)):
        path = out / name
        runs[study] = read_runs(path) if path.exists() and path.stat().st_size else None
    text = summarise(runs["fidelity"], runs["utility"], runs["stress"], notes=notes)
    (out / SUMMARY_MD).write_text(text + "\n")
    if runs["stress"] is not None and len(runs["stress"]):
        plot_stress(runs["stress"], out / STRESS_PNG)
    return text


# ---------------------------------------------------------------- command line
def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.generation",
        description="What generated tabular rows are worth: fidelity, utility, stress.")
    parser.add_argument("--studies", default=",".join(STUDIES),
                        help="comma list of fidelity, utility, stress (default: all)")
    parser.add_argument("--datasets", default=None,
                        help="comma list of names, numeric prefixes or substrings "
                             "(default: every set of the split but the > 100k-row ones)")
    parser.add_argument("--split", choices=("tuning", "evaluation", "all"), default="all",
                        help="run the tuning sets, the evaluation sets or both "
                             "(default: %(default)s)")
    parser.add_argument("--seeds", default="0,1,2", help="comma list (default: %(default)s)")
    parser.add_argument("--labelled", default="5,0.01",
                        help="utility: labelled anomalies, counts or fractions of the "
                             "training anomalies (default: %(default)s)")
    parser.add_argument("--kind-grid", action="store_true",
                        help="utility: also run every setting of KIND_GRID as an arm")
    parser.add_argument("--generators", default=None,
                        help=f"fidelity: comma list of {', '.join(GENERATORS)} (default: all)")
    parser.add_argument("--detectors", default=None,
                        help="stress: comma list of benchmarks.tabular detectors "
                             f"(default: {','.join(STRESS_DETECTORS)})")
    parser.add_argument("--max-train", type=int, default=3000,
                        help="cap on normal training rows, a seeded random subset "
                             "(default: %(default)s)")
    add_run_arguments(parser, devices="the stress study's detectors",
                      out=RESULTS_DIR / "generation")
    parser.add_argument("--resume", action="store_true",
                        help="keep the studies' CSVs in --out and skip the runs they hold")
    args = parser.parse_args(argv)
    args.studies = [s.strip() for s in args.studies.split(",") if s.strip()]
    unknown = sorted(set(args.studies) - set(STUDIES))
    if unknown:
        parser.error(f"unknown studies {unknown}; choose from {', '.join(STUDIES)}")
    return args


def main(argv=None):
    """Command-line entry point; see ``python -m benchmarks.generation --help``."""
    args = _parse_args(argv)
    set_threads(args.threads)
    data_dir = resolve_data_dir(args.data_dir)
    chosen = choose_datasets(adbench_names(data_dir), args.datasets, args.split)
    if not chosen:
        raise SystemExit("no dataset selected")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    out = Path(args.out)

    def loaders(selected):
        return {name: (lambda n=name: load_adbench(n, data_dir)) for name in selected}

    print(f"normal training rows capped at {args.max_train} per set (seeded random "
          f"subset); sets: {', '.join(chosen)}", flush=True)
    start = time.perf_counter()
    if "fidelity" in args.studies:
        generators = select_from(GENERATORS, args.generators)
        run_fidelity(loaders(chosen), generators, seeds, max_train=args.max_train,
                     csv_path=results_csv(out, FIDELITY_CSV, args.resume), resume=args.resume)
    if "utility" in args.studies:
        labelled = [s.strip() for s in args.labelled.split(",") if s.strip()]
        arms = UTILITY_ARMS + (tuple(grid_arm(k, st) for k, st in KIND_GRID)
                               if args.kind_grid else ())
        run_utility(loaders(chosen), labelled, arms=arms, seeds=seeds, max_train=args.max_train,
                    csv_path=results_csv(out, UTILITY_CSV, args.resume), resume=args.resume)
    if "stress" in args.studies:
        stress_sets = chosen if args.datasets else [n for n in chosen if n in STRESS_SETS]
        detectors = select_detectors(args.detectors or list(STRESS_DETECTORS))
        run_stress(loaders(stress_sets), detectors, seeds, max_train=args.max_train,
                   device=args.device, csv_path=results_csv(out, STRESS_CSV, args.resume),
                   resume=args.resume)
    elapsed = time.perf_counter() - start
    data_line = (f"Data: {data_dir / 'tabular' / 'adbench'}; normal training rows capped "
                 f"at {args.max_train} per set (a seeded random subset).")
    notes = [*environment_notes(command_line("benchmarks.generation", argv), args.threads,
                                args.device),
             data_line,
             f"Wall time of the last invocation: {elapsed_text(elapsed)}."]
    text = write_summary(out, notes)
    print("\n" + text, flush=True)
    print(f"\nwrote {out / SUMMARY_MD}", flush=True)
    return text


if __name__ == "__main__":
    main()
