"""Data as samples fetched in batches: what every model trains on and scores.

A detector's encoder turns its input into a :class:`Samples` object: ``N``
samples of one event shape ``(C, *spatial)`` (a table row is ``(d,)``, a window
of a series ``(C, L)``, an image ``(C, H, W)``), each with an optional
observation mask of the same shape. Models never hold the whole data on the
device: they ask for batches by index (:meth:`Samples.take`), so the same
training loop and scorers serve an in-memory table, windows gathered on the
fly from one series, and, later, images read from disk or Dask blocks.

Every sample also has a *position* in its source (a row's index, a window's
first step) and an *extent* (how many positions it covers: 1 for a row, ``L``
for a window), which the exact model's two-fold exclusion rule reads.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = [
    "ArraySamples",
    "Samples",
    "WindowSamples",
    "PatchSamples",
    "block_size",
    "fold",
    "expand",
    "gather_windows",
    "pad_block",
    "window_starts",
]

# Rows of a scoring block are padded to a multiple of this. CPU BLAS kernels
# pick their reduction order by the row count; below 8 rows (or for ragged
# tails) a row's float32 result can differ in the last bits from the same row
# inside a larger batch. With row counts a multiple of 32 every row goes through
# the same kernel, so a sample's score is bit-for-bit the same whatever else is
# in its batch.
ROW_MULTIPLE = 32

# Memory a scoring block may use, by device type: fixed (not read from the free
# memory of the moment), so that the block size, and with it every score, is the
# same from run to run.
SCORING_MEMORY = {"cpu": 1 << 28, "cuda": 1 << 30}

# Bounds on a scoring block, in samples.
_MIN_BLOCK, _MAX_BLOCK = ROW_MULTIPLE, 1 << 14


def block_size(bytes_per_sample: float, device) -> int:
    """Samples per scoring block that fit the device's scoring memory.

    A multiple of :data:`ROW_MULTIPLE` between 32 and 16384; it depends only on
    the model and the device type, never on how many samples are scored.
    """
    budget = SCORING_MEMORY.get(torch.device(device).type, SCORING_MEMORY["cpu"])
    rows = int(budget // max(float(bytes_per_sample), 1.0))
    rows = rows // ROW_MULTIPLE * ROW_MULTIPLE
    return int(min(max(rows, _MIN_BLOCK), _MAX_BLOCK))


def pad_block(x: torch.Tensor | None, multiple: int = ROW_MULTIPLE):
    """Pad a block of samples to a multiple of ``multiple`` rows with copies of its first.

    Padding rows are scored and thrown away; they only keep the kernel shapes,
    and so each real row's result, independent of the block (see
    :data:`ROW_MULTIPLE`).
    """
    if x is None:
        return None
    extra = -x.shape[0] % multiple
    if not extra:
        return x
    return torch.cat([x, x[:1].expand((extra,) + tuple(x.shape[1:]))])


class Samples:
    """``N`` samples of shape ``event_shape`` with optional observation masks.

    Subclasses implement :meth:`take`; the attributes below describe the set.

    Attributes
    ----------
    event_shape : tuple of int
        Shape of one sample, ``(C, *spatial)``.
    has_mask : bool
        Whether any entry is unobserved (:meth:`take` then returns a mask).
    positions : ndarray of shape (N,), int64
        Where each sample lies in its source.
    extent : int
        Positions one sample covers (two samples overlap when their positions
        are fewer than ``extent`` apart).
    n_positions : int
        Positions in the source (the two folds of the two-fold rule split them
        in half).
    sites : ndarray of shape (N,), int64, or None
        Where in its source's frame each sample lies (the place of an image
        patch), for models that restore a sample only from stored samples of
        the same site; ``None``: samples have no site.
    """

    event_shape: tuple = ()
    has_mask: bool = False
    extent: int = 1
    sites = None

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def n_positions(self) -> int:
        return len(self)

    @property
    def n_elements(self) -> int:
        """Entries of one sample."""
        return int(math.prod(self.event_shape))

    def compact(self, index):
        """``None``, or another form of samples ``index`` (a dict of tensors and ints)
        from which :func:`expand` rebuilds ``take(index)[0]`` exactly: what a model
        that stores samples pickles instead of them where it is the smaller."""
        return None

    def take(self, index, device="cpu"):  # pragma: no cover - abstract
        """Samples ``index`` as ``(x, mask)`` on ``device``.

        ``x`` is float32 of shape ``(len(index), *event_shape)`` with unobserved
        entries at 0 (the standardised training mean); ``mask`` is the boolean
        observation mask of the same shape, or ``None`` when ``has_mask`` is
        false.
        """
        raise NotImplementedError

    @property
    def n_cells(self) -> int:  # pragma: no cover - abstract
        """Entries per channel of the source (rows x features, steps, pixels)."""
        raise NotImplementedError

    def cells(self, start, stop):  # pragma: no cover - abstract
        """Where the entries of samples ``start..stop`` lie in the source, per
        channel: flat indices of shape ``(stop - start, *spatial)`` (see :func:`fold`)."""
        raise NotImplementedError

    def split(self, fraction, generator):
        """``(train, validation)`` sample indices for early stopping: a random
        ``floor(N * fraction)`` held out (none when that would leave no training
        sample), drawn with ``generator`` (a ``fraction`` of 0 draws nothing: every
        sample trains, in order)."""
        n = len(self)
        if fraction <= 0:
            return torch.arange(n), torch.arange(0)
        perm = torch.randperm(n, generator=generator)
        n_val = int(math.floor(n * fraction))
        if n - n_val < 1:
            n_val = 0
        return perm[n_val:], perm[:n_val]

    def epoch_order(self, train, generator, limit=None):
        """The order one training epoch visits the indices ``train`` in: a uniform
        shuffle drawn with ``generator``. ``limit``: how many the loop will take at
        most (its remaining step budget); a shuffle in memory needs no such hint."""
        return train[torch.randperm(len(train), generator=generator)]

    def blocks(self, block: int, device="cpu"):
        """Consecutive blocks ``(start, stop, x, mask)``, each padded to a
        multiple of :data:`ROW_MULTIPLE` rows (see :func:`pad_block`)."""
        n = len(self)
        for start in range(0, n, block):
            stop = min(start + block, n)
            x, mask = self.take(torch.arange(start, stop), device)
            yield start, stop, pad_block(x), pad_block(mask)


class ArraySamples(Samples):
    """Samples held as one in-memory array (table rows, images).

    Parameters
    ----------
    values : ndarray of shape (N, *event_shape), float32
        Unobserved entries at 0.
    mask : ndarray of shape (N, *event_shape), bool, or None
        Observation mask; ``None`` when everything is observed.
    """

    def __init__(self, values, mask=None):
        self.values = np.ascontiguousarray(values, dtype=np.float32)
        self.mask = None if mask is None else np.ascontiguousarray(mask, dtype=bool)
        self.event_shape = tuple(self.values.shape[1:])
        self.has_mask = self.mask is not None
        self.positions = np.arange(self.values.shape[0], dtype=np.int64)

    @property
    def n_cells(self) -> int:
        return int(np.prod(self.values.shape[2:], dtype=np.int64)) * len(self.values)

    def cells(self, start, stop):
        spatial = self.values.shape[2:]
        size = int(np.prod(spatial, dtype=np.int64))
        return np.arange(start * size, stop * size).reshape((stop - start,) + spatial)

    def take(self, index, device="cpu"):
        index = np.asarray(torch.as_tensor(index).cpu())
        x = torch.from_numpy(self.values[index]).to(device)
        mask = None if self.mask is None else torch.from_numpy(self.mask[index]).to(device)
        return x, mask


def window_starts(n: int, length: int, stride: int) -> np.ndarray:
    """Start of each window of ``length`` steps, every ``stride`` steps, the last
    one aligned to the series' end so that every step is covered."""
    if n < length:
        raise ValueError(f"a series of {n} steps is shorter than one window ({length})")
    starts = np.arange(0, n - length + 1, stride, dtype=np.int64)
    if starts[-1] != n - length:
        starts = np.append(starts, n - length)
    return starts


