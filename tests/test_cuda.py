"""The CUDA paths of both detectors (skipped without a GPU; ``make gpu-check``).

CI has no GPU: these run where one is lent, together with
``benchmarks/gpu_check.py``'s table.
"""

import pickle

import numpy as np
import pytest
import torch

from skdiffad import DiffusionTSDetector, TabDiffusionDetector

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

TAB = {"hidden_dims": (16,), "max_steps": 50, "n_timesteps": 100, "n_scoring_timesteps": 2,
       "n_inference_steps": 2, "random_state": 0}
TS = {"window_size": 16, "widths": (8, 16), "kernel_size": 3, "max_steps": 50,
      "n_timesteps": 100, "n_inference_steps": 2, "n_stripes": 2, "random_state": 0}
CASES = ([(TabDiffusionDetector, {**TAB, "scoring": s})
          for s in ("nonparametric", "time", "reconstruction", "density", "score")]
         + [(TabDiffusionDetector, {**TAB, "novelty": False})]
         + [(DiffusionTSDetector, {**TS, "denoiser": d, "scoring": s})
            for d in ("exact", "unet") for s in ("reconstruction", "imputation")])


def data(cls, seed=0, gaps=False):
    rng = np.random.default_rng(seed)
    if cls is TabDiffusionDetector:
        X = rng.normal(size=(600, 6))
    else:
        t = np.arange(1200)[:, None]
        X = np.sin(2 * np.pi * t / 30 + np.arange(3)) + 0.05 * rng.normal(size=(1200, 3))
    if gaps:
        X[rng.random(X.shape) < 0.05] = np.nan
    return X


@pytest.mark.parametrize("gaps", [False, True])
@pytest.mark.parametrize("cls, params", CASES)
def test_cuda_scores_match_the_cpu_and_repeat_exactly(cls, params, gaps):
    X, new = data(cls, gaps=gaps), data(cls, seed=1, gaps=gaps)
    gpu = cls(**params, device="cuda", mixed_precision=False).fit(X)
    cpu = cls(**params, device="cpu").fit(X)
    assert gpu.device_.type == "cuda"
    scores = gpu.decision_function(new)
    np.testing.assert_array_equal(gpu.decision_function(new), scores)  # deterministic scoring
    if gpu.network_ is None:  # the exact model: the same search, float rounding apart
        np.testing.assert_allclose(scores, cpu.decision_function(new), rtol=1e-4, atol=1e-6)
    else:  # a network trained on another device: close, not equal
        assert np.corrcoef(scores, cpu.decision_function(new))[0, 1] > 0.9


@pytest.mark.parametrize("cls, params", CASES)
def test_cuda_fit_pickles_with_cpu_tensors_and_comes_back_to_the_gpu(cls, params):
    det = cls(**params, device="cuda").fit(data(cls))
    state = det.model_.__getstate__()
    blob = pickle.dumps(det)
    restored = pickle.loads(blob)
    assert restored.device_ == det.device_ == restored.model_.device_
    new = data(cls, seed=1)
    np.testing.assert_array_equal(restored.decision_function(new), det.decision_function(new))
    for value in state.values():
        if isinstance(value, torch.Tensor):
            assert value.device.type == "cpu"


def test_cuda_index_beyond_the_visible_devices_is_named():
    with pytest.raises(ValueError, match="CUDA device"):
        TabDiffusionDetector(device=f"cuda:{torch.cuda.device_count()}").fit(data(TabDiffusionDetector))


def test_bf16_training_is_the_default_and_can_be_turned_off():
    X = data(TabDiffusionDetector)
    params = {**TAB, "scoring": "density", "device": "cuda"}
    bf16 = TabDiffusionDetector(**params).fit(X).decision_scores_
    fp32 = TabDiffusionDetector(**params, mixed_precision=False).fit(X).decision_scores_
    assert not np.array_equal(bf16, fp32)
    assert np.corrcoef(bf16, fp32)[0, 1] > 0.9
