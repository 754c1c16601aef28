"""Benchmark data loaders and small generators of data with planted anomalies.

The loaders read the ADBench ``.npz`` files and the NAB, SKAB and SMAP/MSL time
series described in the project's data README (label 1 = anomaly, 0 = normal);
the project ships no third-party data, so they look in a data directory the user
names (``SKDIFFAD_DATA``) or next to the checkout. :func:`make_tabular_anomalies`
and :func:`make_timeseries_anomalies` need no data at all and are what the tests,
the examples and the demo use.

Only numpy and pandas are needed here: this module must stay importable without
touching torch.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "default_data_dir",
    "list_adbench",
    "load_adbench",
    "semi_supervised_split",
    "make_tabular_anomalies",
    "list_timeseries",
    "load_timeseries",
    "make_timeseries_anomalies",
]

DATA_ENV_VAR = "SKDIFFAD_DATA"
_ADBENCH_SUBDIR = Path("tabular") / "adbench"
_GENERATOR_KINDS = ("clusters", "local", "dependency")
_CATEGORY_LEVELS = ("red", "green", "blue", "violet")
_SITE_LEVELS = ("north", "south", "east")


# --------------------------------------------------------------------- loaders
def default_data_dir() -> Path:
    """Directory that holds the benchmark data.

    The first of these that applies:

    1. the environment variable ``SKDIFFAD_DATA``, when it is set (even if the
       directory does not exist, so a typo shows up as a clear error later);
    2. ``../shared/data`` relative to the current working directory, when it exists;
    3. ``../shared/data`` relative to the repository root (the directory that holds
       the ``skdiffad`` package), returned whether or not it exists.

    Returns
    -------
    path : pathlib.Path
        The data directory; it may not exist.

    Examples
    --------
    >>> from skdiffad.datasets import default_data_dir
    >>> default_data_dir().name
    'data'
    """
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        return Path(env).expanduser()
    from_cwd = Path.cwd().parent / "shared" / "data"
    if from_cwd.is_dir():
        return from_cwd
    repo_root = Path(__file__).resolve().parent.parent
    return repo_root.parent / "shared" / "data"


def _adbench_dir(data_dir) -> Path:
    root = default_data_dir() if data_dir is None else Path(data_dir).expanduser()
    return root / _ADBENCH_SUBDIR


def _numeric_prefix(name: str):
    match = re.match(r"(\d+)_", name)
    return (int(match.group(1)) if match else float("inf"), name)


def list_adbench(data_dir=None) -> list[str]:
    """Names of the ADBench datasets found in ``<data_dir>/tabular/adbench``.

    Parameters
    ----------
    data_dir : str or path-like, default=None
        The data root; ``None`` uses :func:`default_data_dir`.

    Returns
    -------
    names : list of str
        File stems such as ``"4_breastw"``, sorted by their numeric prefix (ADBench's
        numbering). Empty when the directory does not exist.

    Examples
    --------
    >>> from skdiffad.datasets import list_adbench
    >>> names = list_adbench()  # doctest: +SKIP
    >>> names[:3]  # doctest: +SKIP
    ['1_ALOI', '4_breastw', '6_cardio']
    """
    folder = _adbench_dir(data_dir)
    if not folder.is_dir():
        return []
    return sorted((p.stem for p in folder.glob("*.npz")), key=_numeric_prefix)


def load_adbench(name: str, data_dir=None):
    """Load one ADBench dataset.

    Parameters
    ----------
    name : str
        The file stem, e.g. ``"6_cardio"`` (a trailing ``.npz`` is accepted).
    data_dir : str or path-like, default=None
        The data root; ``None`` uses :func:`default_data_dir`.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64
        The features.
    y : ndarray of shape (n_samples,), int
        Labels, 1 = anomaly, 0 = normal.

    Raises
    ------
    FileNotFoundError
        When the file is missing; the message names the path looked at and the
        ``SKDIFFAD_DATA`` environment variable that points elsewhere.

    Examples
    --------
    >>> from skdiffad.datasets import load_adbench
    >>> X, y = load_adbench("4_breastw")  # doctest: +SKIP
    >>> X.shape, int(y.sum())  # doctest: +SKIP
    ((683, 9), 239)
    """
    name = name[:-4] if name.endswith(".npz") else name
    path = _adbench_dir(data_dir) / f"{name}.npz"
    if not path.is_file():
        raise FileNotFoundError(
            f"ADBench dataset {name!r} not found at {path}. Pass data_dir=..., or set "
            f"the {DATA_ENV_VAR} environment variable to the directory that holds "
            f"{_ADBENCH_SUBDIR}/ (see the project's data README)."
        )
    with np.load(path, allow_pickle=False) as archive:
        X = np.asarray(archive["X"], dtype=np.float64)
        y = np.asarray(archive["y"]).astype(int).ravel()
    return X, y


def semi_supervised_split(X, y, random_state, train_fraction=0.5):
    """Split labelled data by the one-class (semi-supervised) protocol.

    Training gets a random ``train_fraction`` of the normal rows; the test set
    gets the other normal rows and every anomaly. This is the protocol of the data
    README and of ADBench. Standardising with training-row statistics is left to
    the caller (the benchmark does it), so the split itself never looks at values.

    Parameters
    ----------
    X : array-like or DataFrame of shape (n_samples, n_features)
        The features.
    y : array-like of shape (n_samples,)
        Labels, 1 = anomaly, 0 = normal.
    random_state : int, numpy Generator, RandomState or None
        Seeds which normal rows go to training.
    train_fraction : float in (0, 1), default=0.5
        Share of the normal rows used for training.

    Returns
    -------
    X_train : ndarray or DataFrame
        Normal rows only.
    X_test : ndarray or DataFrame
        The remaining normal rows and all anomalies, in their original order.
    y_test : ndarray of shape (n_test,), int
        Labels of ``X_test``.

    Examples
    --------
    >>> from skdiffad.datasets import make_tabular_anomalies, semi_supervised_split
    >>> X, y = make_tabular_anomalies(n_samples=200, contamination=0.1, random_state=0)
    >>> X_train, X_test, y_test = semi_supervised_split(X, y, random_state=0)
    >>> X_train.shape, X_test.shape, int(y_test.sum())
    ((90, 8), (110, 8), 20)
    """
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction!r}")
    y = np.asarray(y).astype(int).ravel()
    if len(y) != len(X):
        raise ValueError(f"X and y have different lengths: {len(X)} and {len(y)}")
    rng = _generator(random_state)
    normal = np.flatnonzero(y == 0)
    if len(normal) < 2:
        raise ValueError("semi_supervised_split needs at least two normal rows (y == 0)")
    n_train = min(max(int(round(train_fraction * len(normal))), 1), len(normal) - 1)
    train = np.sort(rng.permutation(normal)[:n_train])
    test = np.setdiff1d(np.arange(len(y)), train)
    return _take(X, train), _take(X, test), y[test]


def _take(X, rows):
    return X.iloc[rows] if isinstance(X, (pd.DataFrame, pd.Series)) else np.asarray(X)[rows]


def _generator(random_state) -> np.random.Generator:
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    return np.random.default_rng(random_state)


# ------------------------------------------------------------------ generator
def _chi2_quantile(q_z: float, dof: int) -> float:
    """Wilson-Hilferty approximation of a chi-square quantile (keeps scipy out)."""
    k = float(dof)
    return k * (1.0 - 2.0 / (9.0 * k) + q_z * np.sqrt(2.0 / (9.0 * k))) ** 3


# z-score of the 0.999 quantile: points beyond this Mahalanobis radius of every
# cluster are rarer than 1 in 1000 normal rows, so planted anomalies are not normal.
_Z_999 = 3.090232


def _random_clusters(rng, n_features, n_clusters):
    means = rng.uniform(-4.0, 4.0, size=(n_clusters, n_features))
    covs = []
    for _ in range(n_clusters):
        A = rng.normal(size=(n_features, n_features))
        covs.append(0.5 * A @ A.T / n_features + 0.1 * np.eye(n_features))
    return means, np.array(covs)


def _min_mahalanobis2(X, means, covs):
    dist = np.full(len(X), np.inf)
    for mean, cov in zip(means, covs):
        diff = X - mean
        dist = np.minimum(dist, np.einsum("ij,ij->i", diff @ np.linalg.inv(cov), diff))
    return dist


def _sample_outside(rng, draw, n, means, covs, limit):
    """Draw until ``n`` rows lie outside every cluster's 99.9% ellipsoid."""
    kept = []
    for _ in range(1000):
        if sum(len(k) for k in kept) >= n:
            break
        candidates = draw(max(4 * n, 64))
        kept.append(candidates[_min_mahalanobis2(candidates, means, covs) > limit])
    else:  # pragma: no cover - only with pathological settings
        raise RuntimeError("could not plant enough anomalies outside the normal mass")
    return np.concatenate(kept)[:n]


