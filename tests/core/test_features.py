"""Feature extractors and DDAD's feature distance map."""

import pytest
import torch
from torch import nn

from skdiffad._core.features import (
    DenoiserFeatures,
    ModuleFeatures,
    feature_distance_map,
)
from skdiffad._core.networks import build_network


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def denoiser(in_channels=1, widths=(4, 8), attention=False):
    config = {"name": "conv2d", "in_channels": in_channels, "out_channels": in_channels,
              "widths": widths, "kernel_size": 3, "time_embed_dim": 8, "n_timesteps": 50,
              "gaussian_skip": False}
    if attention:
        config["attention"] = True
    return build_network(config).reset_parameters(seeded(0))


def images(shape, seed):
    return torch.rand(shape, generator=seeded(seed))


class TwoLevels(nn.Module):
    """A tiny backbone returning a dict of two feature maps (stride 1 and 2)."""

    def __init__(self, channels=3, act=torch.relu):
        super().__init__()
        self.act = act
        torch.manual_seed(0)
        self.a = nn.Conv2d(channels, 6, 3, padding=1)
        self.b = nn.Conv2d(6, 5, 3, stride=2, padding=1)

    def forward(self, x):
        h = self.act(self.a(x))
        return {"layer1": h, "layer2": self.b(h)}


