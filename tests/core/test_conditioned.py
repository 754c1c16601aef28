"""DDAD's conditioned reconstruction: the plain one at guidance 0, a closed form
for a network that predicts no noise, and monotone pull toward the target.

With ``eps_hat = 0`` the conditioned estimate is ``eps_tilde = w s_t (x_t - a_t x0)``
and the DDIM step maps the deviation ``d_t = x_t - a_t x0`` from the diffused
target to ``d_s = r d_t`` with
``r = a_s / a_t - w s_t (a_s s_t / a_t - s_s)``. Starting from
``d_{t0} = s_{t0} noise`` the reconstruction is ``x0 + s_{t0} noise prod r``. For a
variance-preserving schedule (``a = cos theta``, ``s = sin theta``) the factor is
``(cos theta_s - w sin theta_t sin(theta_t - theta_s)) / cos theta_t``, positive
for ``w`` in ``[0, 1]`` and decreasing in ``w``: more guidance, closer to ``x0``.
"""

import itertools

import pytest
import torch
from torch import nn

from skdiffad._core.networks import build_network
from skdiffad._core.paradigms import ddim_path, reconstruct, reconstruct_conditioned
from skdiffad._core.schedules import make_schedule

CONFIG = {"name": "conv2d", "in_channels": 1, "out_channels": 1, "widths": (4, 8),
          "kernel_size": 3, "time_embed_dim": 8, "n_timesteps": 50, "gaussian_skip": False}


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def random_net(config=CONFIG):
    """A seeded U-Net whose output layer is not zero (so it predicts some noise)."""
    net = build_network(config).reset_parameters(seeded(0))
    with torch.no_grad():
        net.output.weight.copy_(0.3 * torch.randn(net.output.weight.shape, generator=seeded(1)))
        net.output.bias.fill_(0.05)
    return net


class NoNoise(nn.Module):
    """A denoiser that always predicts zero noise."""

    def forward(self, x, t):
        return torch.zeros_like(x)


def images(shape, seed):
    return torch.randn(shape, generator=seeded(seed))


@pytest.mark.parametrize("t0, n_steps", [(20, 5), (35, 35), (7, 3)])
def test_zero_guidance_is_plain_reconstruct(t0, n_steps):
    schedule = make_schedule("linear", 50)
    net = random_net()
    x0, noise = images((3, 1, 13, 10), 2), images((3, 1, 13, 10), 3)
    with torch.inference_mode():
        plain = reconstruct(net, schedule, x0, None, noise, t0, n_steps, False)
        cond = reconstruct_conditioned(net, schedule, x0, None, noise, t0, n_steps, False,
                                       guidance=0.0)
    assert torch.equal(plain, cond)
    assert not torch.equal(plain, x0)


def test_zero_guidance_with_mask_input():
    schedule = make_schedule("cosine", 50)
    net = random_net(dict(CONFIG, in_channels=2))
    x0, noise = images((2, 1, 8, 9), 4), images((2, 1, 8, 9), 5)
    mask = (images((2, 1, 8, 9), 6) > 0).float()
    x0 = x0 * mask
    plain = reconstruct(net, schedule, x0, mask, noise, 25, 4, True)
    cond = reconstruct_conditioned(net, schedule, x0, mask, noise, 25, 4, True, guidance=0)
    assert torch.equal(plain, cond)


def expected_no_noise(schedule, x0, noise, t0, n_steps, w):
    a, s = schedule.alphas, schedule.sigmas
    factor = torch.tensor(1.0, dtype=torch.float64)
    for t, u in ddim_path(t0, n_steps):
        factor = factor * (a[u] / a[t] - w * s[t] * (a[u] * s[t] / a[t] - s[u]))
    return x0 + s[t0] * noise * factor


@pytest.mark.parametrize("beta_schedule", ["linear", "cosine"])
@pytest.mark.parametrize("w", [0.0, 0.3, 1.0, 2.5])
def test_no_noise_network_closed_form(beta_schedule, w):
    schedule = make_schedule(beta_schedule, 50)
    x0 = images((2, 1, 5, 6), 7).double()
    noise = images((2, 1, 5, 6), 8).double()
    got = reconstruct_conditioned(NoNoise(), schedule, x0, None, noise, 30, 6, False, guidance=w)
    want = expected_no_noise(schedule, x0, noise, 30, 6, w)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_more_guidance_reconstructs_closer_to_target():
    schedule = make_schedule("linear", 50)
    x0 = images((4, 1, 6, 6), 9).double()
    noise = images((4, 1, 6, 6), 10).double()
    errors = [float((reconstruct_conditioned(NoNoise(), schedule, x0, None, noise, 40, 8, False,
                                             guidance=w) - x0).abs().max())
              for w in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert all(e1 < e0 for e0, e1 in itertools.pairwise(errors)), errors
    # guidance 0 with a no-noise network just rescales x_t0: x0 + (s/a) noise
    s_a = float(schedule.sigmas[40] / schedule.alphas[40])
    assert errors[0] == pytest.approx(s_a * float(noise.abs().max()), rel=1e-10)


def test_guidance_pulls_random_network_toward_target():
    # The clean estimate moves a fraction w s_t^2 toward x0 at every step, so a
    # reconstruction with full guidance ends nearer x0 than the plain one.
    schedule = make_schedule("linear", 50)
    net = random_net()
    x0, noise = images((3, 1, 12, 12), 11), images((3, 1, 12, 12), 12)
    with torch.no_grad():
        plain = reconstruct(net, schedule, x0, None, noise, 45, 9, False)
        cond = reconstruct_conditioned(net, schedule, x0, None, noise, 45, 9, False, guidance=1.0)
    assert float((cond - x0).pow(2).mean()) < 0.5 * float((plain - x0).pow(2).mean())


def test_single_step_moves_clean_estimate_by_w_s_squared():
    schedule = make_schedule("linear", 50)
    net = random_net()
    x0, noise = images((2, 1, 7, 7), 13), images((2, 1, 7, 7), 14)
    t, w = 30, 0.6
    with torch.no_grad():
        x_t = schedule.add_noise(x0, noise, t)
        eps = net(x_t, torch.tensor(t))
        x0_hat = schedule.predict_x0(x_t, eps, t)
        got = reconstruct_conditioned(net, schedule, x0, None, noise, t, 1, False, guidance=w)
    s2 = float(schedule.sigmas[t]) ** 2
    torch.testing.assert_close(got, x0_hat + w * s2 * (x0 - x0_hat), rtol=1e-4, atol=1e-5)
