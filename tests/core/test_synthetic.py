"""Synthetic anomalies: where they go, how many, what they are made of."""

import pytest
import torch

from skdiffad._core.synthetic import synthetic_anomalies

from .helpers import seeded

ODD_SIZES = [(1, 1), (5, 7), (28, 28), (33, 65)]


def batch(n=64, c=2, h=20, w=24, seed=0, loc=0.0, scale=1.0):
    return loc + scale * torch.randn(n, c, h, w, generator=seeded(seed))


def planted(mask):
    """Which samples got a defect."""
    return mask.flatten(1).amax(1) > 0


# ------------------------------------------------------------------- seeding
def test_anomalies_are_deterministic_and_leave_the_global_rng_alone():
    x = batch()
    state = torch.random.get_rng_state()
    first = synthetic_anomalies(x, seeded(1))
    assert torch.equal(state, torch.random.get_rng_state())
    again = synthetic_anomalies(x, seeded(1))
    other = synthetic_anomalies(x, seeded(2))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[1], other[1])


# ------------------------------------------------------------------- where and how many
@pytest.mark.parametrize("size", ODD_SIZES)
def test_pixels_change_only_inside_the_mask(size):
    x = batch(n=40, c=3, h=size[0], w=size[1])
    x_aug, mask = synthetic_anomalies(x, seeded(3), probability=0.7)
    assert x_aug.shape == x.shape and x_aug.dtype == x.dtype
    assert mask.shape == (40, 1) + size and mask.dtype == x.dtype
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert torch.isfinite(x_aug).all()
    changed = (x_aug != x).any(dim=1, keepdim=True)
    assert not (changed & (mask == 0)).any()
    # a defect shows: most masked pixels really changed
    assert float(changed[mask == 1].float().mean()) > 0.9
    untouched = ~planted(mask)
    assert torch.equal(x_aug[untouched], x[untouched])


@pytest.mark.parametrize("probability", [0.0, 0.3, 0.5, 1.0])
def test_about_probability_of_the_samples_get_a_defect(probability):
    x = batch(n=400, h=12, w=16)
    x_aug, mask = synthetic_anomalies(x, seeded(4), probability=probability)
    share = float(planted(mask).float().mean())
    assert abs(share - probability) < 0.07
    if probability == 0.0:
        assert torch.equal(x_aug, x) and not mask.any()


def test_defects_cover_a_share_of_the_image_in_range():
    x = batch(n=200, h=32, w=40)
    _, mask = synthetic_anomalies(x, seeded(5), probability=1.0)
    share = mask.flatten(1).mean(1)
    assert float(share.min()) >= 0.02 - 1 / 1280 and float(share.max()) <= 0.3 + 1 / 1280


# ------------------------------------------------------------------- what fills them
def test_half_the_defects_are_textures_blended_with_the_opacity_drawn():
    x = batch(n=400, h=16, w=16)
    source = torch.full((3, 2, 16, 16), 4.0)
    x_aug, mask = synthetic_anomalies(x, seeded(6), source=source, probability=1.0,
                                      opacity=(0.25, 0.25))
    inside = mask.expand_as(x) == 1
    expected = 0.75 * x + 0.25 * 4.0
    textured = torch.tensor([torch.allclose(x_aug[i][inside[i]], expected[i][inside[i]])
                            for i in range(len(x))])
    assert 0.4 < float(textured.float().mean()) < 0.6


def test_textures_come_from_another_image_of_the_batch():
    n = 60
    x = torch.arange(n, dtype=torch.float32).reshape(n, 1, 1, 1).expand(n, 1, 12, 10).clone()
    x_aug, mask = synthetic_anomalies(x, seeded(7), probability=1.0, opacity=(1.0, 1.0))
    n_textured = 0
    for i in range(n):
        values = x_aug[i, 0][mask[i, 0] == 1]
        if torch.all(values == values[0]) and float(values[0]).is_integer():
            n_textured += 1
            assert float(values[0]) != i  # another sample's image, not its own
    assert n_textured > n // 4


