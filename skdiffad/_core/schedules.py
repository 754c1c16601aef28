"""Noise schedules and the sampling steps that use them.

Every schedule here is written in one Gaussian form, ``x_t = a_t * x_0 + s_t * eps``
(Kingma et al., "Variational Diffusion Models", 2021):

* variance preserving (DDPM, Ho et al. 2020): ``a_t = sqrt(alpha_bar_t)``,
  ``s_t = sqrt(1 - alpha_bar_t)``;
* variance exploding (Song & Ermon 2019/2021): ``a_t = 1``, ``s_t`` grows
  geometrically.

Writing both in ``(a_t, s_t)`` lets one DDPM posterior step, one DDIM step and one
ELBO serve either family. Time index ``t`` runs ``1..T``; index ``0`` is the clean
data (``a_0 = 1``, ``s_0 = 0``), so ``alphas[t]`` and ``sigmas[t]`` are tables of
length ``T + 1``.
"""

from __future__ import annotations

import math
import numbers

import torch

__all__ = ["NoiseSchedule", "make_schedule", "BETA_SCHEDULES", "ddim_path"]

BETA_SCHEDULES = ("linear", "cosine", "ve")


def _linear_betas(n_timesteps: int, beta_start: float, beta_end: float) -> torch.Tensor:
    # DDPM's 1e-4..0.02 were chosen for T=1000; rescale so the total noise
    # added is the same for any T (as in improved DDPM / DTE).
    scale = 1000.0 / n_timesteps
    return torch.linspace(
        beta_start * scale, beta_end * scale, n_timesteps, dtype=torch.float64
    ).clamp(max=0.999)


def _cosine_alpha_bars(n_timesteps: int, offset: float = 0.008) -> torch.Tensor:
    # Nichol & Dhariwal 2021, eq. 17; betas clipped at 0.999 to avoid a singular end.
    steps = torch.arange(n_timesteps + 1, dtype=torch.float64) / n_timesteps
    f = torch.cos((steps + offset) / (1 + offset) * math.pi / 2) ** 2
    alpha_bars = f / f[0]
    betas = (1 - alpha_bars[1:] / alpha_bars[:-1]).clamp(max=0.999)
    return torch.cumprod(1 - betas, dim=0)