def gather_windows(series: torch.Tensor, starts: torch.Tensor, length: int) -> torch.Tensor:
    """Windows ``series[:, s:s+length]`` for each start, as ``(len(starts), C, length)``
    (contiguous: each window's channels copied as whole runs of steps, four to twenty
    times faster than indexing every step)."""
    return series.unfold(1, length, 1).permute(1, 0, 2).index_select(0, starts.long())


def expand(compact) -> torch.Tensor:
    """The samples a :meth:`Samples.compact` form stands for (float32, on the CPU)."""
    return gather_windows(compact["series"], compact["starts"], int(compact["length"]))


class WindowSamples(Samples):
    """Windows of one series, gathered on the fly (never materialised).

    Parameters
    ----------
    series : ndarray or tensor of shape (C, n), float32
        The standardised series, unobserved entries at 0.
    observed : ndarray or tensor of shape (C, n), bool
        Observation mask.
    starts : ndarray of shape (N,), int
        First step of each window (its position).
    length : int
        Steps per window (the extent).
    offset : int, default=0
        Step of a longer series where ``series`` starts (a stretch of it): the
        positions are the windows' first steps in that series.
    n_positions : int, optional
        Window starts of that longer series (default: those of ``series``).
    """

    def __init__(self, series, observed, starts, length, offset=0, n_positions=None):
        self.series = torch.as_tensor(series, dtype=torch.float32)
        self.observed = torch.as_tensor(observed, dtype=torch.bool)
        self.offset = int(offset)
        self.positions = np.asarray(starts, dtype=np.int64) + self.offset
        self._n_positions = n_positions
        self.extent = int(length)
        self.event_shape = (self.series.shape[0], self.extent)
        # take() always returns the windows' masks (the restorations read them);
        # has_mask says whether any entry is missing (a network then sees them)
        self.has_mask = not bool(self.observed.all())
        self._on_device = {}

    @property
    def n_positions(self) -> int:
        if self._n_positions is not None:
            return int(self._n_positions)
        return self.series.shape[1] - self.extent + 1

    @property
    def n_cells(self) -> int:
        return self.series.shape[1]

    def cells(self, start, stop):
        return self.positions[start:stop, None] - self.offset + np.arange(self.extent)

    def _tensors(self, device):
        key = str(torch.device(device))
        if key not in self._on_device:  # one copy of the series per device, not per batch
            self._on_device[key] = (self.series.to(device), self.observed.to(device),
                                    torch.as_tensor(self.positions - self.offset,
                                                    device=device))
        return self._on_device[key]

    def compact(self, index):
        """The stretch of the series that windows ``index`` cover and their starts in
        it (overlapping windows repeat each step up to ``length`` times)."""
        starts = self.positions[np.asarray(index)] - self.offset
        low, high = int(starts.min()), int(starts.max()) + self.extent
        return {"series": self.series[:, low:high].clone(),
                "starts": torch.as_tensor(starts - low), "length": self.extent}

    def take(self, index, device="cpu"):
        series, observed, positions = self._tensors(device)
        starts = positions[torch.as_tensor(index, device=device)]
        return (gather_windows(series, starts, self.extent),
                gather_windows(observed, starts, self.extent))


