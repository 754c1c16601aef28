"""The learned model: a denoiser (or time classifier) trained by the one loop.

Besides the survey's paradigms of one network, two image paradigms build on a
reconstruction-trained denoiser: ``"feature"`` compares every restoration with
its image in the feature maps of an encoder (DDAD), and ``"discriminative"``
trains a segmentation head on images with pasted synthetic defects and reads
its per-pixel probability (DRAEM, DiffusionAD).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import numbers

import numpy as np
import torch
from torch import nn

from .devices import loadable_device
from .discriminative import segmentation_loss, segmentation_map
from .features import DenoiserFeatures, ModuleFeatures
from .networks import activation_bytes, build_network, place
from .noise import NOISE_KINDS
from .paradigms import batch_errors, feature_errors
from .plans import RECONSTRUCTION_RANGE, make_plan
from .samples import block_size
from .sampling import draw_samples, edit_samples
from .schedules import make_schedule
from .synthetic import (
    DEFECT_SOURCES,
    HARMONISE_LEVEL,
    POOL_SIZE,
    DefectPool,
    harmonised_anomalies,
)
from .training import (
    TrainingConfig,
    denoising_loss,
    imputation_loss,
    time_loss,
    train_network,
)

__all__ = ["GENERATIVE_PARADIGMS", "IMAGE_PARADIGMS", "LEARNED_PARADIGMS", "LearnedModel"]

LEARNED_PARADIGMS = ("reconstruction", "imputation", "density", "score", "time", "feature",
                     "discriminative")

#: Paradigms whose network is an unconditional noise predictor, which can draw
#: new samples: not ``"time"`` (a classifier) nor ``"imputation"`` (it predicts
#: hidden entries from visible ones).
GENERATIVE_PARADIGMS = ("reconstruction", "density", "score", "feature", "discriminative")

#: Paradigms that need image samples, of event shape ``(C, H, W)``.
IMAGE_PARADIGMS = ("feature", "discriminative")

# Paradigms scored over a reconstruction plan, whose denoiser may be trained and
# scored with simplex noise.
_RECONSTRUCTING = ("reconstruction", "feature", "discriminative")

# Paradigms whose reconstructions can be conditioned on the sample (DDAD): the
# discriminative head reads plain reconstructions, in training and in scoring.
_GUIDED = ("reconstruction", "feature")

# Largest noise-to-signal ratio s_t/a_t that diffusion-time estimation covers, in
# units of the standardised data (DTE's own schedule stops near 1.9): noise
# levels well above the data's unit spread all look alike and would waste the
# classifier's bins.
TIME_MAX_NOISE = 2.0

# Width of the sinusoidal timestep embedding of every denoiser.
TIME_EMBED_DIM = 64


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
    paradigm : {"reconstruction", "imputation", "density", "score", "time", \
"feature", "discriminative"}
        How samples are scored (see :mod:`~skdiffad._core.paradigms`); ``"time"``
        trains a classifier over time bins, every other paradigm a noise
        predictor. Two paradigms are for images (samples ``(C, H, W)``) only,
        and both train the denoiser as ``"reconstruction"`` does:

        * ``"feature"`` -- DDAD's feature distance: each image is reconstructed
          over the reconstruction plan's grid of ``t0`` and antithetic noise,
          and every restoration is compared with the image by
          :func:`~skdiffad._core.features.feature_distance_map`; the maps are
          averaged with the plan's weights and shared by the channels.
        * ``"discriminative"`` -- DRAEM/DiffusionAD: a segmentation head
          (:class:`~skdiffad._core.networks.SegmentationHead2d`) is trained,
          after the denoiser and by the same loop, to find synthetic defects
          pasted into the training images from the image and its
          reconstruction at the plan's middle ``t0``
          (:func:`~skdiffad._core.discriminative.segmentation_loss`); an
          image's errors are the head's per-pixel probability
          (:func:`~skdiffad._core.discriminative.segmentation_map`, averaged
          over the antithetic noise pair of that ``t0``), shared by the channels.
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
    noise_kind : {"gaussian", "simplex"}, default="gaussian"
        Noise of the denoiser's training and of the reconstruction plan.
        ``"simplex"`` (AnoDDPM's multi-scale simplex noise, see
        :mod:`~skdiffad._core.noise`) needs images and a paradigm that
        reconstructs (``"reconstruction"``, ``"feature"``,
        ``"discriminative"``); the others' maths assumes Gaussian noise.
    guidance : float, default=0.0
        DDAD's conditioning weight of every reconstruction
        (:func:`~skdiffad._core.paradigms.reconstruct_conditioned`), for
        ``"reconstruction"`` and ``"feature"``; 0 is the plain reconstruction,
        bit for bit.
    feature_extractor : torch.nn.Module, optional
        ``"feature"``: the encoder the distance is measured in. ``None`` reads
        the trained denoiser's own down path
        (:class:`~skdiffad._core.features.DenoiserFeatures`, a ``"conv2d"``
        network only). A user module maps a batch ``(n, C, H, W)`` to a tensor
        or a list, tuple or dict of feature maps; it is wrapped in
        :class:`~skdiffad._core.features.ModuleFeatures` (unless it is one),
        copied, put in eval mode and never trained. Ignored by the other
        paradigms.
    head : dict, optional
        ``"discriminative"``: settings of the segmentation head, e.g.
        ``{"widths": (16, 32), "kernel_size": 3}`` (the
        :class:`~skdiffad._core.networks.SegmentationHead2d` defaults when
        ``None``); its input channels (``2 C``: the image and its
        reconstruction) and single output are filled in.
    head_steps : int, optional
        ``"discriminative"``: gradient steps of the head's training; ``None``
        gives it the denoiser's budget (``training.max_steps``). The head is
        trained with a copy of ``training`` whose ``max_steps`` is this.
    head_defects : {"synthetic", "generated"}, default="synthetic"
        ``"discriminative"``: the head's training defects. ``"synthetic"``
        pastes DRAEM's patches into each batch
        (:func:`~skdiffad._core.synthetic.synthetic_anomalies`);
        ``"generated"`` draws, once after the denoiser is trained, a pool of
        up to :data:`~skdiffad._core.synthetic.POOL_SIZE` training images
        with such patches harmonised by the denoiser
        (:func:`~skdiffad._core.synthetic.harmonised_anomalies`), and feeds
        the head from it (:class:`~skdiffad._core.synthetic.DefectPool`).

    Attributes
    ----------
    networks_ : dict of str to torch.nn.Module
        The trained modules by role: ``"denoiser"``, and ``"head"`` for
        ``"discriminative"``. Each is pickled as its config and CPU weights.
    feature_module_ : ModuleFeatures or None
        ``"feature"`` with a user ``feature_extractor``: a copy of it on
        ``device_``, in eval mode; ``None`` otherwise. Having no config, it is
        pickled by torch's own pickling of modules (its weights saved on the
        CPU), so its class must be importable where the model is loaded.
    schedule_ : NoiseSchedule
    plan_ : ScoringPlan
        The fixed grid, noise and masks of scoring.
    mask_input_ : bool
        Whether the training samples had gaps (the network then also sees the mask).
    device_ : torch.device
    """

    #: A network is trained.
    trains = True

    def __init__(self, paradigm, network, *, beta_schedule="linear", n_timesteps=1000,
                 training=None, n_grid=8, n_inference_steps=5, n_bins=7,
                 t0_range=RECONSTRUCTION_RANGE, hidden=None, noise_kind="gaussian",
                 guidance=0.0, feature_extractor=None, head=None, head_steps=None,
                 head_defects="synthetic"):
        if paradigm not in LEARNED_PARADIGMS:
            raise ValueError(f"paradigm must be one of {LEARNED_PARADIGMS}, got {paradigm!r}")
        if noise_kind not in NOISE_KINDS:
            raise ValueError(f"noise_kind must be one of {NOISE_KINDS}, got {noise_kind!r}")
        if noise_kind != "gaussian" and paradigm not in _RECONSTRUCTING:
            raise ValueError(f"noise_kind={noise_kind!r} is for the paradigms that "
                             f"reconstruct, {_RECONSTRUCTING}; {paradigm!r} assumes Gaussian "
                             "noise")
        guidance = float(guidance)
        if not (guidance >= 0.0 and math.isfinite(guidance)):
            raise ValueError(f"guidance must be a finite number >= 0, got {guidance!r}")
        if guidance and paradigm not in _GUIDED:
            raise ValueError(f"guidance conditions the reconstructions of {_GUIDED}; "
                             f"paradigm {paradigm!r} takes none (got guidance={guidance})")
        if feature_extractor is not None and not isinstance(feature_extractor, nn.Module):
            raise TypeError("feature_extractor must be a torch.nn.Module or None, got "
                            f"{type(feature_extractor).__name__}")
        if head_steps is not None and (isinstance(head_steps, bool)
                                       or not isinstance(head_steps, numbers.Integral)
                                       or head_steps < 1):
            raise ValueError(f"head_steps must be a positive integer or None, got {head_steps!r}")
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
        self.noise_kind = noise_kind
        self.guidance = guidance
        self.feature_extractor = feature_extractor
        self.head = None if head is None else dict(head)
        self.head_steps = None if head_steps is None else int(head_steps)
        if head_defects not in DEFECT_SOURCES:
            raise ValueError(f"head_defects must be one of {DEFECT_SOURCES}, got {head_defects!r}")
        if head_defects == "generated" and noise_kind != "gaussian":
            raise ValueError("head_defects='generated' harmonises defects with the denoiser's "
                             "reverse chain, which needs noise_kind='gaussian'")
        self.head_defects = head_defects

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
            noise_kind = self.noise_kind

            def loss(network, x, mask, generator):
                return denoising_loss(network, schedule, x, mask, generator,
                                      mask_input=mask_input, noise_kind=noise_kind)
        return loss

    def _check_samples(self, event_shape):
        """Refuse the settings that need images when the samples are not."""
        image = len(event_shape) == 3
        if self.paradigm in IMAGE_PARADIGMS and not image:
            raise ValueError(f"paradigm {self.paradigm!r} needs images: samples of shape "
                             f"(C, H, W), got samples of shape {event_shape}")
        if self.noise_kind == "simplex" and not image:
            raise ValueError("noise_kind='simplex' needs images: samples of shape (C, H, W), "
                             f"got samples of shape {event_shape}")
        if (self.paradigm == "feature" and self.feature_extractor is None
                and self.network.get("name") != "conv2d"):
            raise ValueError("paradigm 'feature' without a feature_extractor reads the "
                             "denoiser's encoder, which needs the 'conv2d' network (got "
                             f"{self.network.get('name')!r})")

    def _head_grid_point(self):
        """Index of the plan's middle ``t0``, the one the segmentation head learns and scores at."""
        return len(self.plan_.timesteps) // 2

    def _fit_head(self, samples, seed):
        """Train the segmentation head on the frozen denoiser's reconstructions."""
        channels = int(self.event_shape_[0])
        config = {"name": "seghead2d", **(self.head or {}),
                  "in_channels": 2 * channels, "out_channels": 1}
        head = build_network(config)
        head.reset_parameters(torch.Generator().manual_seed(seed + 4))
        head = place(head, self.device_)
        denoiser = self.networks_["denoiser"]
        schedule = self.schedule_.to(self.device_)
        t0 = int(self.plan_.timesteps[self._head_grid_point()])
        n_steps, noise_kind, mask_input = (self.n_inference_steps, self.noise_kind,
                                           self.mask_input_)

        defects = (self._defect_pool(samples, seed + 6)
                   if self.head_defects == "generated" else None)

        def loss(network, x, mask, generator):
            return segmentation_loss(network, denoiser, schedule, x, mask, generator, t0=t0,
                                     n_steps=n_steps, noise_kind=noise_kind,
                                     mask_input=mask_input, defects=defects)

        max_steps = self.training.max_steps if self.head_steps is None else self.head_steps
        config = dataclasses.replace(self.training, max_steps=max_steps)
        history = train_network(head, loss, samples, config, seed=seed + 5, device=self.device_)
        self.networks_["head"] = head.eval()
        return history

    def _defect_pool(self, samples, seed):
        """Generated defects of up to ``POOL_SIZE`` training images (on the device)."""
        order = torch.randperm(len(samples), generator=torch.Generator().manual_seed(seed))
        x, _ = samples.take(order[:POOL_SIZE].sort().values, self.device_)
        return DefectPool(*self.harmonise(x, seed=seed, source=x))

    def harmonise(self, x, *, seed, source, n_steps=100, n_resample=3, opacity=None):
        """:func:`~skdiffad._core.synthetic.harmonised_anomalies` of images ``x``
        (a tensor, standardised units) in memory-sized blocks, with textures from
        ``source``; returns ``(images, masks)`` tensors on the device."""
        self.check_generative()
        generator = self._generator(seed)
        t_start = self.schedule_.last_step_below(HARMONISE_LEVEL)
        options = {} if opacity is None else {"opacity": opacity}
        x = x.to(self.device_)
        source = source.to(self.device_)
        images, masks = [], []
        for start, stop in self._blocks(len(x)):
            with torch.no_grad():
                aug, mask = harmonised_anomalies(
                    self.networks_["denoiser"], self.schedule_, x[start:stop], generator,
                    t_start=t_start, n_steps=n_steps, n_resample=n_resample, source=source,
                    **options)
            images.append(aug)
            masks.append(mask)
        return torch.cat(images), torch.cat(masks)

    def fit(self, samples, seed, device):
        """Train the network on ``samples`` and draw the scoring plan.

        ``"discriminative"`` then trains the segmentation head on the same
        samples, with the denoiser frozen.

        Returns
        -------
        history : dict
            :func:`~skdiffad._core.training.train_network`'s record of the
            denoiser; for ``"discriminative"`` the head's record under
            ``"head"``.
        """
        event_shape = tuple(samples.event_shape)
        self._check_samples(event_shape)
        self.device_ = torch.device(device)
        self.schedule_ = make_schedule(self.beta_schedule, self.n_timesteps)
        self.mask_input_ = bool(samples.has_mask)
        self.event_shape_ = event_shape
        network = build_network(self._network_config(self.event_shape_))
        network.reset_parameters(torch.Generator().manual_seed(seed))
        if network.config.get("gaussian_skip"):
            network.set_gaussian_skip(self.schedule_)
        network = place(network, self.device_)
        history = train_network(network, self._loss(), samples, self.training, seed=seed,
                                device=self.device_)
        self.networks_ = {"denoiser": network.eval()}
        self.feature_module_ = None
        if self.paradigm == "feature" and self.feature_extractor is not None:
            extractor = self.feature_extractor
            if not isinstance(extractor, ModuleFeatures):
                extractor = ModuleFeatures(extractor)
            # a copy: moving it to the device or to eval mode leaves the user's alone
            self.feature_module_ = copy.deepcopy(extractor).to(self.device_).eval()
        plan_paradigm = "reconstruction" if self.paradigm in _RECONSTRUCTING else self.paradigm
        self.plan_ = make_plan(
            plan_paradigm, self.schedule_, self.event_shape_,
            torch.Generator().manual_seed(seed + 3), n_grid=self.n_grid,
            n_inference_steps=self.n_inference_steps, n_bins=self.n_bins,
            t_max=self._time_max_step() if self.paradigm == "time" else None,
            t0_range=self.t0_range, hidden=self.hidden, noise_kind=self.noise_kind,
            guidance=self.guidance,
        )
        if self.paradigm == "discriminative":
            history = dict(history, head=self._fit_head(samples, seed))
        return history

    # -------------------------------------------------------------- scoring
    def errors(self, samples, training=False):
        """Errors of ``samples`` in consecutive blocks (``training`` is ignored:
        a trained network generalises, it does not look samples up).

        Yields ``(start, stop, sums, counts)`` as
        :meth:`~skdiffad._core.exact.ExactModel.errors` does: per-entry
        ``sums``/``counts`` for the element-wise paradigms, one score per
        sample (``counts`` ``None``) for ``"score"`` and ``"time"``. The image
        paradigms give a map per image, repeated over its channels: ``"feature"``
        the weighted feature distance (``counts`` the summed plan weights, 1),
        ``"discriminative"`` the head's probability (``counts`` 1); unobserved
        entries have ``counts`` 0.
        """
        network = self.networks_["denoiser"]
        schedule = self.schedule_.to(self.device_)
        plan = self.plan_.to(self.device_)
        per_sample = max(activation_bytes(module.config, self.event_shape_)
                         for module in self.networks_.values())
        block = block_size(per_sample, self.device_)
        if self.paradigm == "feature":
            extractor = self.feature_module_
            if extractor is None:
                extractor = DenoiserFeatures(network)
        for start, stop, x, mask in samples.blocks(block, self.device_):
            with torch.inference_mode():
                if self.paradigm == "feature":
                    sums, counts = feature_errors(extractor, network, schedule, plan, x, mask,
                                                  mask_input=self.mask_input_)
                elif self.paradigm == "discriminative":
                    sums, counts = self._segmentation_errors(schedule, plan, x, mask)
                else:
                    sums, counts = batch_errors(network, schedule, plan, x, mask,
                                                mask_input=self.mask_input_)
            n = stop - start
            yield (start, stop, sums[:n].cpu().numpy(),
                   None if counts is None else counts[:n].cpu().numpy())

    def _segmentation_errors(self, schedule, plan, x, mask):
        """The head's probability map of a batch, repeated over the channels."""
        k = self._head_grid_point()
        probs = segmentation_map(self.networks_["head"], self.networks_["denoiser"], schedule,
                                 x, plan.noise[k], int(plan.timesteps[k]),
                                 plan.n_inference_steps, mask, mask_input=self.mask_input_)
        counts = (torch.ones(x.shape, dtype=torch.float64, device=x.device) if mask is None
                  else mask.to(torch.float64))
        return probs * counts, counts

    # ----------------------------------------------------------- generation
    def check_generative(self):
        """Raise ``ValueError`` unless the network can draw samples."""
        if self.paradigm not in GENERATIVE_PARADIGMS:
            kind = ("a time classifier" if self.paradigm == "time"
                    else "a conditional imputer of hidden entries")
            raise ValueError(f"paradigm {self.paradigm!r} trains {kind}, not a noise predictor "
                             f"of whole samples; the paradigms that can sample are "
                             f"{GENERATIVE_PARADIGMS}")
        if self.noise_kind != "gaussian":
            raise ValueError(f"the denoiser was trained on {self.noise_kind} noise, and the "
                             "reverse chains draw Gaussian noise; train it with Gaussian noise "
                             "to sample")

    def _blocks(self, n):
        per_sample = activation_bytes(self.networks_["denoiser"].config, self.event_shape_)
        block = block_size(per_sample, self.device_)
        return [(start, min(start + block, n)) for start in range(0, n, block)]

    def _generator(self, seed):
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
        generator = self._generator(seed)
        network = self.networks_["denoiser"]
        out = np.empty((n,) + tuple(self.event_shape_), dtype=np.float32)
        for start, stop in self._blocks(n):
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
        generator = self._generator(seed)
        network = self.networks_["denoiser"]
        out = np.empty_like(x0)
        for start, stop in self._blocks(len(x0)):
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
        """Move the networks (and a user feature extractor) to ``device``."""
        self.device_ = torch.device(device)
        for name, module in getattr(self, "networks_", {}).items():
            self.networks_[name] = place(module, self.device_)
        if getattr(self, "feature_module_", None) is not None:
            self.feature_module_ = self.feature_module_.to(self.device_)
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
        extractor = state.get("feature_module_")
        if extractor is not None and any(
                t.device.type != "cpu" for t in (*extractor.parameters(), *extractor.buffers())):
            state["feature_module_"] = copy.deepcopy(extractor).to("cpu")
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
