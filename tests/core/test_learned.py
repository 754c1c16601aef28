"""The learned model: a network fitted by the one loop, scored in padded blocks, pickled
as configs and CPU weights."""

import pickle

import numpy as np
import pytest
import torch

from skdiffad._core import (
    PARADIGMS,
    ArraySamples,
    LearnedModel,
    TrainingConfig,
    WindowSamples,
    build_network,
    grating_masks,
    make_paradigm,
    window_starts,
)
from skdiffad._core import samples as samples_module

MLP = {"name": "mlp", "hidden_dims": (16,)}
CONV = {"name": "conv1d", "widths": (8, 16), "kernel_size": 3}


def training(**kwargs):
    params = {"max_iter": 1000, "max_steps": 5, "batch_size": 32, "early_stopping": False,
              "learning_rate": 1e-2}
    params.update(kwargs)
    return TrainingConfig(**params)


def rows(n=64, d=3, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def series_windows(n=120, channels=2, length=16, stride=4, seed=0):
    series = np.random.default_rng(seed).normal(size=(channels, n)).astype(np.float32)
    return WindowSamples(series, np.ones_like(series, dtype=bool),
                         window_starts(n, length, stride), length)


MODEL_OPTIONS = ("beta_schedule", "n_timesteps", "training")


def model_for(paradigm, network=MLP, **kwargs):
    """A model with small settings: the model's own, and the paradigm's (small
    defaults for those it takes)."""
    own = {"n_timesteps": 50, "training": training()}
    own.update({k: kwargs.pop(k) for k in MODEL_OPTIONS if k in kwargs})
    defaults = {"n_grid": 3, "n_inference_steps": 2, "n_bins": 5}
    takes = PARADIGMS[paradigm].options
    options = {**{k: v for k, v in defaults.items() if k in takes}, **kwargs}
    return LearnedModel(make_paradigm(paradigm, **options), network, **own)


def fitted(paradigm, samples, network=MLP, seed=0, **kwargs):
    if paradigm == "imputation":
        kwargs.setdefault("hidden", grating_masks(samples.event_shape[-1], 2)
                          .reshape((2,) + (1,) * (len(samples.event_shape) - 1) + (-1,)))
    model = model_for(paradigm, network, **kwargs)
    history = model.fit(samples, seed=seed, device="cpu")
    return model, history


def collect(model, samples):
    blocks = list(model.errors(samples))
    bounds = [(start, stop) for start, stop, _, _ in blocks]
    sums = np.concatenate([b[2] for b in blocks])
    counts = None if blocks[0][3] is None else np.concatenate([b[3] for b in blocks])
    return bounds, sums, counts


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k].to(sa[k].device)) for k in sa)


# ---------------------------------------------------------------------- fit
def test_unknown_paradigm_raises():
    with pytest.raises(ValueError, match="paradigm must be one of"):
        LearnedModel("likelihood", MLP)


def test_fit_runs_max_steps_when_max_iter_is_large():
    model, history = fitted("reconstruction", ArraySamples(rows()))
    assert history["n_steps"] == 5 and history["n_iter"] == 3  # 2 steps an epoch
    assert set(model.networks_) == {"denoiser"}
    assert not model.networks_["denoiser"].training
    assert model.device_ == torch.device("cpu")


def test_fit_is_reproducible_for_a_seed():
    a, _ = fitted("density", ArraySamples(rows()))
    b, _ = fitted("density", ArraySamples(rows()))
    c, _ = fitted("density", ArraySamples(rows()), seed=1)
    assert same_weights(a.networks_["denoiser"], b.networks_["denoiser"])
    assert torch.equal(a.plan_.noise, b.plan_.noise)
    assert not same_weights(a.networks_["denoiser"], c.networks_["denoiser"])
    assert not torch.equal(a.plan_.noise, c.plan_.noise)


def test_fitting_and_scoring_leave_the_global_rng_alone():
    state = torch.random.get_rng_state()
    model, _ = fitted("reconstruction", ArraySamples(rows()))
    collect(model, ArraySamples(rows(n=5)))
    assert torch.equal(state, torch.random.get_rng_state())


