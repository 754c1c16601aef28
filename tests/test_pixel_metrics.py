"""Tests of the pixel-level metrics of skdiffad.metrics: hand-computed values on two
tiny images, agreement with slow by-the-definition versions (AUPRO re-labels the
regions at every threshold), invariances, extreme maps, and the input errors."""

import numpy as np
import pytest
from scipy import ndimage
from scipy.integrate import trapezoid  # np.trapezoid, also on numpy < 2
from sklearn.metrics import average_precision_score, roc_auc_score

from skdiffad.metrics import (
    aupro,
    best_dice,
    best_iou,
    dice,
    iou,
    pixel_aupr,
    pixel_auroc,
)

#: Two 3x3 images. Image 0 holds one defect of two diagonal pixels (one region
#: under 8-connectivity, two under 4); image 1 holds a one-pixel defect at its
#: corner, and a false alarm at its centre scoring as high as that defect.
MASKS = np.array(
    [
        [[1, 0, 0], [0, 1, 0], [0, 0, 0]],
        [[0, 0, 0], [0, 0, 0], [0, 0, 1]],
    ]
)
MAPS = np.array(
    [
        [[3, 0, 0], [0, 1, 0], [0, 0, 0]],
        [[0, 0, 0], [0, 2, 0], [0, 0, 2]],
    ],
    dtype=float,
)


def _slow_aupro(masks, maps, max_fpr):
    """AUPRO by the definition: every distinct threshold, regions labelled afresh."""
    structure = np.ones((3, 3))
    n_normal = sum(np.count_nonzero(mask == 0) for mask in masks)
    thresholds = np.unique(np.concatenate([m.ravel() for m in maps]))[::-1]
    fprs, pros = [0.0], [0.0]
    for threshold in thresholds:
        overlaps, false_pos = [], 0
        for mask, amap in zip(masks, maps):
            flagged = amap >= threshold
            labels, n_regions = ndimage.label(mask, structure=structure)
            for region in range(1, n_regions + 1):
                pixels = labels == region
                overlaps.append(np.count_nonzero(flagged & pixels) / np.count_nonzero(pixels))
            false_pos += np.count_nonzero(flagged & (mask == 0))
        fprs.append(false_pos / n_normal)
        pros.append(np.mean(overlaps))
    fprs, pros = np.array(fprs), np.array(pros)
    keep = fprs <= max_fpr
    x, y = fprs[keep], pros[keep]
    if x[-1] < max_fpr:
        after = np.flatnonzero(~keep)[0]
        x = np.append(x, max_fpr)
        around = slice(after - 1, after + 1)
        y = np.append(y, np.interp(max_fpr, fprs[around], pros[around]))
    return trapezoid(y, x) / max_fpr


def _random_masks_and_maps(rng, shapes, n_levels):
    """Masks of random rectangles and specks (or clean images), and noisy maps.

    ``n_levels`` > 0 rounds the maps to that many levels, which makes many ties.
    """
    masks, maps = [], []
    for height, width in shapes:
        mask = np.zeros((height, width), dtype=int)
        for _ in range(int(rng.integers(0, 4))):
            top, left = rng.integers(0, height), rng.integers(0, width)
            mask[top : top + rng.integers(1, 4), left : left + rng.integers(1, 4)] = 1
        mask[rng.uniform(size=mask.shape) < 0.1] = 1  # specks, some touching only by a corner
        mask *= rng.uniform() > 0.25  # a clean image now and then
        amap = mask * rng.uniform(0.0, 1.5) + rng.normal(size=(height, width))
        if n_levels:
            amap = np.round(amap * n_levels / 4.0)
        masks.append(mask)
        maps.append(amap)
    masks[0][0, 0], masks[-1][-1, -1] = 1, 0  # at least one region and one normal pixel
    return masks, maps


def _pooled(masks, maps):
    return np.concatenate([m.ravel() for m in masks]), np.concatenate([m.ravel() for m in maps])


