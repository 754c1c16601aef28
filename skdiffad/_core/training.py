"""The one training loop, and the losses it is used with.

* :func:`denoising_loss` -- epsilon-prediction (DDPM's simple loss), masked on
  missing entries (MissDiff, Ouyang et al. 2023): the network trains on what was
  observed and is never asked to reproduce an imputed value.
* :func:`imputation_loss` -- the same, on the entries hidden by a mask, with the
  visible ones given as conditioning (ImDiffusion, DiffAD).
* :func:`time_loss` -- diffusion-time estimation (DTE, Livernoche et al. 2024): a
  classifier over time bins learns how much noise a point carries.

Every loss takes a batch ``x0`` of shape ``(n, C, *spatial)`` (a table row is
``(n, d)``: ``d`` channels and no spatial axis) and returns one loss per sample.
The loop is fed by a :class:`~skdiffad._core.samples.Samples` object, batch by
batch: the training set never has to fit on the device. Under a ``torch.distributed``
process group (``torchrun``) it trains data-parallel with ``DistributedDataParallel``:
each rank takes its share of every global batch, the gradients are averaged, and the
steps, the EMA and early stopping are those of one process.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import torch
from torch import nn

from .devices import data_parallel_world
from .noise import noise_like
from .progress import Progress

__all__ = [
    "TrainingConfig",
    "train_network",
    "denoising_loss",
    "imputation_loss",
    "time_loss",
    "network_input",
    "imputation_input",
    "prediction_loss",
    "prediction_input",
    "time_bins",
    "training_masks",
]


@dataclass
class TrainingConfig:
    """Settings of :func:`train_network`; names follow scikit-learn's MLP.

    Attributes
    ----------
    max_iter : int
        Maximum number of epochs.
    batch_size : int
        Samples per gradient step.
    learning_rate, weight_decay : float
        AdamW settings.
    ema_decay : float or None
        Decay of the exponential moving average of the weights; ``None`` for none.
    early_stopping : bool
        Hold out ``validation_fraction`` of the samples and stop after
        ``n_iter_no_change`` epochs without a relative improvement of ``tol``;
        the best weights are restored.
    validation_fraction : float
    n_iter_no_change : int
    tol : float
    max_steps : int or None
        Hard cap on the number of gradient steps.
    mixed_precision : bool
        bfloat16 autocast on CUDA (ignored on the CPU).
    verbose : int
        0: silent. 1: a progress bar over the epochs (plain lines when stderr is not
        a terminal, see :class:`~skdiffad._core.progress.Progress`), closed with how
        training ended. 2: also a line per epoch with its training and validation
        losses. Only the first process of a data-parallel group reports.
    label : str or None
        What the progress report calls this training (``"window 64"`` when a
        detector trains one network per window length); ``None``: ``"training"``.
    """

    max_iter: int = 200
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    ema_decay: float | None = None
    early_stopping: bool = True
    validation_fraction: float = 0.1
    n_iter_no_change: int = 20
    tol: float = 1e-4
    max_steps: int | None = None
    mixed_precision: bool = True
    verbose: int = 0
    label: str | None = None


def network_input(x_t: torch.Tensor, mask: torch.Tensor | None, mask_input: bool) -> torch.Tensor:
    """What the network sees: the noisy sample, plus the mask when ``mask_input``.

    Unobserved entries are neutralised earlier, in the clean sample (see
    :func:`observed`): they enter the forward process as the training mean (0)
    and are noised like any value, so the network sees an in-distribution
    ``x_t`` whether or not it was trained with missing values. With
    ``mask_input`` the observation mask is appended as extra channels (axis 1),
    so a network trained on incomplete data can tell an observed mean from a gap.
    """
    if not mask_input:
        return x_t
    m = torch.ones_like(x_t) if mask is None else mask.to(x_t.dtype)
    return torch.cat([x_t, m], dim=1)


def imputation_input(x_t, x0, visible, hidden):
    """Network input of imputation: the noisy hidden entries, the clean visible
    ones and the visibility, stacked on the channel axis (3 x C channels)."""
    return torch.cat([x_t * hidden, x0 * visible, visible.to(x_t.dtype)], dim=1)


def observed(x0: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``x0`` with unobserved entries set to 0, the standardised training mean.

    The losses and scores ignore those entries (MissDiff); this only keeps
    whatever value they held out of the network's input.
    """
    return x0 if mask is None else x0 * mask


