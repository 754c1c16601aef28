"""The reverse chains of ``_core.sampling`` against a denoiser known in closed form."""

import pytest
import torch

from skdiffad._core.sampling import draw_samples
from skdiffad._core.schedules import make_schedule

MEAN = torch.tensor([0.5, -1.0]).reshape(1, 2, 1)
VAR = torch.tensor([0.25, 2.0]).reshape(1, 2, 1)


def gaussian_predictor(schedule):
    """The optimal noise predictor of data ``N(MEAN, VAR)`` per channel:
    ``E[eps | x_t] = s_t (x_t - a_t m) / (a_t^2 v + s_t^2)``."""
    def network(x_t, t):
        a, s = schedule.coefficients(int(t), x_t)
        return s * (x_t - a * MEAN) / (a**2 * VAR + s**2)
    return network


@pytest.mark.parametrize("beta_schedule", ["linear", "cosine", "ve"])
@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_full_chains_follow_the_data_distribution(beta_schedule, sampler):
    schedule = make_schedule(beta_schedule, 1000)
    generator = torch.Generator().manual_seed(0)
    x = draw_samples(gaussian_predictor(schedule), schedule, (20_000, 2, 1), sampler=sampler,
                     n_steps=1000, generator=generator)
    assert x.shape == (20_000, 2, 1) and torch.isfinite(x).all()
    mean, var = x.mean(dim=(0, 2)), x.var(dim=(0, 2))
    # sampling error of 20k draws: about 0.01 on the mean, 1-2% on the variance
    assert torch.allclose(mean, MEAN.flatten(), atol=0.05), mean
    assert torch.allclose(var, VAR.flatten(), rtol=0.05), var


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_shorter_chains_shrink_the_variance_and_longer_ones_undo_it(sampler):
    # A strided chain plugs the point estimate x0_hat into each step and so drops
    # Var(x0 | x_t): its samples are too concentrated, the more so the fewer the
    # steps (measured: linear DDIM 0.137, 0.222, 0.244, 0.248 for 10, 50, 250,
    # 1000 steps, data variance 0.25). Same seed, so the comparison is paired.
    schedule = make_schedule("linear", 1000)
    variances = [
        draw_samples(gaussian_predictor(schedule), schedule, (20_000, 2, 1), sampler=sampler,
                     n_steps=n, generator=torch.Generator().manual_seed(0)).var(dim=(0, 2))
        for n in (10, 50, 250)]
    for fewer, more in zip(variances, variances[1:]):
        assert (fewer < more).all()
    assert (variances[-1] < VAR.flatten()).all()
    assert torch.allclose(variances[-1], VAR.flatten(), rtol=0.08)
    assert (variances[0] < 0.8 * VAR.flatten()).all()