class NoiseSchedule:
    """A discrete Gaussian noise schedule ``x_t = a_t x_0 + s_t eps``.

    A small plain object (two float64 tables) kept apart from the network, so it
    pickles, moves between devices and switches sampler for free.

    Parameters
    ----------
    alphas : torch.Tensor of shape (T + 1,)
        Signal scale ``a_t`` with ``a_0 = 1``.
    sigmas : torch.Tensor of shape (T + 1,)
        Noise standard deviation ``s_t`` with ``s_0 = 0``, increasing in ``t``.
    kind : {"vp", "ve"}
        Variance preserving or variance exploding, recorded for the prior.
    """

    def __init__(self, alphas: torch.Tensor, sigmas: torch.Tensor, kind: str):
        alphas = torch.as_tensor(alphas, dtype=torch.float64)
        sigmas = torch.as_tensor(sigmas, dtype=torch.float64)
        if alphas.shape != sigmas.shape or alphas.ndim != 1 or len(alphas) < 2:
            raise ValueError("alphas and sigmas must be 1-D tables of equal length >= 2")
        if not (alphas[0] == 1 and sigmas[0] == 0):
            raise ValueError("index 0 must be the clean data: a_0 = 1 and s_0 = 0")
        # Written as "all positive/decreasing" rather than "any not", so that a NaN
        # (0/0 SNR) fails the check instead of slipping past a False comparison.
        if not (torch.all(alphas[1:] > 0) and torch.all(sigmas[1:] > 0)
                and torch.all(torch.isfinite(alphas)) and torch.all(torch.isfinite(sigmas))):
            raise ValueError("a_t and s_t must be finite and positive for t >= 1")
        if not torch.all(torch.diff(self._snr(alphas[1:], sigmas[1:])) < 0):
            raise ValueError("the signal-to-noise ratio a_t^2/s_t^2 must decrease in t")
        self.alphas = alphas
        self.sigmas = sigmas
        self.kind = kind

    @staticmethod
    def _snr(alphas, sigmas):
        return alphas**2 / sigmas**2

    @property
    def n_timesteps(self) -> int:
        """Number of noisy steps ``T``."""
        return len(self.alphas) - 1

    def snr(self, t: torch.Tensor) -> torch.Tensor:
        """Signal-to-noise ratio ``a_t^2 / s_t^2`` (infinite at ``t = 0``)."""
        return self._snr(self.alphas[t], self.sigmas[t])

    def last_step_below(self, noise_to_signal: float) -> int:
        """Largest step ``t`` whose noise-to-signal ratio ``s_t / a_t`` is at most the
        given value (at least 1)."""
        ratio = self.sigmas[1:] / self.alphas[1:]
        return max(1, int(torch.searchsorted(ratio, torch.tensor(float(noise_to_signal),
                                                                  dtype=ratio.dtype), right=True)))

    def coefficients(self, t, like: torch.Tensor):
        """``(a_t, s_t)`` for integer steps ``t``, shaped to broadcast against ``like``."""
        t = torch.as_tensor(t, device=self.alphas.device)
        shape = (-1,) + (1,) * (like.ndim - 1) if t.ndim else ()
        a = self.alphas[t].to(device=like.device, dtype=like.dtype).reshape(shape)
        s = self.sigmas[t].to(device=like.device, dtype=like.dtype).reshape(shape)
        return a, s

    # ------------------------------------------------------------------ forward
    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t) -> torch.Tensor:
        """Sample ``q(x_t | x_0)``: ``a_t x_0 + s_t noise``."""
        a, s = self.coefficients(t, x0)
        return a * x0 + s * noise

    def predict_x0(self, x_t: torch.Tensor, eps: torch.Tensor, t) -> torch.Tensor:
        """Invert the forward map given a noise estimate: ``(x_t - s_t eps) / a_t``."""
        a, s = self.coefficients(t, x_t)
        return (x_t - s * eps) / a

    def predict_eps(self, x_t: torch.Tensor, x0: torch.Tensor, t) -> torch.Tensor:
        """Noise implied by a clean estimate: ``(x_t - a_t x0) / s_t``."""
        a, s = self.coefficients(t, x_t)
        return (x_t - a * x0) / s

    # ---------------------------------------------------------------- posterior
    def posterior(self, x_t: torch.Tensor, x0: torch.Tensor, t, s_prev):
        """Mean and variance of ``q(x_s | x_t, x_0)`` for ``s < t``.

        With ``a_{t|s} = a_t / a_s`` and ``v_{t|s} = s_t^2 - a_{t|s}^2 s_s^2`` the
        posterior is Gaussian with mean ``(a_{t|s} s_s^2 x_t + a_s v_{t|s} x_0) / s_t^2``
        and variance ``v_{t|s} s_s^2 / s_t^2``; for VP and ``s = t - 1`` this is
        DDPM's ``mu_tilde`` and ``beta_tilde``.
        """
        a_t, s_t = self.coefficients(t, x_t)
        a_s, s_s = self.coefficients(s_prev, x_t)
        a_ts = a_t / a_s
        v_ts = s_t**2 - a_ts**2 * s_s**2
        mean = (a_ts * s_s**2 * x_t + a_s * v_ts * x0) / s_t**2
        var = v_ts * s_s**2 / s_t**2
        return mean, var

    def ddpm_step(self, x_t, eps, t, s_prev, noise=None):
        """One ancestral step ``x_t -> x_s`` of the DDPM reverse process.

        Uses the posterior with ``x_0`` predicted from ``eps``; ``noise=None`` returns
        the posterior mean (the step's deterministic part).
        """
        mean, var = self.posterior(x_t, self.predict_x0(x_t, eps, t), t, s_prev)
        if noise is None:
            return mean
        return mean + var.sqrt() * noise

    def ddim_step(self, x_t, eps, t, s_next):
        """Deterministic DDIM step (eta = 0) from step ``t`` to step ``s_next``.

        ``x_s = a_s x0_hat + s_s eps``. With ``s_next < t`` this denoises; with
        ``s_next > t`` the same formula is DDIM inversion (Song et al. 2021), which
        maps data to its latent noise along the probability-flow ODE.
        """
        x0 = self.predict_x0(x_t, eps, t)
        a_s, s_s = self.coefficients(s_next, x_t)
        return a_s * x0 + s_s * eps

    # -------------------------------------------------------------------- prior
    def prior_variance(self) -> float:
        """Variance of the prior ``p(x_T)`` for unit-variance data: ``a_T^2 + s_T^2``."""
        return float(self.alphas[-1] ** 2 + self.sigmas[-1] ** 2)

    def to(self, device) -> "NoiseSchedule":
        """Return a copy whose tables live on ``device``."""
        return NoiseSchedule(self.alphas.to(device), self.sigmas.to(device), self.kind)

    def __getstate__(self):
        return {"alphas": self.alphas.cpu(), "sigmas": self.sigmas.cpu(), "kind": self.kind}

    def __setstate__(self, state):
        self.__dict__.update(state)

    def __repr__(self):
        return (
            f"NoiseSchedule(kind={self.kind!r}, n_timesteps={self.n_timesteps}, "
            f"s_1={float(self.sigmas[1]):.3g}, s_T={float(self.sigmas[-1]):.3g})"
        )


