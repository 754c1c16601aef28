"""Denoising networks, built from a small config so they can be rebuilt from weights."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["timestep_embedding", "MLPDenoiser", "ConvDenoiser1d", "ConvDenoiser2d",
           "SegmentationHead2d", "build_network", "NETWORKS", "activation_bytes", "place"]


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps, shape ``(len(t), dim)``.

    Frequencies are geometric from 1 to ``1/max_period`` as in the Transformer and
    DDPM; an odd ``dim`` gets a zero last column.
    """
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half
    )
    args = t.float().reshape(-1, 1) * freqs.reshape(1, -1)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    if dim % 2:
        emb = torch.nn.functional.pad(emb, (0, 1))
    return emb


def _time_condition(network, t, x):
    """Steps ``t`` broadcast over the batch of ``x``, and their embedding through
    ``network.time_mlp``; ``(t, None)`` for a network without time conditioning."""
    if network.time_mlp is None:
        return t, None
    if t is None:
        raise ValueError("this network is timestep-conditioned: pass t")
    t = torch.as_tensor(t, device=x.device).expand(x.shape[0])
    scaled = t.float() * (1000.0 / network.config["n_timesteps"])
    return t, network.time_mlp(timestep_embedding(scaled, network.config["time_embed_dim"]))


def _uniform_init_(module, generator):
    """PyTorch's default uniform(+-1/sqrt(fan_in)) drawn from ``generator``."""
    fan_in = module.weight[0].numel()
    bound = 1.0 / math.sqrt(fan_in)
    with torch.no_grad():
        module.weight.copy_(torch.rand(module.weight.shape, generator=generator) * 2 * bound - bound)
        if module.bias is not None:
            module.bias.copy_(torch.rand(module.bias.shape, generator=generator) * 2 * bound - bound)


