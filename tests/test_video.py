"""DiffusionVideoDetector: frame scores and maps, the sequence-level methods, chunked and
blockwise scoring, and its errors."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from skdiffad import DiffusionImageDetector, DiffusionVideoDetector
from skdiffad.modalities import VideoModality

FAST = {"patch_size": 4, "n_past": 2, "temporal_smoothing": 1.0, "widths": (8,),
        "max_steps": 30, "n_timesteps": 50, "n_inference_steps": 2, "n_scoring_timesteps": 1,
        "random_state": 0, "device": "cpu"}


def _clip(speed, n=40, seed=0, size=16, start=0):
    """A bright square crossing a noisy frame at ``speed`` pixels per frame."""
    rng = np.random.default_rng(seed)
    frames = rng.normal(0.2, 0.02, size=(n, size, size))
    for t in range(n):
        x = int(start + t * speed) % (size - 4)
        frames[t, 6:10, x:x + 4] += 0.6
    return frames


def _mixed(seed=5):
    """A clip whose frames 20..39 move three times too fast, and its labels."""
    frames = np.concatenate([_clip(1, 20, seed), _clip(3, 20, seed + 1, start=2),
                             _clip(1, 20, seed + 2)])
    labels = np.r_[np.zeros(20), np.ones(20), np.zeros(20)]
    return frames, labels


@pytest.fixture(scope="module")
def training():
    return [_clip(1, 40, seed) for seed in range(3)]


@pytest.fixture(scope="module")
def default(training):
    return DiffusionVideoDetector(**FAST).fit(training)


# ---------------------------------------------------------------- outputs
def test_one_score_per_frame_and_clips_one_after_the_other(default):
    a, b = _clip(1, 25, 7), _clip(2, 30, 8)
    scores = default.decision_function([a, b])
    assert scores.shape == (55,) and np.all(np.isfinite(scores))
    np.testing.assert_array_equal(scores[:25], default.decision_function(a))
    np.testing.assert_array_equal(scores[25:], default.decision_function(b))
    assert default.decision_scores_.shape == (120,)
    assert default.predict(a).shape == (25,)
    assert default.anomaly_map(a).shape == (25, 16, 16)
    assert default.n_features_in_ == 256


def test_the_first_frames_get_a_score(default):
    scores = default.decision_function(_clip(1, 5, 3))
    assert scores.shape == (5,) and np.all(np.isfinite(scores))


def test_speed_anomaly_found_by_motion_not_by_single_frames(training):
    """Every frame of the fast stretch looks like a normal frame; only the motion differs."""
    frames, labels = _mixed()
    motion = DiffusionVideoDetector(**FAST).fit(training)
    single = DiffusionVideoDetector(**{**FAST, "stream": "frames", "n_past": 0}).fit(training)
    assert roc_auc_score(labels, motion.decision_function(frames)) > 0.95
    assert roc_auc_score(labels, single.decision_function(frames)) < 0.8


@pytest.mark.parametrize("params", [
    {"scoring": "prediction"},
    {"stream": "both"},
    {"stream": "frames"},
    {"per_site": True},
    {"denoiser": "unet", "scoring": "prediction", "max_steps": 60},
    {"denoiser": "predictor", "scoring": "prediction", "max_steps": 60},
], ids=lambda p: "-".join(map(str, p.values())))
def test_every_method_ranks_the_fast_stretch_above_the_normal_frames(training, params):
    frames, labels = _mixed()
    det = DiffusionVideoDetector(**{**FAST, **params}).fit(training)
    scores = det.decision_function(frames)
    assert np.all(np.isfinite(scores))
    assert roc_auc_score(labels, scores) > 0.75


def test_unet_reconstruction_runs(training):
    det = DiffusionVideoDetector(**{**FAST, "denoiser": "unet", "max_steps": 4}).fit(training)
    assert np.all(np.isfinite(det.decision_function(_clip(1, 12))))
    assert det.network_ is not None and len(det.loss_curve_) > 0


def test_conditional_unet_sees_the_past_as_input(training):
    """The conditional U-Net is an imputer of the current channels: three inputs per
    stacked channel (noisy hidden, clean visible, visibility), trained on that mask."""
    det = DiffusionVideoDetector(**{**FAST, "denoiser": "unet", "scoring": "prediction",
                                    "max_steps": 4}).fit(training)
    assert det.model_.paradigm.name == "imputation"
    assert det.model_.paradigm.training_masks == "scoring"
    assert det.network_.config["in_channels"] == 3 * 2  # two differences, n_past=2
    hidden = det.model_.paradigm.hidden
    assert hidden.shape == (1, 2, 1, 1) and hidden.flatten().tolist() == [False, True]


def test_temporal_smoothing_averages_neighbouring_frames(training):
    raw = DiffusionVideoDetector(**{**FAST, "temporal_smoothing": 0.0}).fit(training)
    smooth = DiffusionVideoDetector(**{**FAST, "temporal_smoothing": 3.0}).fit(training)
    frames, _ = _mixed()
    a, b = raw.decision_function(frames), smooth.decision_function(frames)
    assert np.abs(np.diff(b)).mean() < np.abs(np.diff(a)).mean()
    np.testing.assert_allclose(a.mean(), b.mean(), rtol=0.05)  # smoothing keeps the level


def test_frame_level_with_no_past_is_the_image_method_per_frame(training):
    """n_past=0 on frames, no temporal smoothing: the image detector's exact restoration
    of each frame's patches.

    The image detector restores a patch from patches of its own border class and does
    not centre its maps on the training maps' mean (issue #29); the video detector can
    do neither. With three patches a side (6 pixels every 5 on 16) its places are the
    border classes, so ``per_site=True`` restores as the image detector does, and the
    raw maps (no pixel normalisation) agree."""
    video = DiffusionVideoDetector(**{**FAST, "stream": "frames", "n_past": 0,
                                      "temporal_smoothing": 0.0, "per_site": True,
                                      "top_fraction": 0.0, "patch_size": 6, "stride": 5,
                                      "pixel_normalisation": False,
                                      "max_samples": 10_000}).fit(training)
    image = DiffusionImageDetector(patch_size=6, stride=5, smoothing=0.0,
                                   pixel_normalisation=False,
                                   random_state=0).fit(np.concatenate(training))
    frames = _clip(2, 10, 9)
    np.testing.assert_allclose(video.decision_function(frames),
                               image.decision_function(frames), rtol=1e-6)


# ---------------------------------------------------------------- long clips
def test_long_clip_scored_in_chunks_of_bounded_size(training, monkeypatch):
    det = DiffusionVideoDetector(**{**FAST, "chunk_size": 500}).fit(training)
    clip = _clip(1, 10_000, 11)
    seen = []
    original = det.encoder_.encode_frames

    def spy(clip_, start, stop):
        seen.append(stop - start)
        return original(clip_, start, stop)

    read = []
    original_read = det.encoder_.read_frames

    def spy_read(frames, index=0):
        read.append(len(frames))
        return original_read(frames, index)

    monkeypatch.setattr(det.encoder_, "encode_frames", spy)
    monkeypatch.setattr(det.encoder_, "read_frames", spy_read)
    scores = det.decision_function(clip)
    assert scores.shape == (10_000,) and np.all(np.isfinite(scores))
    assert max(seen) == 500 and sum(seen) == 10_000
    # the clip is read (checked, standardised) a chunk and its n_past frames at a time
    assert max(read) == 500 + 2 and len(read) == 20
    monkeypatch.undo()
    whole = clone(det).set_params(chunk_size=10_000).fit(training)
    np.testing.assert_array_equal(whole.decision_function(clip), scores)


@pytest.mark.parametrize("chunk", [7, 64])
def test_chunk_size_does_not_change_a_bit(training, chunk):
    frames, _ = _mixed()
    a = DiffusionVideoDetector(**{**FAST, "chunk_size": chunk}).fit(training)
    b = DiffusionVideoDetector(**{**FAST, "chunk_size": 1000}).fit(training)
    np.testing.assert_array_equal(a.decision_function(frames), b.decision_function(frames))
    np.testing.assert_array_equal(a.anomaly_map(frames), b.anomaly_map(frames))


@pytest.mark.parametrize("chunks", [(1,), (5, 1, 13), (25,), (60,)])
def test_dask_frames_score_blockwise_bit_identical(default, chunks):
    da = pytest.importorskip("dask.array")
    frames, _ = _mixed()
    sizes = list(chunks)
    while sum(sizes) < len(frames):
        sizes.append(min(chunks[-1], len(frames) - sum(sizes)))
    lazy = default.decision_function(da.from_array(frames, chunks=(tuple(sizes), 16, 16)))
    np.testing.assert_array_equal(lazy.compute(), default.decision_function(frames))
    labels = default.predict(da.from_array(frames, chunks=(tuple(sizes), 16, 16)))
    np.testing.assert_array_equal(np.asarray(labels.compute()), default.predict(frames))


def test_dask_refuses_what_it_cannot_do(default):
    da = pytest.importorskip("dask.array")
    frames, _ = _mixed()
    with pytest.raises(TypeError, match="anomaly_map takes clips in memory"):
        default.anomaly_map(da.from_array(frames, chunks=10))
    with pytest.raises(TypeError, match="fits on clips in memory"):
        clone(default).fit(da.from_array(frames, chunks=10))
    with pytest.raises(TypeError, match="predict_proba does not take a Dask"):
        default.predict_proba(da.from_array(frames, chunks=10))
    with pytest.raises(ValueError, match="fewer than the 3"):
        default.decision_function(da.from_array(frames[:2], chunks=1))


# ---------------------------------------------------------------- contract
def test_deterministic_clone_and_pickle(training, default):
    frames, _ = _mixed()
    again = clone(default).fit(training)
    np.testing.assert_array_equal(again.decision_function(frames),
                                  default.decision_function(frames))
    restored = pickle.loads(pickle.dumps(default))
    np.testing.assert_array_equal(restored.decision_function(frames),
                                  default.decision_function(frames))


def test_colour_clips_and_resizing():
    rng = np.random.default_rng(0)
    colour = [rng.random((8, 12, 12, 3)) for _ in range(2)]
    det = DiffusionVideoDetector(**FAST).fit(colour)
    assert det.decision_function(colour[0]).shape == (8,)
    assert det.encoder_.n_stacked == 2 * 3
    mixed = [rng.random((6, 12, 12)), rng.random((6, 16, 20))]
    det = DiffusionVideoDetector(**{**FAST, "image_size": (12, 12)}).fit(mixed)
    assert det.anomaly_map(mixed[1]).shape == (6, 12, 12)


def test_modality_is_the_public_plug_in(default):
    assert isinstance(default.modality_, VideoModality)
    assert default.modality_.context == 3
    assert default.reduction_["mean"].shape == (16, 16)


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("X, match", [
    ([], "empty list of clips"),
    ([np.zeros((2, 8, 8))], "clip 0 has 2 frame"),
    ([np.zeros((8, 8, 8)), np.zeros((8, 6, 6))], "clip 1: .*size"),
    ([np.full((8, 8, 8), np.nan)], "NaN or infinite"),
    ([np.zeros((8, 8))[None, None, None]], "clip 0 has shape"),
    (["frames.mp4"], "clip 0 is a str"),
    ([np.zeros((0, 8, 8))], "no images"),
], ids=["empty", "short", "sizes", "nan", "rank", "file", "no-frames"])
def test_bad_training_clips_are_named(X, match):
    with pytest.raises((ValueError, TypeError), match=match):
        DiffusionVideoDetector(**FAST).fit(X)


def test_bad_clips_to_score_are_named(default):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="clip 0 has 1 frame"):
        default.decision_function(rng.random((1, 16, 16)))
    with pytest.raises(ValueError, match="channel"):
        default.decision_function(rng.random((8, 16, 16, 3)))
    with pytest.raises(ValueError, match="size"):
        default.decision_function(rng.random((8, 12, 12)))
    bad = rng.random((8, 16, 16))
    bad[3, 2, 2] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        default.decision_function([rng.random((8, 16, 16)), bad])


@pytest.mark.parametrize("params, match", [
    ({"stream": "motion", "n_past": 0}, "needs n_past >= 1"),
    ({"scoring": "prediction", "n_past": 1}, "n_past >= 2"),
    ({"scoring": "prediction", "stream": "frames", "n_past": 0}, "n_past >= 1"),
    ({"denoiser": "predictor"}, "needs scoring='prediction'"),
    ({"kernel_size": 4}, "kernel_size must be odd"),
    ({"image_size": (8,)}, "image_size must be a tuple"),
    ({"top_fraction": 1.5}, "top_fraction"),
    ({"stream": "colour"}, "stream"),
])
def test_bad_parameters_are_named(training, params, match):
    with pytest.raises(ValueError, match=match):
        DiffusionVideoDetector(**{**FAST, **params}).fit(training)


def test_video_does_not_sample(default):
    with pytest.raises(ValueError, match="do not generate"):
        default.sample(1)