def make_tabular_anomalies(
    n_samples=1000,
    n_features=8,
    contamination=0.05,
    kind="clusters",
    random_state=None,
    return_frame=False,
):
    """Generate a table of normal rows with planted anomalies.

    Normal rows come from a mixture of three Gaussian clusters with random
    correlated covariances. Anomalies are planted so that every one of them lies
    outside the 99.9% ellipsoid of every cluster (a normal row does so with
    probability below 0.001), in one of three ways:

    - ``"clusters"``: uniform in the box that encloses the normal rows, widened by
      10% on each side (*global* anomalies);
    - ``"local"``: from the same clusters with covariances inflated five-fold
      (ADBench's *local* anomalies), so they sit just outside the normal mass;
    - ``"dependency"``: every feature drawn independently from the normal rows'
      marginal, which keeps each column's distribution and breaks the
      correlations (*dependency* anomalies, invisible to per-feature detectors).

    Parameters
    ----------
    n_samples : int, default=1000
        Total number of rows.
    n_features : int, default=8
        Number of numeric features (at least 2).
    contamination : float in [0, 0.5], default=0.05
        Share of anomalies; ``round(contamination * n_samples)`` rows are anomalies.
    kind : {"clusters", "local", "dependency"}, default="clusters"
        How the anomalies are planted (see above).
    random_state : int, numpy Generator, RandomState or None, default=None
        Seed; the same seed gives the same table.
    return_frame : bool, default=False
        Return a pandas DataFrame of mixed types instead of an array: the numeric
        columns ``x0 ... x{n_features-1}`` with about 2% of their entries missing
        (NaN, at random), plus two categorical columns, ``"color"`` (``category``
        dtype) and ``"site"`` (``object`` dtype, strings, about 2% missing). For normal rows both
        categories follow the row's cluster most of the time; for anomalies they
        are drawn uniformly.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features) or DataFrame of shape (n_samples, n_features + 2)
        The rows, anomalies shuffled among the normal rows.
    y : ndarray of shape (n_samples,), int
        Labels, 1 = anomaly, 0 = normal.

    Examples
    --------
    >>> from skdiffad.datasets import make_tabular_anomalies
    >>> X, y = make_tabular_anomalies(n_samples=500, contamination=0.1, random_state=0)
    >>> X.shape, int(y.sum())
    ((500, 8), 50)
    >>> frame, y = make_tabular_anomalies(n_samples=500, random_state=0, return_frame=True)
    >>> list(frame.columns[-3:]), str(frame["color"].dtype)
    (['x7', 'color', 'site'], 'category')
    """
    if kind not in _GENERATOR_KINDS:
        raise ValueError(f"kind must be one of {_GENERATOR_KINDS}, got {kind!r}")
    if int(n_samples) != n_samples or n_samples < 2:
        raise ValueError(f"n_samples must be an integer >= 2, got {n_samples!r}")
    if int(n_features) != n_features or n_features < 2:
        raise ValueError(f"n_features must be an integer >= 2, got {n_features!r}")
    if not 0 <= contamination <= 0.5:
        raise ValueError(f"contamination must be in [0, 0.5], got {contamination!r}")
    n_samples, n_features = int(n_samples), int(n_features)
    rng = _generator(random_state)
    n_anomalies = int(round(contamination * n_samples))
    n_normal = n_samples - n_anomalies

    means, covs = _random_clusters(rng, n_features, n_clusters=3)
    cluster = rng.integers(len(means), size=n_normal)
    chol = np.linalg.cholesky(covs)
    noise = rng.normal(size=(n_normal, n_features))
    normal = means[cluster] + np.einsum("nij,nj->ni", chol[cluster], noise)

    limit = _chi2_quantile(_Z_999, n_features)
    if kind == "clusters":
        low, high = normal.min(axis=0), normal.max(axis=0)
        pad = 0.1 * (high - low)

        def draw(m):
            return rng.uniform(low - pad, high + pad, size=(m, n_features))
    elif kind == "local":
        def draw(m):
            k = rng.integers(len(means), size=m)
            z = rng.normal(size=(m, n_features))
            return means[k] + np.sqrt(5.0) * np.einsum("nij,nj->ni", chol[k], z)
    else:
        def draw(m):
            rows = rng.integers(n_normal, size=(m, n_features))
            return normal[rows, np.arange(n_features)]
    anomalies = (_sample_outside(rng, draw, n_anomalies, means, covs, limit)
                 if n_anomalies else np.empty((0, n_features)))

    X = np.vstack([normal, anomalies])
    y = np.r_[np.zeros(n_normal, dtype=int), np.ones(n_anomalies, dtype=int)]
    order = rng.permutation(n_samples)
    if not return_frame:
        return X[order], y[order]

    groups = np.r_[cluster, rng.integers(len(means), size=n_anomalies)]
    frame = _mixed_frame(rng, X, groups, is_anomaly=y.astype(bool))
    return frame.iloc[order].reset_index(drop=True), y[order]


