"""The learned model: a denoiser (or time classifier) trained by the one loop."""

from __future__ import annotations

import torch

from .devices import loadable_device
from .networks import activation_bytes, build_network, place
from .paradigms import batch_errors
from .plans import RECONSTRUCTION_RANGE, make_plan
from .samples import block_size
from .schedules import make_schedule
from .training import TrainingConfig, denoising_loss, imputation_loss, time_loss, train_network

__all__ = ["LEARNED_PARADIGMS", "LearnedModel"]

LEARNED_PARADIGMS = ("reconstruction", "imputation", "density", "score", "time")

# Largest noise-to-signal ratio s_t/a_t that diffusion-time estimation covers, in
# units of the standardised data (DTE's own schedule stops near 1.9): noise
# levels well above the data's unit spread all look alike and would waste the
# classifier's bins.
TIME_MAX_NOISE = 2.0

# Width of the sinusoidal timestep embedding of every denoiser.
TIME_EMBED_DIM = 64


class LearnedModel:
    """A network trained on the samples, scored under one of the survey's paradigms.

    Parameters
    ----------
    paradigm : {"reconstruction", "imputation", "density", "score", "time"}
        How samples are scored (see :mod:`~skdiffad._core.paradigms`); ``"time"``
        trains a classifier over time bins, every other paradigm a noise
        predictor.
    network : dict
        The network family and its own settings, e.g. ``{"name": "mlp",
        "hidden_dims": (128, 128)}`` or ``{"name": "conv1d", "widths": (32, 64),
        "kernel_size": 5}``; the input and output channels, the timestep
        embedding and the Gaussian skip are filled in from the data and the
        paradigm.
    beta_schedule : str, default="linear"
    n_timesteps : int, default=1000
    training : TrainingConfig, optional
        Settings of :func:`~skdiffad._core.training.train_network`.
    n_grid : int, default=8
        Grid points of the multi-step paradigms.
    n_inference_steps : int, default=5
        DDIM steps of each denoising run.
    n_bins : int, default=7
        ``"time"``: bins of the classifier.
    t0_range : tuple of float, default=RECONSTRUCTION_RANGE
        ``"reconstruction"``: fractions of ``T`` spanned by the starting steps.
    hidden : torch.Tensor, optional
        ``"imputation"``: the scoring masks, in complementary pairs.

    Attributes
    ----------
    networks_ : dict of str to torch.nn.Module
        The trained modules by role (``"denoiser"`` today; the image paradigms
        add a feature extractor and a segmentation head). Each is pickled as
        its config and CPU weights.
    schedule_ : NoiseSchedule
    plan_ : ScoringPlan
        The fixed grid, noise and masks of scoring.
    mask_input_ : bool
        Whether the training samples had gaps (the network then also sees the mask).
    device_ : torch.device
    """

    def __init__(self, paradigm, network, *, beta_schedule="linear", n_timesteps=1000,
                 training=None, n_grid=8, n_inference_steps=5, n_bins=7,
                 t0_range=RECONSTRUCTION_RANGE, hidden=None):
        if paradigm not in LEARNED_PARADIGMS:
            raise ValueError(f"paradigm must be one of {LEARNED_PARADIGMS}, got {paradigm!r}")
        self.paradigm = paradigm
        self.network = dict(network)
        self.beta_schedule = beta_schedule
        self.n_timesteps = int(n_timesteps)
        self.training = TrainingConfig() if training is None else training
        self.n_grid = int(n_grid)
        self.n_inference_steps = int(n_inference_steps)
        self.n_bins = int(n_bins)
        self.t0_range = tuple(t0_range)
        self.hidden = hidden

    # ------------------------------------------------------------------ fit
    def _network_config(self, event_shape):
        channels = int(event_shape[0])
        config = dict(self.network)
        if self.paradigm == "imputation":
            in_channels = 3 * channels  # noisy hidden, clean visible, visibility
        else:
            in_channels = channels * (2 if self.mask_input_ else 1)
        timed = self.paradigm != "time"
        if not timed and config.get("name") != "mlp":
            raise ValueError("diffusion-time estimation trains an unconditional classifier, "
                             f"which only the 'mlp' network provides (got {config.get('name')!r})")
        config.update(in_channels=in_channels,
                      out_channels=channels if timed else self.n_bins,
                      time_embed_dim=TIME_EMBED_DIM if timed else 0,
                      n_timesteps=self.n_timesteps, gaussian_skip=timed)
        return config

    def _time_max_step(self):
        return self.schedule_.last_step_below(TIME_MAX_NOISE)

    def _loss(self):
        schedule = self.schedule_.to(self.device_)
        mask_input = self.mask_input_
        if self.paradigm == "time":
            n_bins, t_max = self.n_bins, self._time_max_step()

            def loss(network, x, mask, generator):
                return time_loss(network, schedule, x, mask, generator, n_bins=n_bins,
                                 t_max=t_max, mask_input=mask_input)
        elif self.paradigm == "imputation":
            def loss(network, x, mask, generator):
                return imputation_loss(network, schedule, x, mask, generator)
        else:
            def loss(network, x, mask, generator):
                return denoising_loss(network, schedule, x, mask, generator,
                                      mask_input=mask_input)
        return loss

    def fit(self, samples, seed, device):
        """Train the network on ``samples`` and draw the scoring plan.

        Returns
        -------
        history : dict
            :func:`~skdiffad._core.training.train_network`'s record.
        """
        self.device_ = torch.device(device)
        self.schedule_ = make_schedule(self.beta_schedule, self.n_timesteps)
        self.mask_input_ = bool(samples.has_mask)
        self.event_shape_ = tuple(samples.event_shape)
        network = build_network(self._network_config(self.event_shape_))
        network.reset_parameters(torch.Generator().manual_seed(seed))
        if network.config.get("gaussian_skip"):
            network.set_gaussian_skip(self.schedule_)
        network = place(network, self.device_)
        history = train_network(network, self._loss(), samples, self.training, seed=seed,
                                device=self.device_)
        self.networks_ = {"denoiser": network.eval()}
        self.plan_ = make_plan(
            self.paradigm, self.schedule_, self.event_shape_,
            torch.Generator().manual_seed(seed + 3), n_grid=self.n_grid,
            n_inference_steps=self.n_inference_steps, n_bins=self.n_bins,
            t_max=self._time_max_step() if self.paradigm == "time" else None,
            t0_range=self.t0_range, hidden=self.hidden,
        )
        return history

    # -------------------------------------------------------------- scoring
    def errors(self, samples, training=False):
        """Errors of ``samples`` in consecutive blocks (``training`` is ignored:
        a trained network generalises, it does not look samples up).

        Yields ``(start, stop, sums, counts)`` as
        :meth:`~skdiffad._core.exact.ExactModel.errors` does: per-entry
        ``sums``/``counts`` for the element-wise paradigms, one score per
        sample (``counts`` ``None``) for ``"score"`` and ``"time"``.
        """
        network = self.networks_["denoiser"]
        schedule = self.schedule_.to(self.device_)
        plan = self.plan_.to(self.device_)
        block = block_size(activation_bytes(network.config, self.event_shape_), self.device_)
        for start, stop, x, mask in samples.blocks(block, self.device_):
            with torch.inference_mode():
                sums, counts = batch_errors(network, schedule, plan, x, mask,
                                            mask_input=self.mask_input_)
            n = stop - start
            yield (start, stop, sums[:n].cpu().numpy(),
                   None if counts is None else counts[:n].cpu().numpy())

    # ---------------------------------------------------------- persistence
    def to(self, device):
        """Move the networks to ``device``."""
        self.device_ = torch.device(device)
        for name, module in getattr(self, "networks_", {}).items():
            self.networks_[name] = place(module, self.device_)
        return self

    def __getstate__(self):
        state = self.__dict__.copy()
        networks = state.pop("networks_", None)
        if networks is not None:
            state["_saved_networks"] = {
                name: {
                    "config": dict(module.config),
                    "weights": {k: v.detach().cpu() for k, v in module.state_dict().items()},
                    "dtype": str(next(module.parameters()).dtype).replace("torch.", ""),
                }
                for name, module in networks.items()
            }
        return state

    def __setstate__(self, state):
        saved = state.pop("_saved_networks", None)
        self.__dict__.update(state)
        if saved is None:
            return
        networks = {}
        for name, entry in saved.items():
            module = build_network(entry["config"]).to(getattr(torch, entry["dtype"]))
            module.load_state_dict(entry["weights"])
            networks[name] = module.eval()
        self.networks_ = networks
        self.to(loadable_device(self.device_, "the learned model"))