def masked_mean(values: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Per-sample mean of ``values`` over the entries ``weight`` keeps (all when
    ``None``); a sample with nothing kept gives 0."""
    dims = tuple(range(1, values.ndim))
    if weight is None:
        return values.mean(dim=dims)
    w = weight.to(values.dtype)
    return (values * w).sum(dim=dims) / w.sum(dim=dims).clamp(min=1)


def random_timesteps(n, n_timesteps, generator, device):
    """``n`` steps drawn uniformly from ``1..n_timesteps``."""
    return torch.randint(1, n_timesteps + 1, (n,), generator=generator, device=device)


def denoising_loss(network, schedule, x0, mask, generator, *, mask_input=False,
                   noise_kind="gaussian"):
    """Per-sample epsilon-prediction error, averaged over the observed entries.

    ``t ~ U{1..T}``, ``x_t = a_t x0 + s_t eps``, loss ``|eps - eps_theta(x_t, t)|^2``
    over observed entries divided by their count (a sample with nothing
    observed gives 0). ``eps`` is i.i.d. Gaussian, or with
    ``noise_kind="simplex"`` standardised multi-scale simplex noise (AnoDDPM,
    images only; see :func:`~skdiffad._core.noise.noise_like`).
    """
    x0 = observed(x0, mask)
    t = random_timesteps(x0.shape[0], schedule.n_timesteps, generator, x0.device)
    noise = noise_like(noise_kind, x0.shape, generator, device=x0.device, dtype=x0.dtype)
    x_t = schedule.add_noise(x0, noise, t)
    eps = network(network_input(x_t, mask, mask_input), t)
    return masked_mean((eps.float() - noise) ** 2, mask)


def training_masks(n, length, generator, device, ndim=3):
    """Hidden entries of each training sample, shape ``(n, 1, ..., 1, length)``.

    Masks hide stripes along the last axis (time, for a series) and are shared
    by the channels. Half the samples get a grating mask (2 to 8 stripes,
    either phase), half an i.i.d. mask hiding each position with probability
    1/2 -- the two kinds the scorers use, so the network has seen the patterns
    it is asked to fill.
    """
    pos = torch.arange(length, device=device)
    n_stripes = torch.randint(2, 9, (n, 1), generator=generator, device=device)
    phase = torch.randint(0, 2, (n, 1), generator=generator, device=device)
    grating = ((pos[None] * n_stripes) // length + phase) % 2 == 1
    random = torch.rand((n, length), generator=generator, device=device) < 0.5
    use_grating = torch.rand((n, 1), generator=generator, device=device) < 0.5
    hidden = torch.where(use_grating, grating, random)
    return hidden.reshape((n,) + (1,) * (ndim - 2) + (length,))


def drawn_masks(masks, n, generator):
    """One of the fixed ``masks`` ``(M, *mask_shape)`` for each of ``n`` samples, at random."""
    pick = torch.randint(len(masks), (n,), generator=generator, device=masks.device)
    return masks[pick]


def imputation_loss(network, schedule, x0, mask, generator, hidden_masks=None):
    """Per-sample epsilon-prediction error on the observed *hidden* entries.

    A mask hides part of each sample: a random one (:func:`training_masks`),
    or one of ``hidden_masks`` (the scoring masks, when the sample always hides
    the same part: a video frame given the ones before it). The network sees
    the noisy hidden entries and the clean visible ones (:func:`imputation_input`)
    and is scored on the noise of the hidden ones.
    """
    x0 = observed(x0, mask)
    t = random_timesteps(x0.shape[0], schedule.n_timesteps, generator, x0.device)
    noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    x_t = schedule.add_noise(x0, noise, t)
    obs = torch.ones_like(x0) if mask is None else mask.to(x0.dtype)
    if hidden_masks is None:
        hidden = training_masks(x0.shape[0], x0.shape[-1], generator, x0.device, x0.ndim)
    else:
        hidden = drawn_masks(hidden_masks.to(x0.device), x0.shape[0], generator)
    hidden = hidden.to(x0.dtype)
    visible = obs * (1 - hidden)
    eps = network(imputation_input(x_t, x0, visible, hidden), t)
    return masked_mean((eps.float() - noise) ** 2, obs * hidden)


def prediction_loss(network, x0, mask, hidden_masks, generator):
    """Per-sample squared error of a plain (non-diffusion) predictor of the hidden
    entries: the network sees the visible entries alone (the hidden ones at 0,
    :func:`prediction_input`) and outputs the sample; scored on the hidden ones."""
    x0 = observed(x0, mask)
    obs = torch.ones_like(x0) if mask is None else mask.to(x0.dtype)
    hidden = drawn_masks(hidden_masks.to(x0.device), x0.shape[0], generator).to(x0.dtype)
    visible = obs * (1 - hidden)
    x_hat = network(prediction_input(x0, visible, hidden), prediction_timesteps(x0))
    return masked_mean((x_hat.float() - x0) ** 2, obs * hidden)


def prediction_input(x0, visible, hidden):
    """Input of a plain predictor: :func:`imputation_input` with nothing noisy
    (the hidden entries at 0)."""
    return imputation_input(torch.zeros_like(x0), x0, visible, hidden)


def prediction_timesteps(x):
    """The constant timestep a plain predictor is run at (0: it has no noise level)."""
    return torch.zeros(x.shape[0], dtype=torch.long, device=x.device)


def time_bins(n_timesteps: int, n_bins: int) -> torch.Tensor:
    """Edges of ``n_bins`` equal-width bins over steps ``1..T`` (length ``n_bins + 1``)."""
    return torch.linspace(0.5, n_timesteps + 0.5, n_bins + 1, dtype=torch.float64)


def time_loss(network, schedule, x0, mask, generator, *, n_bins, t_max=None, mask_input=False):
    """Per-sample cross-entropy of the time bin that produced ``x_t`` (DTE's categorical loss).

    The classifier sees the forward sample in data scale, ``x_t / a_t = x0 + (s_t/a_t) eps``
    (the variance-exploding form of any schedule). Under a variance-preserving
    schedule the marginal of standardised data barely changes with ``t``, so the
    unscaled ``x_t`` would hide the time; in data scale a point far from the
    training data reads as "diffused longer", which is DTE's anomaly score.
    ``t`` is drawn from ``1..t_max`` (default ``T``), split into ``n_bins`` bins.
    """
    x0 = observed(x0, mask)
    t_max = schedule.n_timesteps if t_max is None else t_max
    t = random_timesteps(x0.shape[0], t_max, generator, x0.device)
    noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    a, s = schedule.coefficients(t, x0)
    x_t = x0 + (s / a) * noise
    edges = time_bins(t_max, n_bins).to(x0.device)
    target = torch.bucketize(t.double(), edges[1:-1])
    logits = network(network_input(x_t, mask, mask_input))
    return nn.functional.cross_entropy(logits.float(), target, reduction="none")


class _EMA:
    """Exponential moving average of a network's parameters (Polyak averaging)."""

    def __init__(self, network, decay):
        self.decay = decay
        self.shadow = [p.detach().clone() for p in network.parameters()]

    @torch.no_grad()
    def update(self, network):
        for s, p in zip(self.shadow, network.parameters()):
            s.lerp_(p.detach(), 1 - self.decay)

    @torch.no_grad()
    def swap(self, network):
        for s, p in zip(self.shadow, network.parameters()):
            tmp = p.detach().clone()
            p.copy_(s)
            s.copy_(tmp)


@torch.no_grad()
def _mean_loss(network, loss_fn, samples, index, batch_size, seed, device, autocast):
    network.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    total, count = 0.0, 0
    for start in range(0, len(index), batch_size):
        batch = samples.take(index[start : start + batch_size], device)
        with autocast():
            total += float(loss_fn(network, *batch, gen).double().sum())
        count += batch[0].shape[0]
    network.train()
    return total / max(count, 1)


def _global_sum(value, world):
    """``value`` summed over the data-parallel ranks (itself with one process)."""
    if world > 1:
        import torch.distributed as dist

        value = value.clone()
        dist.all_reduce(value)
    return value


def train_network(network, loss_fn, samples, config: TrainingConfig, *, seed: int, device):
    """Fit ``network`` by minimising ``loss_fn`` with AdamW over mini-batches.

    Parameters
    ----------
    network : torch.nn.Module
        Already initialised and on ``device``.
    loss_fn : callable
        ``loss_fn(network, x, mask, generator) -> per-sample losses``.
    samples : Samples
        The training samples; each batch is fetched with ``samples.take(index,
        device)``, so only one batch at a time is on the device. The validation
        split and each epoch's order come from ``samples.split`` and
        ``samples.epoch_order``: a uniform shuffle for samples in memory; a source
        streamed from Dask blocks visits a few blocks at a time
        (:class:`skdiffad._dask.BlockSamples`).
    config : TrainingConfig
    seed : int
        Seeds the shuffling, the validation split and the training noise through
        private generators; the global RNG is not touched.
    device : torch.device

    Returns
    -------
    history : dict
        ``loss`` (per epoch), ``val_loss`` (when early stopping), ``n_iter`` (epochs
        run), ``n_steps``, ``best_epoch``, ``stopped_early``, ``fit_seconds`` and
        ``world_size`` (data-parallel processes; 1 without a process group).
    """
    group_size, rank = data_parallel_world()  # 0: no process group, single-process
    world = max(group_size, 1)
    cpu_gen = torch.Generator().manual_seed(seed)  # the same on every rank: one shuffle
    dev_gen = torch.Generator(device=device).manual_seed(seed + 1 + 7919 * rank)
    validate = config.early_stopping and config.validation_fraction > 0
    if validate:
        train_idx, val_idx = samples.split(config.validation_fraction, cpu_gen)
        validate = len(val_idx) > 0
    if not validate:
        train_idx, _ = samples.split(0.0, cpu_gen)

    optimiser = torch.optim.AdamW(
        network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    ema = _EMA(network, config.ema_decay) if config.ema_decay else None
    use_amp = config.mixed_precision and torch.device(device).type == "cuda"

    def autocast():
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_amp)

    history = {"loss": [], "val_loss": [], "n_iter": 0, "n_steps": 0,
               "best_epoch": None, "stopped_early": False, "world_size": world}
    best, best_state, stall = math.inf, None, 0
    batch_size = min(config.batch_size, len(train_idx))
    # Data-parallel (a default torch.distributed process group is initialised): every
    # rank shuffles alike and takes its share of each global batch of ``batch_size``;
    # DistributedDataParallel averages the gradients, so each step is the
    # single-process step on the global batch, and the step budget is the same.
    model = network
    if group_size:  # even a group of one trains through DDP (one GPU under torchrun)
        if batch_size < world:
            raise ValueError(f"batch_size={batch_size} cannot be shared by {world} "
                             "data-parallel processes; raise batch_size")
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(
            network,
            device_ids=[torch.device(device).index] if torch.device(device).type == "cuda"
            else None)
    progress = None
    if config.verbose and rank == 0:  # one report for a data-parallel group
        progress = Progress(config.max_iter, config.label or "training", unit="epoch")
    ending = "stopped by an error"  # what the report ends with if the loop raises
    started = time.perf_counter()
    network.train()
    try:
        for epoch in range(config.max_iter):
            budget = (None if config.max_steps is None
                      else (config.max_steps - history["n_steps"]) * batch_size)
            perm = samples.epoch_order(train_idx, cpu_gen, limit=budget)
            running, seen = 0.0, 0
            for start in range(0, len(perm), batch_size):
                idx = perm[start : start + batch_size]
                if len(idx) < world:  # a last batch too small to share: every rank skips it
                    continue
                share = idx[rank::world]
                batch = samples.take(share, device)
                with autocast():
                    losses = loss_fn(model, *batch, dev_gen)
                # this rank's part of the global batch mean; DDP averages over the ranks
                loss = losses.mean() if world == 1 else losses.sum() * (world / len(idx))
                total = _global_sum(losses.detach().sum().double(), world)
                if not torch.isfinite(total):
                    raise FloatingPointError(
                        f"training loss became {float(total) / len(idx)} at epoch "
                        f"{epoch + 1}, step {history['n_steps'] + 1}; lower learning_rate "
                        f"(now {config.learning_rate}) or check the input for extreme values"
                    )
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                if ema is not None:
                    ema.update(network)
                running += float(total)
                seen += len(idx)
                history["n_steps"] += 1
                if config.max_steps is not None and history["n_steps"] >= config.max_steps:
                    break
            history["loss"].append(running / max(seen, 1))
            history["n_iter"] = epoch + 1
            if validate:
                if ema is not None:
                    ema.swap(network)
                val = _mean_loss(network, loss_fn, samples, val_idx, batch_size, seed + 2,
                                 device, autocast)
                if ema is not None:
                    ema.swap(network)
                if not math.isfinite(val):
                    raise FloatingPointError(
                        f"validation loss became {val} at epoch {epoch + 1}; lower "
                        f"learning_rate (now {config.learning_rate}) or check the input for "
                        "extreme values"
                    )
                history["val_loss"].append(val)
                if val < best - config.tol * abs(best if math.isfinite(best) else 1.0):
                    best, stall, history["best_epoch"] = val, 0, epoch + 1
                    best_state = copy.deepcopy(
                        (ema.shadow if ema is not None else None, network.state_dict())
                    )
                else:
                    stall += 1
                if stall >= config.n_iter_no_change:
                    history["stopped_early"] = True
            if progress is not None:
                _report_epoch(progress, config, history, stall if validate else None)
            if history["stopped_early"] or (config.max_steps is not None
                                            and history["n_steps"] >= config.max_steps):
                break
        ending = _ending(history, config)
    finally:
        if progress is not None:
            progress.close(ending)
    if best_state is not None:
        shadow, state = best_state
        network.load_state_dict(state)
        if ema is not None:
            ema.shadow = shadow
    if ema is not None:
        ema.swap(network)
    network.eval()
    history["fit_seconds"] = time.perf_counter() - started
    return history


def _report_epoch(progress, config, history, stall):
    """One epoch done: the bar's figures, and at ``verbose >= 2`` a line of its own
    (``stall``: epochs without improvement, ``None`` without validation)."""
    figures = {"loss": f"{history['loss'][-1]:.4f}"}
    if stall is not None:
        figures["val_loss"] = f"{history['val_loss'][-1]:.4f}"
    progress.update(1, **figures)
    if config.verbose >= 2:
        line = f"{progress.desc}: epoch {history['n_iter']}/{config.max_iter}, " \
               + ", ".join(f"{name}={value}" for name, value in figures.items())
        if stall:
            line += f" (no improvement in {stall} of {config.n_iter_no_change})"
        progress.write(line)


def _ending(history, config):
    """What a progress report ends with: why training stopped short of ``max_iter``
    epochs, or ``None`` when it ran its course (its epochs, or its ``max_steps``)."""
    if not history["stopped_early"]:
        return None
    return (f"stopped early at epoch {history['n_iter']}: no improvement in "
            f"{config.n_iter_no_change} epochs, kept epoch {history['best_epoch']}")