def _mixed_frame(rng, X, groups, is_anomaly):
    n_samples, n_features = X.shape
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(n_features)])
    frame = frame.mask(rng.random(X.shape) < 0.02)

    def categorical(levels, keep_probability):
        levels = np.asarray(levels, dtype=object)
        from_group = levels[groups % len(levels)]
        random = levels[rng.integers(len(levels), size=n_samples)]
        follow = (rng.random(n_samples) < keep_probability) & ~is_anomaly
        return np.where(follow, from_group, random)

    frame["color"] = pd.Categorical(categorical(_CATEGORY_LEVELS, 0.9),
                                    categories=list(_CATEGORY_LEVELS))
    site = pd.Series(categorical(_SITE_LEVELS, 0.8), dtype=object)
    frame["site"] = site.mask(rng.random(n_samples) < 0.02)
    return frame


# ----------------------------------------------------------- time series
#: The time-series collections of the data README, as :func:`list_timeseries` names them.
TIMESERIES_COLLECTIONS = ("NAB", "SKAB", "SMAP_MSL")
#: Share of a NAB series used for training: NAB's probationary period.
NAB_TRAIN_FRACTION = 0.15
#: Leading rows of a SKAB run used for training, as SKAB's own leaderboard does.
SKAB_TRAIN_ROWS = 400
_TIMESERIES_SUBDIR = Path("timeseries")
_SKAB_NON_FEATURES = ("datetime", "anomaly", "changepoint")
_TIMESERIES_KINDS = ("spike", "level_shift", "frequency", "noise")


