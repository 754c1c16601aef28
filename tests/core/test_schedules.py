"""Noise schedules, the posterior and DDPM/DDIM steps against their closed forms.

Reference values are computed here independently, in float64 numpy, from the
formulas of the papers rather than from the schedule's own tables.
"""

import math
import pickle

import numpy as np
import pytest
import torch

from skdiffad._core import NoiseSchedule, make_schedule


def linear_alpha_bars(n_timesteps, beta_start=1e-4, beta_end=0.02):
    """DDPM's linear betas, rescaled by 1000/T, clipped at 0.999; alpha_bar_0 = 1."""
    scale = 1000.0 / n_timesteps
    betas = np.minimum(np.linspace(beta_start * scale, beta_end * scale, n_timesteps), 0.999)
    return np.concatenate([[1.0], np.cumprod(1.0 - betas)]), betas


def cosine_f(n_timesteps, offset=0.008):
    """Improved DDPM (Nichol & Dhariwal 2021, eq. 17): f(t) = cos^2(((t/T + s)/(1 + s)) pi/2)."""
    t = np.arange(n_timesteps + 1) / n_timesteps
    return np.cos((t + offset) / (1 + offset) * np.pi / 2) ** 2


def vp_tables(schedule):
    return schedule.alphas.numpy() ** 2, schedule.sigmas.numpy() ** 2


ALL_SCHEDULES = ("linear", "cosine", "ve")


# ------------------------------------------------------------------ the tables
@pytest.mark.parametrize("n_timesteps", [1000, 100, 10])
def test_linear_alpha_bar_is_the_cumulative_product_of_rescaled_betas(n_timesteps):
    expected, _ = linear_alpha_bars(n_timesteps)
    schedule = make_schedule("linear", n_timesteps)
    alpha_bar, noise_var = vp_tables(schedule)
    np.testing.assert_allclose(alpha_bar, expected, rtol=1e-12, atol=0)
    np.testing.assert_allclose(noise_var, 1.0 - expected, rtol=1e-12, atol=1e-15)
    assert schedule.kind == "vp" and schedule.n_timesteps == n_timesteps


def test_linear_schedule_at_t1000_has_ddpm_endpoints():
    # Ho et al. 2020: beta_1 = 1e-4, and alpha_bar_T ~ 4.0e-5 for T = 1000.
    alpha_bar, _ = vp_tables(make_schedule("linear", 1000))
    assert alpha_bar[1] == pytest.approx(1 - 1e-4, rel=1e-12)
    assert alpha_bar[-1] == pytest.approx(4.04e-5, rel=0.01)


@pytest.mark.parametrize("n_timesteps", [1000, 50])
def test_cosine_alpha_bar_matches_the_improved_ddpm_formula(n_timesteps):
    f = cosine_f(n_timesteps)
    alpha_bar, noise_var = vp_tables(make_schedule("cosine", n_timesteps))
    # below T no beta reaches the 0.999 clip, so alpha_bar is exactly f(t)/f(0)
    np.testing.assert_allclose(alpha_bar[:-1], f[:-1] / f[0], rtol=1e-10)
    # f(T) = cos(pi/2)^2 = 0 would make beta_T = 1; it is clipped to 0.999
    assert alpha_bar[-1] == pytest.approx(alpha_bar[-2] * (1 - 0.999), rel=1e-10)
    np.testing.assert_allclose(alpha_bar + noise_var, 1.0, rtol=1e-14)


