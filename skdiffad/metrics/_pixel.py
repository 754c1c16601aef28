"""Pixel-level localisation metrics for anomaly maps: AUROC, AUPR, Dice and IoU.

Every metric here pools the pixels of all images, as the MVTec AD protocol does:
a map is judged by how well its scores separate anomalous from normal pixels
across the whole test set, not image by image. Images may differ in size when
``masks`` and ``maps`` are lists of 2-D arrays. A threshold ``t`` flags the
pixels whose score is ``>= t``.
"""

from __future__ import annotations

import numpy as np

from ._maps import check_real, pooled_pixels, require_anomalous_pixels, require_normal_pixels
from ._point_f1 import best_f1
from ._ranking import aupr, auroc


def pixel_auroc(masks, maps):
    """Area under the ROC curve of all pixels of all images (pixel AUROC).

    :func:`auroc` of the pixels pooled over all images, ties counted by
    midranks.

    Parameters
    ----------
    masks : array-like of shape (n_images, height, width) or list of 2-D arrays
        Ground truth, 0/1 or bool, 1 = anomalous pixel. Both classes must be
        present over all images. A list may hold images of different sizes.
    maps : array-like of shape (n_images, height, width) or list of 2-D arrays
        Anomaly maps, higher = more abnormal, finite, each of the shape of its
        mask.

    Returns
    -------
    auroc : float
        In [0, 1]; 1 for a map that scores every anomalous pixel above every
        normal one.

    Raises
    ------
    ValueError
        When the shapes do not match (the message names the image), a mask is
        not 0/1, a map holds a NaN or infinite value, an input is empty, or the
        masks hold a single class.

    Examples
    --------
    >>> from skdiffad.metrics import pixel_auroc
    >>> masks = [[[1, 0], [0, 0]], [[0, 0, 1]]]  # a 2x2 and a 1x3 image
    >>> pixel_auroc(masks, [[[0.9, 0.1], [0.4, 0.0]], [[0.2, 0.5, 0.3]]])
    0.8
    """
    y, s = pooled_pixels(masks, maps)
    require_anomalous_pixels(y, "Pixel AUROC")
    require_normal_pixels(y, "Pixel AUROC")
    return auroc(y, s)


def pixel_aupr(masks, maps):
    """Average precision of all pixels of all images (pixel AUPR).

    :func:`aupr` (step-wise, not interpolated) of the pixels pooled over all
    images.

    Parameters
    ----------
    masks, maps : array-like of shape (n_images, height, width) or list of 2-D arrays
        As in :func:`pixel_auroc`, except that the masks need no normal pixel
        (with none, the result is 1); they need at least one anomalous pixel.

    Returns
    -------
    aupr : float
        In (0, 1]; a random map gets about the fraction of anomalous pixels.

    Raises
    ------
    ValueError
        As :func:`pixel_auroc`.

    Examples
    --------
    >>> from skdiffad.metrics import pixel_aupr
    >>> masks = [[[1, 0], [0, 0]], [[0, 0, 1]]]
    >>> pixel_aupr(masks, masks)  # the mask itself is a perfect map
    1.0
    >>> pixel_aupr(masks, [[[0.9, 0.1], [0.4, 0.0]], [[0.2, 0.5, 0.3]]])
    0.75
    """
    y, s = pooled_pixels(masks, maps)
    require_anomalous_pixels(y, "Pixel AUPR")
    return aupr(y, s)


def _overlap(y, s, threshold):
    """``(intersection, n_true + n_flagged)`` of the pixels ``s >= threshold``."""
    flagged = s >= threshold
    both = int(np.count_nonzero(y & flagged))
    return both, int(np.count_nonzero(y)) + int(np.count_nonzero(flagged))


