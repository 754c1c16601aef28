"""Small generators of data with planted anomalies, for tests, examples and the demo.

:func:`make_tabular_anomalies` plants global, local or dependency anomalies in a
Gaussian mixture; :func:`make_timeseries_anomalies` inserts spikes, level shifts,
frequency changes and noise bursts in a periodic multichannel series. Neither needs
any data file.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_GENERATOR_KINDS = ("clusters", "local", "dependency")
_CATEGORY_LEVELS = ("red", "green", "blue", "violet")
_SITE_LEVELS = ("north", "south", "east")
_TIMESERIES_KINDS = ("spike", "level_shift", "frequency", "noise")


def _generator(random_state) -> np.random.Generator:
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    return np.random.default_rng(random_state)


# ------------------------------------------------------------------ tabular
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


# -------------------------------------------------------------- time series
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
