"""The discriminative head (DRAEM, DiffusionAD): the segmentation network, its loss
on synthetic defects, its anomaly maps, and that the denoisers did not change."""

import math
import pickle

import numpy as np
import pytest
import torch

from skdiffad._core import (
    ArraySamples,
    TrainingConfig,
    build_network,
    make_schedule,
    train_network,
)
from skdiffad._core.discriminative import (
    focal_loss,
    segmentation_loss,
    segmentation_map,
)
from skdiffad._core.networks import (
    NETWORKS,
    ConvDenoiser2d,
    SegmentationHead2d,
    activation_bytes,
    place,
)
from skdiffad._core.synthetic import synthetic_anomalies

T, T0, N_STEPS = 50, 5, 2


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def head_net(channels=1, seed=0, widths=(4, 8), randomise=True, **kwargs):
    head = SegmentationHead2d(2 * channels, widths=widths, **kwargs)
    head.reset_parameters(seeded(seed))
    if randomise:  # reset_parameters zeroes the output layer; make it say something
        with torch.no_grad():
            head.output.weight.copy_(0.1 * torch.randn(head.output.weight.shape,
                                                       generator=seeded(seed + 1)))
    return head


def denoiser_net(channels=1, seed=0):
    """An untrained 2-D denoiser whose output layer says a little: a near-identity
    reconstruction, which is all the head needs for these tests."""
    net = ConvDenoiser2d(channels, channels, widths=(4, 8), kernel_size=3, time_embed_dim=8,
                         n_timesteps=T)
    net.reset_parameters(seeded(seed))
    with torch.no_grad():
        net.output.weight.copy_(0.01 * torch.randn(net.output.weight.shape,
                                                   generator=seeded(seed + 1)))
    return net


def smooth_images(n, size=16, seed=0):
    """Standardised images of random linear gradients plus a faint bump: smooth, so
    a pasted defect is the only edge in the image."""
    g = seeded(seed)
    u = torch.linspace(-1, 1, size)
    yy, xx = torch.meshgrid(u, u, indexing="ij")
    a, b, c = torch.randn(3, n, 1, 1, generator=g)
    cx, cy = torch.rand(2, n, 1, 1, generator=g) * 2 - 1
    bump = torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.5)
    x = a * xx + b * yy + 0.5 * c + bump
    x = (x - x.mean()) / x.std()
    return x.unsqueeze(1).float()


