"""The training loop (seeding, NaN guard, early stopping, EMA, step cap) and its losses."""

import math

import pytest
import torch
from torch import nn

from skdiffad._core import (
    MLPDenoiser,
    TrainingConfig,
    denoising_loss,
    make_schedule,
    time_loss,
    train_network,
)
from skdiffad._core.training import network_input

HISTORY_KEYS = {"loss", "val_loss", "n_iter", "n_steps", "best_epoch", "stopped_early",
                "fit_seconds"}


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def tiny_net(seed=0, in_dim=2, out_dim=2, time_embed_dim=8, hidden_dims=(16,), n_timesteps=20):
    return MLPDenoiser(in_dim, out_dim, hidden_dims, time_embed_dim, n_timesteps).reset_parameters(
        seeded(seed)
    )


def config(**kwargs):
    params = {"max_iter": 5, "batch_size": 16, "learning_rate": 1e-2, "early_stopping": False}
    params.update(kwargs)
    return TrainingConfig(**params)


def regression_loss(network, x, y, generator):
    return ((network(x) - y) ** 2).mean(dim=1)


def regression_data(n=64, seed=1):
    gen = seeded(seed)
    x = torch.randn(n, 3, generator=gen)
    return [x, torch.tanh(x @ torch.randn(3, 3, generator=gen))]


def fit(loss_fn, tensors, cfg, seed=0, **net_kwargs):
    net = tiny_net(**net_kwargs)
    history = train_network(net, loss_fn, tensors, cfg, seed=seed, device="cpu")
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

    def loss(network, x0, generator):
        return denoising_loss(network, schedule, x0, None, generator)

    net, history = fit(loss, [x], config(max_iter=25, batch_size=32, learning_rate=3e-3),
                       hidden_dims=(32,))
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
