"""The scoring paradigms on one batch; the negative ELBO of a known Gaussian.

The ELBO tests use the exact noise predictor of N(0, I) data (see conftest). Its
T-step negative ELBO has a closed form per dimension: with ``v_t = a_t^2 + s_t^2``
the posterior variance of ``x0`` given ``x_t`` is ``s_t^2 / v_t``, so the diffusion
terms sum to ``1/2 sum_{t=2}^T (SNR(t-1) - SNR(t)) s_t^2 / v_t``, the decoder adds
``1/2 SNR(1) s_1^2 / v_1 + 1/2 log(2 pi / SNR(1))`` and the prior KL
``1/2 log(v_T / s_T^2)``.

A row's score is what a detector reduces the per-entry errors to: ``sums.sum() /
counts.sum()`` over its entries for the element-wise paradigms (for the density,
the negative ELBO in nats per observed entry), the returned score otherwise.
"""

import dataclasses
import math

import numpy as np
import pytest
import torch

from skdiffad._core import (
    PARADIGMS,
    MLPDenoiser,
    NoiseSchedule,
    WindowSamples,
    grating_masks,
    make_paradigm,
    make_schedule,
    negative_elbo_terms,
)
from skdiffad._core.paradigms import ddim_path, impute
from skdiffad._core.samples import pad_block

from .helpers import ANY_SHAPE_PARADIGMS, conv_net, plan_for, seeded

TRUE_NLL_PER_DIM = 0.5 * math.log(2 * math.pi) + 0.5  # E[-log N(x; 0, 1)] = 1.4189


def random_net(paradigm, n_features, seed=0, n_timesteps=40, mask_input=False):
    """A small network with every weight random (the output layer too)."""
    in_dim = n_features * (2 if mask_input else 1)
    if paradigm == "time":
        net = MLPDenoiser(in_dim, 5, (16,), 0, n_timesteps)
    elif paradigm in ("imputation", "prediction"):
        net = MLPDenoiser(3 * n_features, n_features, (16,), 8, n_timesteps)
    else:
        net = MLPDenoiser(in_dim, n_features, (16,), 8, n_timesteps)
    net.reset_parameters(seeded(seed))
    with torch.no_grad():
        net.output.weight.normal_(0, 0.5, generator=seeded(seed + 1))
        net.output.bias.normal_(0, 0.5, generator=seeded(seed + 2))
    return net.eval()


def batch_errors(network, schedule, plan, x, mask=None, *, mask_input=False):
    """A batch's errors under the paradigm the plan was drawn for (its maths reads
    the plan, not the paradigm's options)."""
    return make_paradigm(plan.paradigm).batch_errors(network, schedule, plan, x, mask,
                                                     mask_input=mask_input)


def row_scores(sums, counts):
    """One score per row: the mean error over the entries that were scored."""
    if counts is None:
        return sums
    return sums.flatten(1).sum(dim=1) / counts.flatten(1).sum(dim=1)


def score_array(network, schedule, plan, X, mask=None, *, batch_size=4096, mask_input=False,
                dtype=torch.float32):
    """Row scores of an array, in padded batches as the models score them."""
    out = np.empty(X.shape[0], dtype=np.float64)
    with torch.inference_mode():
        for start in range(0, X.shape[0], batch_size):
            stop = min(start + batch_size, X.shape[0])
            x = pad_block(torch.as_tensor(X[start:stop], dtype=dtype))
            m = None if mask is None else pad_block(torch.as_tensor(mask[start:stop]))
            sums, counts = batch_errors(network, schedule, plan, x, m, mask_input=mask_input)
            out[start:stop] = row_scores(sums, counts)[: stop - start].numpy()
    return out


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
    plan = plan_for("density", schedule, (d,), seed=seed, k=k)
    return score_array(net, schedule, plan, x, dtype=torch.float64), schedule, plan


