"""Noise for the forward process: i.i.d. Gaussian, or smooth multi-scale simplex noise.

DDPM diffuses with i.i.d. Gaussian noise, whose power is spread evenly over all
spatial frequencies. Its high-frequency part swamps fine detail long before the
low-frequency part has moved a large defect, so a partly diffused image still
shows the defect and the reconstruction keeps it. AnoDDPM (Wyatt et al. 2022)
diffuses with multi-scale simplex noise instead: most of its power sits at low
spatial frequencies, so a few steps already wash out whole blobs, and the
denoiser redraws them as normal tissue.

* :func:`simplex_noise` -- standardised fractal simplex noise, one independent
  field per sample and channel, drop-in for ``torch.randn`` in
  ``x_t = a_t x0 + s_t eps``;
* :func:`noise_like` -- the noise of a kind (``"gaussian"`` or ``"simplex"``);
* :func:`noise_mask` -- blob-shaped region masks from thresholded low-frequency
  simplex noise (DRAEM's Perlin masks), for synthetic anomalies.

Everything is drawn from the ``torch.Generator`` it is given and computed on
that generator's device; the global RNG is never touched.

References
----------
Wyatt, Leach, Schmon, Willcocks. "AnoDDPM: Anomaly detection with denoising
diffusion probabilistic models using simplex noise." CVPR Workshops, 2022.

Zavrtanik, Kristan, Skocaj. "DRAEM -- A discriminatively trained reconstruction
embedding for surface anomaly detection." ICCV, 2021.

Gustavson. "Simplex noise demystified." Linkoping University, 2005.
"""

from __future__ import annotations

import math

import torch

__all__ = ["NOISE_KINDS", "noise_like", "noise_mask", "simplex_noise"]

#: The kinds of noise :func:`noise_like` draws.
NOISE_KINDS = ("gaussian", "simplex")

# Skew and unskew factors of the 2-D simplex grid: the skew maps the plane onto a
# square lattice whose cells split into two equilateral-ish triangles.
_F2 = 0.5 * (math.sqrt(3.0) - 1.0)
_G2 = (3.0 - math.sqrt(3.0)) / 6.0
# Points evaluated at once (fields x pixels): bounds the intermediate tensors.
_CHUNK = 1 << 21


def _image_shape(shape, what):
    shape = tuple(int(s) for s in shape)
    if len(shape) < 3 or min(shape) < 1:
        raise ValueError(
            f"{what} needs images: shape must be (n, C, H, W) with positive sizes, "
            f"got {shape}"
        )
    return shape


def _simplex_octave(x, y, grad_x, grad_y, n_cols):
    """2-D simplex noise at points ``(x, y)`` of shape ``(F, H, W)``.

    ``grad_x, grad_y`` of shape ``(F, n_rows * n_cols)`` hold each field's unit
    gradient at the skewed lattice vertex ``(i, j)``, flattened as
    ``i * n_cols + j``. A point's value is the sum over the three corners of its
    simplex of ``max(0, 1/2 - |d|^2)^4 <g, d>``, ``d`` the offset from the corner.
    """
    s = (x + y) * _F2
    i = torch.floor(x + s)
    j = torch.floor(y + s)
    t = (i + j) * _G2
    x0 = x - i + t
    y0 = y - j + t
    # the lower triangle (x0 > y0) steps along i first, the upper along j
    i1 = (x0 > y0).to(x.dtype)
    j1 = 1.0 - i1
    corners = (
        (i, j, x0, y0),
        (i + i1, j + j1, x0 - i1 + _G2, y0 - j1 + _G2),
        (i + 1.0, j + 1.0, x0 - 1.0 + 2.0 * _G2, y0 - 1.0 + 2.0 * _G2),
    )
    total = torch.zeros_like(x)
    n_fields = x.shape[0]
    for ci, cj, dx, dy in corners:
        index = (ci.long() * n_cols + cj.long()).reshape(n_fields, -1)
        gx = torch.gather(grad_x, 1, index).view_as(x)
        gy = torch.gather(grad_y, 1, index).view_as(x)
        falloff = (0.5 - dx * dx - dy * dy).clamp(min=0.0)
        falloff = falloff * falloff
        total += falloff * falloff * (gx * dx + gy * dy)
    return total


