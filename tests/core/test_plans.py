"""Scoring plans: grids, quadrature weights, antithetic noise and imputation masks."""

import math

import pytest
import torch

from skdiffad._core import PARADIGMS, grating_masks, make_paradigm, make_schedule
from skdiffad._core.plans import antithetic_noise

from .helpers import plan_for, seeded


# ------------------------------------------------------------------- seeding
@pytest.mark.parametrize("event_shape", [(6,), (2, 5)])
@pytest.mark.parametrize("paradigm", ["reconstruction", "density"])
def test_plan_is_deterministic_for_a_seeded_generator(paradigm, event_shape):
    schedule = make_schedule("linear", 100)
    first = plan_for(paradigm, schedule, event_shape, seed=3, k=6)
    again = plan_for(paradigm, schedule, event_shape, seed=3, k=6)
    other = plan_for(paradigm, schedule, event_shape, seed=4, k=6)
    assert torch.equal(first.timesteps, again.timesteps)
    assert torch.equal(first.weights.nan_to_num(-1), again.weights.nan_to_num(-1))
    assert torch.equal(first.noise, again.noise)
    assert first.noise.shape == (len(first.timesteps), 2) + event_shape
    assert torch.equal(first.timesteps, other.timesteps)
    assert not torch.equal(first.noise, other.noise)


def test_making_a_plan_leaves_the_global_rng_alone():
    state = torch.random.get_rng_state()
    for paradigm in PARADIGMS:
        plan_for(paradigm, make_schedule("cosine", 50), (3,))
        plan_for(paradigm, make_schedule("cosine", 50), (2, 8))
    assert torch.equal(state, torch.random.get_rng_state())


# ------------------------------------------------------------------- noise
@pytest.mark.parametrize("event_shape", [(5,), (3, 10), (2, 4, 4)])
def test_antithetic_noise_is_a_fixed_norm_pair_for_every_event_shape(event_shape):
    noise = antithetic_noise(7, event_shape, seeded(0))
    assert noise.shape == (7, 2) + event_shape
    assert torch.equal(noise[:, 0], -noise[:, 1])
    n = math.prod(event_shape)
    sq_norms = noise.flatten(2).double().pow(2).sum(dim=2)
    torch.testing.assert_close(sq_norms, torch.full((7, 2), float(n), dtype=torch.float64),
                               rtol=1e-6, atol=0)
    # the directions are random: different grid points get different noise
    assert not torch.allclose(noise[0, 0], noise[1, 0])


def test_antithetic_noise_is_the_same_draw_whatever_the_layout():
    # the norm is fixed over the whole sample, so (C, L) noise is (C*L,) noise reshaped
    flat = antithetic_noise(3, (12,), seeded(5))
    shaped = antithetic_noise(3, (3, 4), seeded(5))
    assert torch.equal(shaped.reshape(3, 2, 12), flat)


def test_reconstruction_plan_is_an_antithetic_grid_over_its_range():
    schedule = make_schedule("linear", 100)
    plan = plan_for("reconstruction", schedule, (3, 10), k=3, t0_range=(0.05, 0.3))
    assert plan.timesteps.tolist() == [5, 18, 30]
    assert plan.noise.shape == (3, 2, 3, 10)
    assert torch.equal(plan.noise[:, 0], -plan.noise[:, 1])
    assert plan.hidden is None and plan.n_inference_steps == 3
    torch.testing.assert_close(plan.noise[0, 0].double().pow(2).sum(),
                               torch.tensor(30.0, dtype=torch.float64))


# -------------------------------------------------------------------- grids
@pytest.mark.parametrize("name", ["linear", "cosine", "ve"])
@pytest.mark.parametrize("k", [1, 8, 30])
def test_density_strata_partition_the_steps_and_keep_their_weight(name, k):
    T = 200
    schedule = make_schedule(name, T)
    plan = plan_for("density", schedule, (2,), k=k)
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
        plan_for("density", make_schedule("linear", 1), (3,))


