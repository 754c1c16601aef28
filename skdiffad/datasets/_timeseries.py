"""Loaders of the labelled time-series collections: NAB, SKAB, SMAP/MSL, SMD, UCR/KDD21, MGAB.

The files lie under ``<data root>/timeseries/<collection>`` as the project's data
README describes; the data root is the loaders' ``data_dir``, or
:func:`~skdiffad.datasets.get_data_home` when that is ``None``. Each series is split
into a training and a test part by its collection's usual protocol (see
:func:`load_timeseries`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ._home import _data_root, _missing_data

#: The time-series collections of the data README, as :func:`list_timeseries` names them.
TIMESERIES_COLLECTIONS = ("NAB", "SKAB", "SMAP_MSL", "SMD", "UCR_KDD21", "MGAB")
#: Collections stored as one ``.npz`` per series with ``train``/``test``/``test_label``.
_SPLIT_NPZ = ("SMAP_MSL", "SMD", "UCR_KDD21")
#: Share of a NAB series used for training: NAB's probationary period.
NAB_TRAIN_FRACTION = 0.15
#: Leading rows of a SKAB run used for training, as SKAB's own leaderboard does.
SKAB_TRAIN_ROWS = 400
#: MGAB: steps before this one are for training (every series is anomaly-free
#: for its first 29k steps), the rest are scored.
MGAB_TRAIN_END = 25_000
_TIMESERIES_SUBDIR = Path("timeseries")
_SKAB_NON_FEATURES = ("datetime", "anomaly", "changepoint")


def _timeseries_dir(collection, data_dir) -> Path:
    if collection not in TIMESERIES_COLLECTIONS:
        raise ValueError(f"collection must be one of {TIMESERIES_COLLECTIONS}, "
                         f"got {collection!r}")
    return _data_root(data_dir) / _TIMESERIES_SUBDIR / collection


def _natural_key(name):
    """Sort key that puts ``valve1/2`` before ``valve1/10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _series_path(folder, collection, name) -> Path:
    if collection in _SPLIT_NPZ or collection == "MGAB":
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


def _read_mgab(folder, name):
    """MGAB: the warm-up steps are dropped, then split at :data:`MGAB_TRAIN_END`."""
    with np.load(_series_path(folder, "MGAB", name), allow_pickle=False) as archive:
        value = np.asarray(archive["value"], dtype=np.float64).reshape(-1, 1)
        y = np.asarray(archive["is_anomaly"]).astype(int).ravel()
        ignored = np.asarray(archive["is_ignored"]).astype(bool).ravel()
    start = int(np.flatnonzero(~ignored)[0]) if (~ignored).any() else len(value)
    return value[start:], y[start:], None, MGAB_TRAIN_END - start


