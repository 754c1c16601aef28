"""Feature extractors and the feature-space distance between a sample and its restoration.

A pixel-wise error sees every small shift of an edge or texture in a
restoration as an anomaly. DDAD (Mousakhan et al. 2023) compares the input and
its reconstruction in the feature maps of a convolutional encoder instead: per
position and level, one minus the cosine similarity of the two feature
vectors, upsampled to the image and averaged over levels. Two extractors serve
:func:`feature_distance_map`:

* :class:`DenoiserFeatures` -- the down path of the trained denoiser itself, read
  at a small timestep; it needs nothing beyond the fitted model;
* :class:`ModuleFeatures` -- any torch module the user supplies (for example a
  pretrained backbone cut at its chosen layers); nothing is downloaded here.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


__all__ = ["DenoiserFeatures", "ModuleFeatures", "feature_distance_map"]

_INTERPOLATION = {1: "linear", 2: "bilinear", 3: "trilinear"}


class DenoiserFeatures(nn.Module):
    """The encoder of a trained convolutional U-Net denoiser as a feature extractor.

    Runs the network's input convolution, its down blocks (with the strided
    convolutions between them) and its middle block at timestep ``t``, and
    returns the output of every down block and of the middle block (followed
    by its attention, when the network has one): the network's own
    :meth:`~skdiffad._core.networks._ConvUNet.encode`, each map cropped back
    to the part that covers the input. The network is read, never modified.

    Parameters
    ----------
    network : ConvDenoiser2d or ConvDenoiser1d
        A trained U-Net denoiser (any ``_ConvUNet``).
    t : int, default=1
        The timestep the blocks are conditioned on: 1 tells the network its
        input is nearly clean, which a sample to be compared is.

    Notes
    -----
    A network trained with ``mask_input`` expects the observation mask as extra
    channels; given a sample with half its ``in_channels``, an all-ones mask
    (every entry observed) is appended.

    Examples
    --------
    >>> import torch
    >>> from skdiffad._core.networks import ConvDenoiser2d
    >>> net = ConvDenoiser2d(1, 1, widths=(4, 8), kernel_size=3, time_embed_dim=8)
    >>> maps = DenoiserFeatures(net)(torch.zeros(2, 1, 28, 28))
    >>> [tuple(m.shape) for m in maps]
    [(2, 4, 28, 28), (2, 8, 14, 14), (2, 8, 14, 14)]
    """

    def __init__(self, network: nn.Module, t: int = 1):
        super().__init__()
        self.network = network
        self.t = int(t)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps of ``x`` of shape ``(n, channels, *spatial)``, finest first:
        ``len(widths) + 1`` tensors with ``widths[i]`` (then ``widths[-1]``) channels."""
        net = self.network
        config = net.config
        if x.shape[1] * 2 == config["in_channels"]:
            x = torch.cat([x, torch.ones_like(x)], dim=1)
        if x.shape[1] != config["in_channels"]:
            raise ValueError(f"the network takes {config['in_channels']} channels, "
                             f"got an input with {x.shape[1]}")
        sizes = x.shape[2:]
        levels, middle, _, _ = net.encode(x, self.t)
        maps = [*levels, middle]
        return [_crop(m, sizes, 2 ** min(i, len(net.pool))) for i, m in enumerate(maps)]


