"""ADBench loaders and the one-class split protocol of the data README.

The files are ``<data root>/tabular/adbench/<name>.npz`` with keys ``X`` and ``y``
(label 1 = anomaly, 0 = normal); the data root is the loaders' ``data_dir``, or
:func:`~skdiffad.datasets.get_data_home` when that is ``None``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ._generators import _generator
from ._home import _data_root, _missing_data

_ADBENCH_SUBDIR = Path("tabular") / "adbench"


def _adbench_dir(data_dir) -> Path:
    return _data_root(data_dir) / _ADBENCH_SUBDIR


def _numeric_prefix(name: str):
    match = re.match(r"(\d+)_", name)
    return (int(match.group(1)) if match else float("inf"), name)


def list_adbench(data_dir=None) -> list[str]:
    """Names of the ADBench datasets found in ``<data_dir>/tabular/adbench``.

    Parameters
    ----------
    data_dir : str or path-like, default=None
        The data root (``~`` is expanded); ``None`` uses :func:`get_data_home`.

    Returns
    -------
    names : list of str
        File stems such as ``"4_breastw"``, sorted by their numeric prefix (ADBench's
        numbering). Empty when the directory does not exist.

    Raises
    ------
    FileNotFoundError
        When ``data_dir`` is ``None`` and :func:`get_data_home` finds no data folder.

    Examples
    --------
    >>> from skdiffad.datasets import list_adbench
    >>> names = list_adbench("~/skdiffad_data")  # doctest: +SKIP
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
        The data root (``~`` is expanded); ``None`` uses :func:`get_data_home`.

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
    >>> X, y = load_adbench("4_breastw", data_dir="~/skdiffad_data")  # doctest: +SKIP
    >>> X.shape, int(y.sum())  # doctest: +SKIP
    ((683, 9), 239)
    """
    name = name[:-4] if name.endswith(".npz") else name
    path = _adbench_dir(data_dir) / f"{name}.npz"
    if not path.is_file():
        raise _missing_data(f"ADBench dataset {name!r}", path, _ADBENCH_SUBDIR)
    with np.load(path, allow_pickle=False) as archive:
        X = np.asarray(archive["X"], dtype=np.float64)
        y = np.asarray(archive["y"]).astype(int).ravel()
    return X, y


def semi_supervised_split(X, y, random_state, train_fraction=0.5, max_train=None,
                          return_indices=False):
    """Split labelled data by the one-class (semi-supervised) protocol.

    Training gets a random ``train_fraction`` of the normal samples, at most
    ``max_train`` of them; the test set gets every other sample: the remaining
    normal ones and every anomaly. This is the protocol of the data README and of
    ADBench. Standardising with training-row statistics is left to the caller (the
    benchmark does it), so the split itself never looks at values.

    Any data split along its first axis works: a 2-D table, a DataFrame, a stack of
    images of shape (n_samples, height, width), or a list of images of different
    sizes (such as :func:`load_magnetic_tile` returns). Pass
    ``return_indices=True`` to split other per-sample data the same way (masks,
    classes, file paths).

    Parameters
    ----------
    X : array-like, DataFrame or list of length n_samples
        The samples, along the first axis.
    y : array-like of shape (n_samples,)
        Labels, 1 = anomaly, 0 = normal.
    random_state : int, numpy Generator, RandomState or None
        Seeds which normal samples go to training.
    train_fraction : float in (0, 1), default=0.5
        Share of the normal samples used for training.
    max_train : int or None, default=None
        The most training samples; the normal samples this leaves out of
        training go to the test set. ``None`` sets no cap.
    return_indices : bool, default=False
        Also return the positions of the training and of the test samples.

    Returns
    -------
    X_train : ndarray, DataFrame or list
        Normal samples only, in their original order: a DataFrame for a
        DataFrame, a list for a list or tuple, else an ndarray.
    X_test : ndarray, DataFrame or list
        The remaining normal samples and all anomalies, in their original order.
    y_test : ndarray of shape (n_test,), int
        Labels of ``X_test``.
    train_indices, test_indices : ndarray of int
        With ``return_indices``: the sorted positions in ``X`` of ``X_train`` and
        of ``X_test``.

    Examples
    --------
    >>> from skdiffad.datasets import make_tabular_anomalies, semi_supervised_split
    >>> X, y = make_tabular_anomalies(n_samples=200, contamination=0.1, random_state=0)
    >>> X_train, X_test, y_test = semi_supervised_split(X, y, random_state=0)
    >>> X_train.shape, X_test.shape, int(y_test.sum())
    ((90, 8), (110, 8), 20)
    >>> *_, train, test = semi_supervised_split(X, y, random_state=0, max_train=50,
    ...                                         return_indices=True)
    >>> len(train), len(test)
    (50, 150)
    """
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction!r}")
    if max_train is not None and (not isinstance(max_train, (int, np.integer))
                                  or isinstance(max_train, bool) or max_train < 1):
        raise ValueError(f"max_train must be None or a positive int, got {max_train!r}")
    y = np.asarray(y).astype(int).ravel()
    if len(y) != len(X):
        raise ValueError(f"X and y have different lengths: {len(X)} and {len(y)}")
    rng = _generator(random_state)
    normal = np.flatnonzero(y == 0)
    if len(normal) < 2:
        raise ValueError("semi_supervised_split needs at least two normal rows (y == 0)")
    n_train = min(max(int(round(train_fraction * len(normal))), 1), len(normal) - 1)
    if max_train is not None:
        n_train = min(n_train, max_train)
    train = np.sort(rng.permutation(normal)[:n_train])
    test = np.setdiff1d(np.arange(len(y)), train)
    split = (_take(X, train), _take(X, test), y[test])
    return split + (train, test) if return_indices else split


def _take(X, rows):
    if isinstance(X, (pd.DataFrame, pd.Series)):
        return X.iloc[rows]
    if isinstance(X, (list, tuple)):
        return [X[i] for i in rows]
    return np.asarray(X)[rows]