# ------------------------------------------------------------------ hand-computed values
def test_pixel_auroc_and_aupr_by_hand():
    # Positives score 3, 2, 1; negatives: one 2 and fourteen 0s.
    assert pixel_auroc(MASKS, MAPS) == pytest.approx((15 + 14.5 + 14) / 45)
    # (recall, precision) steps: (1/3, 1), (2/3, 2/3), (1, 3/4).
    assert pixel_aupr(MASKS, MAPS) == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)


def test_aupro_by_hand():
    # Curve: (0, 0), (0, 1/4), (1/15, 3/4), (1/15, 1), (1, 1).
    assert aupro(MASKS, MAPS) == pytest.approx(8 / 9)
    assert aupro(MASKS, MAPS, max_fpr=1.0) == pytest.approx(1 - 1 / 30)


def test_aupro_interpolates_the_pro_at_max_fpr_and_uses_8_connectivity():
    # At FPR 1/30 the PRO is interpolated half-way between 1/4 and 3/4. Under
    # 4-connectivity the diagonal defect would be two regions, and the PROs
    # 1/3 and 2/3 would give (1/3 + 1/2) / 2 = 5/12 instead.
    assert aupro(MASKS, MAPS, max_fpr=1 / 30) == pytest.approx((1 / 4 + 1 / 2) / 2)


def test_dice_and_iou_by_hand():
    # threshold: (flagged, of which defects) with 3 defect pixels
    for threshold, dice_value, iou_value in [
        (3, 2 * 1 / (3 + 1), 1 / 3),
        (2, 2 * 2 / (3 + 3), 2 / 4),
        (1, 2 * 3 / (3 + 4), 3 / 4),
        (0, 2 * 3 / (3 + 18), 3 / 18),
    ]:
        assert dice(MASKS, MAPS, threshold) == pytest.approx(dice_value)
        assert iou(MASKS, MAPS, threshold) == pytest.approx(iou_value)
    assert best_dice(MASKS, MAPS) == (pytest.approx(6 / 7), 1.0)
    assert best_iou(MASKS, MAPS) == (pytest.approx(3 / 4), 1.0)


def test_dice_and_iou_of_empty_sets():
    clean = np.zeros_like(MASKS)
    for metric in (dice, iou):
        assert metric(clean, MAPS, threshold=np.inf) == 1.0  # nothing to find, none flagged
        assert metric(clean, MAPS, threshold=2.5) == 0.0  # nothing to find, one flagged
        assert metric(MASKS, MAPS, threshold=3.5) == 0.0  # defects, none flagged
        assert isinstance(metric(MASKS, MAPS, threshold=1), float)


def test_a_clean_image_adds_only_normal_pixels():
    clean = np.zeros((1, 3, 3), dtype=int)
    masks, maps = np.concatenate([MASKS, clean]), np.concatenate([MAPS, clean + 2.0])
    # Nine more normal pixels, all flagged from threshold 2 on: the curve becomes
    # (0, 0), (0, 1/4), (10/24, 3/4), (10/24, 1), (1, 1); the PRO is unchanged.
    y_at = 1 / 4 + (3 / 4 - 1 / 4) * 0.3 / (10 / 24)
    assert aupro(masks, maps) == pytest.approx((1 / 4 + y_at) / 2)


# ------------------------------------------------------------------ against slow versions
@pytest.mark.parametrize("seed", range(12))
def test_aupro_equals_the_slow_definition_with_ties_and_several_regions(seed):
    rng = np.random.default_rng(seed)
    shapes = [(int(rng.integers(3, 9)), int(rng.integers(3, 9))) for _ in range(3)]
    masks, maps = _random_masks_and_maps(rng, shapes, n_levels=[0, 3, 8][seed % 3])
    for max_fpr in (0.3, 0.05, 1.0, float(rng.uniform(0.01, 1))):
        assert aupro(masks, maps, max_fpr) == pytest.approx(
            _slow_aupro(masks, maps, max_fpr), abs=1e-10
        )