class _ResidualBlock(nn.Module):
    """``h + W2 silu(W1 norm(h) + proj(temb))`` with a projected skip when widths differ."""

    def __init__(self, in_dim: int, out_dim: int, cond_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(in_dim)
        self.fc1 = nn.Linear(in_dim, out_dim)
        self.cond = nn.Linear(cond_dim, out_dim) if cond_dim else None
        self.fc2 = nn.Linear(out_dim, out_dim)
        self.skip = nn.Linear(in_dim, out_dim, bias=False) if in_dim != out_dim else None

    def forward(self, h, cond):
        z = self.fc1(self.norm(h))
        if self.cond is not None:
            z = z + self.cond(cond)
        z = self.fc2(nn.functional.silu(z))
        return (h if self.skip is None else self.skip(h)) + z


class MLPDenoiser(nn.Module):
    """Residual MLP for vectors, optionally conditioned on the diffusion timestep.

    Takes samples of shape ``(n, in_channels)``: a table row's features are its
    channels, with no spatial axis.

    Parameters
    ----------
    in_channels : int
        Input width (features, plus a missing-value mask when ``mask_input``).
    out_channels : int
        Output width: the features for an ``eps`` predictor, the number of time
        bins for a time classifier.
    hidden_dims : tuple of int
        Width of each residual block; the depth is ``len(hidden_dims)``.
    time_embed_dim : int
        Width of the sinusoidal timestep embedding; 0 builds an unconditional
        network (used by diffusion-time estimation, which gets no ``t``).
    n_timesteps : int
        ``T`` of the schedule; timesteps are embedded as ``1000 * t / T`` so the
        embedding's frequencies suit any ``T``.
    gaussian_skip : bool
        Add ``c_t x_t`` to the output, with ``c_t = s_t / (a_t^2 + s_t^2)`` set by
        :meth:`set_gaussian_skip` (a buffer, saved with the weights). That is the
        exact noise predictor for standardised Gaussian data, so the MLP learns
        the residual from it. An MLP alone ends in a LayerNorm and its output is
        bounded: far from the training data its noise estimate stops growing, the
        reconstruction and density errors saturate and the score norm even falls
        (anomalies scored as normal). The linear term extrapolates like the true
        noise predictor, ``eps ~ (x_t - a_t x0) / s_t``, which grows with distance.
    """

    def __init__(self, in_channels, out_channels, hidden_dims=(256, 256), time_embed_dim=64,
                 n_timesteps=1000, gaussian_skip=False):
        super().__init__()
        # nn.Linear draws a default init from torch's global RNG; building a detector
        # must not move the user's RNG (the weights come from reset_parameters anyway).
        with torch.random.fork_rng(devices=[]):
            self._build(in_channels, out_channels, hidden_dims, time_embed_dim, n_timesteps)
        self.config["gaussian_skip"] = bool(gaussian_skip)
        if gaussian_skip:
            if not time_embed_dim:
                raise ValueError("gaussian_skip needs a timestep-conditioned network")
            self.register_buffer("skip_coef", torch.zeros(int(n_timesteps) + 1))

    def set_gaussian_skip(self, schedule) -> "MLPDenoiser":
        """Fill the skip coefficients ``s_t / (a_t^2 + s_t^2)`` from a schedule."""
        a, s = schedule.alphas, schedule.sigmas
        if len(a) != len(self.skip_coef):
            raise ValueError("the schedule's length does not match n_timesteps")
        with torch.no_grad():
            self.skip_coef.copy_((s / (a**2 + s**2)).to(self.skip_coef))
        return self

    def _build(self, in_dim, out_dim, hidden_dims, time_embed_dim, n_timesteps):
        hidden_dims = tuple(int(w) for w in hidden_dims)
        self.config = {
            "name": "mlp",
            "in_channels": int(in_dim),
            "out_channels": int(out_dim),
            "hidden_dims": hidden_dims,
            "time_embed_dim": int(time_embed_dim),
            "n_timesteps": int(n_timesteps),
        }
        width = hidden_dims[0]
        self.input = nn.Linear(in_dim, width)
        if time_embed_dim:
            self.time_mlp = nn.Sequential(
                nn.Linear(time_embed_dim, width), nn.SiLU(), nn.Linear(width, width)
            )
            cond_dim = width
        else:
            self.time_mlp = None
            cond_dim = 0
        dims = (width,) + hidden_dims
        self.blocks = nn.ModuleList(
            _ResidualBlock(dims[i], dims[i + 1], cond_dim) for i in range(len(hidden_dims))
        )
        self.out_norm = nn.LayerNorm(dims[-1])
        self.output = nn.Linear(dims[-1], out_dim)

    def reset_parameters(self, generator: torch.Generator) -> "MLPDenoiser":
        """Initialise every weight from ``generator`` (the global RNG is not used).

        Linear layers get PyTorch's default uniform(+-1/sqrt(fan_in)); the output layer
        starts at zero so an untrained denoiser predicts zero noise.
        """
        for module in self.modules():
            if isinstance(module, nn.Linear):
                _uniform_init_(module, generator)
            elif isinstance(module, nn.LayerNorm):
                module.reset_parameters()  # ones and zeros: no randomness involved
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)
        return self

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        """Map ``x`` of shape ``(n, in_channels)`` (and steps ``t``, a scalar or
        ``(n,)``, for a conditioned network) to ``(n, out_channels)``."""
        h = self.input(x)
        t, cond = _time_condition(self, t, x)
        for block in self.blocks:
            h = block(h, cond)
        out = self.output(nn.functional.silu(self.out_norm(h)))
        if self.config["gaussian_skip"]:
            coef = self.skip_coef[t].reshape(-1, 1).to(out.dtype)
            out = out + coef * x[:, : self.config["out_channels"]]
        return out


def _groups(width):
    return next(g for g in (8, 4, 2, 1) if width % g == 0)


_CONV = {1: nn.Conv1d, 2: nn.Conv2d}


