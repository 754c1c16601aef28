"""Scoring plans and the four paradigms; the negative ELBO of a known Gaussian.

The ELBO tests use the exact noise predictor of N(0, I) data (see conftest). Its
T-step negative ELBO has a closed form per dimension: with ``v_t = a_t^2 + s_t^2``
the posterior variance of ``x0`` given ``x_t`` is ``s_t^2 / v_t``, so the diffusion
terms sum to ``1/2 sum_{t=2}^T (SNR(t-1) - SNR(t)) s_t^2 / v_t``, the decoder adds
``1/2 SNR(1) s_1^2 / v_1 + 1/2 log(2 pi / SNR(1))`` and the prior KL
``1/2 log(v_T / s_T^2)``.
"""

import dataclasses
import math

import numpy as np
import pytest
import torch

from skdiffad._core import (
    SCORINGS,
    MLPDenoiser,
    NoiseSchedule,
    make_schedule,
    make_scoring_plan,
    score_array,
    score_batch,
)

TRUE_NLL_PER_DIM = 0.5 * math.log(2 * math.pi) + 0.5  # E[-log N(x; 0, 1)] = 1.4189


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def plan_for(scoring, schedule, n_features, seed=0, k=4, **kwargs):
    kwargs.setdefault("n_bins", 5)
    kwargs.setdefault("n_inference_steps", 3)
    return make_scoring_plan(scoring, schedule, n_features, k, seeded(seed), **kwargs)


def random_net(scoring, n_features, seed=0, n_timesteps=40, mask_input=False):
    """A small network with every weight random (the output layer too)."""
    in_dim = n_features * (2 if mask_input else 1)
    if scoring == "time":
        net = MLPDenoiser(in_dim, 5, (16,), 0, n_timesteps)
    else:
        net = MLPDenoiser(in_dim, n_features, (16,), 8, n_timesteps)
    net.reset_parameters(seeded(seed))
    with torch.no_grad():
        net.output.weight.normal_(0, 0.5, generator=seeded(seed + 1))
        net.output.bias.normal_(0, 0.5, generator=seeded(seed + 2))
    return net.eval()


def noise_draws(plan, k):
    """The noise vectors of grid point ``k`` as rows, however many draws it holds."""
    return plan.noise[k].reshape(-1, plan.noise.shape[-1])


def discrete_bound(schedule):
    """The exact T-step negative ELBO of N(0, 1) per dimension (no quadrature)."""
    T = schedule.n_timesteps
    a, s = schedule.alphas, schedule.sigmas
    mmse = (s**2 / (a**2 + s**2)).numpy()
    snr = schedule.snr(torch.arange(T + 1)).numpy()
    diffusion = 0.5 * np.sum((snr[1:T] - snr[2:]) * mmse[2:])
    decoder = 0.5 * snr[1] * mmse[1] + 0.5 * math.log(2 * math.pi / snr[1])
    a_T, s_T = float(a[-1]), float(s[-1])
    prior = 0.5 * math.log((a_T**2 + s_T**2) / s_T**2)
    return diffusion + decoder + prior


def standard_normal(n, d, seed):
    return torch.randn(n, d, generator=seeded(seed), dtype=torch.float64).numpy()


def gaussian_elbo(gaussian_eps_predictor, name, T, k, x, seed=0):
    d = x.shape[1]
    schedule = make_schedule(name, T)
    net = gaussian_eps_predictor(schedule, torch.zeros(d), torch.ones(d))
    plan = plan_for("density", schedule, d, seed=seed, k=k)
    return score_array(net, schedule, plan, x, dtype=torch.float64), schedule, plan


