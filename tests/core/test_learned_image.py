"""The learned model's image paradigms: simplex noise, DDAD's guidance and feature
distance, and the discriminative head, next to unchanged reconstruction."""

import pickle

import numpy as np
import pytest
import torch
from torch import nn

from skdiffad._core import (
    PARADIGMS,
    ArraySamples,
    LearnedModel,
    TrainingConfig,
    WindowSamples,
    make_paradigm,
    window_starts,
)
from skdiffad._core.features import ModuleFeatures
from skdiffad._core.paradigms import accumulate, reconstruct
from skdiffad._core.samples import pad_block

CONV2D = {"name": "conv2d", "widths": (4, 8), "kernel_size": 3}
HEAD = {"widths": (4, 8)}


class TwoLevels(nn.Module):
    """A user feature extractor returning a dict of two maps, the second coarser."""

    def __init__(self, channels):
        super().__init__()
        self.fine = nn.Conv2d(channels, 4, 3, padding=1)
        self.coarse = nn.Conv2d(4, 6, 3, stride=2, padding=1)

    def forward(self, x):
        fine = torch.relu(self.fine(x))
        return {"fine": fine, "coarse": self.coarse(fine)}


def conv_stack(channels):
    return nn.Sequential(nn.Conv2d(channels, 4, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(4, 4, 3, padding=1))


def training(max_steps=20, **kwargs):
    params = {"max_iter": 1000, "max_steps": max_steps, "batch_size": 16,
              "early_stopping": False, "learning_rate": 1e-2, "mixed_precision": False}
    params.update(kwargs)
    return TrainingConfig(**params)


def images(n=24, channels=1, height=12, width=12, seed=0):
    """Standardised smooth images: a random linear gradient plus a soft bump per channel."""
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.linspace(-1, 1, height), np.linspace(-1, 1, width), indexing="ij")
    a, b = rng.normal(size=(2, n, channels, 1, 1))
    cy, cx = rng.uniform(-0.6, 0.6, size=(2, n, channels, 1, 1))
    x = 0.5 * (a * xx + b * yy) + np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.3)
    return ((x - x.mean()) / x.std()).astype(np.float32)


def model_for(paradigm, **kwargs):
    """A model with small settings: the model's own, and the paradigm's (small
    defaults for those it takes)."""
    network = kwargs.pop("network", CONV2D)
    own = {"n_timesteps": 50, "training": training()}
    own.update({k: kwargs.pop(k) for k in ("n_timesteps", "training") if k in kwargs})
    defaults = {"n_grid": 2, "n_inference_steps": 2, "head": HEAD}
    takes = PARADIGMS[paradigm].options
    options = {**{k: v for k, v in defaults.items() if k in takes}, **kwargs}
    return LearnedModel(make_paradigm(paradigm, **options), network, **own)


def fitted(paradigm, samples, seed=0, **kwargs):
    model = model_for(paradigm, **kwargs)
    history = model.fit(samples, seed=seed, device="cpu")
    return model, history


def collect(model, samples):
    blocks = list(model.errors(samples))
    return (np.concatenate([b[2] for b in blocks]), np.concatenate([b[3] for b in blocks]))


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ------------------------------------------------------------ image paradigms
@pytest.mark.parametrize("paradigm", ["feature", "discriminative"])
@pytest.mark.parametrize(("channels", "height", "width"), [(1, 12, 12), (3, 9, 13)])
def test_image_paradigms_give_one_finite_map_per_image(paradigm, channels, height, width):
    samples = ArraySamples(images(20, channels, height, width))
    options = {"head_steps": 6} if paradigm == "discriminative" else {}
    model, history = fitted(paradigm, samples, **options)
    sums, counts = collect(model, samples)
    assert sums.shape == counts.shape == (20, channels, height, width)
    maps = sums / counts
    assert np.all(np.isfinite(maps)) and maps.std() > 0
    assert np.array_equal(maps, np.broadcast_to(maps[:, :1], maps.shape))  # shared by channels
    assert model.plan_.paradigm == "reconstruction"
    denoiser = model.networks_["denoiser"].config
    assert denoiser["in_channels"] == denoiser["out_channels"] == channels
    if paradigm == "feature":
        np.testing.assert_allclose(counts, 1.0, rtol=1e-12)  # the plan's weights add up to 1
        assert maps.min() >= 0 and maps.max() <= 2
        assert set(model.networks_) == {"denoiser"} and model.paradigm.feature_extractor is None
        assert "head" not in history
    else:
        assert np.all(counts == 1) and maps.min() >= 0 and maps.max() <= 1
        head = model.networks_["head"]
        assert set(model.networks_) == {"denoiser", "head"} and not head.training
        assert head.config["name"] == "seghead2d" and head.config["widths"] == (4, 8)
        assert head.config["in_channels"] == 2 * channels and head.config["out_channels"] == 1
        assert history["n_steps"] == 20 and history["head"]["n_steps"] == 6


