"""The learned model: a denoiser (or time classifier) trained by the one loop.

What is trained and how samples are scored is the paradigm's
(:mod:`~skdiffad._core.paradigms`): the model builds the network the paradigm
asks for, trains it with the paradigm's loss, draws the paradigm's plan, lets
the paradigm train what it needs besides (the discriminative head) and scores
blocks of samples with the paradigm's batch errors. It knows the schedule, the
devices, memory-sized blocks, pickling and sampling.
"""

from __future__ import annotations

import numpy as np
import torch

from .devices import loadable_device
from .networks import activation_bytes, build_network, place
from .paradigms import Paradigm, make_paradigm
from .samples import block_size
from .sampling import draw_samples, edit_samples
from .schedules import make_schedule
from .training import TrainingConfig, train_network

__all__ = ["LearnedModel", "default_chain_steps"]


def default_chain_steps(sampler, t_start, n_steps):
    """Network evaluations of a chain: ``n_steps``, or with ``None`` every step
    for ``"ddpm"`` (the exact ancestral chain) and 50 for ``"ddim"``."""
    if n_steps is None:
        return int(t_start) if sampler == "ddpm" else min(50, int(t_start))
    return n_steps


class LearnedModel:
    """A network trained on the samples, scored under one of the survey's paradigms.

    Parameters
    ----------
    paradigm : Paradigm or str
        How samples are scored and what is trained
        (:mod:`~skdiffad._core.paradigms`), with its own options; a name of
        :data:`~skdiffad._core.paradigms.PARADIGMS` builds it with its
        defaults (:func:`~skdiffad._core.paradigms.make_paradigm`). The model
        moves the modules the paradigm holds (a user feature extractor) with
        its own: give each model its own paradigm.
    network : dict
        The network family and its own settings, e.g. ``{"name": "mlp",
        "hidden_dims": (128, 128)}`` or ``{"name": "conv1d", "widths": (32, 64),
        "kernel_size": 5}``; the input and output channels, the timestep
        embedding and the Gaussian skip are filled in from the data and the
        paradigm (:meth:`~skdiffad._core.paradigms.Paradigm.network_config`).
    beta_schedule : str, default="linear"
    n_timesteps : int, default=1000
    training : TrainingConfig, optional
        Settings of :func:`~skdiffad._core.training.train_network`.

    Attributes
    ----------
    trains : bool
        ``True``: fitting trains networks (a class attribute, ``False`` for the
        exact model).
    networks_ : dict of str to torch.nn.Module
        The trained modules by role: ``"denoiser"``, and whatever the paradigm
        trains besides (``"head"`` for ``"discriminative"``). Each is pickled
        as its config and CPU weights.
    denoiser : torch.nn.Module
        ``networks_["denoiser"]``, the trained noise predictor (or time
        classifier).
    schedule_ : NoiseSchedule
    plan_ : ScoringPlan
        The fixed grid, noise and masks of scoring.
    event_shape_ : tuple of int
        Shape of one training sample.
    mask_input_ : bool
        Whether the training samples had gaps (the network then also sees the mask).
    device_ : torch.device
    """

    trains = True

    def __init__(self, paradigm, network, *, beta_schedule="linear", n_timesteps=1000,
                 training=None):
        self.paradigm = make_paradigm(paradigm)
        self.paradigm.check_ready()
        self.network = dict(network)
        self.beta_schedule = beta_schedule
        self.n_timesteps = int(n_timesteps)
        self.training = TrainingConfig() if training is None else training

    # ------------------------------------------------------------------ fit
    def fit(self, samples, seed, device):
        """Train the network on ``samples`` and draw the scoring plan.

        The weights are drawn from ``seed``, the training from ``seed`` too
        (:func:`~skdiffad._core.training.train_network`'s own generators) and
        the plan from ``seed + 3``; the paradigm then trains what it needs
        besides, with the denoiser frozen (``"discriminative"``: its head).

        Returns
        -------
        history : dict
            :func:`~skdiffad._core.training.train_network`'s record of the
            denoiser, with the records of the paradigm's further networks by
            role (``"head"``).
        """
        paradigm = self.paradigm
        event_shape = tuple(samples.event_shape)
        paradigm.check_event_shape(event_shape)
        mask_input = bool(samples.has_mask)
        config = paradigm.network_config(self.network, event_shape,
                                         n_timesteps=self.n_timesteps, mask_input=mask_input)
        self.device_ = torch.device(device)
        self.schedule_ = make_schedule(self.beta_schedule, self.n_timesteps)
        self.mask_input_ = mask_input
        self.event_shape_ = event_shape
        network = build_network(config)
        network.reset_parameters(torch.Generator().manual_seed(seed))
        if network.config.get("gaussian_skip"):
            network.set_gaussian_skip(self.schedule_)
        network = place(network, self.device_)
        loss = paradigm.training_loss(self.schedule_, device=self.device_,
                                      mask_input=self.mask_input_)
        history = train_network(network, loss, samples, self.training, seed=seed,
                                device=self.device_)
        self.networks_ = {"denoiser": network.eval()}
        paradigm.to(self.device_)
        self.plan_ = paradigm.plan(self.schedule_, self.event_shape_,
                                   torch.Generator().manual_seed(seed + 3))
        networks, histories = paradigm.fit_extra(self, samples, seed)
        self.networks_.update(networks)
        return dict(history, **histories) if histories else history

    @property
    def denoiser(self):
        """The trained noise predictor (or time classifier)."""
        return self.networks_["denoiser"]

    # -------------------------------------------------------------- scoring
    def errors(self, samples, training=False):
        """Errors of ``samples`` in consecutive blocks (``training`` is ignored:
        a trained network generalises, it does not look samples up).

        Yields ``(start, stop, sums, counts)`` as
        :meth:`~skdiffad._core.exact.ExactModel.errors` does: per-entry
        ``sums``/``counts`` for the element-wise paradigms, one score per
        sample (``counts`` ``None``) for the others (see the paradigm's
        :meth:`~skdiffad._core.paradigms.Paradigm.batch_errors`). The image
        paradigms give a map per image, repeated over its channels; unobserved
        entries have ``counts`` 0.
        """
        schedule = self.schedule_.to(self.device_)
        plan = self.plan_.to(self.device_)
        per_sample = max(activation_bytes(module.config, self.event_shape_)
                         for module in self.networks_.values())
        block = block_size(per_sample, self.device_)
        for start, stop, x, mask in samples.blocks(block, self.device_):
            with torch.inference_mode():
                sums, counts = self.paradigm.batch_errors(self.networks_, schedule, plan, x,
                                                          mask, mask_input=self.mask_input_)
            n = stop - start
            yield (start, stop, sums[:n].cpu().numpy(),
                   None if counts is None else counts[:n].cpu().numpy())

    # ----------------------------------------------------------- generation
    def check_generative(self):
        """Raise ``ValueError`` unless the network can draw samples (see the
        paradigm's :meth:`~skdiffad._core.paradigms.Paradigm.check_generative`)."""
        self.paradigm.check_generative()

    def blocks(self, n):
        """``(start, stop)`` of consecutive blocks of ``n`` samples, each small
        enough for the denoiser's activations to fit the device's memory."""
        per_sample = activation_bytes(self.denoiser.config, self.event_shape_)
        block = block_size(per_sample, self.device_)
        return [(start, min(start + block, n)) for start in range(0, n, block)]

    def generator(self, seed):
        """A torch generator on the model's device, seeded with ``seed``."""
        return torch.Generator(device=self.device_).manual_seed(int(seed))

    def draw(self, n, *, seed, sampler="ddpm", n_steps=None, temperature=1.0):
        """``n`` new samples from the prior by the reverse chain
        (:func:`~skdiffad._core.sampling.draw_samples`), in the standardised
        units the network was trained in.

        ``n_steps=None`` runs every step of ``"ddpm"`` and 50 of ``"ddim"``.
        Returns a float32 array of shape ``(n, *event_shape)``.
        """
        self.check_generative()
        n_steps = default_chain_steps(sampler, self.n_timesteps, n_steps)
        generator = self.generator(seed)
        network = self.denoiser
        out = np.empty((n,) + tuple(self.event_shape_), dtype=np.float32)
        for start, stop in self.blocks(n):
            x = draw_samples(network, self.schedule_, (stop - start,) + tuple(self.event_shape_),
                             sampler=sampler, n_steps=n_steps, generator=generator,
                             device=self.device_, mask_input=self.mask_input_,
                             temperature=temperature)
            out[start:stop] = x.cpu().numpy()
        return out

    def edit(self, x0, t_start, *, seed, sampler="ddpm", n_steps=None, temperature=1.0,
             keep=None, target=None, attract=0.0, n_resample=1):
        """Samples ``x0`` (standardised units) noised to ``t_start`` and denoised
        back, with the controls of :func:`~skdiffad._core.sampling.edit_samples`
        (``keep`` and ``target`` are arrays shaped like ``x0`` or broadcastable
        to it). ``n_steps=None``: every step from ``t_start`` for ``"ddpm"``,
        50 for ``"ddim"``. Returns a float32 array shaped like ``x0``.
        """
        self.check_generative()
        n_steps = default_chain_steps(sampler, int(t_start), n_steps)
        x0 = np.asarray(x0, dtype=np.float32)
        if x0.shape[1:] != tuple(self.event_shape_):
            shape = ", ".join(map(str, self.event_shape_))
            raise ValueError(f"samples must have shape (n, {shape}), got {x0.shape}")
        keep = None if keep is None else np.broadcast_to(np.asarray(keep, dtype=bool), x0.shape)
        target = (None if target is None
                  else np.broadcast_to(np.asarray(target, dtype=np.float32), x0.shape))
        generator = self.generator(seed)
        network = self.denoiser
        out = np.empty_like(x0)
        for start, stop in self.blocks(len(x0)):
            # copies: broadcast views are read-only, which torch warns about
            x, k, y = (None if a is None else torch.as_tensor(np.array(a[start:stop]),
                                                               device=self.device_)
                       for a in (x0, keep, target))
            x = edit_samples(network, self.schedule_, x, t_start, sampler=sampler,
                             n_steps=n_steps, generator=generator, mask_input=self.mask_input_,
                             temperature=temperature, keep=k, target=y, attract=attract,
                             n_resample=n_resample)
            out[start:stop] = x.cpu().numpy()
        return out

    # ---------------------------------------------------------- persistence
    def to(self, device):
        """Move the networks (and the modules the paradigm holds) to ``device``."""
        self.device_ = torch.device(device)
        for name, module in getattr(self, "networks_", {}).items():
            self.networks_[name] = place(module, self.device_)
        self.paradigm.to(self.device_)
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
        # a state of skdiffad 0.1 named its paradigm by a string: left as it is, so that
        # the detector holding it refuses it with the versions (skdiffad._persistence)
        if saved is None or not isinstance(self.paradigm, Paradigm):
            return
        networks = {}
        for name, entry in saved.items():
            module = build_network(entry["config"]).to(getattr(torch, entry["dtype"]))
            module.load_state_dict(entry["weights"])
            networks[name] = module.eval()
        self.networks_ = networks
        self.to(loadable_device(self.device_, "the learned model"))
