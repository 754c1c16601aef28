"""Simplex noise, noise dispatch and noise masks; their use in training and plans."""

import math

import pytest
import torch

from skdiffad._core import make_schedule
from skdiffad._core.noise import (
    NOISE_KINDS,
    _standardise,
    noise_like,
    noise_mask,
    simplex_noise,
)
from skdiffad._core.plans import antithetic_noise
from skdiffad._core.training import denoising_loss

from .helpers import plan_for, seeded

ODD_SIZES = [(1, 1), (5, 7), (28, 28), (33, 65)]


def lag_one_correlation(noise):
    """Mean correlation of horizontally and of vertically adjacent pixels."""
    var = noise.pow(2).mean()
    across = (noise[..., :, 1:] * noise[..., :, :-1]).mean() / var
    down = (noise[..., 1:, :] * noise[..., :-1, :]).mean() / var
    return float(across), float(down)


def low_frequency_share(noise, cut=8):
    """Share of the spectral power at spatial frequencies below ``size / cut``."""
    power = torch.fft.fft2(noise.double()).abs().pow(2)
    h, w = noise.shape[-2:]
    fy = torch.fft.fftfreq(h).abs()[:, None]
    fx = torch.fft.fftfreq(w).abs()[None, :]
    low = (fy < 1 / cut) & (fx < 1 / cut)
    return float((power * low).sum() / power.sum())


# ------------------------------------------------------------------- seeding
def test_simplex_noise_is_deterministic_and_leaves_the_global_rng_alone():
    state = torch.random.get_rng_state()
    first = simplex_noise((2, 3, 17, 23), seeded(0))
    again = simplex_noise((2, 3, 17, 23), seeded(0))
    other = simplex_noise((2, 3, 17, 23), seeded(1))
    assert torch.equal(state, torch.random.get_rng_state())
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


def test_every_sample_and_channel_is_its_own_field():
    noise = simplex_noise((3, 2, 32, 32), seeded(0)).flatten(0, 1)
    for a in range(len(noise)):
        for b in range(a + 1, len(noise)):
            assert not torch.allclose(noise[a], noise[b], atol=0.1)


# ------------------------------------------------------------------- moments and shape
@pytest.mark.parametrize("size", ODD_SIZES[1:] + [(1, 2), (2, 1), (64, 3)])
def test_each_field_is_standardised(size):
    noise = simplex_noise((3, 2) + size, seeded(2))
    assert noise.shape == (3, 2) + size
    assert noise.dtype == torch.float32
    assert torch.isfinite(noise).all()
    fields = noise.flatten(2).double()
    torch.testing.assert_close(fields.mean(2), torch.zeros(3, 2, dtype=torch.float64),
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(fields.var(2, unbiased=False),
                               torch.ones(3, 2, dtype=torch.float64), atol=1e-4, rtol=0)


def test_single_pixel_fields_fall_back_to_standard_normal_entries():
    noise = simplex_noise((4000, 1, 1, 1), seeded(3))
    assert torch.isfinite(noise).all()
    assert abs(float(noise.mean())) < 0.1
    assert abs(float(noise.var()) - 1) < 0.1
    assert noise.unique().numel() == 4000


def test_a_constant_field_is_replaced_by_gaussian_entries():
    fields = torch.stack([torch.full((6, 5), 0.3), torch.randn(6, 5, generator=seeded(0))])
    out = _standardise(fields, seeded(1))
    assert torch.isfinite(out).all()
    assert out[0].std() > 0.3  # not zeros: random entries
    torch.testing.assert_close(out[1].mean(), torch.tensor(0.0), atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1].var(unbiased=False), torch.tensor(1.0), atol=1e-4, rtol=0)


# ------------------------------------------------------------------- spectrum
def test_simplex_noise_is_smooth_where_gaussian_noise_is_not():
    simplex = simplex_noise((4, 1, 64, 64), seeded(0))
    gaussian = noise_like("gaussian", (4, 1, 64, 64), seeded(0))
    assert min(lag_one_correlation(simplex)) > 0.8
    assert max(abs(c) for c in lag_one_correlation(gaussian)) < 0.05


def test_simplex_noise_holds_its_power_at_low_frequencies():
    simplex = simplex_noise((4, 1, 64, 64), seeded(0))
    gaussian = noise_like("gaussian", (4, 1, 64, 64), seeded(0))
    # white noise spreads its power evenly: the low box holds (15/64)^2 of it
    assert low_frequency_share(gaussian) < 0.1
    assert low_frequency_share(simplex) > 0.5


