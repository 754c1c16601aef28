"""Windows, masks, losses and scorers of the time-series paradigms, and the 1-D U-Net."""

import numpy as np
import pytest
import torch

from skdiffad._core import build_network, make_schedule
from skdiffad._core.networks import ConvDenoiser1d
from skdiffad._core.sequences import (
    _impute,
    _training_masks,
    _window_errors,
    gather_windows,
    grating_masks,
    make_sequence_plan,
    score_series,
    sequence_loss,
    window_starts,
)


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def conv_net(in_channels, out_channels, seed=0, n_timesteps=50, randomise=True):
    net = ConvDenoiser1d(in_channels, out_channels, widths=(8, 16), kernel_size=3,
                         time_embed_dim=8, n_timesteps=n_timesteps, gaussian_skip=True)
    net.reset_parameters(seeded(seed))
    if randomise:  # reset_parameters zeroes the output layer; make it say something
        with torch.no_grad():
            net.output.weight.copy_(0.1 * torch.randn(net.output.weight.shape, generator=seeded(seed)))
    return net


# -------------------------------------------------------------------- windows
@pytest.mark.parametrize("n, length, stride", [(10, 4, 2), (11, 4, 2), (10, 10, 3), (37, 8, 8), (9, 3, 1)])
def test_window_starts_cover_every_step_and_end_at_the_series_end(n, length, stride):
    starts = window_starts(n, length, stride)
    covered = np.zeros(n, dtype=int)
    for s in starts:
        covered[s : s + length] += 1
    assert covered.min() >= 1
    assert starts[0] == 0 and starts[-1] == n - length
    assert np.all(np.diff(starts) <= stride) and np.all(np.diff(starts) > 0)


def test_window_starts_reject_a_series_shorter_than_a_window():
    with pytest.raises(ValueError, match="shorter than one window"):
        window_starts(5, 6, 1)


def test_gather_windows_matches_numpy_slicing():
    series = torch.arange(30, dtype=torch.float32).reshape(3, 10)
    starts = torch.tensor([0, 4, 6])
    windows = gather_windows(series, starts, 4)
    assert windows.shape == (3, 3, 4)
    for i, s in enumerate(starts.tolist()):
        np.testing.assert_array_equal(windows[i].numpy(), series[:, s : s + 4].numpy())


@pytest.mark.parametrize("length, n_stripes", [(16, 8), (10, 3), (7, 2)])
def test_grating_masks_are_complementary_stripes(length, n_stripes):
    masks = grating_masks(length, n_stripes)
    assert masks.shape == (2, length) and masks.dtype == torch.bool
    assert torch.equal(masks[0], ~masks[1])
    # the number of runs of equal values is the number of stripes
    runs = 1 + int((masks[0][1:] != masks[0][:-1]).sum())
    assert runs == n_stripes


def test_training_masks_hide_about_half_and_mix_both_kinds():
    hidden = _training_masks(4000, 32, seeded(0), "cpu")
    assert hidden.shape == (4000, 1, 32)
    assert abs(float(hidden.float().mean()) - 0.5) < 0.02
    runs = 1 + (hidden[:, 0, 1:] != hidden[:, 0, :-1]).sum(dim=1)
    # gratings have at most 8 runs; i.i.d. masks over 32 steps have ~16.5 on average
    assert 0.4 < float((runs <= 8).float().mean()) < 0.6


# -------------------------------------------------------------------- network
def test_conv_denoiser_keeps_any_length_and_rebuilds_from_its_config():
    net = conv_net(3, 2)
    for length in (8, 13, 1):
        x = torch.randn(5, 3, length, generator=seeded(1))
        assert net(x, torch.tensor(7)).shape == (5, 2, length)
    twin = build_network(net.config)
    twin.load_state_dict(net.state_dict())
    x = torch.randn(4, 3, 16, generator=seeded(2))
    t = torch.tensor([1, 10, 20, 49])
    torch.testing.assert_close(twin(x, t), net(x, t))