def _test_has_anomaly(collection, folder, name) -> bool:
    if collection == "NAB":
        _, y, _, n_train = _read_nab(folder, name)
    elif collection == "SKAB":
        y = pd.read_csv(_series_path(folder, "SKAB", name), sep=";",
                        usecols=["anomaly"])["anomaly"].to_numpy()
        n_train = SKAB_TRAIN_ROWS
    elif collection == "MGAB":
        _, y, _, n_train = _read_mgab(folder, name)
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
    which have no anomaly window at all) and none of SKAB's 34 labelled runs, of
    the 81 SMAP/MSL channels, of the 11 SMD machines, of the 101 UCR/KDD21
    series or of the 10 MGAB series. :func:`load_timeseries` still loads an unlisted
    series by name.

    Parameters
    ----------
    collection : {"NAB", "SKAB", "SMAP_MSL", "SMD", "UCR_KDD21", "MGAB"}
        The collection, a folder of ``<data_dir>/timeseries``.
    data_dir : str or path-like, default=None
        The data root (``~`` is expanded); ``None`` uses :func:`get_data_home`.

    Returns
    -------
    names : list of str
        ``"<group>/<file stem>"`` for NAB (``"realKnownCause/nyc_taxi"``) and SKAB
        (``"valve1/0"``), the file stem for the others (``"SMAP_A-1"``,
        ``"machine-1-2"``, ``"025_UCR_Anomaly_CIMIS44AirTemperature1_4000_5391_5392"``,
        ``"3"``), in natural order (``valve1/2`` before ``valve1/10``). Empty when the collection's
        directory does not exist.

    Raises
    ------
    ValueError
        When ``collection`` is not one of :data:`TIMESERIES_COLLECTIONS`.
    FileNotFoundError
        When ``data_dir`` is ``None`` and :func:`get_data_home` finds no data folder.

    Examples
    --------
    >>> from skdiffad.datasets import list_timeseries
    >>> names = list_timeseries("SKAB", "~/skdiffad_data")  # doctest: +SKIP
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
      dimension 0 is telemetry, the rest command one-hots), ``"SMD"`` (38 server
      metrics scaled to [0, 1]; the training part is unlabelled and treated as
      normal) and ``"UCR_KDD21"`` (univariate, one anomaly per series; the
      training part is anomaly-free): the files' own ``train`` and ``test``
      parts and ``test_label``, as given.
    - ``"MGAB"`` (univariate Mackey-Glass series of 100 000 steps): the first 257
      steps (the generator's warm-up, ``is_ignored``) are dropped, steps up to
      :data:`MGAB_TRAIN_END` (25 000; every series is anomaly-free for its first
      29 000 steps) are for training and the rest is scored; label =
      ``is_anomaly``, a 401-step window around each of the 10 anomalies.

    Parameters
    ----------
    collection : {"NAB", "SKAB", "SMAP_MSL", "SMD", "UCR_KDD21", "MGAB"}
        The collection.
    name : str
        A name as :func:`list_timeseries` gives it (a trailing ``.csv`` or
        ``.npz`` is accepted).
    data_dir : str or path-like, default=None
        The data root (``~`` is expanded); ``None`` uses :func:`get_data_home`.

    Returns
    -------
    series : dict
        - ``"X_train"``: ndarray of shape (n_train, n_channels), float64;
        - ``"X_test"``: ndarray of shape (n_test, n_channels), float64;
        - ``"y_test"``: ndarray of shape (n_test,), int, 1 = anomaly;
        - ``"y_train"``: ndarray of shape (n_train,), int, the labels of the
          training part (all zeros for SMAP/MSL, SMD and UCR/KDD21, whose
          training parts carry no labels);
        - ``"timestamps_test"``: ndarray of shape (n_test,), ``datetime64``, or
          ``None`` where the files have no timestamps (all but NAB and SKAB);
        - ``"name"``: the series name; ``"collection"``: the collection.

    Raises
    ------
    ValueError
        When ``collection`` is not one of :data:`TIMESERIES_COLLECTIONS`.
    FileNotFoundError
        When the series' file is missing (the message names the path looked at
        and the ``SKDIFFAD_DATA`` environment variable that points elsewhere), or
        when ``data_dir`` is ``None`` and :func:`get_data_home` finds no data folder.

    Examples
    --------
    >>> from skdiffad.datasets import load_timeseries
    >>> series = load_timeseries("NAB", "realKnownCause/nyc_taxi",
    ...                          data_dir="~/skdiffad_data")  # doctest: +SKIP
    >>> series["X_train"].shape, series["X_test"].shape  # doctest: +SKIP
    ((1548, 1), (8772, 1))
    """
    folder = _timeseries_dir(collection, data_dir)
    name = re.sub(r"\.(csv|npz)$", "", name)
    path = _series_path(folder, collection, name)
    if not path.is_file():
        raise _missing_data(f"{collection} series {name!r}", path,
                            _TIMESERIES_SUBDIR / collection)
    if collection in _SPLIT_NPZ:
        with np.load(path, allow_pickle=False) as archive:
            X_train = np.asarray(archive["train"], dtype=np.float64)
            X_train = X_train.reshape(len(X_train), -1)
            X_test = np.asarray(archive["test"], dtype=np.float64)
            X_test = X_test.reshape(len(X_test), -1)
            y_test = np.asarray(archive["test_label"]).astype(int).ravel()
        y_train, timestamps_test = np.zeros(len(X_train), dtype=int), None
    else:
        read = {"NAB": _read_nab, "SKAB": _read_skab, "MGAB": _read_mgab}[collection]
        X, y, timestamps, n_train = read(folder, name)
        X_train, X_test = X[:n_train], X[n_train:]
        y_train, y_test = y[:n_train], y[n_train:]
        timestamps_test = None if timestamps is None else timestamps[n_train:]
    return {"X_train": X_train, "X_test": X_test, "y_test": y_test, "y_train": y_train,
            "timestamps_test": timestamps_test, "name": name, "collection": collection}