def test_lower_frequency_and_persistence_give_smoother_noise():
    coarse = simplex_noise((4, 1, 48, 48), seeded(0), octaves=1, frequency=1 / 32)
    fine = simplex_noise((4, 1, 48, 48), seeded(0), octaves=1, frequency=1 / 3)
    assert min(lag_one_correlation(coarse)) > 0.95
    assert max(lag_one_correlation(fine)) < 0.5
    smooth = simplex_noise((4, 1, 48, 48), seeded(0), persistence=0.3)
    rough = simplex_noise((4, 1, 48, 48), seeded(0), persistence=1.0)
    assert min(lag_one_correlation(smooth)) > max(lag_one_correlation(rough))


# ------------------------------------------------------------------- dispatch
def test_noise_like_draws_gaussian_noise_as_randn_does():
    noise = noise_like("gaussian", (2, 3, 4), seeded(5), dtype=torch.float64)
    assert torch.equal(noise, torch.randn((2, 3, 4), generator=seeded(5), dtype=torch.float64))
    state = torch.random.get_rng_state()
    simplex = noise_like("simplex", (2, 1, 9, 4), seeded(5), device="cpu", dtype=torch.float64,
                         octaves=3)
    assert torch.equal(state, torch.random.get_rng_state())
    assert simplex.dtype == torch.float64 and simplex.device.type == "cpu"
    assert torch.equal(simplex.float(), simplex_noise((2, 1, 9, 4), seeded(5), octaves=3))


def test_noise_like_rejects_what_it_cannot_draw():
    with pytest.raises(ValueError, match="gaussian.*simplex"):
        noise_like("perlin", (2, 1, 4, 4), seeded(0))
    with pytest.raises(ValueError, match="needs images"):
        noise_like("simplex", (8, 5), seeded(0))
    with pytest.raises(TypeError, match="octaves"):
        noise_like("gaussian", (8, 5), seeded(0), octaves=2)
    with pytest.raises(ValueError, match="octaves"):
        simplex_noise((1, 1, 4, 4), seeded(0), octaves=0)
    assert NOISE_KINDS == ("gaussian", "simplex")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_simplex_noise_on_a_cuda_generator_matches_its_moments():
    gen = torch.Generator(device="cuda").manual_seed(0)
    noise = simplex_noise((4, 3, 64, 48), gen)
    assert noise.device.type == "cuda"
    fields = noise.flatten(2).double()
    assert float(fields.mean(2).abs().max()) < 1e-5
    assert float((fields.var(2, unbiased=False) - 1).abs().max()) < 1e-4
    assert min(lag_one_correlation(noise)) > 0.8
    moved = simplex_noise((2, 1, 8, 8), seeded(0), device="cuda")
    assert torch.equal(moved.cpu(), simplex_noise((2, 1, 8, 8), seeded(0)))


# ------------------------------------------------------------------- masks
@pytest.mark.parametrize("size", ODD_SIZES + [(2, 2), (64, 64)])
def test_masks_are_never_empty_and_cover_a_share_in_range(size):
    masks = noise_mask((300, 3) + size, seeded(0))
    assert masks.shape == (300, 1) + size
    assert masks.dtype == torch.bool
    share = masks.flatten(1).double().mean(1)
    assert (share > 0).all()
    n_pixels = math.prod(size)
    if n_pixels >= 4:
        step = 0.5 / n_pixels  # the covered count is rounded to whole pixels
        assert float(share.min()) >= min(0.02 - step, 1 / n_pixels)
        assert float(share.max()) <= 0.3 + step
    if n_pixels >= 100:
        assert float(share.std()) > 0.05  # the share is drawn anew per mask


def test_masks_are_deterministic_and_follow_the_coverage_asked():
    state = torch.random.get_rng_state()
    first = noise_mask((5, 40, 30), seeded(4), coverage=(0.5, 0.5))
    assert torch.equal(state, torch.random.get_rng_state())
    assert torch.equal(first, noise_mask((5, 40, 30), seeded(4), coverage=(0.5, 0.5)))
    assert not torch.equal(first, noise_mask((5, 40, 30), seeded(5), coverage=(0.5, 0.5)))
    assert (first.flatten(1).sum(1) == 600).all()
    with pytest.raises(ValueError, match="coverage"):
        noise_mask((5, 40, 30), seeded(4), coverage=(0.5, 0.2))
    with pytest.raises(ValueError, match="needs images"):
        noise_mask((5, 40), seeded(4))