# ----------------------------------------------------------------------- ELBO
def test_negative_elbo_of_a_two_step_schedule_is_exact_per_entry(gaussian_eps_predictor):
    """Every term of the bound, per entry, for a schedule short enough to write out.

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
    plan = plan_for("density", schedule, (d,), k=4)
    x = np.vstack([standard_normal(5, d, 7), np.full((1, d), 4.0)])
    scores = score_array(net, schedule, plan, x, dtype=torch.float64)
    terms, counts = negative_elbo_terms(net, schedule, plan, torch.as_tensor(x))
    assert terms.dtype == counts.dtype == torch.float64 and terms.shape == (6, d)
    assert torch.equal(counts, torch.ones(6, d, dtype=torch.float64))

    snr = [a**2 / s**2 if s else math.inf for a, s in zip(alphas, sigmas)]

    def mean_sq_error(t, k):  # per entry, averaged over the grid point's draws
        a, s = alphas[t], sigmas[t]
        v = a**2 + s**2
        draws = noise_draws(plan, k).double().numpy()
        return np.mean([((s**2 * x - a * s * e) / v) ** 2 for e in draws], axis=0)

    v_T = alphas[2] ** 2 + sigmas[2] ** 2
    s_T, a_T = sigmas[2], alphas[2]
    prior = 0.5 * (np.log(v_T / s_T**2) + (s_T**2 + a_T**2 * x**2) / v_T - 1)
    decoder = 0.5 * snr[1] * mean_sq_error(1, 0) + 0.5 * math.log(2 * math.pi / snr[1])
    diffusion = 0.5 * (snr[1] - snr[2]) * mean_sq_error(2, 1)
    expected = prior + decoder + diffusion
    # the plan's noise is float32, and s_t * noise is formed in float32
    np.testing.assert_allclose(terms.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(scores, expected.sum(axis=1) / d, rtol=1e-6)


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


def test_negative_elbo_is_in_nats_per_observed_entry(gaussian_eps_predictor):
    d = 6
    schedule = make_schedule("linear", 100)
    net = gaussian_eps_predictor(schedule, torch.zeros(d), torch.ones(d))
    plan = plan_for("density", schedule, (d,), k=8)
    x = torch.as_tensor(standard_normal(4, d, 8))
    mask = torch.ones(4, d, dtype=torch.bool)
    mask[:, 3:] = False
    terms, counts = negative_elbo_terms(net, schedule, plan, x, mask)
    assert torch.equal(counts, mask.double())
    assert torch.all(terms[:, 3:] == 0) and torch.all(terms[:, :3] != 0)
    per_entry = terms.sum(dim=1) / counts.sum(dim=1)
    # in nats per observed entry: comparable to the complete rows' bound
    full = row_scores(*negative_elbo_terms(net, schedule, plan, x))
    assert torch.all((per_entry - full).abs() < 2.0)


# ----------------------------------------------------------- every paradigm
def scores_of(paradigm, X, mask=None, mask_input=False, batch_size=4096, **plan_kwargs):
    T, d = 40, X.shape[1]
    schedule = make_schedule("linear", T)
    net = random_net(paradigm, d, n_timesteps=T, mask_input=mask_input)
    plan = plan_for(paradigm, schedule, (d,), **plan_kwargs)
    return score_array(net, schedule, plan, X, mask, batch_size=batch_size, mask_input=mask_input)


def errors_of(paradigm, X, mask=None, mask_input=False, k=4):
    T, d = 40, X.shape[1]
    schedule = make_schedule("linear", T)
    net = random_net(paradigm, d, n_timesteps=T, mask_input=mask_input)
    plan = plan_for(paradigm, schedule, (d,), k=k)
    x = torch.as_tensor(X)
    m = None if mask is None else torch.as_tensor(mask)
    with torch.inference_mode():
        return batch_errors(net, schedule, plan, pad_block(x), pad_block(m),
                            mask_input=mask_input)


def data(n=10, d=3, seed=5):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


@pytest.mark.parametrize("paradigm", ANY_SHAPE_PARADIGMS)
def test_scores_are_finite_float64_one_per_row_and_repeatable(paradigm):
    X = data()
    scores = scores_of(paradigm, X)
    assert scores.dtype == np.float64 and scores.shape == (10,)
    assert np.all(np.isfinite(scores))
    assert np.array_equal(scores, scores_of(paradigm, X))
    assert len(np.unique(scores)) == 10  # the rows are told apart


@pytest.mark.parametrize("paradigm", ANY_SHAPE_PARADIGMS)
def test_errors_are_per_entry_for_elementwise_paradigms_and_per_row_otherwise(paradigm):
    sums, counts = errors_of(paradigm, data(n=32, d=4), k=3)
    assert sums.dtype == torch.float64
    if PARADIGMS[paradigm].elementwise:
        assert sums.shape == counts.shape == (32, 4) and counts.dtype == torch.float64
        # every observed entry is scored once in all: weights 1/(K R) per
        # restoration, one hiding per complementary pair, or the ELBO's mask
        torch.testing.assert_close(counts, torch.ones_like(counts), rtol=1e-6, atol=0)
    else:
        assert sums.shape == (32,) and counts is None


def test_reconstruction_counts_add_up_to_one_in_float64():
    sums, counts = errors_of("reconstruction", data(n=32, d=4), k=3)  # weights 1/6
    assert counts.dtype == torch.float64
    # six float64 sixths: one up to float64 rounding (float32 weights left 3e-8)
    np.testing.assert_allclose(counts.numpy(), 1.0, rtol=1e-15)


@pytest.mark.parametrize("paradigm", ANY_SHAPE_PARADIGMS)
def test_a_rows_score_does_not_depend_on_its_batch(paradigm):
    # every batch is padded to a multiple of 32 rows, so each row goes through
    # the same kernels and its score is bit-for-bit the same
    X = data(n=11)
    together = scores_of(paradigm, X)
    one_by_one = scores_of(paradigm, X, batch_size=1)
    in_threes = scores_of(paradigm, X, batch_size=3)
    order = np.random.default_rng(0).permutation(11)
    shuffled = np.empty(11)
    shuffled[order] = scores_of(paradigm, X[order])
    for other in (one_by_one, in_threes, shuffled):
        np.testing.assert_array_equal(other, together)


@pytest.mark.parametrize("mask_input", [False, True])
@pytest.mark.parametrize("paradigm", ANY_SHAPE_PARADIGMS)
def test_masked_entries_do_not_change_the_score(paradigm, mask_input):
    X = data(n=8, d=4)
    mask = np.random.default_rng(1).random((8, 4)) > 0.3
    mask[:, 0] = True
    changed = np.where(mask, X, np.float32(50.0))
    base = scores_of(paradigm, X, mask, mask_input)
    np.testing.assert_array_equal(scores_of(paradigm, changed, mask, mask_input), base)
    observed = X + mask * np.float32(1.0)  # moving what was observed does count
    assert not np.allclose(scores_of(paradigm, observed, mask, mask_input), base)
    if PARADIGMS[paradigm].elementwise:  # and unobserved entries get no error at all
        sums, counts = errors_of(paradigm, changed, mask, mask_input)
        unobserved = torch.as_tensor(~mask)
        assert torch.all(sums[:8][unobserved] == 0) and torch.all(counts[:8][unobserved] == 0)
        assert torch.all(counts[:8][~unobserved] > 0)


@pytest.mark.parametrize("paradigm", ANY_SHAPE_PARADIGMS)
def test_scoring_leaves_the_network_and_the_global_rng_alone(paradigm):
    schedule = make_schedule("linear", 40)
    net = random_net(paradigm, 3)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    state = torch.random.get_rng_state()
    score_array(net, schedule, plan_for(paradigm, schedule, (3,)), data())
    assert torch.equal(state, torch.random.get_rng_state())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_unknown_paradigm_raises():
    schedule = make_schedule("linear", 20)
    bogus = dataclasses.replace(plan_for("score", schedule, (3,)), paradigm="likelihood")
    with pytest.raises(ValueError, match="unknown paradigm"):
        batch_errors(random_net("score", 3, n_timesteps=20), schedule, bogus, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="unknown paradigm 'likelihood'"):
        make_paradigm("likelihood")


@pytest.mark.parametrize("paradigm", ["reconstruction", "density"])
def test_elementwise_errors_do_not_depend_on_the_layout_of_a_sample(paradigm,
                                                                    gaussian_eps_predictor):
    # a series' (C, L) windows and a table's rows go through the same code: with an
    # entry-wise denoiser, the errors of (C, L) samples are those of the (C * L,)
    # rows laid out again (the plan's noise is the same draw reshaped)
    schedule = make_schedule("cosine", 60)
    net = gaussian_eps_predictor(schedule, torch.zeros(1), torch.ones(1))
    x = torch.as_tensor(standard_normal(5, 12, 9))
    flat_plan = plan_for(paradigm, schedule, (12,), k=3)
    shaped_plan = plan_for(paradigm, schedule, (3, 4), k=3)
    flat = batch_errors(net, schedule, flat_plan, x)
    shaped = batch_errors(net, schedule, shaped_plan, x.reshape(5, 3, 4))
    for a, b in zip(flat, shaped):
        assert b.shape == (5, 3, 4)
        torch.testing.assert_close(b.reshape(5, 12), a, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------- paradigm formulas
def test_ddim_path_runs_from_the_start_down_to_zero():
    assert ddim_path(7, 5) == [(7, 6), (6, 4), (4, 3), (3, 1), (1, 0)]
    assert ddim_path(3, 10) == [(3, 2), (2, 1), (1, 0)]  # never more steps than t
    for t_start, n in [(1000, 5), (50, 50), (13, 4)]:
        path = ddim_path(t_start, n)
        assert len(path) == min(n, t_start)
        assert path[0][0] == t_start and path[-1][1] == 0
        assert all(t > s for t, s in path)
        assert all(s == t_next for (_, s), (t_next, _) in zip(path[:-1], path[1:]))


def test_time_score_is_the_expected_bin_centre_over_t():
    logits = torch.tensor([1.0, -0.5, 0.0, 2.0, 0.3], dtype=torch.float64)
    plan = plan_for("time", make_schedule("linear", 50), (3,), n_bins=5)
    scores, counts = batch_errors(lambda x: logits.expand(len(x), -1), None, plan,
                                  torch.zeros(4, 3))
    expected = float(torch.softmax(logits, 0) @ (plan.timesteps / 50))
    assert counts is None
    torch.testing.assert_close(scores, torch.full((4,), expected, dtype=torch.float64))


def test_reconstruction_with_a_zero_noise_prediction_is_the_noise_to_signal_error():
    # eps_hat = 0 makes every DDIM step rescale by a_s / a_t, so x_hat = x_t0 / a_t0 and
    # x_hat - x = (s_t0 / a_t0) e: entry j's error is sum_k w_k (s_k / a_k)^2 e_kj^2
    # (both draws of the antithetic pair give the same square)
    schedule = make_schedule("cosine", 100)
    net = MLPDenoiser(3, 3, (8,), 8, 100).reset_parameters(seeded(0))  # outputs zeros
    plan = plan_for("reconstruction", schedule, (3,), k=5, n_inference_steps=4)
    X = data(n=6)
    sums, counts = batch_errors(net, schedule, plan, torch.as_tensor(X))
    ratio = schedule.sigmas[plan.timesteps] / schedule.alphas[plan.timesteps]
    per_entry = (plan.weights[:, None] * ratio[:, None] ** 2
                 * plan.noise[:, 0].double() ** 2).sum(dim=0)
    torch.testing.assert_close(sums, per_entry.expand(6, 3), rtol=1e-5, atol=0)
    # the fixed norm makes the row score the same for every row
    expected = float((plan.weights * ratio**2).sum())
    np.testing.assert_allclose(score_array(net, schedule, plan, X), expected, rtol=1e-5)


def test_reconstruction_with_the_true_noise_is_perfect():
    schedule = make_schedule("linear", 100)
    X = torch.as_tensor(data(n=5, d=3), dtype=torch.float64)

    def oracle(x_t, t):  # knows the clean rows, so it names the exact noise
        return schedule.predict_eps(x_t, X, int(t))

    plan = plan_for("reconstruction", schedule, (3,), k=5, n_inference_steps=4)
    sums, counts = batch_errors(oracle, schedule, plan, X)
    # zero up to the float32 cast of the network's output
    np.testing.assert_allclose(row_scores(sums, counts).numpy(), 0.0, atol=1e-14)


def test_score_norm_of_a_gaussian_is_read_at_the_forward_mean(gaussian_eps_predictor):
    # for N(0, I) under VP, eps_hat(x_t) = s_t x_t; at the forward mean x_t = a_t x
    # the score norm is |eps_hat| / s_t = a_t |x|, averaged over the grid
    schedule = make_schedule("linear", 200)
    net = gaussian_eps_predictor(schedule, torch.zeros(3), torch.ones(3))
    plan = plan_for("score", schedule, (3,), k=6)
    assert plan.noise is None
    X = torch.as_tensor(data(n=4), dtype=torch.float64)
    scores, _ = batch_errors(net, schedule, plan, X)
    rms = X.pow(2).mean(dim=1).sqrt()
    expected = sum(plan.weights[k] * float(schedule.alphas[t]) * rms
                   for k, t in enumerate(plan.timesteps.tolist()))
    torch.testing.assert_close(scores, expected)


@pytest.mark.parametrize("paradigm", ["reconstruction", "density", "score"])
def test_a_far_point_outscores_the_data_under_the_exact_gaussian_model(
    paradigm, gaussian_eps_predictor
):
    d = 4
    schedule = make_schedule("linear", 200)
    net = gaussian_eps_predictor(schedule, torch.zeros(d), torch.ones(d))
    plan = plan_for(paradigm, schedule, (d,), k=8)
    inliers = score_array(net, schedule, plan, standard_normal(200, d, 6), dtype=torch.float64)
    far = score_array(net, schedule, plan, np.full((1, d), 5.0), dtype=torch.float64)[0]
    assert far > inliers.max()


# ------------------------------------------------------------- imputation
def test_imputation_never_sees_the_values_it_imputes():
    schedule = make_schedule("linear", 50)
    net = conv_net(3, 1)
    hidden = grating_masks(16, 4)[0].reshape(1, 1, -1).float()
    noise = torch.randn(1, 16, generator=seeded(2))
    x0 = torch.randn(2, 1, 16, generator=seeded(3))
    visible = torch.ones_like(x0) * (1 - hidden)
    moved = x0 + 5.0 * hidden  # change every hidden value, keep the visible ones
    with torch.inference_mode():
        a = impute(net, schedule, x0, visible, hidden, noise, 50, 3)
        b = impute(net, schedule, moved, visible, hidden, noise, 50, 3)
        c = impute(net, schedule, x0 + 5.0 * (1 - hidden), visible, hidden, noise, 50, 3)
    assert torch.equal(a, b)
    assert not torch.allclose(a * hidden, c * hidden)  # the visible values do matter


def test_imputation_errors_count_only_hidden_observed_steps():
    schedule = make_schedule("linear", 50)
    net = conv_net(3, 1)
    plan = make_paradigm("imputation", n_inference_steps=2,
                         hidden=grating_masks(16, 4).reshape(2, 1, 16)).plan(
        schedule, (1, 16), seeded(0))
    x0 = torch.randn(2, 1, 16, generator=seeded(3))
    obs = torch.ones_like(x0, dtype=torch.bool)
    obs[1, 0, 3] = False
    with torch.inference_mode():
        total, count = batch_errors(net, schedule, plan, x0 * obs, obs)
    expected = torch.ones_like(count)
    expected[1, 0, 3] = 0  # complementary masks: each observed step is hidden once
    assert torch.equal(count, expected)
    assert torch.all(total[count > 0] > 0) and total[1, 0, 3] == 0


@pytest.mark.parametrize("paradigm", ["reconstruction", "imputation"])
def test_a_window_scores_the_same_whatever_else_is_scored(paradigm):
    schedule = make_schedule("linear", 50)
    C, L = 2, 8
    net = conv_net(3 * C if paradigm == "imputation" else C, C)
    options = ({"hidden": grating_masks(L, 2).reshape(2, 1, L)} if paradigm == "imputation"
               else {"n_grid": 3})
    plan = make_paradigm(paradigm, n_inference_steps=2, **options).plan(schedule, (C, L),
                                                                        seeded(4))
    series = np.random.default_rng(0).normal(size=(C, 2000)).astype(np.float32)
    obs = np.ones_like(series, dtype=bool)

    def errors(starts, block):
        samples = WindowSamples(series, obs, starts, L)
        out = []
        with torch.inference_mode():
            for start, stop, x, mask in samples.blocks(block):
                sums, counts = batch_errors(net, schedule, plan, x, mask)
                out.append((sums[: stop - start], counts[: stop - start]))
        return torch.cat([s for s, _ in out]), torch.cat([c for _, c in out])

    alone_s, alone_c = errors(np.array([1200]), 128)
    tiled = np.arange(0, 2000, L)  # 250 disjoint windows: two blocks, the second padded
    all_s, all_c = errors(tiled, 128)
    assert torch.equal(alone_s[0], all_s[150]) and torch.equal(alone_c[0], all_c[150])
    in_32s, _ = errors(tiled[::-1].copy(), 32)  # other blocks, other order
    assert torch.equal(in_32s.flip(0), all_s)
    # each window scores each step once in all
    torch.testing.assert_close(all_c, torch.ones_like(all_c), rtol=1e-6, atol=0)