class _ConvBlock(nn.Module):
    """``h + conv(silu(norm(conv(silu(norm(h))) + proj(temb))))`` over the spatial axes.

    ``cond_dim=0`` builds an unconditional block (no ``proj(temb)`` term).
    """

    def __init__(self, in_ch: int, out_ch: int, cond_dim: int, kernel_size: int, ndim: int = 1):
        super().__init__()
        conv, pad = _CONV[ndim], kernel_size // 2
        self.norm1 = nn.GroupNorm(_groups(in_ch), in_ch)
        self.conv1 = conv(in_ch, out_ch, kernel_size, padding=pad)
        self.cond = nn.Linear(cond_dim, out_ch) if cond_dim else None
        self.norm2 = nn.GroupNorm(_groups(out_ch), out_ch)
        self.conv2 = conv(out_ch, out_ch, kernel_size, padding=pad)
        self.skip = conv(in_ch, out_ch, 1, bias=False) if in_ch != out_ch else None

    def forward(self, h, cond):
        z = self.conv1(nn.functional.silu(self.norm1(h)))
        if self.cond is not None:
            z = z + self.cond(cond).reshape(cond.shape[0], -1, *([1] * (h.ndim - 2)))
        z = self.conv2(nn.functional.silu(self.norm2(z)))
        return (h if self.skip is None else self.skip(h)) + z


class _Attention(nn.Module):
    """Single-head self-attention over the positions of a feature map, residual."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.GroupNorm(_groups(channels), channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj = nn.Conv1d(channels, channels, 1)

    def forward(self, h, cond=None):
        n, c = h.shape[:2]
        flat = h.reshape(n, c, -1)
        q, k, v = self.qkv(self.norm(flat)).chunk(3, dim=1)
        attn = torch.softmax(q.transpose(1, 2) @ k / math.sqrt(c), dim=-1)  # (n, P, P)
        return h + self.proj(v @ attn.transpose(1, 2)).reshape(h.shape)


class _ConvUNet(nn.Module):
    """Convolutional U-Net over ``(n, channels, *spatial)`` with ``ndim`` spatial axes.

    Each level holds one residual block (GroupNorm, SiLU, convolution, plus a
    projection of the timestep embedding); levels are joined by stride-2
    convolutions on the way down and nearest-neighbour upsampling on the way up,
    with the down-path features concatenated back (Ronneberger et al. 2015, as
    used by DDPM). An input whose spatial sizes are not multiples of
    ``2**(levels-1)`` is padded by repeating its edges and cropped back, so any
    size works. ``time_embed_dim=0`` builds an unconditional U-Net: no time MLP,
    no embedding projections, and ``forward`` takes no ``t``.
    """

    _ndim = 1
    _name = ""

    def __init__(self, in_channels, out_channels, widths=(32, 64), kernel_size=5,
                 time_embed_dim=64, n_timesteps=1000, gaussian_skip=False, attention=False):
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if not widths or kernel_size % 2 == 0:
            raise ValueError("widths must be non-empty and kernel_size odd")
        self.config = {
            "name": self._name, "in_channels": int(in_channels),
            "out_channels": int(out_channels), "widths": widths,
            "kernel_size": int(kernel_size), "time_embed_dim": int(time_embed_dim),
            "n_timesteps": int(n_timesteps), "gaussian_skip": bool(gaussian_skip),
        }
        if attention:
            self.config["attention"] = True
        if gaussian_skip and not time_embed_dim:
            raise ValueError("gaussian_skip needs a timestep-conditioned network")
        conv, ndim = _CONV[self._ndim], self._ndim
        with torch.random.fork_rng(devices=[]):
            if time_embed_dim:
                cond = widths[0] * 2
                self.time_mlp = nn.Sequential(nn.Linear(time_embed_dim, cond), nn.SiLU(),
                                              nn.Linear(cond, cond))
            else:
                cond, self.time_mlp = 0, None
            self.input = conv(in_channels, widths[0], kernel_size, padding=kernel_size // 2)
            self.down = nn.ModuleList()
            self.pool = nn.ModuleList()
            prev = widths[0]
            for i, w in enumerate(widths):
                self.down.append(_ConvBlock(prev, w, cond, kernel_size, ndim))
                if i < len(widths) - 1:
                    self.pool.append(conv(w, w, 4, stride=2, padding=1))
                prev = w
            self.mid = _ConvBlock(prev, prev, cond, kernel_size, ndim)
            self.up = nn.ModuleList()
            for w in reversed(widths[:-1]):
                self.up.append(_ConvBlock(prev + w, w, cond, kernel_size, ndim))
                prev = w
            self.out_norm = nn.GroupNorm(_groups(prev), prev)
            self.output = conv(prev, out_channels, kernel_size, padding=kernel_size // 2)
            self.attention = _Attention(widths[-1]) if attention else None
        if gaussian_skip:
            self.register_buffer("skip_coef", torch.zeros(int(n_timesteps) + 1))

    set_gaussian_skip = MLPDenoiser.set_gaussian_skip

    def reset_parameters(self, generator: torch.Generator):
        """Initialise every weight from ``generator``; the output layer (and the
        attention's projection) start at zero, so an untrained network predicts
        zero noise and attention starts as the identity."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
                _uniform_init_(module, generator)
            elif isinstance(module, nn.GroupNorm):
                module.reset_parameters()
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)
        if self.attention is not None:
            nn.init.zeros_(self.attention.proj.weight)
            nn.init.zeros_(self.attention.proj.bias)
        return self

    def encode(self, x: torch.Tensor, t: torch.Tensor | None = None):
        """The down path: ``(levels, middle, t, cond)``.

        ``levels`` are the outputs of every down block (finest first, at the
        padded size: an input whose sizes are not multiples of
        ``2**(levels-1)`` is padded by repeating its far edges), ``middle`` the
        middle block's output (after the attention, if any), ``t`` the steps
        broadcast over the batch and ``cond`` their embedding (``None`` without
        time conditioning). :meth:`forward` decodes from them;
        :class:`~skdiffad._core.features.DenoiserFeatures` reads them as features.
        """
        multiple = 2 ** (len(self.config["widths"]) - 1)
        pads = [-s % multiple for s in x.shape[2:]]
        h = x
        if any(pads):  # F.pad takes the last axis first: (0, pad_last, 0, pad_before_last, ...)
            h = nn.functional.pad(x, [v for p in reversed(pads) for v in (0, p)],
                                  mode="replicate")
        if h.is_cuda and h.ndim == 4:  # cuDNN's fast 2-D kernels want NHWC
            h = h.contiguous(memory_format=torch.channels_last)
        t, cond = _time_condition(self, t, x)
        h = self.input(h)
        levels = []
        for i, block in enumerate(self.down):
            h = block(h, cond)
            levels.append(h)
            if i < len(self.pool):
                h = self.pool[i](h)
        h = self.mid(h, cond)
        if self.attention is not None:
            h = self.attention(h)
        return levels, h, t, cond

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        """Map ``x`` of shape ``(n, in_channels, *spatial)`` and steps ``t`` (a
        scalar or ``(n,)``; ``None`` for an unconditional network) to
        ``(n, out_channels, *spatial)``."""
        levels, h, t, cond = self.encode(x, t)
        skips = levels[:-1]
        for block in self.up:
            skip = skips.pop()
            h = nn.functional.interpolate(h, size=skip.shape[2:], mode="nearest")
            h = block(torch.cat([h, skip], dim=1), cond)
        out = self.output(nn.functional.silu(self.out_norm(h)))
        out = out[(...,) + tuple(slice(0, s) for s in x.shape[2:])]
        if self.config.get("gaussian_skip"):
            coef = self.skip_coef[t].reshape(-1, *([1] * (x.ndim - 1))).to(out.dtype)
            out = out + coef * x[:, : self.config["out_channels"]]
        return out