def make_schedule(
    beta_schedule: str = "linear",
    n_timesteps: int = 1000,
    *,
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
    sigma_min: float = 0.01,
    sigma_max: float = 50.0,
) -> NoiseSchedule:
    """Build a :class:`NoiseSchedule` by name.

    Parameters
    ----------
    beta_schedule : {"linear", "cosine", "ve"}
        ``"linear"``: DDPM's linear betas (rescaled to ``n_timesteps``);
        ``"cosine"``: improved-DDPM cosine ``alpha_bar``; ``"ve"``: variance
        exploding, ``a_t = 1`` and ``s_t`` geometric from ``sigma_min`` to ``sigma_max``.
    n_timesteps : int
        Number of noisy steps ``T``.
    beta_start, beta_end : float
        First and last beta of the linear schedule at ``T = 1000`` (rescaled by
        ``1000 / T`` for other ``T``).
    sigma_min, sigma_max : float
        Smallest and largest noise level of the ``"ve"`` schedule.

    Returns
    -------
    schedule : NoiseSchedule
    """
    # numbers.Integral, not int: numpy integers (np.arange grids in GridSearchCV) are
    # valid; bool is an Integral but never a step count.
    if (not isinstance(n_timesteps, numbers.Integral) or isinstance(n_timesteps, bool)
            or n_timesteps < 1):
        raise ValueError(f"n_timesteps must be a positive integer, got {n_timesteps!r}")
    n_timesteps = int(n_timesteps)
    if beta_schedule == "linear":
        alpha_bars = torch.cumprod(1 - _linear_betas(n_timesteps, beta_start, beta_end), 0)
    elif beta_schedule == "cosine":
        alpha_bars = _cosine_alpha_bars(n_timesteps)
    elif beta_schedule == "ve":
        ratio = torch.linspace(0, 1, n_timesteps, dtype=torch.float64)
        sigmas = sigma_min * (sigma_max / sigma_min) ** ratio
        zero = torch.zeros(1, dtype=torch.float64)
        return NoiseSchedule(
            torch.ones(n_timesteps + 1, dtype=torch.float64), torch.cat([zero, sigmas]), "ve"
        )
    else:
        raise ValueError(
            f"beta_schedule must be one of {BETA_SCHEDULES}, got {beta_schedule!r}"
        )
    one = torch.ones(1, dtype=torch.float64)
    alpha_bars = torch.cat([one, alpha_bars])
    return NoiseSchedule(alpha_bars.sqrt(), (1 - alpha_bars).sqrt(), "vp")


def ddim_path(t_start, n_steps):
    """``(t, s)`` pairs of a DDIM run from ``t_start`` down to step 0, in at most
    ``n_steps`` steps."""
    steps = torch.linspace(t_start, 0, min(n_steps, t_start) + 1).round().long().tolist()
    return list(zip(steps[:-1], steps[1:]))
