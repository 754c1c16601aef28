"""Benchmark data loaders and a small generator of tables with planted anomalies.

The loaders read the ADBench ``.npz`` files described in the project's data README
(label 1 = anomaly, 0 = normal); the project ships no third-party data, so they
look in a data directory the user names (``SKDIFFAD_DATA``) or next to the checkout.
:func:`make_tabular_anomalies` needs no data at all and is what the tests, the
examples and the demo use.

Only numpy and pandas are needed here: this module must stay importable without
touching torch.
"""

from __future__ import annotations

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