def test_the_head_trains_for_the_denoisers_budget_by_default():
    samples = ArraySamples(images(16))
    model, history = fitted("discriminative", samples, training=training(7))
    assert history["n_steps"] == history["head"]["n_steps"] == 7
    assert model.paradigm.head_steps is None
    denoiser_only, _ = fitted("reconstruction", samples, training=training(7))
    assert same_weights(model.networks_["denoiser"], denoiser_only.networks_["denoiser"])


@pytest.mark.parametrize("paradigm", ["feature", "discriminative"])
def test_an_images_map_does_not_depend_on_what_else_is_scored(paradigm):
    samples = ArraySamples(images(20))
    model, _ = fitted(paradigm, samples, training=training(5))
    whole, _ = collect(model, samples)
    part, _ = collect(model, ArraySamples(samples.values[[7, 2, 11]]))
    assert np.array_equal(part, whole[[7, 2, 11]])
    again, _ = collect(model, samples)
    assert np.array_equal(again, whole)


@pytest.mark.parametrize("paradigm", ["feature", "discriminative"])
def test_unobserved_pixels_are_not_scored(paradigm):
    x = images(16)
    mask = np.random.default_rng(1).random(x.shape) > 0.1
    model, _ = fitted(paradigm, ArraySamples(x * mask, mask), training=training(5))
    assert model.mask_input_
    sums, counts = collect(model, ArraySamples(x * mask, mask))
    assert np.all(counts[~mask] == 0) and np.all(sums[~mask] == 0)
    assert np.all(counts[mask] > 0) and np.all(np.isfinite(sums))


@pytest.mark.slow
def test_the_head_finds_a_pasted_bright_square():
    train = ArraySamples(images(48, seed=0))
    model, history = fitted("discriminative", train, training=training(40), head_steps=200,
                            head={"widths": (8, 16)})
    assert history["head"]["loss"][-1] < history["head"]["loss"][0]
    test = images(16, seed=1)
    square = np.zeros(test.shape, dtype=bool)
    rng = np.random.default_rng(2)
    for i in range(len(test)):
        top, left = rng.integers(0, 12 - 4, size=2)
        square[i, :, top : top + 4, left : left + 4] = True
    test = np.where(square, 3.0, test).astype(np.float32)
    sums, counts = collect(model, ArraySamples(test))
    maps = sums / counts
    assert maps[square].mean() > 2 * maps[~square].mean()
    higher = [maps[i][square[i]].mean() > maps[i][~square[i]].mean() for i in range(len(test))]
    assert sum(higher) >= 14


# ----------------------------------------------------------- feature extractors
@pytest.mark.parametrize("make_module", [conv_stack, TwoLevels])
def test_feature_paradigm_with_a_user_module(make_module):
    samples = ArraySamples(images(16, channels=3, height=9, width=13))
    module = make_module(3)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    model, _ = fitted("feature", samples, feature_extractor=module, training=training(5))
    extractor = model.paradigm.feature_extractor
    assert isinstance(extractor, ModuleFeatures)
    assert extractor.module is not module  # a copy, put in eval mode
    assert not extractor.training and module.training
    assert all(torch.equal(v, before[k]) for k, v in module.state_dict().items())
    sums, counts = collect(model, samples)
    maps = sums / counts
    assert maps.shape == (16, 3, 9, 13) and np.all(np.isfinite(maps)) and maps.std() > 0
    own, _ = fitted("feature", samples, training=training(5))
    assert not np.array_equal(collect(own, samples)[0], sums)


def test_a_module_features_extractor_is_used_as_it_is():
    samples = ArraySamples(images(12))
    extractor = ModuleFeatures(conv_stack(3), in_channels=3, mean=(0.1,) * 3, std=(2.0,) * 3)
    model, _ = fitted("feature", samples, feature_extractor=extractor, training=training(5))
    assert type(model.paradigm.feature_extractor.module) is nn.Sequential
    assert model.paradigm.feature_extractor.in_channels == 3
    assert np.all(np.isfinite(collect(model, samples)[0]))


