"""scikit-learn's estimator checks over every skdiffad detector.

Only failures caused by PyOD's label convention are allowed: PyOD's ``predict``
returns 0 (inlier) / 1 (anomaly) and ``decision_function`` grows with abnormality,
where scikit-learn's outlier detectors return -1/+1 and a decision function that is
negative for outliers.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skdiffad import TabDiffusionDetector

ESTIMATORS = [
    TabDiffusionDetector(**{**TabDiffusionDetector._unit_test_params(), "scoring": scoring})
    for scoring in ("nonparametric", "time", "reconstruction", "density", "score")
] + [TabDiffusionDetector(**{**TabDiffusionDetector._unit_test_params(), "novelty": False})]

_PYOD_LABELS = (
    "PyOD's convention: predict returns 0/1 (1 = anomaly), not scikit-learn's -1/+1, "
    "and decision_function is higher for anomalies"
)


def expected_failed_checks(estimator):
    return {
        "check_outliers_train": _PYOD_LABELS,
        "check_outliers_fit_predict": _PYOD_LABELS,
    }


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
