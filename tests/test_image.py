"""DiffusionImageDetector: inputs and layouts, maps and masks, errors."""

import re

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import roc_auc_score

from skdiffad import DiffusionImageDetector

FAST = {"random_state": 0, "device": "cpu"}
UNET = {**FAST, "denoiser": "unet", "widths": (8, 16), "max_steps": 150, "n_timesteps": 100,
        "n_inference_steps": 2, "n_scoring_timesteps": 2}


def textures(n, h=13, w=21, channels=0, seed=0):
    """Smooth random textures (n, h, w[, channels]) in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    shape = (n, h, w) + ((channels,) if channels else ())
    base = 0.5 + 0.2 * np.sin(xx / 2.0 + rng.uniform(0, 6, size=(n, 1, 1)))
    if channels:
        base = base[..., None]
    return np.clip(base + 0.03 * rng.normal(size=shape), 0, 1)


def with_defects(images, seed=1):
    """Images with a bright 3x3 square at a random place; returns them and the masks."""
    rng = np.random.default_rng(seed)
    out, masks = images.copy(), np.zeros(images.shape[:3], dtype=bool)
    for i in range(len(out)):
        r, c = rng.integers(2, images.shape[1] - 5), rng.integers(2, images.shape[2] - 5)
        out[i, r:r + 3, c:c + 3] = 1.0
        masks[i, r:r + 3, c:c + 3] = True
    return out, masks


# ------------------------------------------------------------------ quality
# floors a few points under what these tiny settings reach (exact 1.0 and 1.0;
# a 150-step U-Net about 0.9 and 0.7)
@pytest.mark.parametrize("params, floor, located", [
    (FAST, 0.95, 0.8), pytest.param(UNET, 0.8, 0.5, marks=pytest.mark.slow)],
    ids=["exact", "unet"])
def test_planted_defects_are_found_and_located(params, floor, located):
    train = textures(60)
    bad, masks = with_defects(textures(10, seed=2))
    good = textures(10, seed=3)
    det = DiffusionImageDetector(**params).fit(train)
    scores = det.decision_function(np.concatenate([good, bad]))
    assert roc_auc_score(np.r_[np.zeros(10), np.ones(10)], scores) > floor
    maps = det.anomaly_map(bad)
    assert maps.shape == bad.shape  # 13 x 21: non-square, not a multiple of 8
    peaks = [np.unravel_index(np.argmax(m), m.shape) for m in maps]
    assert np.mean([mask[peak] for mask, peak in zip(masks, peaks)]) >= located
    np.testing.assert_allclose(scores[10:], maps.reshape(10, -1).max(axis=1), rtol=1e-12)


def test_predicted_masks_agree_with_predicted_labels():
    det = DiffusionImageDetector(**FAST).fit(textures(60))
    X = np.concatenate([textures(8, seed=3), with_defects(textures(8, seed=2))[0]])
    masks, labels = det.predict_mask(X), det.predict(X)
    assert masks.shape == X.shape and masks.dtype == bool
    np.testing.assert_array_equal(masks.reshape(len(X), -1).any(axis=1), labels == 1)


def test_exact_training_scores_come_from_the_other_half_of_the_images():
    train = textures(40)
    det = DiffusionImageDetector(**FAST, pixel_normalisation=False).fit(train)
    # scored as new images, every training patch finds itself: nothing is abnormal
    assert det.decision_function(train).max() < 1e-12
    new = det.decision_function(textures(40, seed=5))
    assert 0.3 < np.median(det.decision_scores_) / np.median(new) < 3


def noisy_edge(images, seed=4):
    """Images whose three left columns are fresh noise in every image."""
    out = images.copy()
    out[:, :, :3] = np.random.default_rng(seed).uniform(0, 1, size=out[:, :, :3].shape)
    return out


def test_pixel_normalisation_discounts_pixels_that_are_hard_in_every_image():
    # like the photographed edges of a tile: always badly restored, never a defect
    train = noisy_edge(textures(60))
    bad, masks = with_defects(noisy_edge(textures(10, seed=2), seed=5))
    located = {}
    for normalise in (False, True):
        det = DiffusionImageDetector(**FAST, pixel_normalisation=normalise).fit(train)
        maps = det.anomaly_map(bad)
        peaks = [np.unravel_index(np.argmax(m), m.shape) for m in maps]
        located[normalise] = np.mean([mask[peak] for mask, peak in zip(masks, peaks)])
        if normalise:
            assert set(det.reduction_) == {"scale"}  # not centred (issue #29)
            assert det.reduction_["scale"].shape == (13, 21)
            # the training maps' errors are the origin of the scale: an edge pixel
            # counts in units of its own spread, far larger than the texture's
            assert det.reduction_["scale"][:, :3].mean() > 3 * det.reduction_["scale"][:, 8:].mean()
        else:
            assert det.reduction_ is None
    assert located[False] <= 0.3 and located[True] >= 0.8


def strokes(n, seed=0, size=16):
    """Digit-like images: a vertical stroke of varying place and length on a blank
    margin, as MNIST's digits are drawn."""
    rng = np.random.default_rng(seed)
    X = np.zeros((n, size, size))
    for image in X:
        column, top, bottom = rng.integers(5, 10), rng.integers(3, 5), rng.integers(11, 13)
        image[top:bottom, column:column + 2] = rng.uniform(0.7, 1.0)
    return X