def test_masks_are_blobs_not_scattered_pixels():
    masks = noise_mask((50, 1, 64, 64), seeded(1)).float()
    agree = torch.cat([(masks[..., 1:] == masks[..., :-1]).flatten(1),
                       (masks[..., 1:, :] == masks[..., :-1, :]).flatten(1)], dim=1)
    share = masks.flatten(1).mean(1, keepdim=True)
    # scattered pixels of the same share would agree with a neighbour this often
    scattered = share**2 + (1 - share) ** 2
    assert (agree.float().mean(1) > scattered.squeeze(1) + 0.5 * (1 - scattered.squeeze(1))).all()
    assert float(agree.float().mean()) > 0.95


# ------------------------------------------------------------------- plumbing
class ZeroNet(torch.nn.Module):
    def forward(self, x, t):
        return torch.zeros_like(x)


def test_denoising_loss_draws_gaussian_noise_as_before_by_default():
    schedule = make_schedule("linear", 20)
    x0 = torch.randn(3, 2, 5, 6, generator=seeded(0))
    loss = denoising_loss(ZeroNet(), schedule, x0, None, seeded(1))
    explicit = denoising_loss(ZeroNet(), schedule, x0, None, seeded(1), noise_kind="gaussian")
    gen = seeded(1)
    torch.randint(1, 21, (3,), generator=gen)
    noise = torch.randn(x0.shape, generator=gen)
    assert torch.equal(loss, noise.pow(2).mean(dim=(1, 2, 3)))
    assert torch.equal(loss, explicit)


def test_denoising_loss_can_train_on_simplex_noise():
    schedule = make_schedule("linear", 20)
    x0 = torch.randn(3, 2, 5, 6, generator=seeded(0))
    loss = denoising_loss(ZeroNet(), schedule, x0, None, seeded(1), noise_kind="simplex")
    # a zero prediction misses a unit-variance field by exactly its mean square, 1
    torch.testing.assert_close(loss, torch.ones(3), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="gaussian.*simplex"):
        denoising_loss(ZeroNet(), schedule, x0, None, seeded(1), noise_kind="pink")
    with pytest.raises(ValueError, match="needs images"):
        denoising_loss(ZeroNet(), schedule, torch.zeros(4, 3), None, seeded(1),
                       noise_kind="simplex")


def test_antithetic_simplex_noise_keeps_the_pair_and_the_norm():
    noise = antithetic_noise(4, (2, 33, 31), seeded(0), kind="simplex")
    assert noise.shape == (4, 2, 2, 33, 31)
    assert torch.equal(noise[:, 0], -noise[:, 1])
    sq_norms = noise.flatten(2).double().pow(2).sum(2)
    torch.testing.assert_close(sq_norms, torch.full((4, 2), 2046.0, dtype=torch.float64),
                               rtol=1e-6, atol=0)
    assert min(lag_one_correlation(noise[:, 0])) > 0.8
    assert torch.equal(antithetic_noise(4, (2, 9, 11), seeded(0)),
                       antithetic_noise(4, (2, 9, 11), seeded(0), kind="gaussian"))


def test_plans_use_simplex_noise_for_reconstruction_only():
    schedule = make_schedule("linear", 100)
    image = (1, 32, 24)
    default = plan_for("reconstruction", schedule, image, seed=2)
    gaussian = plan_for("reconstruction", schedule, image, seed=2, noise="gaussian")
    simplex = plan_for("reconstruction", schedule, image, seed=2, noise="simplex")
    assert torch.equal(default.noise, gaussian.noise)
    assert simplex.noise.shape == default.noise.shape
    # small images: the coarse octaves are near-constant over them, so less smooth
    assert min(lag_one_correlation(simplex.noise[:, 0])) > 0.6
    assert max(abs(c) for c in lag_one_correlation(default.noise[:, 0])) < 0.2
    # the density's maths assumes Gaussian noise: it takes no noise option, and its
    # plan is the Gaussian antithetic pair of every stratum
    with pytest.raises(ValueError, match="'density' takes no option 'noise'"):
        plan_for("density", schedule, image, seed=2, noise="simplex")
    density = plan_for("density", schedule, image, seed=2)
    assert torch.equal(density.noise, antithetic_noise(len(density.timesteps), image, seeded(2)))
    with pytest.raises(ValueError, match="simplex noise needs images"):
        plan_for("reconstruction", schedule, (3, 40), noise="simplex")
    with pytest.raises(ValueError, match="noise must be one of"):
        plan_for("reconstruction", schedule, image, noise="pink")
