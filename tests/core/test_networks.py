"""The timestep embedding, the MLP and 1-D conv denoisers: shapes, values, seeding,
rebuilding, and the activation estimate scoring blocks are sized from."""

import math
import pickle

import pytest
import torch

from skdiffad._core import (
    ConvDenoiser1d,
    MLPDenoiser,
    build_network,
    make_schedule,
    timestep_embedding,
)
from skdiffad._core.networks import ConvDenoiser2d, activation_bytes


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def small_net(seed=0, **kwargs):
    params = {"in_channels": 3, "out_channels": 3, "hidden_dims": (8, 12), "time_embed_dim": 6,
              "n_timesteps": 50}
    params.update(kwargs)
    return MLPDenoiser(**params).reset_parameters(seeded(seed))


def randomise_output_layer(net, seed):
    # reset_parameters zeroes the output layer; tests of what flows through the
    # network need it to say something
    with torch.no_grad():
        net.output.weight.copy_(torch.randn(net.output.weight.shape, generator=seeded(seed)))
        net.output.bias.copy_(torch.randn(net.output.bias.shape, generator=seeded(seed + 1)))
    return net


# ------------------------------------------------------------------ embedding
def test_timestep_embedding_shape_and_values_at_zero():
    t = torch.tensor([0, 3, 999])
    emb = timestep_embedding(t, 16)
    assert emb.shape == (3, 16) and emb.dtype == torch.float32
    # cos(0) = 1 fills the first half, sin(0) = 0 the second
    assert torch.equal(emb[0, :8], torch.ones(8))
    assert torch.equal(emb[0, 8:], torch.zeros(8))
    assert torch.all(emb.abs() <= 1)


def test_timestep_embedding_values_follow_the_geometric_frequencies():
    # dim 4: half = 2 frequencies 10000^(-0/2) = 1 and 10000^(-1/2) = 0.01
    t = torch.tensor([1.0, 2.5])
    emb = timestep_embedding(t, 4)
    expected = torch.tensor(
        [[math.cos(tt), math.cos(0.01 * tt), math.sin(tt), math.sin(0.01 * tt)]
         for tt in (1.0, 2.5)]
    )
    torch.testing.assert_close(emb, expected)


def test_timestep_embedding_with_odd_dim_pads_a_zero_column():
    t = torch.arange(5)
    emb = timestep_embedding(t, 7)
    assert emb.shape == (5, 7)
    assert torch.equal(emb[:, -1], torch.zeros(5))
    torch.testing.assert_close(emb[:, :6], timestep_embedding(t, 6))


def test_timestep_embedding_separates_distinct_steps():
    emb = timestep_embedding(torch.arange(0, 1000, 50), 32)
    distances = torch.cdist(emb, emb)
    off_diagonal = distances[~torch.eye(len(emb), dtype=torch.bool)]
    assert float(off_diagonal.min()) > 0.1


# -------------------------------------------------------------------- network
def test_conditional_denoiser_output_shape_for_scalar_and_per_row_steps():
    net = small_net()
    x = torch.randn(5, 3, generator=seeded(1))
    assert net(x, torch.tensor(7)).shape == (5, 3)
    assert net(x, 7).shape == (5, 3)
    assert net(x, torch.arange(1, 6)).shape == (5, 3)


def test_unconditional_network_has_no_time_input_and_its_own_width():
    net = small_net(time_embed_dim=0, out_channels=7)
    assert net.time_mlp is None
    out = net(torch.randn(4, 3, generator=seeded(2)))
    assert out.shape == (4, 7)


def test_conditional_network_without_a_step_raises():
    with pytest.raises(ValueError, match="pass t"):
        small_net()(torch.zeros(2, 3))


def test_untrained_network_outputs_exactly_zero():
    net = small_net(seed=3)
    x = torch.randn(6, 3, generator=seeded(4)) * 10
    assert torch.equal(net(x, torch.arange(1, 7)), torch.zeros(6, 3))
    assert torch.equal(net.output.weight, torch.zeros_like(net.output.weight))


def test_the_step_conditions_the_output():
    net = randomise_output_layer(small_net(seed=5), 6)
    x = torch.randn(4, 3, generator=seeded(7))
    assert not torch.allclose(net(x, 1), net(x, 40))


def test_steps_are_embedded_relative_to_n_timesteps():
    # 1000 * t / T: step 10 of 100 and step 100 of 1000 are the same noise level
    coarse = randomise_output_layer(small_net(seed=8, n_timesteps=100), 9)
    fine = small_net(seed=8, n_timesteps=1000)
    fine.load_state_dict(coarse.state_dict())
    x = torch.randn(4, 3, generator=seeded(10))
    torch.testing.assert_close(coarse(x, 10), fine(x, 100))


def test_reset_parameters_is_reproducible_and_seed_dependent():
    a, b, c = small_net(seed=11), small_net(seed=11), small_net(seed=12)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.input.weight, c.input.weight)