def test_exact_patches_are_restored_from_their_own_border_class():
    """A patch on the image's border is restored only from patches on the same border
    of the training images (issue #29: interior content restored onto the blank border
    made the maps of MNIST anomalies peak there)."""
    det = DiffusionImageDetector(**FAST).fit(strokes(30))  # patch 8, stride 4: 3 x 3
    assert det.model_.per_site
    samples = det.modality_.encode(strokes(1, seed=1)).samples
    np.testing.assert_array_equal(samples.sites, np.arange(9))  # one patch a class
    big = DiffusionImageDetector(**FAST, patch_size=4).fit(strokes(30))  # 7 x 7 patches
    classes = big.modality_.encode(strokes(1, seed=1)).samples.sites.reshape(7, 7)
    np.testing.assert_array_equal(classes[0], [0, 1, 1, 1, 1, 1, 2])
    np.testing.assert_array_equal(classes[3], [3, 4, 4, 4, 4, 4, 5])
    np.testing.assert_array_equal(classes[6], [6, 7, 7, 7, 7, 7, 8])
    assert sorted(np.unique(big.model_.sites_)) == list(range(9))


def test_normal_maps_do_not_peak_on_the_blank_border_and_defects_are_found():
    det = DiffusionImageDetector(**FAST).fit(strokes(60))
    maps = det.anomaly_map(strokes(40, seed=2))
    assert maps.min() >= 0  # errors in units of the training spread, not centred
    # the blank margin, restored perfectly, is the maps' minimum; centred on the
    # training maps' mean, a normal image's map was negative on its stroke and put
    # its maximum on the margin (issue #29)
    peaks = np.array([np.unravel_index(np.argmax(m), m.shape) for m in maps])
    on_border = (peaks < 2).any(axis=1) | (peaks >= 14).any(axis=1)
    assert on_border.mean() <= 0.05  # the outer two pixels are 44% of a 16 x 16 image
    bad = strokes(20, seed=3)
    bad[:, 6:9, 10:13] = 1.0  # a blot beside the stroke
    peaks = [np.unravel_index(np.argmax(m), m.shape) for m in det.anomaly_map(bad)]
    assert all(5 <= r <= 9 and 9 <= c <= 13 for r, c in peaks)


def test_statistics_of_an_earlier_fit_still_centre_the_maps():
    """A detector fitted before issue #29 holds the training maps' mean too, and its
    maps stay centred on it, so it scores as it did."""
    from skdiffad._reductions import normalised_maps, pixel_statistics

    training = np.random.default_rng(0).gamma(2.0, size=(30, 5, 6))
    new = pixel_statistics(training, centred=False)
    old = pixel_statistics(training)
    assert set(new) == {"scale"} and set(old) == {"mean", "scale"}
    np.testing.assert_array_equal(new["scale"], old["scale"])
    maps = training[:3]
    np.testing.assert_array_equal(normalised_maps(maps, old, 0),
                                  (maps - old["mean"]) / old["scale"])
    np.testing.assert_array_equal(normalised_maps(maps, new, 0), maps / new["scale"])