# ------------------------------------------------------------- simplex noise
def test_simplex_noise_changes_training_and_scoring():
    samples = ArraySamples(images(16, channels=2))
    gaussian, g_history = fitted("reconstruction", samples, training=training(5))
    simplex, s_history = fitted("reconstruction", samples, training=training(5),
                                noise="simplex")
    assert g_history["loss"] != s_history["loss"]
    assert not same_weights(gaussian.networks_["denoiser"], simplex.networks_["denoiser"])
    assert gaussian.plan_.noise.shape == simplex.plan_.noise.shape
    assert not torch.equal(gaussian.plan_.noise, simplex.plan_.noise)
    # simplex fields are smooth: neighbouring pixels are far more alike than Gaussian ones
    def roughness(noise):
        return float((noise[..., 1:] - noise[..., :-1]).pow(2).mean() / noise.pow(2).mean())
    assert roughness(simplex.plan_.noise) < 0.5 * roughness(gaussian.plan_.noise)
    g_sums, _ = collect(gaussian, samples)
    s_sums, _ = collect(simplex, samples)
    assert np.all(np.isfinite(s_sums)) and not np.array_equal(g_sums, s_sums)


# ------------------------------------------------------------------ guidance
def test_zero_guidance_is_the_plain_reconstruction():
    samples = ArraySamples(images(20))
    model, _ = fitted("reconstruction", samples, guidance=0.0, training=training(5))
    assert model.plan_.guidance == 0.0
    got, got_counts = collect(model, samples)
    x, _ = samples.take(np.arange(20))
    x = pad_block(x)
    plan, net = model.plan_, model.networks_["denoiser"]
    sums = torch.zeros(x.shape, dtype=torch.float64)
    counts = torch.zeros_like(sums)
    with torch.inference_mode():
        for k, t0 in enumerate(plan.timesteps.tolist()):
            for noise in plan.noise[k]:
                x_hat = reconstruct(net, model.schedule_, x, None, noise, t0,
                                    plan.n_inference_steps, False)
                accumulate(sums, counts, x_hat, x, torch.ones_like(x),
                           float(plan.weights[k]) / plan.noise.shape[1])
    assert np.array_equal(got, sums[:20].numpy())
    assert np.array_equal(got_counts, counts[:20].numpy())


@pytest.mark.parametrize("paradigm", ["reconstruction", "feature"])
def test_guidance_pulls_the_restoration_toward_a_normal_image(paradigm):
    samples = ArraySamples(images(24))
    plain, _ = fitted(paradigm, samples, training=training(30))
    guided, _ = fitted(paradigm, samples, training=training(30), guidance=0.5)
    assert guided.plan_.guidance == 0.5
    assert same_weights(plain.networks_["denoiser"], guided.networks_["denoiser"])
    assert torch.equal(plain.plan_.noise, guided.plan_.noise)
    normal = ArraySamples(images(8, seed=5))
    plain_maps, _ = collect(plain, normal)
    guided_maps, _ = collect(guided, normal)
    per_image = (plain_maps.mean(axis=(1, 2, 3)), guided_maps.mean(axis=(1, 2, 3)))
    assert np.all(per_image[1] < per_image[0])


# ------------------------------------------------------------------ pickling
def test_a_model_with_a_head_round_trips_and_moves_with_it():
    samples = ArraySamples(images(16, channels=3, height=9, width=13))
    model, _ = fitted("discriminative", samples, training=training(5))
    expected = collect(model, samples)
    state = model.__getstate__()
    assert set(state["_saved_networks"]) == {"denoiser", "head"}
    copy = pickle.loads(pickle.dumps(model))
    assert same_weights(copy.networks_["head"], model.networks_["head"])
    got = collect(copy, samples)
    assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    copy.to("meta")
    assert all(p.device.type == "meta" for net in copy.networks_.values()
               for p in net.parameters())


@pytest.mark.parametrize("make_module", [conv_stack, TwoLevels])
def test_a_model_with_a_user_extractor_round_trips_and_moves_with_it(make_module):
    samples = ArraySamples(images(12, channels=3))
    model, _ = fitted("feature", samples, feature_extractor=make_module(3),
                      training=training(5))
    expected = collect(model, samples)
    copy = pickle.loads(pickle.dumps(model))
    assert copy.paradigm.feature_extractor is not model.paradigm.feature_extractor
    assert same_weights(copy.paradigm.feature_extractor, model.paradigm.feature_extractor)
    got = collect(copy, samples)
    assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    copy.to("meta")
    assert all(p.device.type == "meta" for p in copy.paradigm.feature_extractor.parameters())
    assert all(p.device.type == "cpu" for p in model.paradigm.feature_extractor.parameters())