def test_a_wrong_predictor_is_visible():
    # a predictor that believes the data has unit variance draws unit variance:
    # the test above would fail for it
    schedule = make_schedule("linear", 1000)

    def network(x_t, t):
        a, s = schedule.coefficients(int(t), x_t)
        return s * (x_t - a * MEAN) / (a**2 + s**2)
    x = draw_samples(network, schedule, (20_000, 2, 1), generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(x.var(dim=(0, 2)), VAR.flatten(), rtol=0.08)


def test_seeded_generators_repeat_and_ddim_is_deterministic_after_the_prior():
    schedule = make_schedule("linear", 100)
    net = gaussian_predictor(schedule)
    for sampler in ("ddpm", "ddim"):
        a = draw_samples(net, schedule, (8, 2, 3), sampler=sampler, n_steps=20,
                         generator=torch.Generator().manual_seed(1))
        b = draw_samples(net, schedule, (8, 2, 3), sampler=sampler, n_steps=20,
                         generator=torch.Generator().manual_seed(1))
        c = draw_samples(net, schedule, (8, 2, 3), sampler=sampler, n_steps=20,
                         generator=torch.Generator().manual_seed(2))
        assert torch.equal(a, b) and not torch.equal(a, c)


def test_mask_input_networks_see_a_full_mask():
    schedule = make_schedule("linear", 50)
    seen = []

    def network(x, t):
        seen.append(x)
        return torch.zeros_like(x[:, :2])
    draw_samples(network, schedule, (3, 2, 4), n_steps=5, mask_input=True)
    assert len(seen) == 5
    assert all(x.shape == (3, 4, 4) and torch.equal(x[:, 2:], torch.ones(3, 2, 4)) for x in seen)


@pytest.mark.parametrize("kwargs, match", [
    ({"sampler": "euler"}, "sampler must be one of"),
    ({"n_steps": 0}, "n_steps must be a positive integer"),
    ({"n_steps": 2.5}, "n_steps must be a positive integer"),
    ({"n_steps": True}, "n_steps must be a positive integer"),
])
def test_bad_arguments_are_named(kwargs, match):
    schedule = make_schedule("linear", 10)
    with pytest.raises(ValueError, match=match):
        draw_samples(gaussian_predictor(schedule), schedule, (2, 2, 1), **kwargs)


@pytest.mark.parametrize("shape", [(0, 2, 1), (4,), (3, 2, 0)])
def test_bad_shapes_are_named(shape):
    schedule = make_schedule("linear", 10)
    with pytest.raises(ValueError, match="shape must be"):
        draw_samples(gaussian_predictor(schedule), schedule, shape)


# ------------------------------------------------------------------ edit_samples
from skdiffad._core.sampling import edit_samples

COV = torch.tensor([[1.0, 0.8], [0.8, 1.0]])


def correlated_predictor(schedule):
    """Optimal noise predictor of ``N(0, COV)`` over two channels:
    ``E[eps | x_t] = s_t (a_t^2 COV + s_t^2 I)^{-1} x_t``."""
    def network(x_t, t):
        a, s = schedule.coefficients(int(t), x_t)
        precision = torch.linalg.inv(a**2 * COV + s**2 * torch.eye(2))
        return s * torch.einsum("ij,njk->nik", precision, x_t)
    return network


def test_edit_from_the_last_step_draws_the_data_distribution():
    schedule = make_schedule("linear", 1000)
    start = torch.full((20_000, 2, 1), 5.0)  # forgotten at t = T
    x = edit_samples(gaussian_predictor(schedule), schedule, start, 1000, n_steps=1000,
                     generator=torch.Generator().manual_seed(1))
    assert torch.allclose(x.mean(dim=(0, 2)), MEAN.flatten(), atol=0.05)
    assert torch.allclose(x.var(dim=(0, 2)), VAR.flatten(), rtol=0.06)


def test_an_early_start_keeps_the_batch_and_a_late_one_forgets_it():
    schedule = make_schedule("linear", 1000)
    x0 = torch.full((2000, 2, 1), 3.0)
    shift = [(edit_samples(gaussian_predictor(schedule), schedule, x0, t, n_steps=50,
                           generator=torch.Generator().manual_seed(0)) - x0).abs().mean()
             for t in (20, 200, 1000)]
    assert shift[0] < 0.25 < shift[1] < shift[2]


def test_kept_entries_are_restored_and_resampling_conditions_the_rest_on_them():
    # inpaint channel 1 given channel 0 = 1.5: the conditional law is
    # N(0.8 * 1.5, 1 - 0.64) = N(1.2, 0.36). One run per step under-conditions
    # (measured mean 0.74); RePaint's resampling closes the gap (1.14 with 10).
    schedule = make_schedule("linear", 1000)
    x0 = torch.zeros(5000, 2, 1)
    x0[:, 0] = 1.5
    keep = torch.tensor([True, False]).reshape(1, 2, 1)
    once, resampled = (
        edit_samples(correlated_predictor(schedule), schedule, x0, 1000, n_steps=50,
                     keep=keep, n_resample=u, generator=torch.Generator().manual_seed(2))
        for u in (1, 10))
    assert torch.equal(once[:, 0], x0[:, 0]) and torch.equal(resampled[:, 0], x0[:, 0])
    assert once[:, 1].mean() < 0.9
    assert 1.05 < resampled[:, 1].mean() < 1.3
    assert 0.2 < resampled[:, 1].var() < 0.45


def test_temperature_widens_and_full_attraction_reaches_the_target():
    schedule = make_schedule("linear", 1000)
    x0 = torch.zeros(20_000, 2, 1)
    net = gaussian_predictor(schedule)
    plain, hot = (edit_samples(net, schedule, x0, 1000, n_steps=200, temperature=tau,
                               generator=torch.Generator().manual_seed(3)).var(dim=(0, 2))
                  for tau in (1.0, 2.0))
    assert (hot > 2 * plain).all()
    target = torch.full_like(x0, -4.0)
    for sampler in ("ddim", "ddpm"):
        x = edit_samples(net, schedule, x0, 1000, n_steps=20, sampler=sampler, target=target,
                         attract=1.0, generator=torch.Generator().manual_seed(4))
        assert torch.allclose(x, target, atol=1e-4)


@pytest.mark.parametrize("kwargs, match", [
    ({"t_start": 0}, "t_start"), ({"t_start": 1001}, "t_start"),
    ({"t_start": 10, "attract": 1.5}, "attract"), ({"t_start": 10, "attract": 0.5}, "target"),
    ({"t_start": 10, "sampler": "euler"}, "sampler"), ({"t_start": 10, "n_steps": 0}, "n_steps"),
    ({"t_start": 10, "n_resample": 0}, "n_resample"),
])
def test_edit_refuses_bad_settings(kwargs, match):
    schedule = make_schedule("linear", 1000)
    with pytest.raises(ValueError, match=match):
        edit_samples(gaussian_predictor(schedule), schedule, torch.zeros(2, 2, 1), **kwargs)