# ----------------------------------------------------------------------- ELBO
def test_negative_elbo_of_a_two_step_schedule_is_exact_per_point(gaussian_eps_predictor):
    """Every term of the bound, per row, for a schedule short enough to write out.

    With T = 2 the one stratum is exact, so for the plan's own noise draws e the bound
    is prior KL + decoder at t = 1 + 1/2 (SNR(1) - SNR(2)) |x - x0_hat(x_2)|^2, with
    ``x0_hat = a_t x_t / v_t`` and ``x_t = a_t x + s_t e``. The prior matters here
    (a_2 = 0.6), unlike in the long schedules where a_T is ~0.
    """
    alphas, sigmas = [1.0, 0.9, 0.6], [0.0, 0.3, 0.7]
    schedule = NoiseSchedule(torch.tensor(alphas, dtype=torch.float64),
                             torch.tensor(sigmas, dtype=torch.float64), "vp")
    d = 3
    net = gaussian_eps_predictor(schedule, torch.zeros(d), torch.ones(d))
    plan = plan_for("density", schedule, d, k=4)
    x = np.vstack([standard_normal(5, d, 7), np.full((1, d), 4.0)])
    scores = score_array(net, schedule, plan, x, dtype=torch.float64)

    snr = [a**2 / s**2 if s else math.inf for a, s in zip(alphas, sigmas)]

    def mean_sq_error(t, k):
        a, s = alphas[t], sigmas[t]
        v = a**2 + s**2
        draws = noise_draws(plan, k).double().numpy()
        errors = [((s**2 * x - a * s * e) / v) ** 2 for e in draws]
        return np.mean([err.sum(axis=1) for err in errors], axis=0)

    v_T = alphas[2] ** 2 + sigmas[2] ** 2
    s_T, a_T = sigmas[2], alphas[2]
    prior = 0.5 * (np.log(v_T / s_T**2) + (s_T**2 + a_T**2 * x**2) / v_T - 1)
    decoder = 0.5 * snr[1] * mean_sq_error(1, 0) + 0.5 * d * math.log(2 * math.pi / snr[1])
    diffusion = 0.5 * (snr[1] - snr[2]) * mean_sq_error(2, 1)
    expected = (prior.sum(axis=1) + decoder + diffusion) / d
    # the plan's noise is float32, and s_t * noise is formed in float32
    np.testing.assert_allclose(scores, expected, rtol=1e-6)


@pytest.mark.parametrize("name", ["ve", "linear", "cosine"])
def test_negative_elbo_with_every_step_a_stratum_is_the_exact_discrete_bound(
    name, gaussian_eps_predictor
):
    """The plan-based ELBO of N(0, I) against the T-step bound and the true NLL.

    With strata finer than any step the quadrature is the full sum (5T strata equally
    spaced in log-SNR leave every step alone), so the mean over rows must be the
    T-step bound computed independently here, up to the sampling error of the rows.
    How far that bound sits above ``-log p(x) / d = 1.4189`` is a property of the
    schedule, not of the code: VE's geometric sigmas step log-SNR evenly (gap 0.035
    nats), while DDPM's linear betas start with SNR(t) ~ 1/t, so the first steps cut
    the SNR by factors 2, 3/2, 4/3... and there the fixed posterior variance leaves
    the bound 0.46 nats loose at T = 1000 (0.35 at T = 4000: it shrinks only slowly
    with T); cosine is similar (0.41).
    """
    T, n = 1000, 2000
    x = standard_normal(n, 8, 2)
    scores, schedule, plan = gaussian_elbo(gaussian_eps_predictor, name, T, 5 * T, x)
    assert torch.equal(plan.timesteps, torch.arange(1, T + 1))  # decoder, then 2..T one each
    se = scores.std() / math.sqrt(n)
    bound = discrete_bound(schedule)
    assert abs(scores.mean() - bound) < 4 * se
    assert bound > TRUE_NLL_PER_DIM  # it is a bound
    if name == "ve":
        assert bound - TRUE_NLL_PER_DIM < 0.05
        assert abs(scores.mean() - TRUE_NLL_PER_DIM) < 0.05
    else:
        assert 0.3 < bound - TRUE_NLL_PER_DIM < 0.6


@pytest.mark.parametrize("name", ["linear", "cosine", "ve"])
def test_eight_strata_reproduce_the_full_sum(name, gaussian_eps_predictor):
    """The estimators' default grid (8 strata) against every step, on the same rows.

    Weighting the x0-error by telescoped SNR differences over wide strata overshot
    this by 2.2 nats/dim (linear) to 6 (cosine); 0.02 is what a usable K=8 must meet.
    """
    x = standard_normal(1000, 8, 3)
    coarse, _, plan = gaussian_elbo(gaussian_eps_predictor, name, 1000, 8, x)
    full, _, full_plan = gaussian_elbo(gaussian_eps_predictor, name, 1000, 5000, x)
    assert len(plan.timesteps) == 9 and len(full_plan.timesteps) == 1000
    assert abs(coarse.mean() - full.mean()) < 0.02