def test_a_detector_fitted_before_the_border_classes_scores_as_it_did(monkeypatch):
    """A fit by the code before issue #29 (plain patches, a position-free search, maps
    centred on the training maps' mean) keeps scoring with that state once the code has
    changed: the same scores and maps as the old code gave, pickled or not."""
    import pickle

    from skdiffad._encoders import images as encoders
    from skdiffad._reductions import pixel_statistics
    from skdiffad.modalities import ImageModality

    def old_model(self, encoded, settings):
        return settings.exact_model("reconstruction", exclusion="two-fold")

    with monkeypatch.context() as old_code:
        old_code.setattr(encoders, "BorderPatchSamples", encoders.PatchSamples)
        old_code.setattr(ImageModality, "make_model", old_model)
        old_code.setattr(ImageModality, "fit_reduction",
                         lambda self, folded, encoded: pixel_statistics(folded))
        old = DiffusionImageDetector(**FAST, patch_size=4, smoothing=0.0).fit(strokes(40))
        test = np.concatenate([strokes(10, seed=4), strokes(10, seed=5)[:, ::-1]])
        before = old.decision_function(test), old.anomaly_map(test)
        saved = pickle.dumps(old)
    assert not old.model_.per_site and set(old.reduction_) == {"mean", "scale"}
    raw = pickle.loads(saved)
    raw.modality_.reduction_ = None  # the same restorations, maps not normalised
    statistics = old.reduction_
    np.testing.assert_allclose(before[1], (raw.anomaly_map(test) - statistics["mean"])
                               / statistics["scale"], rtol=1e-6, atol=1e-9)
    for detector in (old, pickle.loads(saved)):
        np.testing.assert_array_equal(detector.decision_function(test), before[0])
        np.testing.assert_array_equal(detector.anomaly_map(test), before[1])
    new = DiffusionImageDetector(**FAST, patch_size=4, smoothing=0.0).fit(strokes(40))
    assert new.model_.per_site and set(new.reduction_) == {"scale"}
    assert not np.allclose(new.decision_function(test), before[0])


@pytest.mark.slow
def test_mnist_anomaly_maps_do_not_peak_on_the_border(shared_data):
    """On mnist0 the default detector's maps of other digits peaked in the outer two
    pixels for 78% of them before border classes (benchmarks/image_border.py)."""
    from skdiffad.datasets import load_one_class_images, semi_supervised_split

    X, y = load_one_class_images("mnist0", shared_data)
    X_train, X_test, y_test = semi_supervised_split(X / 255.0, y, random_state=0,
                                                    max_train=500)
    det = DiffusionImageDetector(**FAST).fit(X_train)
    anomalies = X_test[y_test == 1][:200]
    maps = det.anomaly_map(anomalies)
    peaks = np.array([np.unravel_index(np.argmax(m), m.shape) for m in maps])
    on_border = (peaks < 2).any(axis=1) | (peaks >= 26).any(axis=1)
    assert on_border.mean() < 0.2
    scores = det.decision_function(np.concatenate([X_test[y_test == 0][:200], anomalies]))
    assert roc_auc_score(np.r_[np.zeros(200), np.ones(200)], scores) > 0.97


def test_identical_training_images_still_give_finite_scores_and_maps():
    train = np.full((6, 9, 9), 0.5)
    det = DiffusionImageDetector(**FAST).fit(train)
    test = train[:2].copy()
    test[1, 3:6, 3:6] = 0.9
    scores = det.decision_function(test)
    assert np.all(np.isfinite(scores)) and scores[1] > scores[0]
    assert np.all(np.isfinite(det.anomaly_map(test)))


@pytest.mark.parametrize("size, patch_size, expected", [
    pytest.param((28, 28), "auto", 14, marks=pytest.mark.slow), ((13, 21), "auto", 6),
    pytest.param((80, 40), "auto", 16, marks=pytest.mark.slow), ((3, 5), "auto", 1),
    ((13, 21), 20, 13), ((13, 21), 4, 4)])