@pytest.mark.parametrize(("paradigm", "top"), [("reconstruction", 0.25), ("score", 0.5)])
def test_grids_are_sorted_steps_inside_their_range_with_equal_weights(paradigm, top):
    T = 400
    plan = plan_for(paradigm, make_schedule("linear", T), (3,), k=8)
    steps = plan.timesteps
    assert len(steps) == 8
    assert torch.all(torch.diff(steps) > 0) and int(steps[0]) >= 1 and int(steps[-1]) <= top * T
    torch.testing.assert_close(plan.weights, torch.full((8,), 1 / 8, dtype=torch.float64))
    if paradigm == "score":
        assert plan.noise is None  # read at the forward mean


def test_time_plan_weights_are_the_bin_centres_over_t():
    plan = plan_for("time", make_schedule("linear", 100), (3,), n_bins=4)
    # four bins over steps 1..100: centres 13, 38, 63, 88
    centres = torch.tensor([13.0, 38.0, 63.0, 88.0], dtype=torch.float64)
    torch.testing.assert_close(plan.timesteps, centres)
    torch.testing.assert_close(plan.weights, plan.timesteps / 100)
    assert plan.noise is None
    # a classifier trained on steps 1..40 only: bins over 1..40, scores as a fraction of 40
    short = plan_for("time", make_schedule("linear", 100), (3,), n_bins=4, t_max=40)
    centres = torch.tensor([5.5, 15.5, 25.5, 35.5], dtype=torch.float64)
    torch.testing.assert_close(short.timesteps, centres)
    torch.testing.assert_close(short.weights, short.timesteps / 40)


def test_unknown_paradigm_raises():
    with pytest.raises(ValueError, match="paradigm must be one of"):
        plan_for("likelihood", make_schedule("linear", 20), (3,))


# --------------------------------------------------------------- imputation
@pytest.mark.parametrize("length, n_stripes", [(16, 8), (10, 3), (7, 2)])
def test_grating_masks_are_complementary_stripes(length, n_stripes):
    masks = grating_masks(length, n_stripes)
    assert masks.shape == (2, length) and masks.dtype == torch.bool
    assert torch.equal(masks[0], ~masks[1])
    # the number of runs of equal values is the number of stripes
    runs = 1 + int((masks[0][1:] != masks[0][:-1]).sum())
    assert runs == n_stripes


def test_imputation_plan_hides_every_step_once_per_pair_from_step_t():
    schedule = make_schedule("linear", 100)
    hidden = torch.cat([grating_masks(12, 4), grating_masks(12, 3)]).reshape(4, 1, 12)
    plan = plan_for("imputation", schedule, (2, 12), hidden=hidden)
    assert plan.hidden.shape == (4, 1, 12) and plan.hidden.dtype == torch.bool
    pairs = plan.hidden.reshape(2, 2, 12).sum(dim=1)
    assert torch.equal(pairs, torch.ones(2, 12, dtype=pairs.dtype))
    assert plan.timesteps.tolist() == [100]
    torch.testing.assert_close(plan.weights, torch.ones(1, dtype=torch.float64))
    assert plan.noise.shape == (1, 4, 2, 12)  # one pure-noise start per mask
    again = plan_for("imputation", schedule, (2, 12), hidden=hidden)
    assert torch.equal(plan.noise, again.noise)


def test_imputation_plan_needs_its_masks():
    with pytest.raises(ValueError, match="needs its masks"):
        make_paradigm("imputation").plan(make_schedule("linear", 20), (3,), seeded(0))


def test_plan_to_moves_every_tensor_and_keeps_the_settings():
    hidden = grating_masks(6, 2)
    plan = plan_for("imputation", make_schedule("linear", 20), (6,), hidden=hidden,
                    n_inference_steps=4)
    moved = plan.to("cpu")
    assert moved is not plan and moved.paradigm == "imputation" and moved.n_inference_steps == 4
    for name in ("timesteps", "weights", "noise", "hidden"):
        assert torch.equal(getattr(moved, name), getattr(plan, name))
    score = plan_for("score", make_schedule("linear", 20), (6,)).to("cpu")
    assert score.noise is None and score.hidden is None