def test_negative_elbo_tracks_the_log_density_point_by_point(gaussian_eps_predictor):
    # The plan's noise comes in norm-fixed antithetic pairs, so for this Gaussian
    # (whose denoising error is quadratic in the noise) the estimate carries no
    # Monte Carlo noise: it differs from -log N(x; 0, I) / d by the schedule's
    # near-constant discretisation gap only.
    x = standard_normal(2000, 8, 4)
    scores, schedule, _ = gaussian_elbo(gaussian_eps_predictor, "linear", 1000, 8, x)
    nll = 0.5 * math.log(2 * math.pi) + 0.5 * (x**2).mean(axis=1)
    assert np.corrcoef(scores, nll)[0, 1] > 0.999
    offset = discrete_bound(schedule) - TRUE_NLL_PER_DIM
    assert np.abs(scores - nll - offset).mean() < 0.01


def test_negative_elbo_of_a_far_point_is_its_log_density(gaussian_eps_predictor):
    d = 8
    inliers, schedule, plan = gaussian_elbo(
        gaussian_eps_predictor, "ve", 1000, 64, standard_normal(500, d, 5)
    )
    net = gaussian_eps_predictor(schedule, torch.zeros(d), torch.ones(d))
    far = score_array(net, schedule, plan, np.full((1, d), 4.0), dtype=torch.float64)[0]
    true_far = 0.5 * math.log(2 * math.pi) + 0.5 * 16  # -log N(4 * 1; 0, I) / d = 8.92
    assert far > inliers.max() + 3
    assert far == pytest.approx(true_far, rel=0.05)


# ---------------------------------------------------------------------- plans
@pytest.mark.parametrize("scoring", ["reconstruction", "density"])
def test_scoring_plan_is_deterministic_for_a_seeded_generator(scoring):
    schedule = make_schedule("linear", 100)
    first = plan_for(scoring, schedule, 6, seed=3, k=6)
    again = plan_for(scoring, schedule, 6, seed=3, k=6)
    other = plan_for(scoring, schedule, 6, seed=4, k=6)
    assert torch.equal(first.timesteps, again.timesteps)
    assert torch.equal(first.weights.nan_to_num(-1), again.weights.nan_to_num(-1))
    assert torch.equal(first.noise, again.noise)
    assert first.noise.shape[0] == len(first.timesteps) and first.noise.shape[-1] == 6
    assert torch.equal(first.timesteps, other.timesteps)
    assert not torch.equal(first.noise, other.noise)


def test_making_a_plan_leaves_the_global_rng_alone():
    state = torch.random.get_rng_state()
    for scoring in SCORINGS:
        plan_for(scoring, make_schedule("cosine", 50), 3)
    assert torch.equal(state, torch.random.get_rng_state())


@pytest.mark.parametrize("name", ["linear", "cosine", "ve"])
@pytest.mark.parametrize("k", [1, 8, 30])
def test_density_strata_partition_the_steps_and_keep_their_weight(name, k):
    T = 200
    schedule = make_schedule(name, T)
    plan = plan_for("density", schedule, 2, k=k)
    steps, weights = plan.timesteps, plan.weights
    assert int(steps[0]) == 1 and math.isnan(float(weights[0]))  # the decoder term
    assert 1 <= len(steps) - 1 <= k
    assert torch.all(torch.diff(steps) > 0) and int(steps[1]) >= 2 and int(steps[-1]) <= T
    assert torch.all(weights[1:] > 0)
    # the strata partition steps 2..T, so their weights add up to the per-step
    # weights 1/2 (SNR(t-1)/SNR(t) - 1) of the eps-error form of the ELBO
    snr = schedule.snr(torch.arange(1, T + 1))
    total = 0.5 * float((snr[:-1] / snr[1:] - 1).sum())
    assert float(weights[1:].sum()) == pytest.approx(total, rel=1e-10)


def test_density_needs_two_steps():
    with pytest.raises(ValueError, match="n_timesteps >= 2"):
        plan_for("density", make_schedule("linear", 1), 3)