def test_reset_parameters_restores_a_used_network():
    net = small_net(seed=13)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)  # stands in for training: every weight moves, LayerNorms too
    net.reset_parameters(seeded(13))
    fresh = small_net(seed=13)
    for (name, p), q in zip(net.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(p, q), name


def test_linear_layers_start_in_the_default_uniform_range():
    net = small_net(seed=14, in_channels=40)
    bound = 1 / math.sqrt(40)
    w = net.input.weight.detach()
    assert float(w.abs().max()) <= bound
    assert float(w.abs().max()) > 0.9 * bound  # uniform over the range, not a tiny blob


def test_building_and_seeding_leave_the_global_rng_alone():
    state = torch.random.get_rng_state()
    net = build_network({"name": "mlp", "in_channels": 4, "out_channels": 4, "hidden_dims": (8,),
                         "time_embed_dim": 8, "n_timesteps": 20})
    net.reset_parameters(seeded(15))
    assert torch.equal(state, torch.random.get_rng_state())


def test_build_network_from_config_rebuilds_an_equivalent_network():
    net = randomise_output_layer(small_net(seed=16), 17)
    clone = build_network(net.config)
    assert type(clone) is MLPDenoiser and clone.config == net.config
    clone.load_state_dict(net.state_dict())
    x = torch.randn(5, 3, generator=seeded(18))
    t = torch.tensor([1, 10, 20, 30, 50])
    assert torch.equal(clone(x, t), net(x, t))


def test_config_is_plain_data_and_build_does_not_mutate_it():
    net = small_net(seed=19)
    config = pickle.loads(pickle.dumps(net.config))
    before = dict(config)
    build_network(config)
    assert config == before
    assert all(isinstance(v, (str, int, tuple)) for v in config.values())


# ------------------------------------------------------------ Gaussian skip
def test_gaussian_skip_untrained_is_the_exact_gaussian_noise_predictor():
    schedule = make_schedule("linear", 100)
    net = MLPDenoiser(3, 3, (8,), 16, n_timesteps=100, gaussian_skip=True)
    net.reset_parameters(torch.Generator().manual_seed(0)).set_gaussian_skip(schedule)
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    for t in (1, 37, 100):
        a, s = schedule.alphas[t], schedule.sigmas[t]
        expected = (s / (a**2 + s**2)).float() * x
        torch.testing.assert_close(net(x, torch.tensor(t)), expected)


def test_gaussian_skip_extrapolates_linearly_far_from_the_data():
    # the MLP part is bounded (final LayerNorm); with the skip the output keeps
    # growing with the input, as the true noise predictor does
    schedule = make_schedule("linear", 100)
    gen = torch.Generator().manual_seed(0)
    plain = MLPDenoiser(2, 2, (8,), 16, n_timesteps=100).reset_parameters(gen)
    for p in plain.output.parameters():
        torch.nn.init.normal_(p, generator=gen)
    skip = MLPDenoiser(2, 2, (8,), 16, n_timesteps=100, gaussian_skip=True)
    skip.load_state_dict({**plain.state_dict(), "skip_coef": torch.zeros(101)})
    skip.set_gaussian_skip(schedule)
    t = torch.tensor(50)
    far = torch.tensor([[1e3, -1e3]])
    bound = plain(far * 10, t).norm()
    assert plain(far * 1000, t).norm() < 2 * bound  # saturates
    assert skip(far * 1000, t).norm() > 50 * skip(far * 10, t).norm()


def test_gaussian_skip_is_saved_with_the_weights_and_rebuilt():
    schedule = make_schedule("cosine", 40)
    net = MLPDenoiser(4, 4, (8,), 16, n_timesteps=40, gaussian_skip=True)
    net.reset_parameters(torch.Generator().manual_seed(0)).set_gaussian_skip(schedule)
    rebuilt = build_network(net.config)
    rebuilt.load_state_dict(net.state_dict())
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(rebuilt(x, torch.tensor(7)), net(x, torch.tensor(7)))


def test_gaussian_skip_needs_time_conditioning():
    with pytest.raises(ValueError, match="timestep-conditioned"):
        MLPDenoiser(3, 3, (8,), 0, gaussian_skip=True)


def test_config_names_the_channels():
    net = small_net(seed=20, in_channels=6, out_channels=3)
    assert net.config["in_channels"] == 6 and net.config["out_channels"] == 3
    assert "in_dim" not in net.config and "out_dim" not in net.config
    assert net(torch.zeros(2, 6), 1).shape == (2, 3)


# ------------------------------------------------------------- 1-D conv U-Net
def conv_net(in_channels, out_channels, seed=0, n_timesteps=50, randomise=True):
    net = ConvDenoiser1d(in_channels, out_channels, widths=(8, 16), kernel_size=3,
                         time_embed_dim=8, n_timesteps=n_timesteps, gaussian_skip=True)
    net.reset_parameters(seeded(seed))
    if randomise:  # reset_parameters zeroes the output layer; make it say something
        with torch.no_grad():
            weight = torch.randn(net.output.weight.shape, generator=seeded(seed))
            net.output.weight.copy_(0.1 * weight)
    return net


def test_conv_denoiser_keeps_any_length_and_rebuilds_from_its_config():
    net = conv_net(3, 2)
    for length in (8, 13, 1):
        x = torch.randn(5, 3, length, generator=seeded(1))
        assert net(x, torch.tensor(7)).shape == (5, 2, length)
    twin = build_network(net.config)
    assert type(twin) is ConvDenoiser1d and twin.config == net.config
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


# ---------------------------------------------------------------- 2-D U-Net
def image_net(in_channels=2, out_channels=2, seed=0, attention=False, randomise=True):
    net = ConvDenoiser2d(in_channels, out_channels, widths=(8, 16, 16), kernel_size=3,
                         time_embed_dim=8, n_timesteps=50, gaussian_skip=True,
                         attention=attention)
    net.reset_parameters(seeded(seed))
    if randomise:
        with torch.no_grad():
            weight = torch.randn(net.output.weight.shape, generator=seeded(seed))
            net.output.weight.copy_(0.1 * weight)
    return net


@pytest.mark.parametrize("size", [(8, 8), (27, 41), (1, 5), (16, 9)])
def test_image_denoiser_keeps_any_height_and_width(size):
    net = image_net()
    x = torch.randn((3, 2) + size, generator=seeded(1))
    out = net(x, torch.tensor(7))
    assert out.shape == (3, 2) + size and torch.all(torch.isfinite(out))


def test_image_denoiser_rebuilds_from_its_config_and_pickles():
    net = image_net(attention=True)
    twin = build_network(net.config)
    assert type(twin) is ConvDenoiser2d and twin.config == net.config
    twin.load_state_dict(net.state_dict())
    x = torch.randn(4, 2, 12, 20, generator=seeded(2))
    t = torch.tensor([1, 10, 20, 49])
    torch.testing.assert_close(twin(x, t), net(x, t))
    again = pickle.loads(pickle.dumps(net))
    torch.testing.assert_close(again(x, t), net(x, t))


def test_image_denoiser_attention_starts_as_the_identity():
    """Attention's weights are drawn after every other layer's and its output
    projection starts at zero: at initialisation the network is exactly the one
    without attention."""
    plain, attended = image_net(), image_net(attention=True)
    x = torch.randn(2, 2, 16, 16, generator=seeded(3))
    torch.testing.assert_close(attended(x, torch.tensor(5)), plain(x, torch.tensor(5)),
                               rtol=0, atol=0)
    with torch.no_grad():
        attended.attention.proj.weight.normal_(generator=seeded(4))
    assert not torch.allclose(attended(x, torch.tensor(5)), plain(x, torch.tensor(5)))


def test_image_denoiser_gaussian_skip_adds_the_exact_linear_term_and_init_is_seeded():
    schedule = make_schedule("linear", 50)
    state = torch.get_rng_state()
    net = image_net(1, 1, randomise=False).set_gaussian_skip(schedule)
    assert torch.equal(torch.get_rng_state(), state)
    x = torch.randn(3, 1, 10, 6, generator=seeded(5))
    a, s = float(schedule.alphas[20]), float(schedule.sigmas[20])
    torch.testing.assert_close(net(x, torch.tensor(20)), s / (a**2 + s**2) * x)
    assert not torch.equal(image_net(seed=1).input.weight, image_net(seed=2).input.weight)


def test_a_pixel_change_acts_mostly_on_its_neighbourhood():
    """A change at one pixel reaches pixels several convolutions away (the down
    path widens the receptive field); far away it acts only through GroupNorm's
    statistics over the whole map, so much more weakly."""
    net = image_net().eval()
    x = torch.randn(1, 2, 40, 40, generator=seeded(6))
    moved = x.clone()
    moved[0, :, 20, 20] += 5.0
    diff = (net(moved, torch.tensor(9)) - net(x, torch.tensor(9))).abs().sum(dim=1)[0]
    assert diff[20, 26] > 0 and diff[14, 20] > 0
    assert diff[18:23, 18:23].mean() > 10 * max(diff[0, 0], diff[39, 39])


# ---------------------------------------------------------- activation bytes
def test_activation_bytes_grow_with_the_widest_layer_and_the_spatial_size():
    mlp = small_net(hidden_dims=(8, 40)).config
    assert activation_bytes(mlp, (3,)) == 4 * 12 * 40  # a row has no spatial axis
    wide_input = small_net(in_channels=100, hidden_dims=(8,)).config
    assert activation_bytes(wide_input, (100,)) == 4 * 12 * 100
    conv = conv_net(3, 2).config  # widths (8, 16)
    assert activation_bytes(conv, (2, 10)) == 4 * 12 * 16 * 10
    assert activation_bytes(conv, (2, 40)) == 4 * activation_bytes(conv, (2, 10))
    assert activation_bytes(conv, (2, 6, 5)) == activation_bytes(conv, (2, 30))
