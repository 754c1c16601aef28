"""Benchmark data loaders and small generators of data with planted anomalies.

The loaders read the ADBench ``.npz`` files, the NAB, SKAB and SMAP/MSL time
series, and the one-class MNIST / Fashion-MNIST sets and magnetic-tile images
described in the project's data README (label 1 = anomaly, 0 = normal).
The project ships and downloads no third-party data: each loader reads the folder
passed as ``data_dir``, or, when that is ``None``, the folder
:func:`get_data_home` finds (the ``SKDIFFAD_DATA`` environment variable, else
``~/skdiffad_data``; never the current working directory).
:func:`make_tabular_anomalies`, :func:`make_timeseries_anomalies` and
:func:`make_walkway` (video clips) need no data at all and are what the tests, the
examples and the demo use.

Only numpy and pandas are needed here (and Pillow, imported by
:func:`load_magnetic_tile` alone): this package must stay importable without
touching torch.
"""

from ._generators import make_tabular_anomalies, make_timeseries_anomalies
from ._home import DATA_ENV_VAR, DEFAULT_DATA_HOME, default_data_dir, get_data_home
from ._images import (
    IMAGE_COLLECTIONS,
    list_images,
    load_magnetic_tile,
    load_one_class_images,
)
from ._tabular import list_adbench, load_adbench, semi_supervised_split
from ._timeseries import (
    NAB_TRAIN_FRACTION,
    SKAB_TRAIN_ROWS,
    TIMESERIES_COLLECTIONS,
    list_timeseries,
    load_timeseries,
)
from .video import make_walkway

__all__ = [
    "get_data_home",
    "default_data_dir",
    "list_adbench",
    "load_adbench",
    "semi_supervised_split",
    "make_tabular_anomalies",
    "list_timeseries",
    "load_timeseries",
    "make_timeseries_anomalies",
    "make_walkway",
    "list_images",
    "load_one_class_images",
    "load_magnetic_tile",
    "DATA_ENV_VAR",
    "DEFAULT_DATA_HOME",
    "TIMESERIES_COLLECTIONS",
    "IMAGE_COLLECTIONS",
    "NAB_TRAIN_FRACTION",
    "SKAB_TRAIN_ROWS",
]