@pytest.mark.parametrize(("scoring", "top"), [("reconstruction", 0.25), ("score", 0.5)])
def test_grids_are_sorted_steps_inside_their_range_with_equal_weights(scoring, top):
    T = 400
    plan = plan_for(scoring, make_schedule("linear", T), 3, k=8)
    steps = plan.timesteps
    assert len(steps) == 8
    assert torch.all(torch.diff(steps) > 0) and int(steps[0]) >= 1 and int(steps[-1]) <= top * T
    torch.testing.assert_close(plan.weights, torch.full((8,), 1 / 8, dtype=torch.float64))


def test_time_plan_weights_are_the_bin_centres_over_t():
    plan = plan_for("time", make_schedule("linear", 100), 3, n_bins=4)
    # four bins over steps 1..100: centres 13, 38, 63, 88
    centres = torch.tensor([13.0, 38.0, 63.0, 88.0], dtype=torch.float64)
    torch.testing.assert_close(plan.timesteps, centres)
    torch.testing.assert_close(plan.weights, plan.timesteps / 100)
    assert plan.noise is None
    # a classifier trained on steps 1..40 only: bins over 1..40, scores as a fraction of 40
    short = plan_for("time", make_schedule("linear", 100), 3, n_bins=4, t_max=40)
    centres = torch.tensor([5.5, 15.5, 25.5, 35.5], dtype=torch.float64)
    torch.testing.assert_close(short.timesteps, centres)
    torch.testing.assert_close(short.weights, short.timesteps / 40)


def test_unknown_scoring_raises():
    schedule = make_schedule("linear", 20)
    with pytest.raises(ValueError, match="scoring must be one of"):
        plan_for("likelihood", schedule, 3)
    bogus = dataclasses.replace(plan_for("score", schedule, 3), scoring="likelihood")
    with pytest.raises(ValueError, match="unknown scoring"):
        score_batch(random_net("score", 3, n_timesteps=20), schedule, bogus, torch.zeros(2, 3))


# ----------------------------------------------------------- every paradigm
def scores_of(scoring, X, mask=None, mask_input=False, batch_size=4096, **plan_kwargs):
    T, d = 40, X.shape[1]
    schedule = make_schedule("linear", T)
    net = random_net(scoring, d, n_timesteps=T, mask_input=mask_input)
    plan = plan_for(scoring, schedule, d, **plan_kwargs)
    return score_array(net, schedule, plan, X, mask, batch_size=batch_size, mask_input=mask_input)


def data(n=10, d=3, seed=5):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


@pytest.mark.parametrize("scoring", SCORINGS)
def test_scores_are_finite_float64_one_per_row_and_repeatable(scoring):
    X = data()
    scores = scores_of(scoring, X)
    assert scores.dtype == np.float64 and scores.shape == (10,)
    assert np.all(np.isfinite(scores))
    assert np.array_equal(scores, scores_of(scoring, X))
    assert len(np.unique(scores)) == 10  # the rows are told apart