def test_aupro_at_a_max_fpr_on_a_curve_point():
    # Five more normal pixels scoring 2: six are flagged at 2, an FPR of 6/15 = 0.4,
    # and the curve is (0, 0), (0, 1/4), (0.4, 3/4), (0.4, 1), (1, 1).
    maps = MAPS.copy()
    maps[0, 2, :] = maps[0, 1, 2] = maps[0, 0, 2] = 2
    assert aupro(MASKS, maps, 0.4) == pytest.approx(0.5)
    assert _slow_aupro(MASKS, maps, 0.4) == pytest.approx(0.5)


@pytest.mark.parametrize("seed", range(4))
def test_pixel_metrics_pool_images_of_different_sizes(seed):
    rng = np.random.default_rng(seed)
    masks, maps = _random_masks_and_maps(rng, [(4, 6), (7, 3), (5, 5)], n_levels=4)
    y, s = _pooled(masks, maps)
    assert pixel_auroc(masks, maps) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert pixel_aupr(masks, maps) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    thresholds = np.unique(s)[::-1]  # decreasing, so that argmax finds the highest
    dices = [2 * np.sum(y & (s >= t)) / (y.sum() + np.sum(s >= t)) for t in thresholds]
    ious = [np.sum(y & (s >= t)) / np.sum(y | (s >= t)) for t in thresholds]
    assert best_dice(masks, maps) == (pytest.approx(max(dices)), thresholds[np.argmax(dices)])
    assert best_iou(masks, maps) == (pytest.approx(max(ious)), thresholds[np.argmax(ious)])
    for t, dice_value, iou_value in list(zip(thresholds, dices, ious))[::3]:
        assert dice(masks, maps, t) == pytest.approx(dice_value)
        assert iou(masks, maps, t) == pytest.approx(iou_value)


# ------------------------------------------------------------------ properties
def test_metrics_are_invariant_to_a_strictly_increasing_transform():
    rng = np.random.default_rng(7)
    masks, maps = _random_masks_and_maps(rng, [(8, 8)] * 3, n_levels=6)
    maps = np.array(maps)
    moved = np.exp(maps / 3.0) * 5.0 - 1.0
    assert aupro(masks, moved) == pytest.approx(aupro(masks, maps), abs=1e-12)
    assert pixel_auroc(masks, moved) == pytest.approx(pixel_auroc(masks, maps), abs=1e-12)
    assert pixel_aupr(masks, moved) == pytest.approx(pixel_aupr(masks, maps), abs=1e-12)
    assert best_dice(masks, moved)[0] == pytest.approx(best_dice(masks, maps)[0], abs=1e-12)


def test_a_perfect_map_scores_one_and_an_inverted_map_scores_low():
    rng = np.random.default_rng(3)
    masks = np.array(_random_masks_and_maps(rng, [(10, 10)] * 4, n_levels=0)[0])
    perfect = masks + 0.5 * rng.uniform(size=masks.shape) * (masks == 0)  # normal below 0.5
    assert aupro(masks, perfect) == 1.0
    assert pixel_auroc(masks, perfect) == 1.0
    assert pixel_aupr(masks, perfect) == 1.0
    assert best_dice(masks, perfect) == (1.0, 1.0)
    assert best_iou(masks, perfect) == (1.0, 1.0)
    inverted = -perfect
    rate = masks.mean()
    assert aupro(masks, inverted) == 0.0
    assert pixel_auroc(masks, inverted) == 0.0
    assert pixel_aupr(masks, inverted) < rate + 0.05
    assert best_dice(masks, inverted)[0] <= 2 * rate / (1 + rate) + 1e-12