def auroc(scores, labels):
    """Mann-Whitney AUROC with mid-ranks for ties."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], len(scores)]
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + e + 1) / 2
    n_pos, n_neg = labels.sum(), (~labels).sum()
    return (ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


# ------------------------------------------------------------------ the head
@pytest.mark.parametrize("channels, height, width", [(1, 28, 28), (3, 28, 28), (1, 33, 65),
                                                     (3, 33, 65)])
def test_head_gives_one_logit_map_of_the_input_size(channels, height, width):
    head = head_net(channels, widths=(4, 8, 8))
    out = head(torch.randn(2, 2 * channels, height, width, generator=seeded(1)))
    assert out.shape == (2, 1, height, width)
    assert torch.isfinite(out).all() and out.std() > 0


def test_untrained_head_says_one_half_everywhere():
    head = head_net(randomise=False)
    x = torch.randn(2, 1, 12, 12, generator=seeded(0))
    probs = segmentation_map(head, None, None, x, None, T0, N_STEPS)
    assert torch.equal(probs, torch.full_like(probs, 0.5))


def test_head_is_unconditional():
    head = head_net()
    assert head.time_mlp is None
    assert not any("cond" in name or "time" in name for name in head.state_dict())
    x = torch.randn(2, 2, 9, 9, generator=seeded(0))
    assert torch.equal(head(x), head(x, None))


@pytest.mark.parametrize("attention", [False, True])
def test_head_rebuilds_from_config_and_pickled_weights(attention):
    head = head_net(3, attention=attention)
    assert NETWORKS["seghead2d"] is SegmentationHead2d
    assert head.config["name"] == "seghead2d" and head.config["in_channels"] == 6
    assert set(head.config) >= {"in_channels", "out_channels", "widths", "kernel_size"}
    assert "time_embed_dim" not in head.config and "gaussian_skip" not in head.config
    state = pickle.loads(pickle.dumps((head.config, head.state_dict())))
    twin = build_network(state[0])
    twin.load_state_dict(state[1])
    assert type(twin) is SegmentationHead2d and twin.config == head.config
    x = torch.randn(2, 6, 13, 10, generator=seeded(2))
    assert torch.equal(twin(x), head(x))


def test_head_initialisation_is_seeded_and_leaves_the_global_rng():
    before = torch.random.get_rng_state()
    a, b, c = head_net(seed=3), head_net(seed=3), head_net(seed=4)
    assert torch.equal(torch.random.get_rng_state(), before)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_activation_bytes_of_the_head():
    head = head_net(3, widths=(4, 16))
    small, large = (activation_bytes(head.config, (6, s, s)) for s in (8, 16))
    assert small == 4 * 12 * 16 * 64 and large == 4 * small


def test_place_keeps_the_head_on_the_cpu_as_it_is():
    head = head_net()
    assert place(head, "cpu") is head


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_place_puts_the_head_channels_last_on_cuda():
    head = place(head_net(), "cuda")
    assert head.input.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(2, 2, 12, 12, generator=seeded(0))
    # cuDNN may run the convolutions in TF32
    assert torch.allclose(head(x.cuda()).cpu(), head_net()(x), atol=1e-3)


# ------------------------------------------------------- the denoisers did not change
def test_image_denoiser_config_and_architecture_are_unchanged():
    """The unconditional path is the head's alone: a denoiser's config keys, its
    parameters and its outputs are those of the networks fitted before the head
    existed (the numbers were computed with that version)."""
    net = ConvDenoiser2d(2, 2, widths=(4, 8), kernel_size=3, time_embed_dim=8, n_timesteps=50)
    assert set(net.config) == {"name", "in_channels", "out_channels", "widths", "kernel_size",
                               "time_embed_dim", "n_timesteps", "gaussian_skip"}
    assert sum(p.numel() for p in net.parameters()) == 3890 and len(net.state_dict()) == 54
    net.reset_parameters(seeded(0))
    with torch.no_grad():
        net.output.weight.normal_(generator=seeded(1))
    x = torch.linspace(-1, 1, 2 * 2 * 9 * 11).reshape(2, 2, 9, 11)
    with torch.no_grad():
        out = net(x, torch.tensor([3, 40])).double()
    assert math.isclose(float(out.sum()), 66.80238772882149, rel_tol=1e-4)
    assert math.isclose(float(out.abs().sum()), 1109.2222725874744, rel_tol=1e-5)
    twin = build_network(net.config)
    twin.load_state_dict(net.state_dict())
    assert type(twin) is ConvDenoiser2d
    with torch.no_grad():
        assert torch.equal(twin(x, torch.tensor([3, 40])), out.float())
    with pytest.raises(ValueError, match="pass t"):
        net(x)


def test_unconditional_unet_refuses_the_gaussian_skip():
    with pytest.raises(ValueError, match="gaussian_skip"):
        ConvDenoiser2d(1, 1, widths=(4,), time_embed_dim=0, gaussian_skip=True)


# ------------------------------------------------------------------ the loss
def test_focal_loss_is_the_cross_entropy_scaled_down_where_confident():
    logits = torch.tensor([-3.0, 0.0, 3.0, 3.0])
    target = torch.tensor([0.0, 1.0, 1.0, 0.0])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_true = torch.sigmoid(torch.where(target > 0, logits, -logits))
    assert torch.allclose(focal_loss(logits, target, 2.0), (1 - p_true) ** 2 * bce)
    assert torch.equal(focal_loss(logits, target, 0.0), bce)
    assert torch.isfinite(focal_loss(torch.tensor([80.0]), torch.tensor([0.0]))).all()


def loss_of(head, denoiser, x, seed=0, mask=None, **kwargs):
    schedule = make_schedule("linear", T)
    return segmentation_loss(head, denoiser, schedule, x, mask, seeded(seed), t0=T0,
                             n_steps=N_STEPS, **kwargs)


@pytest.mark.parametrize("channels", [1, 3])
def test_loss_is_finite_per_sample_and_reaches_only_the_head(channels):
    head, denoiser = head_net(channels), denoiser_net(channels)
    x = torch.randn(6, channels, 16, 16, generator=seeded(0))
    loss = loss_of(head, denoiser, x)
    assert loss.shape == (6,) and loss.dtype == torch.float32
    assert torch.isfinite(loss).all() and (loss > 0).all()
    loss.mean().backward()
    assert all(p.grad is None for p in denoiser.parameters())
    assert all(p.grad is not None for p in head.parameters())
    assert head.output.weight.grad.abs().sum() > 0 and head.input.weight.grad.abs().sum() > 0


def test_loss_is_seeded():
    head, denoiser = head_net(), denoiser_net()
    x = smooth_images(8)
    with torch.no_grad():
        a, b, c = loss_of(head, denoiser, x, 3), loss_of(head, denoiser, x, 3), \
            loss_of(head, denoiser, x, 4)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_loss_reads_the_reconstruction():
    """The head's second half of channels is the denoiser's restoration: a
    different denoiser changes the loss; without one the image is repeated."""
    head, x = head_net(), smooth_images(8)
    with torch.no_grad():
        a = loss_of(head, denoiser_net(seed=0), x)
        b = loss_of(head, denoiser_net(seed=5), x)
        c = loss_of(head, None, x)
    assert not torch.equal(a, b) and torch.isfinite(c).all() and c.shape == (8,)


def test_loss_with_everything_observed_equals_no_mask():
    head, denoiser, x = head_net(), denoiser_net(), smooth_images(4)
    with torch.no_grad():
        a = loss_of(head, denoiser, x)
        b = loss_of(head, denoiser, x, mask=torch.ones_like(x, dtype=torch.bool))
    assert torch.equal(a, b)


# ------------------------------------------------------------------ the map
def test_map_is_a_deterministic_probability_independent_of_the_batch():
    head, denoiser, schedule = head_net(), denoiser_net(), make_schedule("linear", T)
    x = torch.randn(5, 1, 11, 14, generator=seeded(0))
    noise = torch.randn(1, 11, 14, generator=seeded(1))
    probs = segmentation_map(head, denoiser, schedule, x, noise, T0, N_STEPS)
    assert probs.shape == (5, 1, 11, 14) and probs.dtype == torch.float64
    assert (probs >= 0).all() and (probs <= 1).all() and probs.std() > 0
    again = segmentation_map(head, denoiser, schedule, x, noise, T0, N_STEPS)
    assert torch.equal(probs, again)
    alone = segmentation_map(head, denoiser, schedule, x[2:3], noise, T0, N_STEPS)
    assert torch.allclose(alone, probs[2:3], atol=1e-6)
    with torch.inference_mode():
        inferred = segmentation_map(head, denoiser, schedule, x, noise, T0, N_STEPS)
    assert torch.equal(inferred, probs)


def test_map_averages_a_stack_of_noise_draws():
    head, denoiser, schedule = head_net(), denoiser_net(), make_schedule("linear", T)
    x = torch.randn(3, 1, 8, 8, generator=seeded(0))
    noise = torch.randn(1, 8, 8, generator=seeded(1))
    pair = torch.stack([noise, -noise])
    each = [segmentation_map(head, denoiser, schedule, x, n, T0, N_STEPS) for n in pair]
    both = segmentation_map(head, denoiser, schedule, x, pair, T0, N_STEPS)
    assert torch.allclose(both, (each[0] + each[1]) / 2, atol=1e-12)
    assert not torch.equal(each[0], each[1])


# ------------------------------------------------------------- training the head
def fit_head(denoiser, n_steps, seed=0, n=200):
    schedule = make_schedule("linear", T)
    samples = ArraySamples(smooth_images(n, seed=seed).numpy())
    head = head_net(widths=(8, 16), seed=seed, randomise=False)

    def loss_fn(network, x, mask, generator):
        return segmentation_loss(network, denoiser, schedule, x, mask, generator, t0=T0,
                                 n_steps=N_STEPS)

    config = TrainingConfig(max_iter=50, max_steps=n_steps, batch_size=16, learning_rate=3e-3,
                            early_stopping=False, mixed_precision=False)
    history = train_network(head, loss_fn, samples, config, seed=seed, device="cpu")
    return head, history, loss_fn


@pytest.mark.slow
def test_training_the_head_finds_pasted_defects():
    denoiser, schedule = denoiser_net(), make_schedule("linear", T)
    fresh = smooth_images(64, seed=99)
    untrained = head_net(widths=(8, 16), randomise=False)
    head, history, loss_fn = fit_head(denoiser, 150)
    assert history["n_steps"] == 150
    with torch.no_grad():
        before = float(loss_fn(untrained, fresh, None, seeded(7)).mean())
        after = float(loss_fn(head, fresh, None, seeded(7)).mean())
    assert after < 0.5 * before
    assert history["loss"][-1] < history["loss"][0]

    x_aug, defect = synthetic_anomalies(fresh, seeded(8), probability=1.0)
    assert defect.sum() > 0 and (1 - defect).sum() > 0
    noise = torch.randn(1, 16, 16, generator=seeded(9))
    probs = segmentation_map(head, denoiser, schedule, x_aug, noise, T0, N_STEPS)
    inside = probs[defect > 0].mean()
    outside = probs[defect == 0].mean()
    assert inside > outside
    assert auroc(probs.flatten().numpy(), defect.flatten().numpy() > 0) > 0.7


def test_training_the_head_is_seeded():
    denoiser = denoiser_net()
    a, _, _ = fit_head(denoiser, 4, n=48)
    b, _, _ = fit_head(denoiser, 4, n=48)
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