def test_noise_fills_take_the_batch_level_and_spread():
    x = batch(n=300, c=1, h=24, w=24, loc=10.0, scale=3.0)
    x_aug, mask = synthetic_anomalies(x, seeded(8), probability=1.0, opacity=(1.0, 1.0))
    inside = x_aug[mask == 1]
    assert abs(float(inside.mean()) - 10.0) < 0.5
    assert abs(float(inside.std()) - 3.0) < 0.45


def test_a_constant_batch_still_gets_visible_defects():
    x = torch.zeros(50, 1, 16, 16)
    x_aug, mask = synthetic_anomalies(x, seeded(9), probability=1.0, opacity=(1.0, 1.0))
    assert torch.isfinite(x_aug).all()
    noisy = torch.tensor([bool((x_aug[i][mask[i] == 1] != 0).any()) for i in range(50)])
    assert float(noisy.float().mean()) > 0.3  # the noise fills: spread falls back to 1


# ------------------------------------------------------------------- bad input
def test_bad_input_is_refused_with_the_parameter_named():
    x = batch(n=4, h=8, w=8)
    with pytest.raises(ValueError, match="probability"):
        synthetic_anomalies(x, seeded(0), probability=1.5)
    with pytest.raises(ValueError, match="opacity"):
        synthetic_anomalies(x, seeded(0), opacity=(0.8, 0.2))
    with pytest.raises(ValueError, match="source"):
        synthetic_anomalies(x, seeded(0), source=torch.zeros(3, 2, 8, 9))
    with pytest.raises(ValueError, match=r"\(n, C, H, W\)"):
        synthetic_anomalies(x[0], seeded(0))
    with pytest.raises(TypeError, match="floating"):
        synthetic_anomalies(x.long(), seeded(0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("generator_device", ["cpu", "cuda"])
def test_anomalies_stay_on_the_batch_device(generator_device):
    x = batch(n=32).cuda()
    gen = torch.Generator(device=generator_device).manual_seed(0)
    x_aug, mask = synthetic_anomalies(x, gen, probability=0.8)
    assert x_aug.device.type == "cuda" and mask.device.type == "cuda"
    changed = (x_aug != x).any(dim=1, keepdim=True)
    assert not (changed & (mask == 0)).any()
    if generator_device == "cpu":
        _, cpu_mask = synthetic_anomalies(x.cpu(), seeded(0), probability=0.8)
        assert torch.equal(cpu_mask, mask.cpu())


# ------------------------------------------------------- generated defects
def test_harmonised_defects_keep_the_outside_and_redraw_the_region():
    from skdiffad._core.schedules import make_schedule
    from skdiffad._core.synthetic import DefectPool, harmonised_anomalies

    schedule = make_schedule("linear", 100)

    def shrink(x_t, t):  # the noise predictor of data concentrated at 0
        a, s = schedule.coefficients(int(t), x_t)
        return x_t / s

    x = torch.zeros(6, 1, 16, 16)
    generator = torch.Generator().manual_seed(0)
    out, mask = harmonised_anomalies(shrink, schedule, x, generator, t_start=30,
                                     source=torch.full((2, 1, 16, 16), 3.0), opacity=(1.0, 1.0))
    region = mask.bool()
    assert region.flatten(1).any(1).all()
    assert torch.equal(out[~region.expand_as(out)], x[~region.expand_as(x)])
    # the pasted value 3 is pulled to this denoiser's data (0) inside the region
    assert out[region.expand_as(out)].abs().max() < 3.0
    pool = DefectPool(out, mask, probability=1.0)
    batch, target = pool(torch.ones(4, 1, 16, 16), torch.Generator().manual_seed(1))
    assert target.flatten(1).any(1).all() and (batch != 1).any()
    none, empty = DefectPool(out, mask, probability=0.0)(torch.ones(4, 1, 16, 16),
                                                         torch.Generator().manual_seed(1))
    assert torch.equal(none, torch.ones(4, 1, 16, 16)) and not empty.any()