def _timeseries_dir(collection, data_dir) -> Path:
    if collection not in TIMESERIES_COLLECTIONS:
        raise ValueError(f"collection must be one of {TIMESERIES_COLLECTIONS}, "
                         f"got {collection!r}")
    root = default_data_dir() if data_dir is None else Path(data_dir).expanduser()
    return root / _TIMESERIES_SUBDIR / collection


def _natural_key(name):
    """Sort key that puts ``valve1/2`` before ``valve1/10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _series_path(folder, collection, name) -> Path:
    if collection == "SMAP_MSL":
        return folder / f"{name}.npz"
    return folder / "data" / f"{name}.csv"


def _read_nab(folder, name):
    path = _series_path(folder, "NAB", name)
    frame = pd.read_csv(path)
    timestamps = pd.to_datetime(frame["timestamp"])
    with open(folder / "labels" / "combined_windows.json") as handle:
        windows = json.load(handle).get(f"{name}.csv", [])
    y = np.zeros(len(frame), dtype=int)
    for start, end in windows:
        y[((timestamps >= pd.Timestamp(start)) & (timestamps <= pd.Timestamp(end))).to_numpy()] = 1
    n_train = int(np.floor(NAB_TRAIN_FRACTION * len(frame)))
    return frame[["value"]].to_numpy(dtype=np.float64), y, timestamps.to_numpy(), n_train


def _read_skab(folder, name):
    frame = pd.read_csv(_series_path(folder, "SKAB", name), sep=";")
    y = frame["anomaly"].to_numpy().astype(int)
    features = frame.drop(columns=[c for c in _SKAB_NON_FEATURES if c in frame.columns])
    timestamps = pd.to_datetime(frame["datetime"]).to_numpy()
    return features.to_numpy(dtype=np.float64), y, timestamps, SKAB_TRAIN_ROWS


def _test_has_anomaly(collection, folder, name) -> bool:
    if collection == "NAB":
        _, y, _, n_train = _read_nab(folder, name)
    elif collection == "SKAB":
        y = pd.read_csv(_series_path(folder, "SKAB", name), sep=";",
                        usecols=["anomaly"])["anomaly"].to_numpy()
        n_train = SKAB_TRAIN_ROWS
    else:
        with np.load(_series_path(folder, collection, name), allow_pickle=False) as archive:
            y, n_train = archive["test_label"], 0
    return bool(np.asarray(y)[n_train:].astype(bool).any())


def list_timeseries(collection, data_dir=None) -> list[str]:
    """Names of the labelled series of one time-series collection.

    Only series whose test part (see :func:`load_timeseries` for the split)
    holds at least one labelled anomaly are listed, since no ranking metric is
    defined without one. This leaves out 6 of NAB's 58 series (the five of
    ``artificialNoAnomaly`` and ``realAWSCloudwatch/ec2_cpu_utilization_c6585a``,
    which have no anomaly window at all) and none of SKAB's 34 labelled runs or of
    the 81 SMAP/MSL channels. :func:`load_timeseries` still loads an unlisted
    series by name.

    Parameters
    ----------
    collection : {"NAB", "SKAB", "SMAP_MSL"}
        The collection, a folder of ``<data_dir>/timeseries``.
    data_dir : str or path-like, default=None
        The data root; ``None`` uses :func:`default_data_dir`.

    Returns
    -------
    names : list of str
        ``"<group>/<file stem>"`` for NAB (``"realKnownCause/nyc_taxi"``) and SKAB
        (``"valve1/0"``), the file stem for SMAP/MSL (``"SMAP_A-1"``), in natural
        order (``valve1/2`` before ``valve1/10``). Empty when the collection's
        directory does not exist.

    Raises
    ------
    ValueError
        When ``collection`` is not one of the three.

    Examples
    --------
    >>> from skdiffad.datasets import list_timeseries
    >>> names = list_timeseries("SKAB")  # doctest: +SKIP
    >>> len(names), names[:2]  # doctest: +SKIP
    (34, ['other/1', 'other/2'])
    """
    folder = _timeseries_dir(collection, data_dir)
    if collection == "NAB":
        root = folder / "data"
        if not (folder / "labels" / "combined_windows.json").is_file():
            return []
        names = [p.relative_to(root).with_suffix("").as_posix() for p in root.glob("*/*.csv")]
    elif collection == "SKAB":
        root = folder / "data"
        names = [p.relative_to(root).with_suffix("").as_posix() for p in root.glob("*/*.csv")
                 if p.parent.name != "anomaly-free"]
    else:
        names = [p.stem for p in folder.glob("*.npz")]
    names = [n for n in names if _test_has_anomaly(collection, folder, n)]
    return sorted(names, key=_natural_key)


def load_timeseries(collection, name, data_dir=None) -> dict:
    """Load one labelled series, split into a training and a test part.

    The splits follow each collection's usual protocol:

    - ``"NAB"`` (univariate): the first ``floor(0.15 * n)`` steps (NAB's
      probationary period, 15% of the series) are for training, the remaining
      85% are scored. A step is an anomaly when its timestamp lies in one of the
      inclusive ``[start, end]`` windows of ``labels/combined_windows.json``.
      NAB's own scorer caps the probationary period at 750 steps for series
      longer than 5000 steps; this split does not. Six series
      (``machine_temperature_system_failure`` and five ``Twitter_volume_*``) have
      labelled steps inside their training part: they are kept, so training is
      slightly contaminated there (see ``y_train``).
    - ``"SKAB"`` (8 sensors): the first 400 rows of a run are for training (the
      pump runs normally there, as on SKAB's own leaderboard), the rest is
      scored; label = the ``anomaly`` column; the ``changepoint`` column is not a
      feature. Only ``other/2`` has labelled rows among its first 400.
    - ``"SMAP_MSL"`` (NASA telemanom; SMAP channels have 25 dimensions, MSL 55;
      dimension 0 is telemetry, the rest command one-hots): the files' own
      ``train`` (nominal) and ``test`` parts and ``test_label``, as given.

    Parameters
    ----------
    collection : {"NAB", "SKAB", "SMAP_MSL"}
        The collection.
    name : str
        A name as :func:`list_timeseries` gives it (a trailing ``.csv`` or
        ``.npz`` is accepted).
    data_dir : str or path-like, default=None
        The data root; ``None`` uses :func:`default_data_dir`.

    Returns
    -------
    series : dict
        - ``"X_train"``: ndarray of shape (n_train, n_channels), float64;
        - ``"X_test"``: ndarray of shape (n_test, n_channels), float64;
        - ``"y_test"``: ndarray of shape (n_test,), int, 1 = anomaly;
        - ``"y_train"``: ndarray of shape (n_train,), int, the labels of the
          training part (all zeros for SMAP/MSL, whose training parts carry no
          labels);
        - ``"timestamps_test"``: ndarray of shape (n_test,), ``datetime64``, or
          ``None`` where the files have no timestamps (SMAP/MSL);
        - ``"name"``: the series name; ``"collection"``: the collection.

    Raises
    ------
    ValueError
        When ``collection`` is not one of the three.
    FileNotFoundError
        When the series' file is missing; the message names the path looked at
        and the ``SKDIFFAD_DATA`` environment variable that points elsewhere.

    Examples
    --------
    >>> from skdiffad.datasets import load_timeseries
    >>> series = load_timeseries("NAB", "realKnownCause/nyc_taxi")  # doctest: +SKIP
    >>> series["X_train"].shape, series["X_test"].shape  # doctest: +SKIP
    ((1548, 1), (8772, 1))
    """
    folder = _timeseries_dir(collection, data_dir)
    name = re.sub(r"\.(csv|npz)$", "", name)
    path = _series_path(folder, collection, name)
    if not path.is_file():
        raise FileNotFoundError(
            f"{collection} series {name!r} not found at {path}. Pass data_dir=..., or set "
            f"the {DATA_ENV_VAR} environment variable to the directory that holds "
            f"{_TIMESERIES_SUBDIR / collection}/ (see the project's data README)."
        )
    if collection == "SMAP_MSL":
        with np.load(path, allow_pickle=False) as archive:
            X_train = np.asarray(archive["train"], dtype=np.float64)
            X_test = np.asarray(archive["test"], dtype=np.float64)
            y_test = np.asarray(archive["test_label"]).astype(int).ravel()
        y_train, timestamps_test = np.zeros(len(X_train), dtype=int), None
    else:
        read = _read_nab if collection == "NAB" else _read_skab
        X, y, timestamps, n_train = read(folder, name)
        X_train, X_test = X[:n_train], X[n_train:]
        y_train, y_test = y[:n_train], y[n_train:]
        timestamps_test = timestamps[n_train:]
    return {"X_train": X_train, "X_test": X_test, "y_test": y_test, "y_train": y_train,
            "timestamps_test": timestamps_test, "name": name, "collection": collection}


def _anomaly_length_bounds(n_timestamps):
    """Shortest and longest range of a non-spike anomaly: 2% to 4% of the series, capped."""
    low = int(np.clip(n_timestamps // 50, 10, 200))
    return low, int(np.clip(n_timestamps // 25, low, 400))


def make_timeseries_anomalies(
    n_timestamps=2000,
    n_channels=1,
    anomaly_kinds=_TIMESERIES_KINDS,
    n_anomalies=4,
    random_state=None,
):
    """Generate a periodic multichannel series with anomalies inserted as ranges.

    Each channel is a sum of three sines whose periods (20 to 200 steps) all
    channels share, with per-channel amplitudes and phases, plus Gaussian noise of
    standard deviation 0.05. Then ``n_anomalies`` non-overlapping ranges are
    changed, away from the series' ends and from each other; the kinds are taken
    in turn from ``anomaly_kinds`` (so each kind appears when ``n_anomalies`` is at
    least their number) and placed in random order:

    - ``"spike"``: 1 to 3 steps moved by 4 to 6 channel standard deviations;
    - ``"level_shift"``: the range moved by 1.5 to 2.5 standard deviations;
    - ``"frequency"``: the sines run 2.5 to 4 times faster over the range;
    - ``"noise"``: Gaussian noise of 0.5 to 1 standard deviation added.

    Ranges other than spikes last 2% to 4% of the series (at least 10 and at
    most 400 steps). With several channels, ``n_anomalies // 2`` of the anomalies,
    chosen at random, touch one random channel only; the others touch every
    channel. The normal signal is drawn before the anomalies, so the same seed
    with ``n_anomalies=0`` gives the series without its anomalies.

    Parameters
    ----------
    n_timestamps : int, default=2000
        Length of the series (at least 100, and long enough for the anomalies).
    n_channels : int, default=1
        Number of channels (at least 1).
    anomaly_kinds : tuple of str, default=("spike", "level_shift", "frequency", "noise")
        Kinds to insert, a non-empty selection of the four above (a single string
        is one kind).
    n_anomalies : int, default=4
        Number of anomalous ranges (0 gives a normal series).
    random_state : int, numpy Generator, RandomState or None, default=None
        Seed; the same seed gives the same series.

    Returns
    -------
    X : ndarray of shape (n_timestamps, n_channels), float64
        The series.
    y : ndarray of shape (n_timestamps,), int
        1 on the steps of the inserted ranges (in any channel), 0 elsewhere.

    Raises
    ------
    ValueError
        When a parameter is out of range, a kind is unknown, or the series is too
        short to hold ``n_anomalies`` separated ranges.

    Examples
    --------
    >>> from skdiffad.datasets import make_timeseries_anomalies
    >>> X, y = make_timeseries_anomalies(n_timestamps=1000, n_channels=3, random_state=0)
    >>> X.shape, y.shape
    ((1000, 3), (1000,))
    >>> X_clean, y_clean = make_timeseries_anomalies(n_timestamps=1000, n_channels=3,
    ...                                              n_anomalies=0, random_state=0)
    >>> bool(((X != X_clean).any(axis=1) == (y == 1)).all()), int(y_clean.sum())
    (True, 0)
    """
    if int(n_timestamps) != n_timestamps or n_timestamps < 100:
        raise ValueError(f"n_timestamps must be an integer >= 100, got {n_timestamps!r}")
    if int(n_channels) != n_channels or n_channels < 1:
        raise ValueError(f"n_channels must be an integer >= 1, got {n_channels!r}")
    if int(n_anomalies) != n_anomalies or n_anomalies < 0:
        raise ValueError(f"n_anomalies must be an integer >= 0, got {n_anomalies!r}")
    kinds = (anomaly_kinds,) if isinstance(anomaly_kinds, str) else tuple(anomaly_kinds)
    unknown = [k for k in kinds if k not in _TIMESERIES_KINDS]
    if not kinds or unknown:
        raise ValueError(f"anomaly_kinds must be a non-empty selection of "
                         f"{_TIMESERIES_KINDS}, got {anomaly_kinds!r}")
    n, c, n_anomalies = int(n_timestamps), int(n_channels), int(n_anomalies)
    rng = _generator(random_state)

    periods = rng.uniform(20.0, 200.0, size=3)
    amplitudes = rng.uniform(0.5, 1.5, size=(3, c))
    phases = rng.uniform(0.0, 2 * np.pi, size=(3, c))

    def sines(steps, speed=1.0):
        angle = 2 * np.pi * speed * steps[:, None, None] / periods[:, None] + phases
        return np.einsum("wc,twc->tc", amplitudes, np.sin(angle))

    steps = np.arange(n, dtype=np.float64)
    X = sines(steps) + rng.normal(0.0, 0.05, size=(n, c))
    y = np.zeros(n, dtype=int)
    if n_anomalies == 0:
        return X, y
    scale = X.std(axis=0)

    order = rng.permutation(n_anomalies)
    range_kinds = [kinds[i % len(kinds)] for i in order]
    low, high = _anomaly_length_bounds(n)
    lengths = np.array([rng.integers(1, 4) if kind == "spike" else rng.integers(low, high + 1)
                        for kind in range_kinds])
    margin, gap = n // 20, high
    slack = n - 2 * margin - lengths.sum() - (n_anomalies - 1) * gap
    if slack < 0:
        raise ValueError(f"n_timestamps={n} is too short for n_anomalies={n_anomalies} "
                         f"separated ranges; use fewer anomalies or a longer series")
    offsets = np.sort(rng.integers(0, slack + 1, size=n_anomalies))
    starts = margin + offsets + np.r_[0, np.cumsum(lengths)[:-1]] + gap * np.arange(n_anomalies)
    one_channel = np.zeros(n_anomalies, dtype=bool)
    if c > 1:
        one_channel[rng.permutation(n_anomalies)[: n_anomalies // 2]] = True

    for kind, start, length, alone in zip(range_kinds, starts, lengths, one_channel):
        rows = slice(int(start), int(start + length))
        channels = np.array([rng.integers(c)]) if alone else np.arange(c)
        sign = rng.choice([-1.0, 1.0])
        if kind == "spike":
            change = sign * rng.uniform(4.0, 6.0) * scale[channels] * np.ones((length, 1))
        elif kind == "level_shift":
            change = sign * rng.uniform(1.5, 2.5) * scale[channels] * np.ones((length, 1))
        elif kind == "frequency":
            window = steps[rows]
            change = (sines(window, speed=rng.uniform(2.5, 4.0)) - sines(window))[:, channels]
        else:
            change = rng.normal(size=(length, len(channels))) * (
                rng.uniform(0.5, 1.0) * scale[channels])
        X[rows, channels] += change
        y[rows] = 1
    return X, y
