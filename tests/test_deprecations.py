"""0.1's spellings keep working in 0.2 with a ``FutureWarning`` that names the new one,
and give exactly what the new spelling gives (issue #25)."""

import warnings

import numpy as np
import pytest

from skdiffad import DiffusionImageDetector, TabDiffusionDetector

TAB = {"n_timesteps": 30, "n_scoring_timesteps": 2, "n_inference_steps": 2,
       "random_state": 0, "device": "cpu"}


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    return rng.normal(size=(120, 3)), rng.normal(size=(20, 3))


def _scores(det, X_train, X_test):
    return det.fit(X_train).decision_function(X_test)


@pytest.mark.parametrize("old, new, match", [
    ({"scoring": "nonparametric"}, {"denoiser": "exact", "scoring": "time"},
     r"scoring='nonparametric'.*pass denoiser='exact', scoring='time'"),
    ({"scoring": "density", "max_steps": 4}, {"denoiser": "mlp", "scoring": "density",
                                              "max_steps": 4},
     r"implies denoiser='mlp'; pass denoiser='mlp', scoring='density'"),
    ({"denoiser": "mlp", "hidden_dims": (6,), "max_steps": 4},
     {"denoiser": "mlp", "widths": (6,), "max_steps": 4}, r"hidden_dims is now widths"),
    ({"denoiser": "mlp", "max_iter": 2}, {"denoiser": "mlp", "max_steps": 2},
     r"max_iter \(training epochs\) is deprecated.*pass max_steps="),
])
def test_table_spellings_of_0_1_warn_and_fit_what_the_new_ones_fit(table, old, new, match):
    with pytest.warns(FutureWarning, match=match):
        before = _scores(TabDiffusionDetector(**TAB, **old), *table)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        after = _scores(TabDiffusionDetector(**TAB, **new), *table)
    np.testing.assert_array_equal(before, after)


def test_patch_stride_is_stride(table):
    images = np.random.default_rng(0).random((14, 12, 12))
    with pytest.warns(FutureWarning, match="patch_stride is now stride; pass stride="):
        before = _scores(DiffusionImageDetector(patch_size=4, patch_stride=1, random_state=0),
                         images[:10], images[10:])
    after = _scores(DiffusionImageDetector(patch_size=4, stride=1, random_state=0),
                    images[:10], images[10:])
    np.testing.assert_array_equal(before, after)
    assert DiffusionImageDetector(patch_stride=1).fit(images[:10]).encoder_.stride_ == 1


def test_the_new_spellings_warn_nothing(table):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        TabDiffusionDetector(**TAB).fit(table[0]).decision_function(table[1])
        TabDiffusionDetector(**TAB, denoiser="mlp", max_steps=2).fit(table[0])


def test_parameters_are_keyword_only():
    with pytest.raises(TypeError):
        TabDiffusionDetector("mlp")
