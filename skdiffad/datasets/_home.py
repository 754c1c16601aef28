"""Where the benchmark data lives: :func:`get_data_home` and the loaders' data root.

The project ships no third-party data and downloads none, so every loader reads a
folder the user names. As in scikit-learn, the folder is found without looking at
the current working directory: an explicit argument first, then the environment
variable ``SKDIFFAD_DATA``, then a per-user default, ``~/skdiffad_data``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

#: The environment variable that names the data folder.
DATA_ENV_VAR = "SKDIFFAD_DATA"
#: The data folder used when neither an argument nor ``SKDIFFAD_DATA`` names one.
DEFAULT_DATA_HOME = Path("~") / "skdiffad_data"


def _locate(data_home):
    """The data folder the rules of :func:`get_data_home` pick, and what picked it."""
    if data_home is not None:
        return Path(data_home).expanduser(), "the data_home argument"
    env = os.environ.get(DATA_ENV_VAR)
    if env:  # an empty variable counts as unset, as before
        return Path(env).expanduser(), f"the {DATA_ENV_VAR} environment variable"
    return DEFAULT_DATA_HOME.expanduser(), "the default"


def get_data_home(data_home=None) -> Path:
    """Folder that holds the benchmark data (scikit-learn's ``get_data_home``).

    The first of these that applies:

    1. ``data_home``, when given;
    2. the environment variable ``SKDIFFAD_DATA``, when it is set and not empty;
    3. ``~/skdiffad_data``, the per-user default.

    A leading ``~`` is expanded. The current working directory plays no part, and
    nothing is created or downloaded: the folder must already hold the files the
    project's data README describes (``tabular/adbench/``, ``timeseries/``, ...).

    Parameters
    ----------
    data_home : str or path-like, default=None
        The data folder; ``None`` falls back to ``SKDIFFAD_DATA``, then to
        ``~/skdiffad_data``.

    Returns
    -------
    data_home : pathlib.Path
        The folder, ``~`` expanded; it exists.

    Raises
    ------
    FileNotFoundError
        When the folder does not exist; the message names it, says which rule
        chose it, and how to point elsewhere (``data_home=``, ``SKDIFFAD_DATA``).

    Examples
    --------
    >>> from skdiffad.datasets import get_data_home
    >>> get_data_home("~/benchmark_data")  # doctest: +SKIP
    PosixPath('/home/me/benchmark_data')
    """
    path, source = _locate(data_home)
    if not path.is_dir():
        raise FileNotFoundError(
            f"skdiffad data folder {path} (from {source}) does not exist. Pass the folder "
            f"explicitly (data_home= here, data_dir= to a loader, --data-dir to a "
            f"benchmark script) or set the {DATA_ENV_VAR} environment variable to it; "
            "nothing is downloaded (see the project's data README)."
        )
    return path


def default_data_dir() -> Path:
    """Deprecated: use :func:`get_data_home`.

    Returns the folder :func:`get_data_home` picks, without checking that it
    exists. It no longer looks for ``../shared/data`` next to the current working
    directory or the checkout.

    Returns
    -------
    path : pathlib.Path
        The data folder; it may not exist.
    """
    warnings.warn("default_data_dir is deprecated and will be removed; use "
                  "skdiffad.datasets.get_data_home instead", FutureWarning, stacklevel=2)
    return _locate(None)[0]


def _data_root(data_dir) -> Path:
    """The root a loader reads: ``data_dir`` as given (``~`` expanded), else the data home.

    An explicit ``data_dir`` is not checked here, so listing a missing folder
    still gives an empty list, as it always has.
    """
    return get_data_home() if data_dir is None else Path(data_dir).expanduser()


def _missing_data(what, path, subdir) -> FileNotFoundError:
    """The error a loader raises for a file that is not where it looked."""
    return FileNotFoundError(
        f"{what} not found at {path}. Pass data_dir=..., or set the {DATA_ENV_VAR} "
        f"environment variable to the directory that holds {subdir}/ (see the project's "
        "data README)."
    )