def test_ve_schedule_has_unit_signal_and_geometric_sigmas():
    T, lo, hi = 200, 0.02, 80.0
    schedule = make_schedule("ve", T, sigma_min=lo, sigma_max=hi)
    assert schedule.kind == "ve"
    np.testing.assert_array_equal(schedule.alphas.numpy(), np.ones(T + 1))
    sigmas = schedule.sigmas.numpy()
    assert sigmas[0] == 0
    assert sigmas[1] == pytest.approx(lo, rel=1e-12)
    assert sigmas[-1] == pytest.approx(hi, rel=1e-12)
    ratios = sigmas[2:] / sigmas[1:-1]
    np.testing.assert_allclose(ratios, (hi / lo) ** (1 / (T - 1)), rtol=1e-10)


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_variance_preserving_schedules_keep_unit_total_variance(name):
    schedule = make_schedule(name, 300)
    total = schedule.alphas**2 + schedule.sigmas**2
    np.testing.assert_allclose(total.numpy(), 1.0, rtol=1e-14)
    assert schedule.prior_variance() == pytest.approx(1.0, rel=1e-14)


def test_ve_prior_variance_is_unit_data_plus_the_largest_noise():
    assert make_schedule("ve", 100, sigma_max=30.0).prior_variance() == pytest.approx(901.0)


@pytest.mark.parametrize("name", ALL_SCHEDULES)
@pytest.mark.parametrize("n_timesteps", [2, 10, 1000])
def test_snr_is_strictly_decreasing_and_index_zero_is_clean(name, n_timesteps):
    schedule = make_schedule(name, n_timesteps)
    assert schedule.alphas[0] == 1 and schedule.sigmas[0] == 0
    snr = schedule.snr(torch.arange(n_timesteps + 1))
    assert torch.isinf(snr[0])
    assert torch.all(torch.isfinite(snr[1:])) and torch.all(snr[1:] > 0)
    assert torch.all(torch.diff(snr) < 0)


