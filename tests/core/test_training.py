"""The training loop (seeding, NaN guard, early stopping, EMA, step cap) and its losses."""

import io
import math
import re
import sys

import numpy as np
import pytest
import torch
from torch import nn

from skdiffad._core import (
    ArraySamples,
    MLPDenoiser,
    Samples,
    TrainingConfig,
    denoising_loss,
    imputation_loss,
    make_schedule,
    progress,
    time_loss,
    train_network,
)
from skdiffad._core.training import (
    imputation_input,
    masked_mean,
    network_input,
    random_timesteps,
    training_masks,
)

from .helpers import conv_net

HISTORY_KEYS = {"loss", "val_loss", "n_iter", "n_steps", "best_epoch", "stopped_early",
                "fit_seconds", "world_size"}


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def tiny_net(seed=0, in_dim=2, out_dim=2, time_embed_dim=8, hidden_dims=(16,), n_timesteps=20):
    return MLPDenoiser(in_dim, out_dim, hidden_dims, time_embed_dim, n_timesteps).reset_parameters(
        seeded(seed)
    )


class PairSamples(Samples):
    """``(x, y)`` regression pairs served as samples: ``take`` returns ``(x, y)``,
    which the loop hands to the loss as ``loss_fn(network, x, y, generator)``.
    Records the size of every batch it is asked for."""

    def __init__(self, x, y):
        self.x, self.y = x, y
        self.event_shape = tuple(x.shape[1:])
        self.positions = np.arange(len(x), dtype=np.int64)
        self.requests = []

    def take(self, index, device="cpu"):
        index = torch.as_tensor(index)
        self.requests.append(len(index))
        return self.x[index].to(device), self.y[index].to(device)


class RecordingSamples(ArraySamples):
    """Rows that record the size of every batch they are asked for."""

    def __init__(self, values, mask=None):
        super().__init__(values, mask)
        self.requests = []

    def take(self, index, device="cpu"):
        self.requests.append(len(index))
        return super().take(index, device)


def config(**kwargs):
    params = {"max_iter": 5, "batch_size": 16, "learning_rate": 1e-2, "early_stopping": False}
    params.update(kwargs)
    return TrainingConfig(**params)


def regression_loss(network, x, y, generator):
    return ((network(x) - y) ** 2).mean(dim=1)


def regression_data(n=64, seed=1):
    gen = seeded(seed)
    x = torch.randn(n, 3, generator=gen)
    return PairSamples(x, torch.tanh(x @ torch.randn(3, 3, generator=gen)))


def fit(loss_fn, samples, cfg, seed=0, **net_kwargs):
    net = tiny_net(**net_kwargs)
    history = train_network(net, loss_fn, samples, cfg, seed=seed, device="cpu")
    return net, history


def fit_regression(cfg, seed=0):
    return fit(regression_loss, regression_data(), cfg, seed=seed, in_dim=3, out_dim=3,
               time_embed_dim=0)