# ------------------------------------------------------------ bad settings
def rows():
    return ArraySamples(np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32))


def windows():
    series = np.random.default_rng(0).normal(size=(2, 40)).astype(np.float32)
    return WindowSamples(series, np.ones_like(series, dtype=bool), window_starts(40, 8, 4), 8)


@pytest.mark.parametrize("samples", [rows(), windows()], ids=["rows", "windows"])
def test_simplex_noise_needs_images(samples):
    network = {"name": "mlp", "hidden_dims": (8,)} if len(samples.event_shape) == 1 else \
        {"name": "conv1d", "widths": (4, 8), "kernel_size": 3}
    model = model_for("reconstruction", network=network, noise="simplex")
    with pytest.raises(ValueError, match=r"noise='simplex' needs images.*\(C, H, W\)"):
        model.fit(samples, seed=0, device="cpu")


@pytest.mark.parametrize("paradigm", ["feature", "discriminative"])
@pytest.mark.parametrize("samples", [rows(), windows()], ids=["rows", "windows"])
def test_image_paradigms_need_images(paradigm, samples):
    model = model_for(paradigm, network={"name": "mlp", "hidden_dims": (8,)})
    with pytest.raises(ValueError, match=rf"paradigm '{paradigm}' needs images"):
        model.fit(samples, seed=0, device="cpu")


def test_the_denoisers_features_need_the_image_unet():
    model = model_for("feature", network={"name": "mlp", "hidden_dims": (8,)})
    with pytest.raises(ValueError, match="needs the 'conv2d' network"):
        model.fit(ArraySamples(images(8)), seed=0, device="cpu")


@pytest.mark.parametrize(("paradigm", "options", "error", "message"), [
    ("reconstruction", {"noise": "perlin"}, ValueError, "noise must be one of"),
    ("density", {"noise": "simplex"}, ValueError, "'density' takes no option 'noise'"),
    ("time", {"noise": "simplex"}, ValueError, "'time' takes no option 'noise'"),
    ("reconstruction", {"guidance": -0.1}, ValueError, "guidance must be a finite number"),
    ("feature", {"guidance": float("nan")}, ValueError, "guidance must be a finite number"),
    ("discriminative", {"guidance": 0.5}, ValueError,
     "'discriminative' takes no option 'guidance'"),
    ("score", {"guidance": 0.5}, ValueError, "'score' takes no option 'guidance'"),
    ("discriminative", {"head_steps": 0}, ValueError, "head_steps must be a positive"),
    ("feature", {"feature_extractor": "resnet18"}, TypeError, "feature_extractor must be"),
])
def test_bad_settings_are_refused_with_their_name(paradigm, options, error, message):
    with pytest.raises(error, match=message):
        model_for(paradigm, **options)


# -------------------------------------------------------------------- CUDA
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize(("paradigm", "options"), [
    ("feature", {"guidance": 0.5}), ("feature", {"feature_extractor": TwoLevels(3)}),
    ("discriminative", {"noise": "simplex", "head_steps": 10})])
def test_cuda_maps_repeat_and_match_the_cpu(paradigm, options):
    samples = ArraySamples(images(20, channels=3, height=9, width=13))
    model = model_for(paradigm, training=training(10, mixed_precision=True), **options)
    model.fit(samples, seed=0, device="cuda")
    first, second = collect(model, samples), collect(model, samples)
    assert np.array_equal(first[0], second[0])
    extractor = getattr(model.paradigm, "feature_extractor", None)
    if extractor is not None:  # saved on the CPU, as the networks' weights
        state = model.paradigm.__getstate__()
        assert all(p.device.type == "cpu" for p in state["feature_extractor"].parameters())
        assert all(p.device.type == "cuda" for p in extractor.parameters())
    on_cpu = pickle.loads(pickle.dumps(model)).to("cpu")
    expected = collect(on_cpu, samples)
    np.testing.assert_allclose(first[0], expected[0], rtol=1e-3, atol=1e-4)
    assert np.array_equal(first[1], expected[1])
