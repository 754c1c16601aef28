"""The CUDA paths of every detector (skipped without a GPU; ``make gpu-check``).

CI has no GPU: these run where one is lent, together with
``benchmarks/gpu.py``'s table.
"""

import pickle

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from skdiffad import (
    DiffusionImageDetector,
    DiffusionTSDetector,
    DiffusionVideoDetector,
    TabDiffusionDetector,
)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

TAB = {"widths": (16,), "max_steps": 50, "n_timesteps": 100, "n_scoring_timesteps": 2,
       "n_inference_steps": 2, "random_state": 0}
TS = {"window_size": 16, "widths": (8, 16), "kernel_size": 3, "max_steps": 50,
      "n_timesteps": 100, "n_inference_steps": 2, "n_stripes": 2, "random_state": 0}
# Two starting levels: with one, a 50-step U-Net's restorations differ so much
# between training-noise streams (CPU and CUDA draw different ones) that
# simplex scores correlate at about 0.5 (a CPU run with a shifted stream).
UNET = {"denoiser": "unet", "widths": (8, 16), "max_steps": 50, "n_timesteps": 100,
        "n_inference_steps": 2, "n_scoring_timesteps": 2, "random_state": 0}
IMAGE_SHAPE = (24, 20)
# The video U-Nets (conditional diffusion and the plain MSE predictor) generate the
# current frame from the two before it; the exact default needs no settings.
VIDEO_UNET = {"scoring": "prediction", "n_past": 2, "widths": (8, 16), "max_steps": 50,
              "n_timesteps": 100, "n_inference_steps": 2, "n_scoring_timesteps": 2,
              "random_state": 0}
VIDEO_CASES = [(DiffusionVideoDetector, {"random_state": 0}, 1),
               (DiffusionVideoDetector, {**VIDEO_UNET, "denoiser": "unet"}, 1),
               (DiffusionVideoDetector, {**VIDEO_UNET, "denoiser": "predictor"}, 1)]


def fixed_features():
    """A small conv encoder with seeded weights: the same feature space on both devices."""
    generator = torch.Generator().manual_seed(0)
    encoder = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(),
                                  torch.nn.Conv2d(8, 8, 3, padding=1, stride=2))
    with torch.no_grad():
        for weight in encoder.parameters():
            weight.copy_(0.3 * torch.randn(weight.shape, generator=generator))
    return encoder


# (detector, parameters, channels of the images; 1 for the other detectors)
CASES = ([(TabDiffusionDetector, {**TAB, "denoiser": d, "scoring": s}, 1)
          for d, s in (("exact", "time"), ("mlp", "time"), ("mlp", "reconstruction"),
                       ("mlp", "density"), ("mlp", "score"))]
         + [(TabDiffusionDetector, {**TAB, "novelty": False}, 1)]
         + [(DiffusionTSDetector, {**TS, "denoiser": d, "scoring": s}, 1)
            for d in ("exact", "unet") for s in ("reconstruction", "imputation")]
         + [(DiffusionImageDetector, {"random_state": 0}, 1),
            (DiffusionImageDetector, UNET, 1),
            (DiffusionImageDetector, UNET, 3),
            (DiffusionImageDetector, {**UNET, "noise": "simplex"}, 1),
            (DiffusionImageDetector, {**UNET, "guidance": 0.5}, 1),
            # the U-Net's own encoder is trained too: CPU and CUDA would compare
            # in different feature spaces (the own-encoder test is further down)
            (DiffusionImageDetector, {**UNET, "scoring": "feature",
                                      "feature_extractor": fixed_features()}, 1),
            (DiffusionImageDetector, {**UNET, "scoring": "discriminative", "head_widths": (8,)}, 1),
            (DiffusionImageDetector, {**UNET, "scoring": "density"}, 1)]
         + VIDEO_CASES)