@pytest.mark.parametrize("widths", [(4, 8), (4, 8, 8)])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("hw", [(28, 28), (33, 65), (5, 3)])
def test_denoiser_features_shapes(widths, channels, hw):
    net = denoiser(channels, widths)
    x = images((2, channels) + hw, 0)
    maps = DenoiserFeatures(net)(x)
    assert len(maps) == len(widths) + 1
    assert [m.shape[1] for m in maps] == list(widths) + [widths[-1]]
    for level, m in enumerate(maps):
        stride = 2 ** min(level, len(widths) - 1)
        assert tuple(m.shape[2:]) == tuple(-(-s // stride) for s in hw)
    dist = feature_distance_map(DenoiserFeatures(net), x, images(x.shape, 1), size=hw)
    assert dist.shape == (2, 1) + hw and dist.dtype == torch.float64


def test_denoiser_features_match_the_network_forward():
    # The finest map is what the network's own forward feeds to its first skip.
    net = denoiser(1, (4, 8))
    x = images((2, 1, 11, 14), 2)
    seen = {}
    handle = net.down[0].register_forward_hook(lambda m, i, o: seen.setdefault("h", o))
    with torch.no_grad():
        net(x, torch.tensor(1))
        maps = DenoiserFeatures(net, t=1)(x)
    handle.remove()
    torch.testing.assert_close(maps[0], seen["h"][..., :11, :14], rtol=0, atol=0)
    # a different timestep conditions the blocks differently
    assert not torch.equal(DenoiserFeatures(net, t=40)(x)[0], maps[0])


def test_denoiser_features_with_attention_and_mask_input():
    net = denoiser(2, (4, 8), attention=True)
    maps = DenoiserFeatures(net)(images((1, 1, 9, 10), 3))  # mask channel appended
    assert [tuple(m.shape) for m in maps] == [(1, 4, 9, 10), (1, 8, 5, 5), (1, 8, 5, 5)]
    with pytest.raises(ValueError, match="channels"):
        DenoiserFeatures(net)(images((1, 3, 9, 10), 3))


@pytest.mark.parametrize("extractor", ["denoiser", "module"])
def test_identical_inputs_give_zero_distance(extractor):
    fx = (DenoiserFeatures(denoiser()) if extractor == "denoiser"
          else ModuleFeatures(TwoLevels(), in_channels=3))
    x = images((3, 1, 17, 20), 4)
    with torch.inference_mode():
        dist = feature_distance_map(fx, x, x.clone(), size=(17, 20))
    assert torch.equal(dist, torch.zeros_like(dist))


def test_distance_range_and_known_values():
    # An identity "backbone": the distance is 1 - cos between the pixel vectors.
    fx = ModuleFeatures(nn.Identity())
    x = torch.tensor([[1.0, 0.0, 1.0, 2.0], [0.0, 1.0, 1.0, -1.0]]).reshape(1, 2, 1, 4)
    y = torch.tensor([[2.0, 1.0, -1.0, 4.0], [0.0, 0.0, -1.0, -2.0]]).reshape(1, 2, 1, 4)
    dist = feature_distance_map(fx, x, y)
    torch.testing.assert_close(dist.reshape(-1), torch.tensor([0.0, 1.0, 2.0, 0.0],
                                                              dtype=torch.float64))
    # both vectors zero: identical, distance 0; one zero: 1/2
    z = torch.zeros(1, 2, 1, 2)
    o = torch.tensor([1.0, 0.0, 0.0, 0.0]).reshape(1, 2, 1, 2)
    assert feature_distance_map(fx, z, o).reshape(-1).tolist() == [0.5, 0.0]
    fx = DenoiserFeatures(denoiser(1, (4, 8, 8)))
    x = images((4, 1, 33, 65), 5)
    with torch.no_grad():
        dist = feature_distance_map(fx, x, 1 - x + images(x.shape, 6), size=(33, 65))
    assert float(dist.min()) >= 0.0 and float(dist.max()) <= 2.0
    assert float(dist.mean()) > 0.01


def test_distance_upsamples_and_averages_levels():
    # tanh: no position where all features vanish (there, see the test above,
    # the distance departs from torch's cosine_similarity on purpose)
    fx = ModuleFeatures(TwoLevels(1, act=torch.tanh))
    x, y = images((2, 1, 8, 12), 7), images((2, 1, 8, 12), 8)
    dist = feature_distance_map(fx, x, y, size=(16, 24))
    assert dist.shape == (2, 1, 16, 24)
    fa, fb = fx(x), fx(y)
    want = 0
    for f, g in zip(fa, fb):
        d = 1 - torch.nn.functional.cosine_similarity(f.double(), g.double(), dim=1)
        want = want + nn.functional.interpolate(d[:, None], size=(16, 24), mode="bilinear")
    torch.testing.assert_close(dist, want / 2)


def test_distance_is_per_sample_and_deterministic():
    fx = DenoiserFeatures(denoiser())
    x, y = images((4, 1, 15, 15), 9), images((4, 1, 15, 15), 10)
    first = feature_distance_map(fx, x, y)
    torch.testing.assert_close(feature_distance_map(fx, x, y), first, rtol=0, atol=0)
    torch.testing.assert_close(feature_distance_map(fx, x[1:3], y[1:3]), first[1:3])


def test_module_features_outputs_and_normalisation():
    net = TwoLevels(3)
    x = images((2, 1, 9, 7), 11)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    fx = ModuleFeatures(net, in_channels=3, mean=mean, std=std)
    maps = fx(x)
    assert [tuple(m.shape) for m in maps] == [(2, 6, 9, 7), (2, 5, 5, 4)]
    rgb = (x.repeat(1, 3, 1, 1) - torch.tensor(mean).reshape(1, 3, 1, 1)) \
        / torch.tensor(std).reshape(1, 3, 1, 1)
    want = net(rgb)
    torch.testing.assert_close(maps[0], want["layer1"])
    torch.testing.assert_close(maps[1], want["layer2"])
    assert len(ModuleFeatures(lambda_module(lambda v: (v, 2 * v)))(x)) == 2
    assert len(ModuleFeatures(lambda_module(lambda v: [v]))(x)) == 1
    with pytest.raises(ValueError, match="in_channels"):
        fx(images((2, 2, 9, 7), 0))
    with pytest.raises(TypeError, match="tensor"):
        ModuleFeatures(lambda_module(lambda v: 3))(x)
    with pytest.raises(ValueError, match="std"):
        ModuleFeatures(net, std=(1.0, 0.0, 1.0))


def test_distance_rejects_bad_input():
    fx = ModuleFeatures(nn.Identity())
    x = images((2, 1, 4, 4), 0)
    with pytest.raises(ValueError, match="shape"):
        feature_distance_map(fx, x, x[:1])
    with pytest.raises(ValueError, match="size"):
        feature_distance_map(fx, x, x, size=(4,))
    flat = ModuleFeatures(lambda_module(lambda v: v.flatten(1)))
    with pytest.raises(ValueError, match="spatial"):
        feature_distance_map(flat, x, x)


def test_works_on_series():
    fx = ModuleFeatures(nn.Conv1d(2, 3, 3, padding=1))
    x = images((2, 2, 10), 1)
    assert feature_distance_map(fx, x, x + 1, size=(20,)).shape == (2, 1, 20)


def lambda_module(fn):
    class Wrapped(nn.Module):
        def forward(self, x):
            return fn(x)
    return Wrapped()