def dice(masks, maps, threshold):
    """Dice coefficient of the pixels flagged at ``threshold``, over all images.

    ``Dice = 2 |A and B| / (|A| + |B|)``, with ``A`` the anomalous pixels of
    ``masks`` and ``B`` the pixels with ``maps >= threshold``, pooled over all
    images: it is the pixel-wise F1.

    Convention for empty sets: when the masks hold no anomalous pixel *and*
    nothing is flagged, the Dice is 1.0 (nothing to find, and nothing wrongly
    found); when only one of the two is empty it is 0.0.

    Parameters
    ----------
    masks : array-like of shape (n_images, height, width) or list of 2-D arrays
        Ground truth, 0/1 or bool, 1 = anomalous pixel.
    maps : array-like of shape (n_images, height, width) or list of 2-D arrays
        Anomaly maps, higher = more abnormal, finite, each of the shape of its
        mask.
    threshold : float
        Pixels scoring ``>= threshold`` are flagged; ``np.inf`` flags none.

    Returns
    -------
    dice : float
        In [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from skdiffad.metrics import dice
    >>> masks = np.array([[[1, 1], [0, 0]]])
    >>> maps = np.array([[[0.9, 0.2], [0.7, 0.1]]])
    >>> dice(masks, maps, threshold=0.5)
    0.5
    """
    threshold = check_real(threshold, "threshold")
    y, s = pooled_pixels(masks, maps)
    both, total = _overlap(y, s, threshold)
    return 1.0 if total == 0 else 2.0 * both / total


def iou(masks, maps, threshold):
    """Intersection over union (Jaccard index) of the pixels flagged at ``threshold``.

    ``IoU = |A and B| / |A or B|``, pooled over all images as in :func:`dice`,
    with the same convention: 1.0 when the masks hold no anomalous pixel and
    nothing is flagged, 0.0 when only one of the two is empty.

    Parameters
    ----------
    masks, maps : array-like of shape (n_images, height, width) or list of 2-D arrays
        As in :func:`dice`.
    threshold : float
        Pixels scoring ``>= threshold`` are flagged; ``np.inf`` flags none.

    Returns
    -------
    iou : float
        In [0, 1]; ``Dice / (2 - Dice)``.

    Examples
    --------
    >>> from skdiffad.metrics import iou
    >>> iou([[[1, 1], [0, 0]]], [[[0.9, 0.2], [0.7, 0.1]]], threshold=0.5)
    0.3333333333333333
    """
    threshold = check_real(threshold, "threshold")
    y, s = pooled_pixels(masks, maps)
    both, total = _overlap(y, s, threshold)
    return 1.0 if total == 0 else both / (total - both)


def best_dice(masks, maps):
    """Best Dice over all thresholds, and the threshold reaching it.

    Every distinct score of ``maps`` is tried as a threshold in one sorted sweep
    (``O(P log P)`` for ``P`` pixels); it is :func:`best_f1` of the pooled
    pixels.

    Parameters
    ----------
    masks, maps : array-like of shape (n_images, height, width) or list of 2-D arrays
        As in :func:`dice`; the masks need at least one anomalous pixel
        (otherwise every threshold would score 0).

    Returns
    -------
    dice : float
        The largest :func:`dice` over every distinct score ``t`` of ``maps``.
    threshold : float
        The ``t`` reaching it (the highest one when several do).

    Examples
    --------
    >>> from skdiffad.metrics import best_dice
    >>> masks = [[[1, 1], [0, 0]], [[0, 1, 1]]]  # a 2x2 and a 1x3 image
    >>> maps = [[[0.9, 0.6], [0.7, 0.1]], [[0.2, 0.8, 0.3]]]
    >>> best_dice(masks, maps)
    (0.8888888888888888, 0.3)
    """
    y, s = pooled_pixels(masks, maps)
    require_anomalous_pixels(y, "Best Dice")
    return best_f1(y, s)


def best_iou(masks, maps):
    """Best IoU over all thresholds, and the threshold reaching it.

    The IoU grows with the Dice, so both peak at the threshold of
    :func:`best_dice`; the IoU is counted again there, exactly.

    Parameters
    ----------
    masks, maps : array-like of shape (n_images, height, width) or list of 2-D arrays
        As in :func:`best_dice`.

    Returns
    -------
    iou, threshold : float
        The largest :func:`iou` over every distinct score of ``maps``, and the
        threshold reaching it, that of :func:`best_dice`.

    Examples
    --------
    >>> from skdiffad.metrics import best_iou
    >>> best_iou([[[1, 1], [0, 0]]], [[[0.9, 0.6], [0.7, 0.1]]])
    (0.6666666666666666, 0.6)
    """
    y, s = pooled_pixels(masks, maps)
    require_anomalous_pixels(y, "Best IoU")
    _, threshold = best_f1(y, s)
    both, total = _overlap(y, s, threshold)
    return both / (total - both), threshold
