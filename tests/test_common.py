"""scikit-learn's estimator checks over every skdiffad detector.

Two kinds of failure are allowed, each with its reason. Those caused by PyOD's
label convention: PyOD's ``predict`` returns 0 (inlier) / 1 (anomaly) and
``decision_function`` grows with abnormality, where scikit-learn's outlier
detectors return -1/+1 and a decision function that is negative for outliers.
And those of the time-series and video detectors, whose rows are time steps
or frames (not exchangeable samples): a 2-D array is one series, or one clip
of flat frames.
"""

import pytest
from pyod.models.iforest import IForest
from pyod.models.knn import KNN
from sklearn.utils.estimator_checks import parametrize_with_checks

from skdiffad import (
    DiffusionImageDetector,
    DiffusionTSDetector,
    DiffusionVideoDetector,
    FusionDetector,
    TabDiffusionDetector,
)

_TAB = TabDiffusionDetector._unit_test_params()

ESTIMATORS = [
    TabDiffusionDetector(**{**TabDiffusionDetector._unit_test_params(), "denoiser": denoiser,
                            "scoring": scoring})
    for denoiser, scoring in (("exact", "time"), ("mlp", "time"), ("mlp", "reconstruction"),
                              ("mlp", "density"), ("mlp", "score"))
] + [TabDiffusionDetector(**{**TabDiffusionDetector._unit_test_params(), "novelty": False})] + [
    DiffusionTSDetector(**{**DiffusionTSDetector._unit_test_params(), "scoring": scoring,
                           "denoiser": denoiser})
    for denoiser in ("exact", "unet") for scoring in ("imputation", "reconstruction")
] + [
    DiffusionTSDetector(**{**DiffusionTSDetector._unit_test_params(), "window_size": (2, 4),
                           "denoiser": denoiser})  # multi-scale
    for denoiser in ("exact", "unet")
] + [
    DiffusionImageDetector(**{**DiffusionImageDetector._unit_test_params(), **params})
    for params in ({}, {"denoiser": "unet"}, {"denoiser": "unet", "scoring": "density"},
                   {"denoiser": "unet", "scoring": "feature", "noise": "simplex", "guidance": 0.5},
                   {"denoiser": "unet", "scoring": "discriminative", "head_widths": (4,)})
] + [
    DiffusionVideoDetector(**{**DiffusionVideoDetector._unit_test_params(), **params})
    for params in ({}, {"denoiser": "unet", "scoring": "prediction", "n_past": 2},
                   {"scoring": "prediction", "n_past": 2},
                   {"denoiser": "predictor", "scoring": "prediction", "n_past": 2})
] + [
    # fusion: the even and the odd columns as two modalities, every fusion mode
    FusionDetector([("all", TabDiffusionDetector(**_TAB), slice(None))]),
    FusionDetector([("even", TabDiffusionDetector(**_TAB), slice(0, None, 2)),
                    ("odd", TabDiffusionDetector(**{**_TAB, "denoiser": "exact"}),
                     slice(1, None, 2))], fusion="dynamic", calibration="tail"),
    FusionDetector([("even", KNN(n_neighbors=3), slice(0, None, 2)),
                    ("odd", IForest(n_estimators=10, random_state=0), slice(1, None, 2))],
                   combine="max"),
    FusionDetector([("all", KNN(), slice(None))], fusion="early",
                   early_detector=TabDiffusionDetector(**_TAB)),
]

_PYOD_LABELS = (
    "PyOD's convention: predict returns 0/1 (1 = anomaly), not scikit-learn's -1/+1, "
    "and decision_function is higher for anomalies"
)


_TIME_ORDER = (
    "a time series is one sample: a step's score depends on its neighbours in time, "
    "so reordering or subsetting the rows changes the series and its scores"
)


_FRAME_ORDER = (
    "a 2-D array is one clip of flat frames: a frame is scored with the frames before it "
    "and its score smoothed with its neighbours', so reordering or subsetting the rows "
    "changes the clip and its scores"
)


def expected_failed_checks(estimator):
    failures = {
        "check_outliers_train": _PYOD_LABELS,
        "check_outliers_fit_predict": _PYOD_LABELS,
    }
    if isinstance(estimator, DiffusionVideoDetector):
        failures.update({
            "check_methods_sample_order_invariance": _FRAME_ORDER,
            "check_methods_subset_invariance": _FRAME_ORDER,
        })
    if isinstance(estimator, DiffusionTSDetector):
        failures.update({
            "check_methods_sample_order_invariance": _TIME_ORDER,
            "check_methods_subset_invariance": _TIME_ORDER,
            "check_fit1d": "PyOD's time-series convention: a 1-D array is one univariate series",
        })
    return failures


def trains_a_network(estimator):
    return getattr(estimator, "denoiser", None) not in (None, "exact")


# `make test-fast` checks the first configuration above of each class with a trained
# network and the first without one (a quarter of the checks' time); `make test` all.
FIRST = {}
for _estimator in ESTIMATORS:
    FIRST.setdefault((type(_estimator), trains_a_network(_estimator)), _estimator)
OTHERS = [e for e in ESTIMATORS if not any(e is first for first in FIRST.values())]


@parametrize_with_checks(list(FIRST.values()), expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.slow
@parametrize_with_checks(OTHERS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator_in_every_other_configuration(estimator, check):
    check(estimator)