@pytest.mark.parametrize("has_mask", [False, True])
@pytest.mark.parametrize("paradigm", ["reconstruction", "density", "score", "time"])
def test_the_mask_is_an_input_when_the_training_samples_had_gaps(paradigm, has_mask):
    X = rows()
    mask = np.random.default_rng(1).random(X.shape) > 0.2 if has_mask else None
    model, _ = fitted(paradigm, ArraySamples(X * (1 if mask is None else mask), mask))
    assert model.mask_input_ is has_mask
    config = model.networks_["denoiser"].config
    assert config["in_channels"] == 3 * (2 if has_mask else 1)
    if paradigm == "time":
        assert config["out_channels"] == 5 and config["time_embed_dim"] == 0
        assert not config["gaussian_skip"]
        t_max = model.schedule_.last_step_below(2.0)
        torch.testing.assert_close(model.plan_.weights, model.plan_.timesteps / t_max)
    else:
        assert config["out_channels"] == 3 and config["gaussian_skip"]
    _, sums, _ = collect(model, ArraySamples(rows(n=7)))  # full rows score too
    assert np.all(np.isfinite(sums))


@pytest.mark.parametrize(("samples", "network", "channels"), [
    (ArraySamples(rows()), MLP, 3), (series_windows(), CONV, 2)])
def test_imputation_networks_see_three_times_the_channels(samples, network, channels):
    model, _ = fitted("imputation", samples, network)
    config = model.networks_["denoiser"].config
    assert config["in_channels"] == 3 * channels and config["out_channels"] == channels
    assert not model.mask_input_
    _, sums, counts = collect(model, samples)
    assert sums.shape == counts.shape == (len(samples),) + samples.event_shape
    assert np.all(counts == 1)


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("paradigm", ["reconstruction", "imputation", "density", "score",
                                      "time"])
def test_a_samples_errors_do_not_depend_on_what_else_is_scored(paradigm, monkeypatch):
    X = rows(n=70)
    model, _ = fitted(paradigm, ArraySamples(X))
    bounds, whole, counts = collect(model, ArraySamples(X))
    assert bounds == [(0, 70)]
    if paradigm in ("score", "time"):
        assert counts is None and whole.shape == (70,)
    else:
        assert whole.shape == counts.shape == (70, 3)
    order = np.random.default_rng(0).permutation(70)
    _, shuffled, _ = collect(model, ArraySamples(X[order]))
    assert np.array_equal(shuffled, whole[order])
    _, alone, _ = collect(model, ArraySamples(X[5:6]))
    assert np.array_equal(alone[0], whole[5])
    monkeypatch.setitem(samples_module.SCORING_MEMORY, "cpu", 1)  # blocks of 32
    bounds, blocked, _ = collect(model, ArraySamples(X))
    assert bounds == [(0, 32), (32, 64), (64, 70)]
    assert np.array_equal(blocked, whole)


def test_windows_score_the_same_in_any_block():
    samples = series_windows()
    model, _ = fitted("reconstruction", samples, CONV)
    _, whole, counts = collect(model, samples)
    assert whole.shape == counts.shape == (len(samples), 2, 16)
    starts = samples.positions[[3, 20, 7]]
    some = WindowSamples(samples.series, samples.observed, starts, 16)
    _, part, _ = collect(model, some)
    assert np.array_equal(part, whole[[3, 20, 7]])


def test_scoring_changes_nothing_in_the_model():
    model, _ = fitted("reconstruction", ArraySamples(rows()))
    before = dict(model.__dict__)
    weights = {k: v.clone() for k, v in model.networks_["denoiser"].state_dict().items()}
    noise = model.plan_.noise.clone()
    collect(model, ArraySamples(rows(n=9)))
    assert model.__dict__.keys() == before.keys()
    assert all(model.__dict__[k] is v for k, v in before.items())
    after = model.networks_["denoiser"].state_dict()
    assert all(torch.equal(after[k], v) for k, v in weights.items())
    assert torch.equal(model.plan_.noise, noise)