def case_id(case):
    cls, params, channels = case
    settings = [f"{k}={v}" for k, v in params.items()
                if k in ("scoring", "denoiser", "novelty", "noise", "guidance")]
    if cls in (DiffusionImageDetector, DiffusionVideoDetector) and "denoiser" not in params:
        settings.append("default")
    if params.get("feature_extractor") is not None:
        settings.append("extractor")
    return "-".join([cls.__name__, *settings] + ([f"{channels}ch"] if channels > 1 else []))


def data(cls, seed=0, gaps=False, channels=1):
    rng = np.random.default_rng(seed)
    if cls in (DiffusionImageDetector, DiffusionVideoDetector):
        if gaps:
            raise ValueError("images and frames have no gaps: their detectors reject NaN")
        if cls is DiffusionVideoDetector:
            return clips(rng, fast=seed != 0)
        return images(rng, defects=seed != 0, channels=channels)
    if cls is TabDiffusionDetector:
        X = rng.normal(size=(600, 6))
    else:
        t = np.arange(1200)[:, None]
        X = np.sin(2 * np.pi * t / 30 + np.arange(3)) + 0.05 * rng.normal(size=(1200, 3))
    if gaps:
        X[rng.random(X.shape) < 0.05] = np.nan
    return X


def images(rng, defects, channels=1, n=60):
    """Smooth random textures, ``(n, 24, 20)`` or ``(n, 24, 20, channels)``.

    With ``defects`` (the images scored), every second image holds a bright
    7x7 square of its own brightness: a signal strong enough that networks
    trained on different devices rank the images alike.
    """
    noise = rng.normal(size=(n, *IMAGE_SHAPE, channels))
    texture = gaussian_filter(noise, sigma=(0, 1.5, 1.5, 0))
    X = 0.5 + 0.1 * texture / texture.std()
    if defects:
        for i in range(0, n, 2):
            r, c = rng.integers(0, IMAGE_SHAPE[0] - 7), rng.integers(0, IMAGE_SHAPE[1] - 7)
            X[i, r:r + 7, c:c + 7] += rng.uniform(0.3, 1.0)
    return X[..., 0] if channels == 1 else X


