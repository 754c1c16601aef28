"""Samples fetched in batches: rows, windows gathered on the fly, padded scoring blocks."""

import numpy as np
import pytest
import torch

from skdiffad._core import samples as samples_module
from skdiffad._core.samples import (
    ROW_MULTIPLE,
    ArraySamples,
    WindowSamples,
    block_size,
    expand,
    gather_windows,
    pad_block,
    window_starts,
)


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def rng_rows(n=10, d=3, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


# -------------------------------------------------------------------- windows
@pytest.mark.parametrize("n, length, stride",
                         [(10, 4, 2), (11, 4, 2), (10, 10, 3), (37, 8, 8), (9, 3, 1)])
def test_window_starts_cover_every_step_and_end_at_the_series_end(n, length, stride):
    starts = window_starts(n, length, stride)
    covered = np.zeros(n, dtype=int)
    for s in starts:
        covered[s : s + length] += 1
    assert covered.min() >= 1
    assert starts[0] == 0 and starts[-1] == n - length
    assert np.all(np.diff(starts) <= stride) and np.all(np.diff(starts) > 0)


def test_window_starts_reject_a_series_shorter_than_a_window():
    with pytest.raises(ValueError, match="shorter than one window"):
        window_starts(5, 6, 1)


def test_gather_windows_matches_numpy_slicing():
    series = torch.arange(30, dtype=torch.float32).reshape(3, 10)
    starts = torch.tensor([0, 4, 6])
    windows = gather_windows(series, starts, 4)
    assert windows.shape == (3, 3, 4)
    for i, s in enumerate(starts.tolist()):
        np.testing.assert_array_equal(windows[i].numpy(), series[:, s : s + 4].numpy())
    assert windows.is_contiguous()  # each window's channels as whole runs of steps
    mask = gather_windows(series > 12, torch.tensor([6, 0, 6], dtype=torch.int32), 4)
    assert mask.dtype == torch.bool and mask.shape == (3, 3, 4)
    np.testing.assert_array_equal(mask[0].numpy(), (series > 12)[:, 6:10].numpy())
    np.testing.assert_array_equal(mask[1].numpy(), (series > 12)[:, 0:4].numpy())


def window_samples(n=40, channels=2, length=4, stride=1, seed=0, gaps=False):
    rng = np.random.default_rng(seed)
    series = rng.normal(size=(channels, n)).astype(np.float32)
    observed = np.ones_like(series, dtype=bool)
    if gaps:
        observed[1, 5:9] = False
        series[~observed] = 0.0
    return WindowSamples(series, observed, window_starts(n, length, stride), length)


def test_window_samples_take_windows_and_masks_by_index():
    samples = window_samples(gaps=True)
    assert samples.event_shape == (2, 4) and samples.extent == 4 and len(samples) == 37
    assert samples.n_positions == 37 and samples.n_elements == 8
    assert samples.has_mask
    index = torch.tensor([6, 0, 36, 6])
    x, mask = samples.take(index)
    assert x.shape == mask.shape == (4, 2, 4) and x.dtype == torch.float32
    assert mask.dtype == torch.bool
    for row, i in enumerate(index.tolist()):
        start = int(samples.positions[i])
        torch.testing.assert_close(x[row], samples.series[:, start : start + 4], rtol=0, atol=0)
        assert torch.equal(mask[row], samples.observed[:, start : start + 4])
    assert not bool(mask[0, 1].all())  # window 6 covers the gap at steps 5..8


def test_window_samples_without_gaps_still_return_their_masks():
    samples = window_samples(stride=3)
    assert not samples.has_mask
    assert samples.n_positions == 37 and len(samples) == 13  # starts 0, 3, ..., 36
    _, mask = samples.take(np.array([0, 12]))
    assert mask is not None and bool(mask.all())


def test_window_positions_fold_back_onto_the_series():
    # stride 1: every interior step lies in `length` windows
    samples = window_samples(n=30, length=5)
    coverage = np.zeros(30, dtype=int)
    x, _ = samples.take(torch.arange(len(samples)))
    rebuilt = np.zeros((2, 30))
    for window, start in zip(x.numpy(), samples.positions):
        coverage[start : start + 5] += 1
        rebuilt[:, start : start + 5] += window
    assert np.all(coverage[4:-4] == 5) and coverage[0] == coverage[-1] == 1
    np.testing.assert_allclose(rebuilt / coverage, samples.series.numpy(), rtol=1e-6)


def test_window_samples_keep_one_copy_of_the_series_per_device():
    samples = window_samples()
    samples.take([0, 1])
    first = samples._on_device["cpu"]
    samples.take([2])
    assert samples._on_device["cpu"] is first and len(samples._on_device) == 1


# ----------------------------------------------------------------------- rows
def test_array_samples_take_rows_and_masks_by_index():
    values = rng_rows()
    mask = np.random.default_rng(1).random(values.shape) > 0.3
    samples = ArraySamples(values, mask)
    assert samples.event_shape == (3,) and samples.has_mask and samples.extent == 1
    assert np.array_equal(samples.positions, np.arange(10)) and samples.n_positions == 10
    x, m = samples.take(torch.tensor([4, 1, 4]))
    np.testing.assert_array_equal(x.numpy(), values[[4, 1, 4]])
    np.testing.assert_array_equal(m.numpy(), mask[[4, 1, 4]])
    plain = ArraySamples(values.astype(np.float64))
    x, m = plain.take(np.array([0]))
    assert m is None and not plain.has_mask and x.dtype == torch.float32


# --------------------------------------------------------------------- blocks
def test_pad_block_repeats_the_first_row_up_to_a_multiple_of_32():
    x = torch.arange(70 * 2, dtype=torch.float32).reshape(70, 2)
    padded = pad_block(x)
    assert padded.shape == (96, 2)
    assert torch.equal(padded[:70], x)
    assert torch.equal(padded[70:], x[:1].expand(26, 2))
    assert pad_block(x[:64]) is not None and pad_block(x[:64]).shape == (64, 2)
    assert pad_block(None) is None
    assert pad_block(x[:3], multiple=4).shape == (4, 2)


@pytest.mark.parametrize("block", [32, 64, 1000])
def test_blocks_cover_every_sample_in_order_with_padded_rows(block):
    values = rng_rows(n=70)
    mask = np.random.default_rng(2).random(values.shape) > 0.3
    samples = ArraySamples(values, mask)
    stops = []
    for start, stop, x, m in samples.blocks(block):
        assert start == (stops[-1] if stops else 0)
        assert x.shape[0] % ROW_MULTIPLE == 0 and x.shape == m.shape
        np.testing.assert_array_equal(x[: stop - start].numpy(), values[start:stop])
        np.testing.assert_array_equal(m[: stop - start].numpy(), mask[start:stop])
        assert torch.equal(x[stop - start :], x[:1].expand_as(x[stop - start :]))
        stops.append(stop)
    assert stops[-1] == 70 and len(stops) == -(-70 // block)


# ----------------------------------------------------------------- block size
@pytest.mark.parametrize("bytes_per_sample", [1, 1e3, 123_456, 1e6, 1e9])
@pytest.mark.parametrize("device", ["cpu", "cuda", "cuda:3"])
def test_block_size_is_a_bounded_multiple_of_32(bytes_per_sample, device):
    block = block_size(bytes_per_sample, device)
    assert block % ROW_MULTIPLE == 0 and 32 <= block <= 16384
    budget = samples_module.SCORING_MEMORY[torch.device(device).type]
    if 32 < block < 16384:  # the largest multiple of 32 that fits the budget
        assert block * bytes_per_sample <= budget < (block + 32) * bytes_per_sample


def test_block_size_depends_only_on_bytes_per_sample_and_the_device_type():
    on_gpu = {block_size(123_456, device) for device in ("cuda", "cuda:0", "cuda:1")}
    assert len(on_gpu) == 1
    assert block_size(123_456, "cuda") > block_size(123_456, "cpu")  # a larger budget
    assert block_size(123_456, "cpu") == (1 << 28) // 123_456 // 32 * 32
    assert block_size(1e9, "cpu") == 32 and block_size(1, "cpu") == 16384  # clamped
    assert block_size(0, "cpu") == 16384
    sizes = [block_size(b, "cpu") for b in (1e4, 2e4, 4e4, 8e4)]
    assert sizes == sorted(sizes, reverse=True)


# -------------------------------------------------------------------- patches
@pytest.mark.parametrize("size, patch, stride", [((10, 7), 4, 3), ((8, 8), 8, 4), ((5, 9), 2, 2)])
def test_patches_are_the_image_slices_and_cover_every_pixel(size, patch, stride):
    from skdiffad._core.samples import PatchSamples

    h, w = size
    images = torch.arange(3 * 2 * h * w, dtype=torch.float32).reshape(3, 2, h, w)
    samples = PatchSamples(images, patch, stride)
    x, mask = samples.take(torch.arange(len(samples)))
    assert mask is None and x.shape == (len(samples), 2, patch, patch)
    covered = torch.zeros(3, h, w)
    for k in range(len(samples)):
        i, top, left = samples.image_[k], samples.top_[k], samples.left_[k]
        assert torch.equal(x[k], images[i, :, top:top + patch, left:left + patch])
        covered[i, top:top + patch, left:left + patch] += 1
    assert covered.min() >= 1
    # a patch's position is its image: patches of one image "overlap" (extent 1)
    np.testing.assert_array_equal(samples.positions, samples.image_)
    assert samples.n_positions == 3 and samples.extent == 1


def test_the_compact_form_of_windows_rebuilds_them_exactly():
    samples = window_samples(n=60, gaps=True)
    index = np.array([30, 7, 12, 7, 40])
    compact = samples.compact(index)
    # the stretch the windows cover (steps 7..43), not each window's copy of it
    assert compact["series"].shape == (2, 37) and compact["length"] == 4
    assert torch.equal(expand(compact), samples.take(torch.as_tensor(index))[0])
    stretch = WindowSamples(samples.series[:, 10:50], samples.observed[:, 10:50],
                            window_starts(40, 4, 1), 4, offset=10)
    assert torch.equal(expand(stretch.compact([3, 0, 36])),
                       stretch.take(torch.tensor([3, 0, 36]))[0])
    assert ArraySamples(np.zeros((5, 3), dtype=np.float32)).compact([0, 1]) is None