def test_patch_size_auto_is_half_the_shorter_side_up_to_16(size, patch_size, expected):
    train = np.random.default_rng(0).uniform(size=(4,) + size)
    det = DiffusionImageDetector(**FAST, patch_size=patch_size).fit(train)
    assert det.patch_size_ == expected
    assert det.encoder_.stride_ == max(1, expected // 2)
    assert DiffusionImageDetector(**FAST, denoiser="unet", max_steps=2).fit(
        train).patch_size_ is None


# ------------------------------------------------------------------ layouts
def test_every_array_layout_scores_the_same():
    gray = textures(30)
    det = DiffusionImageDetector(**FAST).fit(gray)
    expected = det.decision_function(gray[:5])
    for X in (gray[:, None], gray[..., None], gray.reshape(30, -1)):
        layout = DiffusionImageDetector(**FAST, image_shape=(13, 21)).fit(
            X if X.ndim != 2 else X)
        np.testing.assert_allclose(layout.decision_function(X[:5]), expected, rtol=1e-10)
    rgb = textures(30, channels=3)
    a = DiffusionImageDetector(**FAST).fit(rgb).decision_function(rgb[:5])
    b = DiffusionImageDetector(**FAST).fit(rgb.transpose(0, 3, 1, 2)).decision_function(
        rgb[:5].transpose(0, 3, 1, 2))
    np.testing.assert_allclose(a, b, rtol=1e-10)


def test_flat_rows_are_read_as_square_images_by_default():
    X = textures(20, h=8, w=8)
    det = DiffusionImageDetector(**FAST).fit(X.reshape(20, 64))
    assert det.encoder_.size_ == (8, 8) and det.n_features_in_ == 64
    np.testing.assert_allclose(det.decision_function(X[:3].reshape(3, 64)),
                               DiffusionImageDetector(**FAST).fit(X).decision_function(X[:3]))
    with pytest.raises(ValueError, match="X has 63 features, but DiffusionImageDetector is "
                                         "expecting 64 features"):
        det.decision_function(X[:3].reshape(3, 64)[:, :63])
    rgb = textures(20, h=4, w=4, channels=3).reshape(20, 48)
    assert DiffusionImageDetector(**FAST).fit(rgb).encoder_.n_channels_ == 3


def test_an_ambiguous_channel_axis_is_named_and_can_be_given():
    X = np.random.default_rng(0).random((10, 3, 6, 3))
    with pytest.raises(ValueError, match="channel_axis='first'"):
        DiffusionImageDetector(**FAST).fit(X)
    first = DiffusionImageDetector(**FAST, channel_axis="first").fit(X)
    last = DiffusionImageDetector(**FAST, channel_axis="last").fit(X)
    assert first.encoder_.size_ == (6, 3) and last.encoder_.size_ == (3, 6)


def test_lists_of_files_and_pil_images_of_any_size(tmp_path):
    rng = np.random.default_rng(0)
    sizes = [(20, 30), (24, 18), (20, 30), (31, 25)] * 3
    paths, pictures = [], []
    for i, (h, w) in enumerate(sizes):
        img = Image.fromarray((rng.random((h, w)) * 255).astype(np.uint8), mode="L")
        img.save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
        pictures.append(img)
    det = DiffusionImageDetector(**FAST, image_size=(16, 16)).fit(paths)
    assert det.encoder_.n_channels_ == 1 and not hasattr(det, "n_features_in_")
    np.testing.assert_allclose(det.decision_function(pictures), det.decision_function(paths))
    maps = det.anomaly_map(paths[:4])
    assert isinstance(maps, list) and [m.shape for m in maps] == sizes[:4]
    with pytest.raises(ValueError, match="different sizes.*image_size"):
        DiffusionImageDetector(**FAST).fit(paths)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"image 1 \(.*broken.png\) cannot be read"):
        det.decision_function([paths[0], str(tmp_path / "broken.png")])
    with pytest.raises(ValueError, match="empty list"):
        det.decision_function([])


@pytest.mark.parametrize("channels, mode", [(0, "L"), (3, "RGB")])
def test_files_score_like_arrays_after_a_fit_on_arrays(tmp_path, channels, mode):
    train = (textures(20, channels=channels) * 255).round()
    test = train[:3]
    det = DiffusionImageDetector(**FAST).fit(train)
    pictures = [Image.fromarray(t.astype(np.uint8), mode=mode) for t in test]
    np.testing.assert_allclose(det.decision_function(pictures), det.decision_function(test),
                               rtol=1e-6)
    pictures[0].convert("RGB" if mode == "L" else "L").save(tmp_path / "other.png")
    det.decision_function([str(tmp_path / "other.png")])  # converted to the fitted mode


# ------------------------------------------------------------------- errors
def test_bad_images_after_fit_are_named():
    det = DiffusionImageDetector(**FAST).fit(textures(20))
    with pytest.raises(ValueError, match=r"size \(13, 20\) but DiffusionImageDetector was "
                                         r"fitted on \(13, 21\)"):
        det.decision_function(textures(2, w=20))
    with pytest.raises(ValueError, match="3 channel"):
        det.decision_function(textures(2, channels=3))
    bad = textures(3)
    bad[1, 2, 2] = np.nan
    with pytest.raises(ValueError, match="image 1 holds NaN"):
        det.decision_function(bad)
    bad[1, 2, 2] = np.inf
    with pytest.raises(ValueError, match="image 1 holds NaN or infinite"):
        det.decision_function(bad)
    with pytest.raises(ValueError, match="got shape"):
        det.decision_function(np.zeros((2, 3, 4, 5, 6)))


def test_fit_needs_two_images_and_valid_settings():
    with pytest.raises(ValueError, match="at least 2 training images"):
        DiffusionImageDetector(**FAST).fit(textures(1))
    with pytest.raises(ValueError, match="needs denoiser='unet'"):
        DiffusionImageDetector(**FAST, scoring="density").fit(textures(5))
    with pytest.raises(ValueError, match="image_size must be a tuple"):
        DiffusionImageDetector(**FAST, image_size=(0, 4)).fit(textures(5))
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        DiffusionImageDetector(**{**UNET, "kernel_size": 4}).fit(textures(5))