def _crop(h, sizes, stride):
    """The part of a map at ``stride`` that covers an input of ``sizes`` (rounded up)."""
    return h[(..., *(slice(0, -(-s // stride)) for s in sizes))]


class ModuleFeatures(nn.Module):
    """Any user module as a feature extractor, with optional input adaptation.

    Parameters
    ----------
    module : torch.nn.Module
        Maps a batch ``(n, channels, *spatial)`` to a tensor or a list, tuple or
        dict of tensors ``(n, c_l, *spatial_l)``; a dict's values are taken in
        its order. Its weights are the user's: nothing is downloaded.
    in_channels : int, optional
        Channels the module expects. A 1-channel input is repeated to that many
        (a grey image given to an RGB backbone); any other mismatch raises.
    mean, std : sequence of float, optional
        Per-channel normalisation ``(x - mean) / std`` applied after the
        channel repeat (for an ImageNet backbone, its training statistics).

    Examples
    --------
    >>> import torch
    >>> conv = torch.nn.Conv2d(3, 5, 3, padding=1)
    >>> extractor = ModuleFeatures(conv, in_channels=3, mean=(0.5,) * 3, std=(0.2,) * 3)
    >>> [tuple(m.shape) for m in extractor(torch.zeros(2, 1, 9, 9))]
    [(2, 5, 9, 9)]
    """

    def __init__(self, module: nn.Module, *, in_channels: int | None = None,
                 mean=None, std=None):
        super().__init__()
        self.module = module
        self.in_channels = None if in_channels is None else int(in_channels)
        self.register_buffer("mean", None if mean is None else _per_channel(mean, "mean"))
        self.register_buffer("std", None if std is None else _per_channel(std, "std"))
        if self.std is not None and not torch.all(self.std > 0):
            raise ValueError("std must be positive")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The module's feature maps of ``x``, as a list."""
        if self.in_channels is not None and x.shape[1] != self.in_channels:
            if x.shape[1] != 1:
                raise ValueError(f"in_channels={self.in_channels} but the input has "
                                 f"{x.shape[1]} channels (only 1 is repeated)")
            x = x.expand(-1, self.in_channels, *x.shape[2:])
        shape = (1, -1) + (1,) * (x.ndim - 2)
        if self.mean is not None:
            x = x - self.mean.to(x).reshape(shape)
        if self.std is not None:
            x = x / self.std.to(x).reshape(shape)
        out = self.module(x)
        if isinstance(out, torch.Tensor):
            return [out]
        if isinstance(out, Mapping):
            return list(out.values())
        if isinstance(out, (list, tuple)):
            return list(out)
        raise TypeError("the module must return a tensor or a list, tuple or dict of "
                        f"tensors, got {type(out).__name__}")


def _per_channel(values, name):
    v = torch.as_tensor(values, dtype=torch.float32).reshape(-1)
    if v.numel() == 0:
        raise ValueError(f"{name} must hold one value per channel")
    return v


def feature_distance_map(extractor, x: torch.Tensor, x_hat: torch.Tensor, *,
                         size=None, features=None) -> torch.Tensor:
    """DDAD's feature distance between samples and their restorations.

    For each feature level, ``1 - cos(f(x), f(x_hat))`` between the two
    feature vectors at every position, upsampled (linearly, per spatial axis)
    to ``size`` and averaged over the levels. It is computed as half the
    squared distance of the unit-normalised vectors, which equals ``1 - cos``
    and is exactly 0 where the two features agree, also where both vanish
    (where only one vanishes it is 1/2). Works under ``torch.inference_mode``.

    Parameters
    ----------
    extractor : callable
        Maps a batch to a list of feature maps ``(n, c_l, *spatial_l)``, each
        with as many spatial axes as ``x`` (:class:`DenoiserFeatures`,
        :class:`ModuleFeatures`).
    x, x_hat : torch.Tensor of shape (n, channels, *spatial)
        The samples and their restorations.
    size : tuple of int, optional
        Spatial size of the map; the samples' own by default.
    features : list of torch.Tensor, optional
        ``extractor(x)``, when the caller already has it (one sample compared
        with several restorations needs its own features once).

    Returns
    -------
    distance : torch.Tensor of shape (n, 1, *size), float64
        Values in ``[0, 2]``: 0 for features pointing the same way, 1 for
        orthogonal ones, 2 for opposite ones.

    References
    ----------
    A. Mousakhan, T. Brox and J. Tayyub, "Anomaly detection with conditioned
    denoising diffusion models", arXiv:2305.15956, 2023.
    """
    if x.shape != x_hat.shape:
        raise ValueError(f"x and x_hat differ in shape: {tuple(x.shape)} vs {tuple(x_hat.shape)}")
    size = tuple(x.shape[2:]) if size is None else tuple(int(s) for s in size)
    if len(size) != x.ndim - 2 or len(size) not in _INTERPOLATION:
        raise ValueError(f"size must give {x.ndim - 2} spatial sizes (1 to 3), got {size}")
    # Two passes rather than one on the concatenated pair: a module with
    # batch statistics would otherwise mix each sample with its restoration.
    feats = extractor(x) if features is None else features
    feats_hat = extractor(x_hat)
    if len(feats) == 0 or len(feats) != len(feats_hat):
        raise ValueError("the extractor returned no feature maps or different numbers of them")
    total = torch.zeros((x.shape[0], 1) + size, dtype=torch.float64, device=x.device)
    for f, g in zip(feats, feats_hat):
        if f.shape != g.shape or f.ndim != x.ndim or f.shape[0] != x.shape[0]:
            raise ValueError(f"feature maps must be (n, c, *spatial) with the samples' "
                             f"{x.ndim - 2} spatial axes, got {tuple(f.shape)}")
        u = nn.functional.normalize(f.double(), dim=1)
        v = nn.functional.normalize(g.double(), dim=1)
        d = (0.5 * ((u - v) ** 2).sum(dim=1, keepdim=True)).clamp(0.0, 2.0)
        total += nn.functional.interpolate(d, size=size, mode=_INTERPOLATION[len(size)],
                                           align_corners=False)
    return total / len(feats)