def simplex_noise(shape, generator, *, octaves=6, frequency=1 / 64, persistence=0.8,
                  device=None):
    """Fractal 2-D simplex noise, standardised per field.

    Each ``(sample, channel)`` field is a sum of ``octaves`` independent simplex
    noise layers,

    ``f(u, v) = sum_{k=0}^{octaves-1} persistence^k S_k(2^k frequency (u, v) + o_k)``,

    with ``(u, v)`` the pixel's column and row, ``S_k`` simplex noise over a
    lattice of random unit gradients and ``o_k`` a random offset. The field is
    then standardised over its pixels to mean 0 and variance 1, so it can
    replace unit Gaussian noise in ``x_t = a_t x0 + s_t eps``: the noise level
    of every step is unchanged, only its spatial spectrum moves to low
    frequencies.

    Parameters
    ----------
    shape : tuple of int
        ``(n, C, H, W)``; any number of leading axes, each index an independent
        field over the last two axes.
    generator : torch.Generator
        Everything is drawn from it and computed on its device.
    octaves : int, default=6
        Layers at doubling frequency.
    frequency : float, default=1/64
        Lattice frequency of the first octave in cycles per pixel: its blobs are
        about ``1 / frequency`` pixels across (a period of 64 pixels, as AnoDDPM
        uses on 256-pixel images). Octave ``k`` runs at ``2^k frequency``.
    persistence : float, default=0.8
        Amplitude ratio of consecutive octaves: lower gives smoother noise.
    device : torch.device or str, optional
        Where the result goes; default the generator's device.

    Returns
    -------
    noise : torch.Tensor of shape ``shape``, float32
        Each field has mean 0 and variance 1 over its pixels. A field that
        cannot be standardised -- a single pixel, or one numerically constant --
        is replaced by i.i.d. standard normal entries from the same generator,
        which have the right moments in expectation.

    Examples
    --------
    >>> import torch
    >>> eps = simplex_noise((2, 3, 32, 48), torch.Generator().manual_seed(0))
    >>> eps.shape
    torch.Size([2, 3, 32, 48])
    """
    shape = _image_shape(shape, "simplex noise")
    if int(octaves) < 1:
        raise ValueError(f"octaves must be a positive integer, got {octaves}")
    if not frequency > 0:
        raise ValueError(f"frequency must be positive, got {frequency}")
    work = generator.device
    height, width = shape[-2:]
    n_fields = math.prod(shape[:-2])
    cols = torch.arange(width, device=work, dtype=torch.float32)
    rows = torch.arange(height, device=work, dtype=torch.float32)
    field = torch.zeros((n_fields, height, width), device=work, dtype=torch.float32)
    chunk = max(1, _CHUNK // (height * width))
    for k in range(int(octaves)):
        freq = float(frequency) * 2.0**k
        amplitude = float(persistence) ** k
        offset = torch.rand((2, n_fields, 1, 1), generator=generator, device=work)
        # the skewed lattice indices of the field's points lie in [0, n_rows) x [0, n_cols)
        x_max = (width - 1) * freq + 1.0
        y_max = (height - 1) * freq + 1.0
        skew = (x_max + y_max) * _F2
        n_rows = math.floor(x_max + skew) + 3
        n_cols = math.floor(y_max + skew) + 3
        angle = torch.rand((n_fields, n_rows * n_cols), generator=generator, device=work)
        angle = angle * (2.0 * math.pi)
        grad_x, grad_y = torch.cos(angle), torch.sin(angle)
        for start in range(0, n_fields, chunk):
            part = slice(start, start + chunk)
            x = cols * freq + offset[0, part]
            y = rows[:, None] * freq + offset[1, part]
            x, y = torch.broadcast_tensors(x, y)
            field[part] += amplitude * _simplex_octave(x, y, grad_x[part], grad_y[part], n_cols)
    return _standardise(field, generator).reshape(shape).to(device or work)


def _standardise(field, generator):
    """Fields ``(F, H, W)`` to mean 0, variance 1; degenerate ones become Gaussian."""
    flat = field.reshape(field.shape[0], -1).double()
    magnitude = flat.abs().amax(dim=1, keepdim=True)
    flat = flat - flat.mean(dim=1, keepdim=True)
    std = flat.pow(2).mean(dim=1, keepdim=True).sqrt()
    # a constant field, or float32 rounding noise around one, carries no shape
    degenerate = (std <= 1e-12) | (std <= 1e-5 * magnitude)
    flat = (flat / std.clamp(min=1e-300)).float()
    if bool(degenerate.any()):
        gaussian = torch.randn(flat.shape, generator=generator, device=flat.device)
        flat = torch.where(degenerate, gaussian, flat)
    return flat.reshape(field.shape)


def noise_like(kind, shape, generator, device=None, dtype=None, **kwargs):
    """Noise of ``kind`` for the forward process, drawn from ``generator``.

    Parameters
    ----------
    kind : {"gaussian", "simplex"}
        ``"gaussian"``: i.i.d. standard normal entries (``torch.randn``);
        ``"simplex"``: :func:`simplex_noise`, which needs image shapes.
    shape : tuple of int
    generator : torch.Generator
    device : torch.device or str, optional
        Default the generator's device. Gaussian noise is drawn there directly,
        so the generator must live on it.
    dtype : torch.dtype, optional
        Default float32 (``torch.get_default_dtype()`` for Gaussian noise).
    **kwargs
        Options of :func:`simplex_noise` (``octaves``, ``frequency``,
        ``persistence``); Gaussian noise takes none.

    Returns
    -------
    noise : torch.Tensor of shape ``shape``
    """
    if kind == "gaussian":
        if kwargs:
            raise TypeError(f"gaussian noise takes no options, got {sorted(kwargs)}")
        device = generator.device if device is None else device
        return torch.randn(tuple(shape), generator=generator, device=device, dtype=dtype)
    if kind == "simplex":
        noise = simplex_noise(shape, generator, device=device, **kwargs)
        return noise if dtype is None else noise.to(dtype)
    raise ValueError(f"noise kind must be one of {NOISE_KINDS}, got {kind!r}")


def noise_mask(shape, generator, *, coverage=(0.02, 0.3), octaves=2, frequency=None,
               device=None):
    """Blob-shaped region masks: the top share of a low-frequency simplex field.

    For each sample a share ``q ~ U(coverage)`` is drawn and the mask keeps the
    ``max(1, round(q H W))`` pixels where a smooth simplex field (a few octaves,
    a couple of blobs per image across) is highest -- a level set of a smooth field,
    so a few rounded blobs, like DRAEM's thresholded Perlin noise. Thresholding
    at the field's own quantile rather than at a fixed level fixes the covered
    share, and the mask is never empty.

    Parameters
    ----------
    shape : tuple of int
        ``(n, C, H, W)`` or ``(n, H, W)``; only ``n``, ``H`` and ``W`` are used.
    generator : torch.Generator
    coverage : tuple of float, default=(0.02, 0.3)
        Range of the share of pixels a mask covers.
    octaves : int, default=2
        Octaves of the field (persistence 0.5): more gives ragged edges.
    frequency : float, optional
        Cycles per pixel of the field's first octave; default ``2 / max(H, W)``.
    device : torch.device or str, optional
        Default the generator's device.

    Returns
    -------
    mask : torch.BoolTensor of shape (n, 1, H, W)
    """
    shape = _image_shape(shape, "a noise mask")
    lo, hi = (float(c) for c in coverage)
    if not 0.0 <= lo <= hi <= 1.0:
        raise ValueError(f"coverage must be (low, high) with 0 <= low <= high <= 1, "
                         f"got {coverage}")
    n, (height, width) = shape[0], shape[-2:]
    work = generator.device
    if frequency is None:
        frequency = 2.0 / max(height, width)
    field = simplex_noise((n, 1, height, width), generator, octaves=octaves,
                          frequency=frequency, persistence=0.5)
    share = lo + (hi - lo) * torch.rand(n, generator=generator, device=work)
    n_pixels = height * width
    count = (share * n_pixels).round().long().clamp(1, n_pixels)
    flat = field.reshape(n, n_pixels)
    ordered = flat.sort(dim=1, descending=True).values
    level = ordered.gather(1, (count - 1)[:, None])
    mask = flat >= level
    return mask.reshape(n, 1, height, width).to(device or work)
