"""Shared pieces of the core tests: an exact denoiser for Gaussian data."""

import pytest
import torch
from torch import nn


class GaussianEpsPredictor(nn.Module):
    """The optimal noise prediction ``E[eps | x_t]`` for data ``x0 ~ N(mu, diag(var))``.

    With ``x_t = a_t x0 + s_t eps`` the pair ``(x_t, eps)`` is jointly Gaussian with
    ``Cov(x_t, eps) = s_t`` and ``Var(x_t) = a_t^2 var + s_t^2``, so
    ``E[eps | x_t] = s_t (x_t - a_t mu) / (a_t^2 var + s_t^2)``; the matching clean
    estimate ``(x_t - s_t eps_hat) / a_t`` is the posterior mean ``E[x0 | x_t]``.
    Called like a trained network: ``network(x_t, t)``.
    """

    def __init__(self, schedule, mean, var):
        super().__init__()
        self.schedule = schedule
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float64))
        self.register_buffer("var", torch.as_tensor(var, dtype=torch.float64))

    def forward(self, x_t, t):
        x = x_t.double()
        a, s = self.schedule.coefficients(t, x)
        eps = s * (x - a * self.mean) / (a**2 * self.var + s**2)
        return eps.to(x_t.dtype)


@pytest.fixture
def gaussian_eps_predictor():
    """Factory ``(schedule, mean, var) -> GaussianEpsPredictor``."""
    return GaussianEpsPredictor