# --------------------------------------------------------------- forward maps
@pytest.mark.parametrize("name", ALL_SCHEDULES)
def test_step_zero_leaves_the_data_unchanged(name):
    schedule = make_schedule(name, 50)
    x0 = torch.randn(4, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    noise = torch.randn(4, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert torch.equal(schedule.add_noise(x0, noise, 0), x0)


def test_add_noise_matches_the_ddpm_forward_formula_per_row():
    T = 100
    alpha_bar, _ = linear_alpha_bars(T)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    noise = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    t = torch.tensor([1, 7, 30, 55, 99, 100])
    x_t = make_schedule("linear", T).add_noise(x0, noise, t).numpy()
    ab = alpha_bar[t.numpy()][:, None]
    expected = np.sqrt(ab) * x0.numpy() + np.sqrt(1 - ab) * noise.numpy()
    np.testing.assert_allclose(x_t, expected, rtol=1e-12, atol=1e-14)


def test_add_noise_with_a_scalar_step_and_image_shaped_input():
    schedule = make_schedule("cosine", 40)
    gen = torch.Generator().manual_seed(2)
    x0 = torch.randn(3, 2, 4, 4, generator=gen, dtype=torch.float64)
    noise = torch.randn(3, 2, 4, 4, generator=gen, dtype=torch.float64)
    a, s = float(schedule.alphas[17]), float(schedule.sigmas[17])
    torch.testing.assert_close(schedule.add_noise(x0, noise, 17), a * x0 + s * noise)
    per_row = schedule.add_noise(x0, noise, torch.tensor([17, 17, 17]))
    torch.testing.assert_close(per_row, a * x0 + s * noise)


@pytest.mark.parametrize("name", ALL_SCHEDULES)
def test_predict_x0_and_predict_eps_invert_add_noise(name):
    T = 200
    schedule = make_schedule(name, T)
    gen = torch.Generator().manual_seed(3)
    x0 = torch.randn(T, 4, generator=gen, dtype=torch.float64)
    noise = torch.randn(T, 4, generator=gen, dtype=torch.float64)
    t = torch.arange(1, T + 1)
    x_t = schedule.add_noise(x0, noise, t)
    torch.testing.assert_close(schedule.predict_x0(x_t, noise, t), x0, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(schedule.predict_eps(x_t, x0, t), noise, rtol=1e-9, atol=1e-9)


# ------------------------------------------------------------------ posterior
def test_vp_posterior_one_step_back_is_ddpm_mu_tilde_and_beta_tilde():
    T = 1000
    alpha_bar, betas = linear_alpha_bars(T)
    schedule = make_schedule("linear", T)
    gen = torch.Generator().manual_seed(4)
    t = torch.arange(2, T + 1)
    x0 = torch.randn(T - 1, 3, generator=gen, dtype=torch.float64)
    x_t = torch.randn(T - 1, 3, generator=gen, dtype=torch.float64)
    mean, var = schedule.posterior(x_t, x0, t, t - 1)

    tn = t.numpy()
    ab_t, ab_prev, beta_t = alpha_bar[tn], alpha_bar[tn - 1], betas[tn - 1]
    beta_tilde = (1 - ab_prev) / (1 - ab_t) * beta_t  # Ho et al. 2020, eq. 7
    mu_tilde = (
        (np.sqrt(ab_prev) * beta_t / (1 - ab_t))[:, None] * x0.numpy()
        + (np.sqrt(1 - beta_t) * (1 - ab_prev) / (1 - ab_t))[:, None] * x_t.numpy()
    )
    np.testing.assert_allclose(var.numpy().ravel(), beta_tilde, rtol=1e-8)
    np.testing.assert_allclose(mean.numpy(), mu_tilde, rtol=1e-8, atol=1e-12)


def conditional_gaussian(a_s, s_s, a_t, s_t, x0, x_t):
    """q(x_s | x_t, x0) by conditioning the joint Gaussian of (x_s, x_t) given x0.

    The forward process is Markov, x_t = (a_t/a_s) x_s + noise independent of x_s, so
    Cov(x_s, x_t | x0) = (a_t/a_s) s_s^2; then the textbook conditional applies.
    """
    cov = (a_t / a_s) * s_s**2
    mean = a_s * x0 + cov / s_t**2 * (x_t - a_t * x0)
    var = s_s**2 - cov**2 / s_t**2
    return mean, var


@pytest.mark.parametrize("name", ALL_SCHEDULES)
@pytest.mark.parametrize(("t", "s"), [(2, 1), (40, 39), (40, 13), (100, 99), (100, 1)])
def test_posterior_equals_direct_gaussian_conditioning(name, t, s):
    schedule = make_schedule(name, 100)
    alphas, sigmas = schedule.alphas.numpy(), schedule.sigmas.numpy()
    gen = torch.Generator().manual_seed(t * 1000 + s)
    x0 = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    x_t = schedule.add_noise(x0, torch.randn(5, 3, generator=gen, dtype=torch.float64), t)
    mean, var = schedule.posterior(x_t, x0, t, s)
    exp_mean, exp_var = conditional_gaussian(
        alphas[s], sigmas[s], alphas[t], sigmas[t], x0.numpy(), x_t.numpy()
    )
    np.testing.assert_allclose(float(var), exp_var, rtol=1e-9)
    np.testing.assert_allclose(mean.numpy(), exp_mean, rtol=1e-9, atol=1e-12)
    assert float(var) > 0


@pytest.mark.parametrize("name", ALL_SCHEDULES)
def test_posterior_to_step_zero_is_the_clean_point(name):
    schedule = make_schedule(name, 30)
    gen = torch.Generator().manual_seed(5)
    x0 = torch.randn(4, 2, generator=gen, dtype=torch.float64)
    x_t = torch.randn(4, 2, generator=gen, dtype=torch.float64)
    mean, var = schedule.posterior(x_t, x0, 12, 0)
    torch.testing.assert_close(mean, x0)
    assert float(var) == 0


def test_ddpm_step_is_the_posterior_mean_plus_scaled_noise():
    schedule = make_schedule("linear", 100)
    gen = torch.Generator().manual_seed(6)
    x0 = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    eps = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    z = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    x_t = schedule.add_noise(x0, eps, 60)
    mean, var = schedule.posterior(x_t, x0, 60, 59)
    torch.testing.assert_close(schedule.ddpm_step(x_t, eps, 60, 59), mean)
    torch.testing.assert_close(schedule.ddpm_step(x_t, eps, 60, 59, noise=z), mean + var.sqrt() * z)


# ----------------------------------------------------------------------- DDIM
def test_ddim_step_is_deterministic_and_leaves_the_global_rng_alone():
    schedule = make_schedule("linear", 100)
    gen = torch.Generator().manual_seed(7)
    x_t = torch.randn(8, 3, generator=gen)
    eps = torch.randn(8, 3, generator=gen)
    rng = torch.random.get_rng_state()
    first = schedule.ddim_step(x_t, eps, 80, 40)
    second = schedule.ddim_step(x_t, eps, 80, 40)
    assert torch.equal(first, second)
    assert torch.equal(rng, torch.random.get_rng_state())


@pytest.mark.parametrize("name", ALL_SCHEDULES)
def test_ddim_with_the_true_noise_jumps_onto_the_same_noise_path(name):
    schedule = make_schedule(name, 100)
    gen = torch.Generator().manual_seed(8)
    x0 = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    eps = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    x_t = schedule.add_noise(x0, eps, 70)
    # one step all the way back recovers x0 exactly
    torch.testing.assert_close(schedule.ddim_step(x_t, eps, 70, 0), x0, rtol=1e-10, atol=1e-10)
    # and any target step, down or up (inversion), lands on a_s x0 + s_s eps
    for s in (1, 33, 69, 71, 100):
        expected = schedule.add_noise(x0, eps, s)
        torch.testing.assert_close(schedule.ddim_step(x_t, eps, 70, s), expected)


def _ddim_path(schedule, network, x, grid):
    for t, s in zip(grid[:-1], grid[1:]):
        x = schedule.ddim_step(x, network(x, t), t, s)
    return x


GAUSS_MEAN = [1.0, -2.0, 0.5, 0.0]
GAUSS_VAR = [0.5, 2.0, 1.0, 0.1]


def _round_trip_error(schedule, network, x0, t_end, n_steps):
    grid = torch.linspace(0, t_end, n_steps + 1).round().long().tolist()
    latent = _ddim_path(schedule, network, x0, grid)
    back = _ddim_path(schedule, network, latent, grid[::-1])
    return latent, float((back - x0).abs().max())


def test_ddim_inversion_then_denoising_recovers_gaussian_data(gaussian_eps_predictor):
    """With the exact eps of N(mu, diag(v)), 0 -> t -> 0 by DDIM returns x0.

    DDIM is a first-order solver of the probability-flow ODE, so the round trip's
    error shrinks like the step size: about 2e-3 (data scale ~1) with 500 steps and
    ten times that with 50.
    """
    schedule = make_schedule("cosine", 1000)
    network = gaussian_eps_predictor(schedule, GAUSS_MEAN, GAUSS_VAR)
    mu = torch.tensor(GAUSS_MEAN, dtype=torch.float64)
    var = torch.tensor(GAUSS_VAR, dtype=torch.float64)
    gen = torch.Generator().manual_seed(9)
    x0 = mu + var.sqrt() * torch.randn(16, 4, generator=gen, dtype=torch.float64)

    latent, fine = _round_trip_error(schedule, network, x0, 500, 500)
    _, coarse = _round_trip_error(schedule, network, x0, 500, 50)
    assert fine < 5e-3
    assert coarse > 5 * fine  # the error is discretisation error and converges

    # The probability-flow ODE of a Gaussian keeps the standardised point fixed:
    # (x_t - a_t mu) / sqrt(a_t^2 v + s_t^2) = (x0 - mu) / sqrt(v).
    a, s = float(schedule.alphas[500]), float(schedule.sigmas[500])
    exact = a * mu + (x0 - mu) * torch.sqrt((a**2 * var + s**2) / var)
    assert float((latent - exact).abs().max()) < 1e-2
    # and it is far from the start: the inversion really went somewhere
    assert float((latent - x0).abs().max()) > 0.5


@pytest.mark.parametrize("name", ALL_SCHEDULES)
def test_last_step_below_is_the_largest_step_within_the_noise_to_signal_ratio(name):
    schedule = make_schedule(name, 500)
    ratio = (schedule.sigmas / schedule.alphas).numpy()  # increasing, inf-free for t >= 1
    for limit in (0.05, 0.5, 2.0, 10.0):
        t = schedule.last_step_below(limit)
        if ratio[1] > limit:
            assert t == 1  # never below one step
        else:
            assert ratio[t] <= limit and (t == 500 or ratio[t + 1] > limit)
    assert schedule.last_step_below(1e-9) == 1
    assert schedule.last_step_below(1e9) == 500


# ------------------------------------------------------------- invalid input
def test_unknown_schedule_name_raises():
    with pytest.raises(ValueError, match="beta_schedule must be one of"):
        make_schedule("quadratic", 100)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "100", None, True])
def test_bad_n_timesteps_raises(bad):
    with pytest.raises(ValueError, match="n_timesteps must be a positive integer"):
        make_schedule("linear", bad)


def test_numpy_integer_n_timesteps_is_accepted():
    # a GridSearchCV grid built with np.arange hands numpy integers to fit
    from_numpy = make_schedule("linear", np.int64(64))
    assert from_numpy.n_timesteps == 64
    torch.testing.assert_close(from_numpy.alphas, make_schedule("linear", 64).alphas)


def test_non_decreasing_snr_raises():
    alphas = torch.tensor([1.0, 0.9, 0.95], dtype=torch.float64)
    sigmas = torch.tensor([0.0, 0.4, 0.3], dtype=torch.float64)
    with pytest.raises(ValueError, match="must decrease"):
        NoiseSchedule(alphas, sigmas, "vp")
    with pytest.raises(ValueError, match="must decrease"):
        make_schedule("ve", 10, sigma_min=1.0, sigma_max=1.0)


@pytest.mark.parametrize(
    ("alphas", "sigmas"),
    [
        ([0.9, 0.8], [0.0, 0.5]),  # a_0 != 1
        ([1.0, 0.8], [0.1, 0.5]),  # s_0 != 0
        ([1.0, 0.8, 0.5], [0.0, 0.5]),  # lengths differ
        ([1.0], [0.0]),  # no noisy step
        ([1.0, 1.0, 0.9], [0.0, 0.0, 0.4]),  # step 1 is clean too: SNR(1) = inf
        ([1.0, 0.0, 0.0], [0.0, 0.0, 0.4]),  # SNR(1) = 0/0
        ([1.0, math.nan, 0.5], [0.0, 0.3, 0.4]),
    ],
)
def test_malformed_tables_raise(alphas, sigmas):
    with pytest.raises(ValueError):
        NoiseSchedule(torch.tensor(alphas), torch.tensor(sigmas), "vp")


def test_zero_first_beta_raises():
    with pytest.raises(ValueError, match="positive"):
        make_schedule("linear", 50, beta_start=0.0)


# ------------------------------------------------------------------- plumbing
@pytest.mark.parametrize("name", ALL_SCHEDULES)
def test_pickle_round_trip_keeps_the_tables(name):
    schedule = make_schedule(name, 64)
    clone = pickle.loads(pickle.dumps(schedule))
    assert isinstance(clone, NoiseSchedule)
    assert torch.equal(clone.alphas, schedule.alphas)
    assert torch.equal(clone.sigmas, schedule.sigmas)
    assert clone.kind == schedule.kind and clone.n_timesteps == 64
    x0, noise = torch.ones(2, 3), torch.full((2, 3), 0.5)
    assert torch.equal(clone.add_noise(x0, noise, 10), schedule.add_noise(x0, noise, 10))


def test_to_returns_an_equal_copy():
    schedule = make_schedule("cosine", 32)
    moved = schedule.to("cpu")
    assert moved is not schedule
    assert torch.equal(moved.alphas, schedule.alphas) and moved.kind == "vp"