class PatchSamples(Samples):
    """Square patches of a stack of images, cut on the fly (never materialised).

    Sample ``k`` is the ``patch x patch`` patch of image ``image_[k]`` whose
    top-left pixel is ``(top_[k], left_[k])``. Its position is its image's
    index and its extent 1, so patches of the same image overlap each other
    (the two-fold rule never restores a patch from its own image) and the two
    folds are the two halves of the images. Its site is its place in the grid
    of patches (``0 .. n_sites - 1``, row-major), the same in every image.

    Parameters
    ----------
    images : ndarray or tensor of shape (N, C, H, W), float32
    patch : int
        Side of a patch (at most the image's height and width).
    stride : int
        Pixels between patches; the last row and column of patches end at the
        image's edge, so every pixel is covered.
    observed : ndarray or tensor of shape (N, C, H, W), bool, optional
    """

    def __init__(self, images, patch, stride, observed=None):
        self.images = torch.as_tensor(images, dtype=torch.float32)
        self.observed = None if observed is None else torch.as_tensor(observed, dtype=torch.bool)
        n, c, h, w = self.images.shape
        self.patch = int(patch)
        tops, lefts = window_starts(h, patch, stride), window_starts(w, patch, stride)
        grid_t, grid_l = np.meshgrid(tops, lefts, indexing="ij")
        per_image = grid_t.size
        self.image_ = np.repeat(np.arange(n, dtype=np.int64), per_image)
        self.top_ = np.tile(grid_t.ravel(), n).astype(np.int64)
        self.left_ = np.tile(grid_l.ravel(), n).astype(np.int64)
        self.positions = self.image_
        self.sites = np.tile(np.arange(per_image, dtype=np.int64), n)
        self.n_sites = per_image
        self.extent = 1
        self.event_shape = (c, self.patch, self.patch)
        self.has_mask = self.observed is not None and not bool(self.observed.all())
        self._n_images = n

    @property
    def n_positions(self) -> int:
        return self._n_images

    @property
    def n_cells(self) -> int:
        n, _, h, w = self.images.shape
        return n * h * w

    def cells(self, start, stop):
        h, w = self.images.shape[2:]
        dy, dx = np.meshgrid(np.arange(self.patch), np.arange(self.patch), indexing="ij")
        rows = self.image_[start:stop, None, None] * h + self.top_[start:stop, None, None] + dy
        return rows * w + self.left_[start:stop, None, None] + dx

    def take(self, index, device="cpu"):
        index = np.asarray(torch.as_tensor(index).cpu())
        p = self.patch
        rows = (self.top_[index, None] + np.arange(p))[:, :, None]          # (b, p, 1)
        cols = (self.left_[index, None] + np.arange(p))[:, None, :]         # (b, 1, p)
        img = torch.as_tensor(self.image_[index])[:, None, None]
        rows, cols = torch.as_tensor(rows), torch.as_tensor(cols)
        x = self.images.permute(0, 2, 3, 1)[img, rows, cols].permute(0, 3, 1, 2)
        mask = None
        if self.observed is not None:
            mask = self.observed.permute(0, 2, 3, 1)[img, rows, cols].permute(0, 3, 1, 2)
            mask = mask.contiguous().to(device)
        return x.contiguous().to(device), mask


def fold(samples, blocks):
    """Sum the error blocks of ``samples`` onto the entries of their source.

    Overlapping samples (windows of one series, patches of one image) add up
    where they overlap. The sums run on the CPU in float64, in the order of the
    blocks, so the result is the same on every device.

    Parameters
    ----------
    samples : Samples
    blocks : iterable of ``(start, stop, sums, counts)``
        Per-entry errors of samples ``start..stop``, each of shape
        ``(stop - start, C, *spatial)`` (a model's ``errors``).

    Returns
    -------
    sums, counts : ndarray of shape (samples.n_cells, C), float64
        Per source entry (row-major, channels last) and channel.
    """
    c = samples.event_shape[0]
    sums = torch.zeros((samples.n_cells, c), dtype=torch.float64)
    counts = torch.zeros_like(sums)
    for start, stop, total, count in blocks:
        idx = torch.as_tensor(samples.cells(start, stop).reshape(-1))
        for acc, block in ((sums, total), (counts, count)):
            acc.index_add_(0, idx, torch.from_numpy(block).movedim(1, -1).reshape(-1, c))
    return sums.numpy(), counts.numpy()