@pytest.mark.parametrize("scoring", SCORINGS)
def test_a_rows_score_does_not_depend_on_its_batch(scoring):
    X = data(n=11)
    together = scores_of(scoring, X)
    one_by_one = scores_of(scoring, X, batch_size=1)
    in_threes = scores_of(scoring, X, batch_size=3)
    order = np.random.default_rng(0).permutation(11)
    shuffled = np.empty(11)
    shuffled[order] = scores_of(scoring, X[order])
    for other in (one_by_one, in_threes, shuffled):
        np.testing.assert_allclose(other, together, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("mask_input", [False, True])
@pytest.mark.parametrize("scoring", SCORINGS)
def test_masked_entries_do_not_change_the_score(scoring, mask_input):
    X = data(n=8, d=4)
    mask = np.random.default_rng(1).random((8, 4)) > 0.3
    mask[:, 0] = True
    changed = np.where(mask, X, np.float32(50.0))
    base = scores_of(scoring, X, mask, mask_input)
    np.testing.assert_array_equal(scores_of(scoring, changed, mask, mask_input), base)
    observed = X + mask * np.float32(1.0)  # moving what was observed does count
    assert not np.allclose(scores_of(scoring, observed, mask, mask_input), base)


def test_scoring_leaves_the_network_and_the_global_rng_alone():
    schedule = make_schedule("linear", 40)
    net = random_net("reconstruction", 3)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    state = torch.random.get_rng_state()
    score_array(net, schedule, plan_for("reconstruction", schedule, 3), data())
    assert torch.equal(state, torch.random.get_rng_state())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


# ------------------------------------------------------- paradigm formulas
def test_time_score_is_the_expected_bin_centre_over_t():
    logits = torch.tensor([1.0, -0.5, 0.0, 2.0, 0.3], dtype=torch.float64)
    plan = plan_for("time", make_schedule("linear", 50), 3, n_bins=5)
    scores = score_batch(lambda x: logits.expand(len(x), -1), None, plan, torch.zeros(4, 3))
    expected = float(torch.softmax(logits, 0) @ (plan.timesteps / 50))
    torch.testing.assert_close(scores, torch.full((4,), expected, dtype=torch.float64))


def test_reconstruction_with_a_zero_noise_prediction_is_the_noise_to_signal_error():
    # eps_hat = 0 makes every DDIM step rescale by a_s / a_t, so x_hat = x_t0 / a_t0 and
    # x_hat - x = (s_t0 / a_t0) e: the score is sum_k w_k (s_k / a_k)^2 mean(e_k^2)
    schedule = make_schedule("cosine", 100)
    net = MLPDenoiser(3, 3, (8,), 8, 100).reset_parameters(seeded(0))  # outputs zeros
    plan = plan_for("reconstruction", schedule, 3, k=5, n_inference_steps=4)
    scores = score_array(net, schedule, plan, data(n=6))
    ratio = schedule.sigmas[plan.timesteps] / schedule.alphas[plan.timesteps]
    mean_sq = plan.noise.double().pow(2).flatten(1).mean(dim=1)
    expected = float((plan.weights * ratio**2 * mean_sq).sum())
    np.testing.assert_allclose(scores, expected, rtol=1e-5)


def test_reconstruction_with_the_true_noise_is_perfect():
    schedule = make_schedule("linear", 100)
    X = torch.as_tensor(data(n=5, d=3), dtype=torch.float64)

    def oracle(x_t, t):  # knows the clean rows, so it names the exact noise
        return schedule.predict_eps(x_t, X, int(t))

    plan = plan_for("reconstruction", schedule, 3, k=5, n_inference_steps=4)
    scores = score_batch(oracle, schedule, plan, X)
    # zero up to the float32 cast of the network's output
    np.testing.assert_allclose(scores.numpy(), 0.0, atol=1e-14)


def test_score_norm_of_a_gaussian_is_read_at_the_forward_mean(gaussian_eps_predictor):
    # for N(0, I) under VP, eps_hat(x_t) = s_t x_t; at the forward mean x_t = a_t x
    # the score norm is |eps_hat| / s_t = a_t |x|, averaged over the grid
    schedule = make_schedule("linear", 200)
    net = gaussian_eps_predictor(schedule, torch.zeros(3), torch.ones(3))
    plan = plan_for("score", schedule, 3, k=6)
    assert plan.noise is None
    X = torch.as_tensor(data(n=4), dtype=torch.float64)
    scores = score_batch(net, schedule, plan, X)
    rms = X.pow(2).mean(dim=1).sqrt()
    expected = sum(plan.weights[k] * float(schedule.alphas[t]) * rms
                   for k, t in enumerate(plan.timesteps.tolist()))
    torch.testing.assert_close(scores, expected)


@pytest.mark.parametrize("scoring", ["reconstruction", "density", "score"])
def test_a_far_point_outscores_the_data_under_the_exact_gaussian_model(
    scoring, gaussian_eps_predictor
):
    d = 4
    schedule = make_schedule("linear", 200)
    net = gaussian_eps_predictor(schedule, torch.zeros(d), torch.ones(d))
    plan = plan_for(scoring, schedule, d, k=8)
    inliers = score_array(net, schedule, plan, standard_normal(200, d, 6), dtype=torch.float64)
    far = score_array(net, schedule, plan, np.full((1, d), 5.0), dtype=torch.float64)[0]
    assert far > inliers.max()