def test_conv_denoiser_init_is_seeded_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    a, b, c = conv_net(2, 2, seed=3), conv_net(2, 2, seed=3), conv_net(2, 2, seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    for (_, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.input.weight, c.input.weight)


def test_conv_denoiser_gaussian_skip_adds_the_exact_linear_term():
    schedule = make_schedule("linear", 50)
    net = conv_net(1, 1, randomise=False).set_gaussian_skip(schedule)
    x = torch.randn(3, 1, 8, generator=seeded(5))
    a, s = float(schedule.alphas[20]), float(schedule.sigmas[20])
    # with a zero output layer the network is exactly c_t x_t
    torch.testing.assert_close(net(x, torch.tensor(20)), s / (a**2 + s**2) * x)


def test_conv_denoiser_rejects_an_even_kernel():
    with pytest.raises(ValueError, match="kernel_size odd"):
        ConvDenoiser1d(1, 1, kernel_size=4)


# ---------------------------------------------------------------------- losses
@pytest.mark.parametrize("scoring", ["reconstruction", "imputation"])
def test_sequence_loss_is_per_window_and_ignores_missing_entries(scoring):
    schedule = make_schedule("linear", 50)
    in_ch = 6 if scoring == "imputation" else 4
    net = conv_net(in_ch, 2)
    x0 = torch.randn(7, 2, 16, generator=seeded(0))
    obs = torch.ones_like(x0, dtype=torch.bool)
    obs[:, 1, :5] = False
    loss = sequence_loss(scoring, net, schedule, x0 * obs, obs, seeded(1),
                         mask_input=scoring == "reconstruction")
    assert loss.shape == (7,) and torch.all(loss > 0)
    none = torch.zeros_like(obs)
    empty = sequence_loss(scoring, net, schedule, x0 * 0, none, seeded(1),
                          mask_input=scoring == "reconstruction")
    assert torch.equal(empty, torch.zeros(7))


# --------------------------------------------------------------------- scoring
def test_imputation_never_sees_the_values_it_imputes():
    schedule = make_schedule("linear", 50)
    net = conv_net(3, 1).eval()
    hidden = grating_masks(16, 4)[0].double().reshape(1, 1, -1).float()
    noise = torch.randn(1, 16, generator=seeded(2))
    x0 = torch.randn(2, 1, 16, generator=seeded(3))
    obs = torch.ones_like(x0)
    moved = x0 + 5.0 * hidden  # change every hidden value, keep the visible ones
    with torch.inference_mode():
        a = _impute(net, schedule, x0, obs, hidden, noise, 50, 3)
        b = _impute(net, schedule, moved, obs, hidden, noise, 50, 3)
        c = _impute(net, schedule, x0 + 5.0 * (1 - hidden), obs, hidden, noise, 50, 3)
    assert torch.equal(a, b)
    assert not torch.allclose(a * hidden, c * hidden)  # the visible values do matter


def test_imputation_errors_count_only_hidden_observed_steps():
    schedule = make_schedule("linear", 50)
    net = conv_net(3, 1).eval()
    plan = make_sequence_plan("imputation", schedule, 1, 16, seeded(0), n_stripes=4,
                              n_inference_steps=2)
    x0 = torch.randn(2, 1, 16, generator=seeded(3))
    obs = torch.ones_like(x0, dtype=torch.bool)
    obs[1, 0, 3] = False
    with torch.inference_mode():
        total, count = _window_errors(net, schedule, plan, x0 * obs, obs, False)
    expected = torch.ones_like(count)
    expected[1, 0, 3] = 0  # complementary masks: each observed step is hidden once
    assert torch.equal(count, expected)
    assert torch.all(total[count > 0] > 0) and total[1, 0, 3] == 0


@pytest.mark.parametrize("scoring", ["reconstruction", "imputation"])
def test_a_window_scores_the_same_whatever_else_is_scored(scoring):
    schedule = make_schedule("linear", 50)
    C, L = 2, 8
    net = conv_net(3 * C if scoring == "imputation" else C, C)
    plan = make_sequence_plan(scoring, schedule, C, L, seeded(4), n_inference_steps=2, n_stripes=2)
    series = np.random.default_rng(0).normal(size=(C, 2000)).astype(np.float32)
    obs = np.ones_like(series, dtype=bool)
    tiled = np.arange(0, 2000, L)  # 250 disjoint windows: two blocks, the second padded
    alone_s, alone_c = score_series(net, schedule, plan, series, obs, np.array([1200]), L)
    all_s, all_c = score_series(net, schedule, plan, series, obs, tiled, L)
    np.testing.assert_array_equal(alone_s[:, 1200:1208], all_s[:, 1200:1208])
    assert np.all(alone_c[:, :1200] == 0) and np.all(alone_c[:, 1208:] == 0)
    # each window scores a step once per (t0, noise) pair, or once per mask pair
    per_window = 2 * len(plan.timesteps) if scoring == "reconstruction" else 1
    assert np.all(all_c == per_window)
    # overlapping windows add up: stride 1 covers interior steps L times
    _, dense_c = score_series(net, schedule, plan, series[:, :300], obs[:, :300],
                              window_starts(300, L, 1), L)
    assert np.all(dense_c[:, L:-L] == L * per_window)


def test_reconstruction_plan_is_an_antithetic_grid():
    schedule = make_schedule("linear", 100)
    plan = make_sequence_plan("reconstruction", schedule, 3, 10, seeded(0), n_scoring_timesteps=3)
    assert plan.timesteps.tolist() == [5, 18, 30]
    assert plan.noise.shape == (3, 2, 3, 10)
    assert torch.equal(plan.noise[:, 0], -plan.noise[:, 1])
    again = make_sequence_plan("reconstruction", schedule, 3, 10, seeded(0), n_scoring_timesteps=3)
    assert torch.equal(plan.noise, again.noise)


def test_imputation_plan_hides_every_step_once_per_pair():
    schedule = make_schedule("linear", 100)
    plan = make_sequence_plan("imputation", schedule, 2, 12, seeded(0), n_stripes=4,
                              random_masks=True)
    assert plan.hidden.shape == (4, 12)
    pairs = plan.hidden.reshape(2, 2, 12).sum(dim=1)
    assert torch.equal(pairs, torch.ones(2, 12, dtype=pairs.dtype))
    assert plan.timesteps.tolist() == [100]
    with pytest.raises(ValueError, match="scoring must be one of"):
        make_sequence_plan("density", schedule, 2, 12, seeded(0))