class ConvDenoiser1d(_ConvUNet):
    """1-D convolutional U-Net over windows of shape ``(n, channels, length)``.

    See :class:`_ConvUNet` for the architecture.

    Parameters
    ----------
    in_channels : int
        Channels of the input: the series' channels, plus conditioning channels
        (observed values and masks) for imputation.
    out_channels : int
        Channels of the output (the noise estimate of the series' channels).
    widths : tuple of int
        Feature channels of each level; the depth is ``len(widths)``.
    kernel_size : int
        Odd convolution width.
    time_embed_dim : int
        Width of the sinusoidal timestep embedding.
    n_timesteps : int
        ``T`` of the schedule (timesteps are embedded as ``1000 * t / T``).
    gaussian_skip : bool
        Add ``c_t x_t`` (the first ``out_channels`` input channels) to the
        output, as :class:`MLPDenoiser` does, so the noise estimate grows with
        the distance from the training data instead of saturating.
    attention : bool
        Self-attention after the lowest level.
    """

    _ndim, _name = 1, "conv1d"


class ConvDenoiser2d(_ConvUNet):
    """2-D convolutional U-Net over images of shape ``(n, channels, height, width)``.

    The same architecture as :class:`ConvDenoiser1d` with 2-D convolutions, and
    optional self-attention at the lowest resolution; images of any height and
    width (padded to a multiple of ``2**(levels-1)`` by repeating their edges and
    cropped back). Parameters as :class:`ConvDenoiser1d`, with ``kernel_size``
    the side of the square kernels.
    """

    _ndim, _name = 2, "conv2d"