def test_aupro_weighs_small_regions_like_large_ones():
    masks = np.zeros((2, 6, 6), dtype=int)
    masks[0, :4, :4] = 1
    masks[1, 5, 5] = 1
    finds_large = masks * np.array([1.0, 0.0])[:, None, None]
    finds_small = masks * np.array([0.0, 1.0])[:, None, None]
    assert pixel_auroc(masks, finds_large) > pixel_auroc(masks, finds_small)
    assert aupro(masks, finds_large) == pytest.approx(aupro(masks, finds_small))


def test_masks_accept_bool_and_int_and_lists():
    expected = aupro(MASKS, MAPS)
    assert aupro(MASKS.astype(bool), MAPS) == expected
    assert aupro(list(MASKS), list(MAPS)) == expected
    assert aupro(MASKS.tolist(), MAPS.tolist()) == expected


# ------------------------------------------------------------------ input errors
ALL_METRICS = [
    aupro,
    pixel_auroc,
    pixel_aupr,
    best_dice,
    best_iou,
    lambda masks, maps: dice(masks, maps, 0.5),
    lambda masks, maps: iou(masks, maps, 0.5),
]


@pytest.mark.parametrize("metric", ALL_METRICS)
@pytest.mark.parametrize(
    "masks, maps, message",
    [
        (MASKS, MAPS[:1], r"same number of images; got 2 and 1"),
        ([MASKS[0], MASKS[1]], [MAPS[0], MAPS[1][:2]], r"masks\[1\] and maps\[1\] .* same shape"),
        (MASKS[0], MAPS[0], r"masks must be a 3-D array.*masks\[None\]"),
        ([MASKS[0].ravel()], [MAPS[0].ravel()], r"masks\[0\] must be a 2-D image"),
        ([], [], r"masks is empty"),
        (np.zeros((0, 3, 3)), np.zeros((0, 3, 3)), r"masks is empty"),
        ([np.zeros((0, 3))], [np.zeros((0, 3))], r"masks\[0\] is empty"),
        (MASKS * 2, MAPS, r"masks\[0\] must hold only 0 and 1"),
        (MASKS * 0.5, MAPS, r"masks\[0\] must hold only 0 and 1"),
        (MASKS.astype(str), MAPS, r"masks\[0\] must hold 0/1"),
        (MASKS, np.where(MASKS, np.nan, MAPS), r"maps\[0\] must be finite; 2 of 9"),
        (MASKS, np.where(np.arange(18).reshape(2, 3, 3) == 9, -np.inf, MAPS), r"maps\[1\] must"),
        (MASKS, MAPS.astype(str), r"maps\[0\] must be numeric"),
    ],
)
def test_bad_inputs_raise_errors_naming_the_argument(metric, masks, maps, message):
    with pytest.raises(ValueError, match=message):
        metric(masks, maps)


@pytest.mark.parametrize("metric", [aupro, pixel_auroc, pixel_aupr, best_dice, best_iou])
def test_masks_without_any_defect_are_refused(metric):
    with pytest.raises(ValueError, match="no anomalous (pixel|region)"):
        metric(np.zeros_like(MASKS), MAPS)


@pytest.mark.parametrize("metric", [aupro, pixel_auroc])
def test_masks_without_any_normal_pixel_are_refused(metric):
    with pytest.raises(ValueError, match="only anomalous pixels"):
        metric(np.ones_like(MASKS), MAPS)


@pytest.mark.parametrize("max_fpr", [0, -0.1, 1.5, np.nan, True, "0.3"])
def test_aupro_rejects_a_bad_max_fpr(max_fpr):
    with pytest.raises(ValueError, match=r"max_fpr must be a real number in \(0.0, 1.0\]"):
        aupro(MASKS, MAPS, max_fpr)


@pytest.mark.parametrize("metric", [dice, iou])
@pytest.mark.parametrize("threshold", [np.nan, True, "0.5", None])
def test_dice_and_iou_reject_a_bad_threshold(metric, threshold):
    with pytest.raises(ValueError, match="threshold must be a real number"):
        metric(MASKS, MAPS, threshold)
