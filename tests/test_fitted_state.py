"""Scoring reads fitted state only (issue #25).

Every constructor parameter changed with ``set_params`` after ``fit`` leaves
``decision_function`` exactly as it was: the modality, the model and the reduction
were built from the parameters at fit and are all scoring reads. A fusion refit that
fails part-way leaves the previous fit whole.
"""

import copy
import warnings

import numpy as np
import pytest
import torch
from pyod.models.knn import KNN

from skdiffad import (
    DiffusionImageDetector,
    DiffusionTSDetector,
    DiffusionVideoDetector,
    FusionDetector,
    TabDiffusionDetector,
)

#: A valid value other than the fitted one, for every parameter of every detector.
OTHER = {
    "denoiser": {"TabDiffusionDetector": "mlp", "DiffusionTSDetector": "unet",
                 "DiffusionImageDetector": "unet", "DiffusionVideoDetector": "unet"},
    "scoring": {"TabDiffusionDetector": "density", "DiffusionTSDetector": "imputation",
                "DiffusionImageDetector": "density", "DiffusionVideoDetector": "prediction"},
    "n_past": 3, "stream": "both", "per_site": True, "temporal_smoothing": 0.0,
    "top_fraction": 0.5,
    "chunk_size": 3,
    "novelty": False, "n_neighbors": 3, "widths": (5, 6), "n_bins": 3,
    "window_size": 64, "stride": 1, "scaling": "minmax", "aggregation": "step",
    "aggregation_window": 4, "spread_floor": 0.01,
    "kernel_size": 7, "n_stripes": 3,
    "patch_size": 3, "image_shape": (11, 9), "image_size": (6, 6), "channel_axis": "first",
    "pixel_normalisation": False, "smoothing": 0.0, "attention": True, "noise": "simplex",
    "guidance": 0.5, "feature_extractor": torch.nn.Conv2d(1, 2, 3), "head_widths": (3,),
    "head_defects": "generated",
    "n_timesteps": 20, "beta_schedule": "cosine", "n_scoring_timesteps": 4,
    "n_inference_steps": 3, "max_samples": 7, "search": "ivf", "max_steps": 2, "batch_size": 5,
    "learning_rate": 0.5, "weight_decay": 0.5, "ema_decay": 0.5, "early_stopping": True,
    "validation_fraction": 0.5, "n_iter_no_change": 1, "mixed_precision": False,
    "contamination": 0.3, "device": "cuda", "random_state": 9, "verbose": 2,
    "max_iter": 3, "hidden_dims": (3,), "patch_stride": 1,
}


def _other(cls, name):
    value = OTHER[name]
    return value[cls.__name__] if isinstance(value, dict) else value


def _series(n, seed=0):
    t = np.arange(n)[:, None]
    rng = np.random.default_rng(seed)
    return np.sin(2 * np.pi * t / 25 + np.array([[0.0, 1.0]])) + 0.05 * rng.normal(size=(n, 2))


CASES = [
    (TabDiffusionDetector, {}, lambda s: np.random.default_rng(s).normal(size=(120, 4))),
    (TabDiffusionDetector, {"denoiser": "mlp", "scoring": "reconstruction"},
     lambda s: np.random.default_rng(s).normal(size=(120, 4))),
    (DiffusionTSDetector, {"window_size": (8, 16)}, lambda s: _series(400, s)),
    (DiffusionTSDetector, {"denoiser": "unet", "window_size": 8}, lambda s: _series(300, s)),
    (DiffusionImageDetector, {}, lambda s: np.random.default_rng(s).random((16, 9, 11))),
    (DiffusionImageDetector, {"denoiser": "unet", "widths": (4,)},
     lambda s: np.random.default_rng(s).random((16, 9, 11))),
    (DiffusionVideoDetector, {"n_past": 2, "temporal_smoothing": 2.0},
     lambda s: [np.random.default_rng(s).random((12, 9, 11)) for _ in range(2)]),
    (DiffusionVideoDetector, {"denoiser": "unet", "scoring": "prediction", "n_past": 2},
     lambda s: [np.random.default_rng(s).random((12, 9, 11)) for _ in range(2)]),
]
IDS = ["table-exact", "table-mlp", "series-exact", "series-unet", "images-exact",
       "images-unet", "video-exact", "video-unet"]


@pytest.mark.parametrize("cls, params, data", CASES, ids=IDS)
def test_every_parameter_changed_after_fit_leaves_the_scores_alone(cls, params, data):
    det = cls(**{**cls._unit_test_params(), **params}).fit(data(0))
    new = data(1)
    expected = det.decision_function(new)
    for name in det.get_params():
        changed = copy.deepcopy(det).set_params(**{name: _other(cls, name)})
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no deprecation path may run at scoring
            np.testing.assert_array_equal(changed.decision_function(new), expected,
                                          err_msg=f"{cls.__name__}: set_params({name}=...)")


def test_window_size_changed_after_fit_scores_with_the_fitted_lengths():
    """The defect of 79acc49: the series detector read window_size while scoring."""
    x = _series(2000)
    det = DiffusionTSDetector(random_state=0).fit(x)
    expected = det.decision_function(x)
    det.set_params(window_size=64)
    np.testing.assert_array_equal(det.decision_function(x), expected)
    np.testing.assert_array_equal(det.channel_scores(x).shape, (2000, 2))
    assert det.period_ == 25 and det.window_sizes_ == (12, 25, 32, 50, 64, 128)


def test_a_fusion_refit_that_fails_part_way_keeps_the_previous_fit():
    X = np.random.default_rng(0).normal(size=(150, 4))
    det = FusionDetector([("a", KNN(), [0, 1]), ("b", KNN(), [2, 3])]).fit(X)
    before = copy.deepcopy(vars(det))
    scores = det.decision_function(X[:20])
    # the second member cannot fit its modality: the first is fitted before it fails
    det.set_params(modalities=[("a", KNN(n_neighbors=3), [0, 1]),
                               ("c", TabDiffusionDetector(n_bins=1), [2, 3])],
                   fusion="dynamic")
    with pytest.raises(ValueError, match="n_bins"):
        det.fit(X)
    assert set(vars(det)) == set(before)
    assert list(det.members_) == ["a", "b"] and det.members_["a"].n_neighbors == 5
    np.testing.assert_array_equal(det.decision_scores_, before["decision_scores_"])
    np.testing.assert_array_equal(det.decision_function(X[:20]), scores)


def test_fusion_parameters_changed_after_fit_leave_the_scores_alone():
    X = np.random.default_rng(0).normal(size=(150, 4))
    det = FusionDetector([("a", KNN(), [0, 1]), ("b", KNN(), [2, 3])]).fit(X)
    expected = det.decision_function(X[:20])
    modality_scores = det.modality_scores(X[:20])
    det.set_params(modalities=[("a", KNN(), [3]), ("b", KNN(), [0])], fusion="early",
                   combine="max", calibration="tail")
    np.testing.assert_array_equal(det.decision_function(X[:20]), expected)
    np.testing.assert_array_equal(det.modality_scores(X[:20]), modality_scores)