def same_weights(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


class Recorder(nn.Module):
    """Remembers what it was called with and answers with fixed outputs."""

    def __init__(self, output):
        super().__init__()
        self.output = output

    def forward(self, x, t=None):
        self.x, self.t = x.clone(), None if t is None else t.clone()
        return self.output.expand(x.shape[0], -1) if self.output.ndim == 1 else self.output


# --------------------------------------------------------------- the loop
def test_training_reduces_the_denoising_loss():
    schedule = make_schedule("linear", 20)
    gen = seeded(2)
    x = torch.randn(128, 2, generator=gen) * torch.tensor([1.0, 0.1]) + torch.tensor([2.0, -1.0])

    def loss(network, x0, mask, generator):
        return denoising_loss(network, schedule, x0, mask, generator)

    net, history = fit(loss, ArraySamples(x.numpy()),
                       config(max_iter=25, batch_size=32, learning_rate=3e-3), hidden_dims=(32,))
    assert set(history) == HISTORY_KEYS
    assert history["n_iter"] == 25 and history["n_steps"] == 100
    assert len(history["loss"]) == 25 and history["val_loss"] == []
    # an untrained (zero) denoiser scores E|eps|^2 = 1; the data are nearly a point,
    # so the noise is very predictable
    assert 0.8 < history["loss"][0] < 1.1
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert not net.training  # handed back in eval mode


def test_training_is_reproducible_for_a_seed():
    net_a, hist_a = fit_regression(config(early_stopping=True, validation_fraction=0.25))
    net_b, hist_b = fit_regression(config(early_stopping=True, validation_fraction=0.25))
    net_c, _ = fit_regression(config(early_stopping=True, validation_fraction=0.25), seed=1)
    assert same_weights(net_a, net_b)
    assert hist_a["loss"] == hist_b["loss"] and hist_a["val_loss"] == hist_b["val_loss"]
    assert not same_weights(net_a, net_c)


def test_training_leaves_the_global_rng_alone():
    state = torch.random.get_rng_state()
    fit_regression(config(early_stopping=True, validation_fraction=0.25, ema_decay=0.9))
    assert torch.equal(state, torch.random.get_rng_state())


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_loss_raises_a_helpful_error(bad):
    calls = []

    def loss(network, x, y, generator):
        calls.append(1)
        per_row = regression_loss(network, x, y, generator)
        return per_row * bad if len(calls) == 3 else per_row

    message = r"epoch 1, step 3; lower learning_rate \(now 0.01\)"
    with pytest.raises(FloatingPointError, match=message):
        fit(loss, regression_data(), config(), in_dim=3, out_dim=3, time_embed_dim=0)


def test_a_huge_learning_rate_is_caught_as_a_nan():
    with pytest.raises(FloatingPointError, match="training loss became"):
        fit_regression(config(learning_rate=1e30, max_iter=20))


def test_early_stopping_on_a_plateau_stops_before_max_iter():
    def flat_loss(network, x, y, generator):
        return (network(x) * 0).sum(dim=1) + 1.0

    _, history = fit(flat_loss, regression_data(), config(
        max_iter=50, early_stopping=True, validation_fraction=0.25, n_iter_no_change=3),
        in_dim=3, out_dim=3, time_embed_dim=0)
    # epoch 1 sets the best; epochs 2-4 fail to improve on it
    assert history["stopped_early"] is True
    assert history["n_iter"] == 4 and history["best_epoch"] == 1
    assert len(history["loss"]) == len(history["val_loss"]) == 4
    assert history["val_loss"] == pytest.approx([1.0] * 4)
    assert history["fit_seconds"] >= 0


def diverging_loss(network, x, y, generator):
    """Training pushes the outputs up; validation wants them at zero (overfitting)."""
    out = network(x)
    if network.training:
        return -out.mean(dim=1)
    return (out**2).mean(dim=1)


def test_early_stopping_restores_the_best_weights():
    cfg = {"early_stopping": True, "validation_fraction": 0.25, "n_iter_no_change": 3}
    kw = {"in_dim": 3, "out_dim": 3, "time_embed_dim": 0}
    best_net, best_hist = fit(diverging_loss, regression_data(), config(max_iter=1, **cfg), **kw)
    net, history = fit(diverging_loss, regression_data(), config(max_iter=50, **cfg), **kw)
    assert history["stopped_early"] and history["n_iter"] == 4 and history["best_epoch"] == 1
    assert history["val_loss"] == sorted(history["val_loss"])  # it only got worse
    assert history["val_loss"][0] == best_hist["val_loss"][0]
    assert same_weights(net, best_net)
    last_net, _ = fit(diverging_loss, regression_data(), config(max_iter=4), **kw)
    assert not same_weights(net, last_net)  # training did move past the best epoch


def test_ema_weights_are_the_exponential_average_of_the_iterates():
    decay, steps = 0.6, 3
    iterates = [tiny_net(in_dim=3, out_dim=3, time_embed_dim=0)]
    for k in range(1, steps + 1):
        iterates.append(fit_regression(config(max_steps=k))[0])
    ema_net, history = fit_regression(config(max_steps=steps, ema_decay=decay))
    assert history["n_steps"] == steps
    names = [name for name, _ in ema_net.named_parameters()]
    for name in names:
        shadow = dict(iterates[0].named_parameters())[name].detach().clone()
        for net in iterates[1:]:
            shadow = decay * shadow + (1 - decay) * dict(net.named_parameters())[name].detach()
        torch.testing.assert_close(dict(ema_net.named_parameters())[name].detach(), shadow,
                                   rtol=1e-5, atol=1e-6)
    assert not same_weights(ema_net, iterates[-1])


def test_ema_with_early_stopping_runs_and_differs_from_plain_training():
    cfg = {"early_stopping": True, "validation_fraction": 0.25, "max_iter": 6}
    ema_net, ema_hist = fit_regression(config(ema_decay=0.9, **cfg))
    plain_net, plain_hist = fit_regression(config(**cfg))
    assert ema_hist["loss"] == plain_hist["loss"]  # EMA does not change the iterates
    assert ema_hist["val_loss"] != plain_hist["val_loss"]  # validation sees the average
    assert not same_weights(ema_net, plain_net)


@pytest.mark.parametrize(("max_steps", "n_iter"), [(3, 1), (10, 3)])
def test_max_steps_caps_the_number_of_optimiser_steps(max_steps, n_iter):
    # 64 rows in batches of 16: four steps an epoch
    _, history = fit_regression(config(max_iter=50, max_steps=max_steps))
    assert history["n_steps"] == max_steps
    assert history["n_iter"] == n_iter == len(history["loss"])


# ------------------------------------------------------------------ losses
def test_missing_entries_enter_as_the_mean_and_the_mask_can_be_appended():
    from skdiffad._core.training import observed

    x = torch.tensor([[1.0, 2.0, 3.0]])
    mask = torch.tensor([[True, False, True]])
    # the clean point's gap becomes the standardised mean, 0; the noisy point is
    # passed through untouched (its gap carries forward-process noise, in distribution)
    assert torch.equal(observed(x, mask), torch.tensor([[1.0, 0.0, 3.0]]))
    assert observed(x, None) is x
    assert network_input(x, mask, False) is x
    assert torch.equal(network_input(x, mask, True), torch.tensor([[1.0, 2.0, 3.0, 1.0, 0.0, 1.0]]))
    assert torch.equal(network_input(x, None, True), torch.tensor([[1.0, 2.0, 3.0, 1.0, 1.0, 1.0]]))
    assert network_input(x, None, False) is x


def test_denoising_loss_is_the_mean_squared_noise_error_per_row():
    T, n, d = 30, 400, 5
    schedule = make_schedule("cosine", T)
    net = Recorder(torch.zeros(d))
    loss = denoising_loss(net, schedule, torch.zeros(n, d), None, seeded(3))
    # x0 = 0 makes the network's input s_t * eps, so the drawn noise can be read back
    t = net.t
    assert loss.shape == (n,)
    assert int(t.min()) >= 1 and int(t.max()) <= T and len(torch.unique(t)) > T // 2
    eps = net.x / schedule.sigmas[t].float()[:, None]
    torch.testing.assert_close(loss, (eps**2).mean(dim=1))
    assert float(loss.mean()) == pytest.approx(1.0, abs=0.1)


def test_denoising_loss_ignores_masked_entries():
    schedule = make_schedule("linear", 20)
    net = MLPDenoiser(4, 4, (8,), 8, 20).reset_parameters(seeded(4))
    with torch.no_grad():
        net.output.weight.normal_(generator=seeded(5))
    gen = seeded(6)
    x0 = torch.randn(10, 4, generator=gen)
    mask = torch.rand(10, 4, generator=gen) > 0.4
    mask[:, 0] = True
    mask[0] = False  # a row with nothing observed
    other = torch.where(mask, x0, torch.full_like(x0, 1e3))
    with torch.no_grad():
        loss = denoising_loss(net, schedule, x0, mask, seeded(7))
        torch.testing.assert_close(denoising_loss(net, schedule, other, mask, seeded(7)), loss)
        assert float(loss[0]) == 0.0
        assert torch.all(loss[1:] > 0)
        # and the observed entries do count
        shifted = x0 + mask * 0.5
        assert not torch.allclose(denoising_loss(net, schedule, shifted, mask, seeded(7)), loss)


def test_denoising_loss_masked_mean_over_observed_entries():
    schedule = make_schedule("linear", 20)
    d = 6
    net = Recorder(torch.zeros(d))
    mask = torch.tensor([[True] * 6, [True, False] * 3, [False] * 5 + [True]])
    loss = denoising_loss(net, schedule, torch.zeros(3, d), mask, seeded(8))
    # x0 = 0, so the network's input is s_t * eps in every entry (a gap enters the
    # forward process as the mean, 0, and is noised); only observed entries count
    eps = net.x / schedule.sigmas[net.t].float()[:, None]
    expected = ((eps**2) * mask).sum(dim=1) / mask.sum(dim=1)
    torch.testing.assert_close(loss, expected)


@pytest.mark.parametrize(("t_max", "n_bins"), [(None, 5), (6, 3)])
def test_time_loss_is_the_per_row_cross_entropy_of_the_true_time_bin(t_max, n_bins):
    T, n, d = 10, 64, 4000
    schedule = make_schedule("linear", T)
    logits = torch.tensor([0.3, -1.0, 2.0, 0.0, 0.7])[:n_bins]
    net = Recorder(logits)
    loss = time_loss(net, schedule, torch.zeros(n, d), None, seeded(9), n_bins=n_bins,
                     t_max=t_max)
    assert loss.shape == (n,)
    # x0 = 0: the classifier sees (s_t / a_t) eps, whose RMS over 4000 features pins t
    ratio = (schedule.sigmas / schedule.alphas)[1:].float()
    rms = net.x.pow(2).mean(dim=1).sqrt()
    t = 1 + torch.argmin((rms[:, None] / ratio[None, :]).log().abs(), dim=1)
    top = T if t_max is None else t_max
    assert int(t.max()) == top and int(t.min()) == 1  # t ~ U{1..t_max}
    assert len(torch.unique(t)) == top
    target = (t - 1) // 2  # equal bins of two steps each
    expected = torch.logsumexp(logits, 0) - logits[target]
    torch.testing.assert_close(loss, expected)


def test_time_loss_of_an_uninformed_classifier_is_log_n_bins():
    schedule = make_schedule("cosine", 40)
    net = MLPDenoiser(3, 4, (8,), 0, 40).reset_parameters(seeded(10))  # zero logits
    loss = time_loss(net, schedule, torch.randn(12, 3, generator=seeded(11)), None, seeded(12),
                     n_bins=4)
    torch.testing.assert_close(loss, torch.full((12,), math.log(4)))


def test_denoising_loss_of_windows_averages_over_channels_and_steps():
    schedule = make_schedule("linear", 20)
    net = Recorder(torch.zeros(4, 2, 6))
    mask = torch.ones(4, 2, 6, dtype=torch.bool)
    mask[1, 0] = False
    mask[2] = False  # a window with nothing observed
    loss = denoising_loss(net, schedule, torch.zeros(4, 2, 6), mask, seeded(13))
    eps = net.x / schedule.sigmas[net.t].float()[:, None, None]
    expected = ((eps**2) * mask).sum(dim=(1, 2)) / mask.sum(dim=(1, 2)).clamp(min=1)
    assert loss.shape == (4,) and float(loss[2]) == 0.0
    torch.testing.assert_close(loss, expected)


def test_masked_mean_and_random_timesteps():
    values = torch.arange(12, dtype=torch.float64).reshape(2, 2, 3)
    torch.testing.assert_close(masked_mean(values, None), values.mean(dim=(1, 2)))
    weight = torch.zeros(2, 2, 3, dtype=torch.bool)
    weight[0, 1, 2] = True
    weight[0, 0, 0] = True
    torch.testing.assert_close(masked_mean(values, weight),
                               torch.tensor([2.5, 0.0], dtype=torch.float64))  # (0 + 5) / 2
    t = random_timesteps(5000, 7, seeded(14), "cpu")
    assert t.shape == (5000,) and set(t.tolist()) == set(range(1, 8))
    assert torch.equal(t, random_timesteps(5000, 7, seeded(14), "cpu"))


# ------------------------------------------------------------------ imputation
def test_training_masks_hide_about_half_and_mix_both_kinds():
    hidden = training_masks(4000, 32, seeded(0), "cpu")
    assert hidden.shape == (4000, 1, 32) and hidden.dtype == torch.bool
    assert abs(float(hidden.float().mean()) - 0.5) < 0.02
    runs = 1 + (hidden[:, 0, 1:] != hidden[:, 0, :-1]).sum(dim=1)
    # gratings have at most 8 runs; i.i.d. masks over 32 steps have ~16.5 on average
    assert 0.4 < float((runs <= 8).float().mean()) < 0.6
    rows = training_masks(10, 5, seeded(0), "cpu", ndim=2)  # a table row: over features
    assert rows.shape == (10, 5)
    assert torch.equal(training_masks(10, 5, seeded(0), "cpu", ndim=2), rows)


def test_imputation_input_stacks_noisy_hidden_clean_visible_and_the_visibility():
    x_t = torch.full((1, 2, 4), 7.0)
    x0 = torch.arange(8, dtype=torch.float32).reshape(1, 2, 4)
    hidden = torch.tensor([[[1.0, 1.0, 0.0, 0.0]]])
    visible = torch.tensor([[[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.0]]])  # one step unobserved
    out = imputation_input(x_t, x0, visible, hidden)
    assert out.shape == (1, 6, 4)
    assert torch.equal(out[:, :2], torch.tensor([[[7.0, 7.0, 0, 0], [7.0, 7.0, 0, 0]]]))
    assert torch.equal(out[:, 2:4], torch.tensor([[[0, 0, 2.0, 3.0], [0, 0, 6.0, 0]]]))
    assert torch.equal(out[:, 4:], visible)


@pytest.mark.parametrize("paradigm", ["reconstruction", "imputation"])
def test_window_losses_are_per_window_and_ignore_missing_entries(paradigm):
    schedule = make_schedule("linear", 50)
    net = conv_net(6 if paradigm == "imputation" else 4, 2)

    def loss(x0, obs, gen):
        if paradigm == "imputation":
            return imputation_loss(net, schedule, x0, obs, gen)
        return denoising_loss(net, schedule, x0, obs, gen, mask_input=True)

    x0 = torch.randn(7, 2, 16, generator=seeded(0))
    obs = torch.ones_like(x0, dtype=torch.bool)
    obs[:, 1, :5] = False
    base = loss(x0 * obs, obs, seeded(1))
    assert base.shape == (7,) and torch.all(base > 0)
    moved = torch.where(obs, x0, torch.full_like(x0, 1e3))
    torch.testing.assert_close(loss(moved, obs, seeded(1)), base)
    none = torch.zeros_like(obs)
    assert torch.equal(loss(x0 * 0, none, seeded(1)), torch.zeros(7))


def test_imputation_loss_scores_the_noise_of_the_hidden_observed_entries_only():
    T, C, L = 30, 2, 16
    schedule = make_schedule("cosine", T)
    net = Recorder(torch.zeros(40, C, L))
    x0 = torch.randn(40, C, L, generator=seeded(15))
    obs = torch.ones_like(x0, dtype=torch.bool)
    obs[:, 0, :3] = False
    loss = imputation_loss(net, schedule, x0 * obs, obs, seeded(16))
    noisy, clean, visible = net.x[:, :C], net.x[:, C : 2 * C], net.x[:, 2 * C :]
    assert set(visible.unique().tolist()) <= {0.0, 1.0}
    hidden = (noisy != 0).float()  # x_t is masked to the hidden entries
    assert torch.all(visible * hidden == 0) and torch.all(visible <= obs.float())
    # the clean block is x0 on the visible entries only: the hidden values are not shown
    torch.testing.assert_close(clean, x0 * visible)
    # every hidden entry is x_t = a_t x0 + s_t eps; with a zero prediction the loss is
    # the mean of eps^2 over the hidden observed entries
    a, s = schedule.coefficients(net.t, x0)
    eps = (noisy - a * x0) / s
    weight = hidden * obs
    torch.testing.assert_close(loss, ((eps**2) * weight).sum(dim=(1, 2))
                               / weight.sum(dim=(1, 2)), rtol=1e-4, atol=1e-6)


# ------------------------------------------------------- fed by a Samples object
def test_training_fetches_batches_of_at_most_batch_size_and_every_row_each_epoch():
    samples = regression_data(n=70)
    _, history = fit(regression_loss, samples, config(max_iter=3, batch_size=16),
                     in_dim=3, out_dim=3, time_embed_dim=0)
    assert max(samples.requests) <= 16
    assert samples.requests == [16, 16, 16, 16, 6] * 3  # every row once an epoch
    assert history["n_steps"] == 15


def test_validation_fetches_batches_of_at_most_batch_size():
    samples = regression_data(n=200)
    fit(regression_loss, samples, config(max_iter=2, batch_size=16, early_stopping=True,
                                         validation_fraction=0.25), in_dim=3, out_dim=3,
        time_embed_dim=0)
    assert max(samples.requests) <= 16


def test_training_is_the_same_whatever_serves_the_samples():
    # windows gathered on the fly and the same windows held as an array give the
    # same batches, the same noise and so the same weights
    from skdiffad._core import WindowSamples, window_starts

    schedule = make_schedule("linear", 50)
    series = np.random.default_rng(3).normal(size=(2, 120)).astype(np.float32)
    windows = WindowSamples(series, np.ones_like(series, dtype=bool),
                            window_starts(120, 16, 4), 16)
    array = RecordingSamples(windows.take(torch.arange(len(windows)))[0].numpy())

    def loss(network, x, mask, generator):
        return denoising_loss(network, schedule, x, mask, generator)

    cfg = config(max_iter=3, batch_size=8, early_stopping=True, validation_fraction=0.2)
    nets = []
    for samples in (windows, array, array):
        net = conv_net(2, 2)
        train_network(net, loss, samples, cfg, seed=5, device="cpu")
        nets.append(net)
    assert same_weights(nets[0], nets[1]) and same_weights(nets[1], nets[2])
    assert not same_weights(nets[0], conv_net(2, 2))  # training did something
    assert max(array.requests[:5]) <= 8


# ------------------------------------------------------------ progress reports
class Terminal(io.StringIO):
    """A stderr that says it is a terminal, so the loop draws a tqdm bar on it."""

    def isatty(self):
        return True


def last_bar(text):
    """The last state a tqdm bar drew (it redraws in place after a carriage return)."""
    return text.rstrip("\n").split("\r")[-1]


def flat_loss(network, x, y, generator):
    return (network(x) * 0).sum(dim=1) + 1.0


def test_the_bar_ends_full_when_max_steps_ends_training(monkeypatch):
    """The defect of issue #29: a budget met inside the last epoch left 9/10."""
    monkeypatch.setattr(sys, "stderr", Terminal())
    _, history = fit_regression(config(max_iter=10, max_steps=10, batch_size=64, verbose=1))
    bar = last_bar(sys.stderr.getvalue())
    assert history["n_iter"] == 10 and history["n_steps"] == 10
    assert bar.startswith("training: 100%") and "10/10" in bar
    assert sys.stderr.getvalue().endswith("\n")  # closed: the next output starts a line


def test_the_bar_is_drawn_full_when_training_ends_short_of_max_iter(monkeypatch):
    monkeypatch.setattr(sys, "stderr", Terminal())
    # 0.1's epoch count capped by max_steps: 4 steps of an epoch of 4 batches
    _, history = fit_regression(config(max_iter=10, max_steps=4, verbose=1))
    assert history["n_iter"] == 1
    assert "100%" in last_bar(sys.stderr.getvalue()) and "1/1" in last_bar(sys.stderr.getvalue())


def test_early_stopping_is_announced_on_the_bar(monkeypatch):
    monkeypatch.setattr(sys, "stderr", Terminal())
    _, history = fit(flat_loss, regression_data(), config(
        max_iter=50, early_stopping=True, validation_fraction=0.25, n_iter_no_change=3,
        verbose=1, label="window 64"), in_dim=3, out_dim=3, time_embed_dim=0)
    bar = last_bar(sys.stderr.getvalue())
    assert history["stopped_early"] and history["n_iter"] == 4
    assert bar.startswith("window 64: stopped early at epoch 4: no improvement in 3 epochs")
    assert "4/50" in bar and "val_loss=1.0000" in bar


def test_early_stopping_is_announced_in_a_log(capsys):
    fit(flat_loss, regression_data(), config(
        max_iter=50, early_stopping=True, validation_fraction=0.25, n_iter_no_change=3,
        verbose=1), in_dim=3, out_dim=3, time_embed_dim=0)
    err = capsys.readouterr().err
    assert err.startswith("training: stopped early at epoch 4: no improvement in 3 epochs, "
                          "kept epoch 1, 4/50 epochs in ")
    assert err.count("\n") == 1


def test_a_log_gets_a_line_not_a_redrawn_bar(capsys):
    """stderr to a file: no carriage returns, one line when training ends (a bar
    redrawn every 0.1 s filled logs with 198 KB for three fits)."""
    _, history = fit_regression(config(max_iter=300, batch_size=64, verbose=1))
    err = capsys.readouterr().err
    assert history["n_iter"] == 300
    assert "\r" not in err and err.count("\n") == 1 and len(err) < 100
    assert err.startswith("training: 300 epochs in ") and "loss=" in err


def test_a_long_training_logs_a_line_a_minute(capsys, monkeypatch):
    clock = iter(range(0, 10_000, 7))  # every reading of the clock is 7 s later
    monkeypatch.setattr(progress, "_now", lambda: next(clock))
    fit_regression(config(max_iter=40, batch_size=64, verbose=1))
    lines = capsys.readouterr().err.splitlines()
    # 40 epochs over ~280 s: a line about every 60 s, then the closing one
    assert 3 <= len(lines) <= 6
    assert lines[0].startswith("training: ") and "/40 epochs, loss=" in lines[0]
    assert re.fullmatch(r"training: 40 epochs in \dm\d\ds, loss=\d\.\d{4}", lines[-1])


def test_verbose_2_adds_a_line_per_epoch(capsys):
    fit(flat_loss, regression_data(), config(
        max_iter=50, early_stopping=True, validation_fraction=0.25, n_iter_no_change=3,
        verbose=2), in_dim=3, out_dim=3, time_embed_dim=0)
    lines = capsys.readouterr().err.splitlines()
    assert lines[:4] == [
        "training: epoch 1/50, loss=1.0000, val_loss=1.0000",
        "training: epoch 2/50, loss=1.0000, val_loss=1.0000 (no improvement in 1 of 3)",
        "training: epoch 3/50, loss=1.0000, val_loss=1.0000 (no improvement in 2 of 3)",
        "training: epoch 4/50, loss=1.0000, val_loss=1.0000 (no improvement in 3 of 3)"]
    assert lines[4].startswith("training: stopped early at epoch 4") and len(lines) == 5


def test_verbose_2_lines_go_above_the_bar(monkeypatch):
    monkeypatch.setattr(sys, "stderr", Terminal())
    fit_regression(config(max_iter=3, batch_size=64, verbose=2))
    out = sys.stderr.getvalue()
    assert [f"training: epoch {i}/3, loss=" in out for i in (1, 2, 3)] == [True] * 3
    assert "3/3" in last_bar(out)


def test_verbose_0_prints_nothing(capsys, monkeypatch):
    fit(flat_loss, regression_data(), config(
        max_iter=50, early_stopping=True, validation_fraction=0.25, n_iter_no_change=3),
        in_dim=3, out_dim=3, time_embed_dim=0)
    assert capsys.readouterr() == ("", "")
    monkeypatch.setattr(sys, "stderr", Terminal())
    fit_regression(config(max_iter=3))
    assert sys.stderr.getvalue() == ""


def test_an_error_ends_the_report_and_says_so(capsys):
    with pytest.raises(FloatingPointError):
        fit_regression(config(learning_rate=1e30, max_iter=20, verbose=1))
    err = capsys.readouterr().err
    assert err.startswith("training: stopped by an error, ") and err.endswith("\n")