def clips(rng, fast, n_frames=30, side=5):
    """Noisy 24x20 clips of a bright square crossing the frame at 1 pixel per frame:
    four to fit on, or (``fast``, the clips scored) two whose second halves move it
    three times as fast (a frame-level anomaly only the motion shows)."""
    out = []
    for _ in range(2 if fast else 4):
        frames = 0.2 + 0.02 * rng.normal(size=(n_frames, *IMAGE_SHAPE))
        row, x = rng.integers(0, IMAGE_SHAPE[0] - side), rng.uniform(0, IMAGE_SHAPE[1] - side)
        for t in range(n_frames):
            x = (x + (3 if fast and t >= n_frames // 2 else 1)) % (IMAGE_SHAPE[1] - side)
            frames[t, row:row + side, int(x):int(x) + side] += 0.6
        out.append(frames)
    return out


def tensors(state):
    """Every tensor in a pickled state, through nested dicts, lists, tuples, modules and
    objects (a series model is an ensemble of one model per window length)."""
    if isinstance(state, torch.Tensor):
        yield state
    elif isinstance(state, torch.nn.Module):
        yield from state.state_dict().values()
    elif isinstance(state, dict):
        for value in state.values():
            yield from tensors(value)
    elif isinstance(state, (list, tuple)):
        for value in state:
            yield from tensors(value)
    elif hasattr(state, "__getstate__") and hasattr(state, "__dict__"):
        yield from tensors(state.__getstate__())  # a model inside a model (ScaleEnsemble)


@pytest.mark.parametrize("gaps", [False, True])
@pytest.mark.parametrize("cls, params, channels", CASES, ids=[case_id(c) for c in CASES])
def test_cuda_scores_match_the_cpu_and_repeat_exactly(cls, params, channels, gaps):
    if gaps and cls in (DiffusionImageDetector, DiffusionVideoDetector):
        pytest.skip(f"images and frames have no missing pixels: {cls.__name__} rejects NaN")
    X = data(cls, gaps=gaps, channels=channels)
    new = data(cls, seed=1, gaps=gaps, channels=channels)
    gpu = cls(**params, device="cuda", mixed_precision=False).fit(X)
    cpu = cls(**params, device="cpu").fit(X)
    assert gpu.device_.type == "cuda"
    scores = gpu.decision_function(new)
    np.testing.assert_array_equal(gpu.decision_function(new), scores)  # deterministic scoring
    if gpu.network_ is None:  # the exact model: the same search, float rounding apart
        np.testing.assert_allclose(scores, cpu.decision_function(new), rtol=1e-4, atol=1e-6)
    else:  # a network trained on another device: close, not equal
        assert np.corrcoef(scores, cpu.decision_function(new))[0, 1] > 0.9


@pytest.mark.parametrize("cls, params, channels", CASES, ids=[case_id(c) for c in CASES])
def test_cuda_fit_pickles_with_cpu_tensors_and_comes_back_to_the_gpu(cls, params, channels):
    det = cls(**params, device="cuda").fit(data(cls, channels=channels))
    state = det.model_.__getstate__()
    blob = pickle.dumps(det)
    restored = pickle.loads(blob)
    assert restored.device_ == det.device_ == restored.model_.device_
    new = data(cls, seed=1, channels=channels)
    np.testing.assert_array_equal(restored.decision_function(new), det.decision_function(new))
    saved = list(tensors(state))
    assert det.network_ is None or saved  # a network's weights are in the state
    for value in saved:
        assert value.device.type == "cpu"


@pytest.mark.parametrize("channels", [1, 3])
def test_cuda_anomaly_maps_of_the_exact_model_match_the_cpu(channels):
    X = data(DiffusionImageDetector, channels=channels)
    new = data(DiffusionImageDetector, seed=1, channels=channels)
    gpu = DiffusionImageDetector(random_state=0, device="cuda").fit(X)
    cpu = DiffusionImageDetector(random_state=0, device="cpu").fit(X)
    maps = gpu.anomaly_map(new)
    assert maps.shape == (len(new), *IMAGE_SHAPE)
    np.testing.assert_allclose(maps, cpu.anomaly_map(new), rtol=1e-4,
                               atol=1e-4 * np.abs(maps).max())
    masks = gpu.predict_mask(new)
    assert masks.shape == maps.shape and masks.dtype == bool
    # the image score is its map's maximum: an image is flagged when its mask is not empty
    np.testing.assert_array_equal(masks.reshape(len(new), -1).any(axis=1), gpu.predict(new) == 1)


def test_cuda_video_anomaly_maps_of_the_exact_model_match_the_cpu():
    X, new = data(DiffusionVideoDetector), data(DiffusionVideoDetector, seed=1)
    gpu = DiffusionVideoDetector(random_state=0, device="cuda").fit(X)
    cpu = DiffusionVideoDetector(random_state=0, device="cpu").fit(X)
    maps = gpu.anomaly_map(new)
    assert maps.shape == (sum(len(c) for c in new), *IMAGE_SHAPE)
    np.testing.assert_allclose(maps, cpu.anomaly_map(new), rtol=1e-4,
                               atol=1e-4 * np.abs(maps).max())
    # the square that speeds up (second half of each clip) is what the scores see
    scores, half = gpu.decision_function(new), len(new[0]) // 2
    assert scores[half:len(new[0])].mean() > scores[:half].mean()


@pytest.mark.parametrize("cls, params, channels", VIDEO_CASES,
                         ids=[case_id(c) for c in VIDEO_CASES])
def test_cuda_video_chunk_size_changes_no_bit(cls, params, channels):
    # the documented promise, on the GPU: scoring chunk_size frames at a time changes
    # no bit (with a U-Net, only if its kernels do not depend on the batch's size)
    det = cls(**params, device="cuda").fit(data(cls))
    new = data(cls, seed=1)
    scores, maps = det.decision_function(new), det.anomaly_map(new)
    det.modality_.chunk_size = 7
    np.testing.assert_array_equal(det.decision_function(new), scores)
    np.testing.assert_array_equal(det.anomaly_map(new), maps)


@pytest.mark.parametrize("cls, params, channels", VIDEO_CASES,
                         ids=[case_id(c) for c in VIDEO_CASES])
def test_cuda_fitted_video_detector_loads_on_the_cpu_with_a_warning(cls, params, channels,
                                                                    monkeypatch):
    det = cls(**params, device="cuda").fit(data(cls))
    new = data(cls, seed=1)
    scores = det.decision_function(new)
    blob = pickle.dumps(det)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a machine without one
    with pytest.warns(UserWarning, match="fitted on cuda.* but CUDA is not available"):
        restored = pickle.loads(blob)
    assert restored.device_.type == restored.model_.device_.type == "cpu"
    cpu_scores = restored.decision_function(new)  # still as on a machine without CUDA
    if det.network_ is None:  # the same stored patches, searched on the CPU
        np.testing.assert_allclose(cpu_scores, scores, rtol=1e-4, atol=1e-6)
    else:  # the same weights; the GPU's convolutions round differently (TF32)
        assert all(p.device.type == "cpu" for p in restored.network_.parameters())
        assert np.corrcoef(cpu_scores, scores)[0, 1] > 0.99


def test_cuda_feature_scoring_reads_the_unets_own_encoder():
    # No CPU comparison: the encoder is trained with the U-Net, on a different
    # noise stream per device, so the two measure in different feature spaces.
    X, new = data(DiffusionImageDetector), data(DiffusionImageDetector, seed=1)
    det = DiffusionImageDetector(**UNET, scoring="feature", device="cuda").fit(X)
    scores = det.decision_function(new)
    assert np.all(np.isfinite(scores))
    np.testing.assert_array_equal(det.decision_function(new), scores)
    restored = pickle.loads(pickle.dumps(det))
    assert restored.device_.type == "cuda"
    np.testing.assert_array_equal(restored.decision_function(new), scores)


def test_cuda_index_beyond_the_visible_devices_is_named():
    with pytest.raises(ValueError, match="CUDA device"):
        TabDiffusionDetector(device=f"cuda:{torch.cuda.device_count()}").fit(data(TabDiffusionDetector))


def test_bf16_training_is_the_default_and_can_be_turned_off():
    X = data(TabDiffusionDetector)
    params = {**TAB, "denoiser": "mlp", "scoring": "density", "device": "cuda"}
    bf16 = TabDiffusionDetector(**params).fit(X).decision_scores_
    fp32 = TabDiffusionDetector(**params, mixed_precision=False).fit(X).decision_scores_
    assert not np.array_equal(bf16, fp32)
    assert np.corrcoef(bf16, fp32)[0, 1] > 0.9


def test_image_unet_trains_channels_last_in_bf16_by_default():
    X, new = data(DiffusionImageDetector), data(DiffusionImageDetector, seed=1)
    params = {**UNET, "device": "cuda"}
    bf16 = DiffusionImageDetector(**params).fit(X)
    fp32 = DiffusionImageDetector(**params, mixed_precision=False).fit(X)
    kernels = [p for p in bf16.network_.parameters() if p.ndim == 4]
    assert kernels and all(p.is_cuda and p.is_contiguous(memory_format=torch.channels_last)
                           for p in kernels)
    assert all(p.dtype == torch.float32 for p in bf16.network_.parameters())  # autocast only
    assert np.all(np.isfinite(bf16.loss_curve_))
    scores16, scores32 = bf16.decision_function(new), fp32.decision_function(new)
    assert np.all(np.isfinite(scores16))
    assert not np.array_equal(scores16, scores32)
    assert np.corrcoef(scores16, scores32)[0, 1] > 0.9