@pytest.mark.slow
def test_unet_density_gives_per_pixel_maps():
    det = DiffusionImageDetector(**{**UNET, "scoring": "density"}).fit(textures(30))
    bad, masks = with_defects(textures(6, seed=2))
    maps = det.anomaly_map(bad)
    assert maps.shape == bad.shape and np.all(np.isfinite(maps))
    assert maps[masks].mean() > maps[~masks].mean() + 0.1  # nats per pixel


# ------------------------------------------------------- learned paradigms
class _TinyBackbone(torch.nn.Module):
    """A user feature extractor: two feature maps in a dict."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.b = torch.nn.Conv2d(4, 4, 3, stride=2, padding=1)

    def forward(self, x):
        h = torch.relu(self.a(x))
        return {"fine": h, "coarse": torch.relu(self.b(h))}


@pytest.mark.slow
@pytest.mark.parametrize("params", [
    {"scoring": "reconstruction", "noise": "simplex"},
    {"scoring": "reconstruction", "guidance": 0.5},
    {"scoring": "feature"},
    {"scoring": "feature", "guidance": 0.5, "noise": "simplex"},
    {"scoring": "discriminative", "head_widths": (8,)},
], ids=["simplex", "ddad", "feature", "feature-ddad-simplex", "discriminative"])
def test_every_learned_paradigm_gives_maps_at_the_input_size(params):
    settings = {**UNET, "max_steps": 40, **params}
    det = DiffusionImageDetector(**settings).fit(textures(30))
    bad, _ = with_defects(textures(4, seed=2))
    maps = det.anomaly_map(bad)
    assert maps.shape == bad.shape and np.all(np.isfinite(maps))
    np.testing.assert_allclose(det.decision_function(bad), maps.reshape(4, -1).max(axis=1),
                               rtol=1e-12)
    if params["scoring"] == "discriminative":
        assert set(det.model_.networks_) == {"denoiser", "head"}
        assert "head" in det.history_
    again = DiffusionImageDetector(**settings).fit(textures(30))
    np.testing.assert_array_equal(again.anomaly_map(bad), maps)  # seeded on the CPU


@pytest.mark.slow
def test_guidance_keeps_normal_detail_in_the_restoration():
    train = textures(30)
    errors = {}
    for guidance in (0.0, 0.8):
        det = DiffusionImageDetector(**{**UNET, "max_steps": 40}, guidance=guidance,
                                     pixel_normalisation=False, smoothing=0).fit(train)
        errors[guidance] = det.anomaly_map(textures(6, seed=3)).mean()
    assert errors[0.8] < 0.7 * errors[0.0]


def test_a_user_feature_extractor_is_copied_and_used():
    backbone = _TinyBackbone()
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    det = DiffusionImageDetector(**{**UNET, "max_steps": 20}, scoring="feature",
                                 feature_extractor=backbone).fit(textures(20))
    maps = det.anomaly_map(textures(3, seed=3))
    assert maps.shape == (3, 13, 21) and np.all(maps >= -1e9)
    assert det.model_.paradigm.feature_extractor is not backbone
    for k, v in backbone.state_dict().items():
        torch.testing.assert_close(v, before[k])
    own = DiffusionImageDetector(**{**UNET, "max_steps": 20}, scoring="feature").fit(textures(20))
    assert not np.allclose(own.anomaly_map(textures(3, seed=3)), maps)


@pytest.mark.parametrize("params, named", [
    ({"scoring": "feature"}, "scoring='feature' needs denoiser='unet'"),
    ({"noise": "simplex"}, "noise='simplex' needs denoiser='unet'"),
    ({"guidance": 0.5}, "guidance=0.5 needs denoiser='unet'"),
    ({"denoiser": "unet", "scoring": "density", "noise": "simplex"}, "Gaussian noise"),
    ({"denoiser": "unet", "scoring": "discriminative", "guidance": 0.5}, "guidance=0.5"),
    ({"denoiser": "unet", "feature_extractor": torch.nn.Identity()}, "feature_extractor"),
    ({"denoiser": "unet", "scoring": "feature", "feature_extractor": "resnet"},
     "feature_extractor"),
    ({"denoiser": "unet", "head_widths": ()}, "head_widths"),
    ({"denoiser": "unet", "guidance": -1.0}, "guidance"),
])
def test_paradigm_settings_that_do_not_go_together_are_named(params, named):
    with pytest.raises((ValueError, TypeError), match=re.escape(named)):
        DiffusionImageDetector(**FAST, **params).fit(textures(8))