class SegmentationHead2d(_ConvUNet):
    """Discriminative head: per-pixel anomaly logits from an image and its restoration.

    The segmentation network of DRAEM (Zavrtanik et al. 2021) as used by
    DiffusionAD (Zhang et al. 2023): it sees an image concatenated with its
    reconstruction on the channel axis and learns, from good images with
    synthetic defects pasted in, where the two disagree in a way that matters.
    It is the 2-D U-Net of :class:`ConvDenoiser2d` without time conditioning
    (see :class:`_ConvUNet`); images of any height and width.

    Parameters
    ----------
    in_channels : int
        Input channels: ``2 * C`` for ``C``-channel images (the image, then its
        reconstruction).
    out_channels : int, default=1
        Logit maps; one, the log-odds that a pixel is anomalous.
    widths : tuple of int, default=(16, 32)
        Feature channels of each level; the depth is ``len(widths)``.
    kernel_size : int, default=3
        Odd side of the square kernels.
    attention : bool, default=False
        Self-attention after the lowest level.

    Notes
    -----
    :meth:`reset_parameters` zeroes the output layer, so an untrained head
    gives logit 0 (probability 1/2) everywhere.

    References
    ----------
    Zavrtanik, Kristan and Skocaj, "DRAEM -- a discriminatively trained
    reconstruction embedding for surface anomaly detection", ICCV 2021.
    Zhang, Wang, Wu and Jiang, "DiffusionAD: norm-guided one-step denoising
    diffusion for anomaly detection", arXiv:2303.08730, 2023.

    Examples
    --------
    >>> import torch
    >>> head = SegmentationHead2d(2, widths=(4, 8))
    >>> head = head.reset_parameters(torch.Generator().manual_seed(0))
    >>> head(torch.zeros(3, 2, 28, 28)).shape
    torch.Size([3, 1, 28, 28])
    """

    _ndim, _name = 2, "seghead2d"

    def __init__(self, in_channels, out_channels=1, widths=(16, 32), kernel_size=3,
                 attention=False):
        super().__init__(in_channels, out_channels, widths, kernel_size, time_embed_dim=0,
                         attention=attention)
        self.config = {key: self.config[key] for key in
                       ("name", "in_channels", "out_channels", "widths", "kernel_size")}
        if attention:
            self.config["attention"] = True


NETWORKS = {"mlp": MLPDenoiser, "conv1d": ConvDenoiser1d, "conv2d": ConvDenoiser2d,
            "seghead2d": SegmentationHead2d}


def place(network: nn.Module, device) -> nn.Module:
    """Move ``network`` to ``device``; 2-D networks go channels-last on CUDA."""
    device = torch.device(device)
    network = network.to(device)
    if device.type == "cuda" and isinstance(network, _ConvUNet) and network._ndim == 2:
        network = network.to(memory_format=torch.channels_last)
    return network


def build_network(config: dict) -> nn.Module:
    """Rebuild a network from its ``config`` (the inverse of ``network.config``)."""
    config = dict(config)
    name = config.pop("name")
    return NETWORKS[name](**config)


def activation_bytes(config: dict, event_shape) -> int:
    """A generous estimate of the memory one sample takes in a forward pass.

    Scoring blocks are sized from it (see
    :func:`~skdiffad._core.samples.block_size`): a dozen float32 feature maps
    of the network's widest layer, over the sample's spatial size.
    """
    spatial = math.prod(int(s) for s in tuple(event_shape)[1:])
    widths = config.get("hidden_dims") or config.get("widths") or (1,)
    widest = max(max(widths), config.get("in_channels", 1), config.get("out_channels", 1))
    return 4 * 12 * int(widest) * max(spatial, 1)