# ---------------------------------------------------------------- pickling
def test_every_network_is_pickled_as_its_config_and_cpu_weights():
    model, _ = fitted("reconstruction", ArraySamples(rows()))
    head = build_network({"name": "mlp", "in_channels": 3, "out_channels": 2,
                          "hidden_dims": (4,), "time_embed_dim": 0, "n_timesteps": 50})
    head.reset_parameters(torch.Generator().manual_seed(9)).double().train()
    model.networks_["head"] = head
    state = model.__getstate__()
    assert "networks_" not in state and set(state["_saved_networks"]) == {"denoiser", "head"}
    for name, entry in state["_saved_networks"].items():
        assert entry["config"] == model.networks_[name].config
        assert all(w.device.type == "cpu" for w in entry["weights"].values())
    assert state["_saved_networks"]["head"]["dtype"] == "float64"
    assert "networks_" in model.__dict__  # pickling does not strip the live model
    copy = pickle.loads(pickle.dumps(model))
    assert set(copy.networks_) == {"denoiser", "head"}
    for name, module in copy.networks_.items():
        assert type(module) is type(model.networks_[name])
        assert module.config == model.networks_[name].config
        assert same_weights(module, model.networks_[name])
        assert not module.training  # rebuilt in eval mode
    assert next(copy.networks_["head"].parameters()).dtype == torch.float64


@pytest.mark.parametrize(("paradigm", "network"), [
    ("reconstruction", MLP), ("density", MLP), ("time", MLP), ("imputation", CONV)])
def test_errors_are_identical_after_a_pickle_round_trip(paradigm, network):
    samples = series_windows() if network is CONV else ArraySamples(rows())
    model, _ = fitted(paradigm, samples, network)
    copy = pickle.loads(pickle.dumps(model))
    _, expected, expected_counts = collect(model, samples)
    _, got, got_counts = collect(copy, samples)
    assert np.array_equal(got, expected)
    if expected_counts is not None:
        assert np.array_equal(got_counts, expected_counts)
    assert copy.mask_input_ == model.mask_input_ and copy.device_ == model.device_


def test_a_model_saved_from_a_second_gpu_loads_on_the_cpu_with_a_warning(monkeypatch):
    model, _ = fitted("score", ArraySamples(rows()))
    _, expected, _ = collect(model, ArraySamples(rows(n=5)))
    model.device_ = torch.device("cuda:1")  # as if fitted there; the weights are saved on CPU
    blob = pickle.dumps(model)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(UserWarning, match="the learned model was fitted on cuda:1"):
        copy = pickle.loads(blob)
    assert copy.device_ == torch.device("cpu")
    _, got, _ = collect(copy, ArraySamples(rows(n=5)))
    assert np.array_equal(got, expected)


# -------------------------------------------------------------------- CUDA
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize(("paradigm", "network"), [
    ("reconstruction", MLP), ("density", MLP), ("score", MLP), ("time", MLP),
    ("imputation", MLP), ("reconstruction", CONV), ("imputation", CONV)])
def test_cuda_scores_match_the_cpu_and_repeat_exactly(paradigm, network):
    # fitted on the GPU (its noise comes from the GPU's generator, so the weights
    # are its own); the same model moved to the CPU must score alike
    samples = series_windows() if network is CONV else ArraySamples(rows())
    options = {} if paradigm != "imputation" else {
        "hidden": grating_masks(samples.event_shape[-1], 2)
        .reshape((2,) + (1,) * (len(samples.event_shape) - 1) + (-1,))}
    model = model_for(paradigm, network, **options)
    model.fit(samples, seed=0, device="cuda")
    assert next(model.networks_["denoiser"].parameters()).device.type == "cuda"
    _, first, _ = collect(model, samples)
    _, second, _ = collect(model, samples)
    assert np.array_equal(first, second)
    on_cpu = pickle.loads(pickle.dumps(model)).to("cpu")
    _, expected, _ = collect(on_cpu, samples)
    np.testing.assert_allclose(first, expected, rtol=1e-4, atol=1e-7)
