"""The area under the per-region-overlap curve (AUPRO) of Bergmann et al.

Pixel AUROC lets a large defect outweigh many small ones; the PRO curve weighs
every connected defect region equally, whatever its size.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.integrate import trapezoid

from ._maps import check_masks_and_maps, check_real

#: Pixels touching by an edge or a corner belong to one region, as in the
#: MVTec AD reference evaluation code.
EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def _inverse_region_sizes(masks):
    """Per pixel of all images, ``1 / size`` of its defect region (0 if normal).

    Returns the flat weights and the number of regions over all images.
    """
    weights, n_regions = [], 0
    for mask in masks:
        labels, n_found = ndimage.label(mask, structure=EIGHT_CONNECTED)
        sizes = np.bincount(labels.ravel())
        inverse = np.zeros(sizes.size)
        inverse[1:] = 1.0 / sizes[1:]
        weights.append(inverse[labels.ravel()])
        n_regions += n_found
    return np.concatenate(weights), n_regions


def _pro_curve(masks, maps):
    """``(fpr, pro)`` at every distinct threshold, decreasing, after ``(0, 0)``."""
    weights, n_regions = _inverse_region_sizes(masks)
    normal = np.concatenate([~mask.ravel() for mask in masks])
    if n_regions == 0:
        raise ValueError("AUPRO is undefined when masks hold no anomalous region (no 1).")
    if not normal.any():
        raise ValueError("AUPRO is undefined when masks hold only anomalous pixels (no 0).")
    scores = np.concatenate([score.ravel() for score in maps])
    _, tie = np.unique(-scores, return_inverse=True)
    n_ties = int(tie.max()) + 1
    false_pos = np.cumsum(np.bincount(tie, weights=normal, minlength=n_ties))
    overlap = np.cumsum(np.bincount(tie, weights=weights, minlength=n_ties))
    fpr = false_pos / false_pos[-1]
    pro = np.minimum(overlap / n_regions, 1.0)
    return np.concatenate(([0.0], fpr)), np.concatenate(([0.0], pro))


def _area_up_to(x, y, x_max):
    """Trapezoid area under ``y(x)`` on ``[0, x_max]``, ``y(x_max)`` interpolated.

    ``x`` is non-decreasing from 0 and ends at 1 >= ``x_max``.
    """
    inside = int(np.searchsorted(x, x_max, side="right"))
    x_in, y_in = x[:inside], y[:inside]
    if x_in[-1] < x_max:
        x0, x1, y0, y1 = x[inside - 1], x[inside], y[inside - 1], y[inside]
        x_in = np.append(x_in, x_max)
        y_in = np.append(y_in, y0 + (y1 - y0) * (x_max - x0) / (x1 - x0))
    return float(trapezoid(y_in, x_in))


def aupro(masks, maps, max_fpr=0.3):
    """Normalised area under the per-region-overlap (PRO) curve up to ``max_fpr``.

    For a threshold ``t`` (pixels with ``maps >= t`` flagged), the PRO is the
    mean, over every connected defect region of every image, of the fraction of
    that region's pixels flagged; the false positive rate (FPR) is the fraction
    of normal pixels, over all images, flagged. Every distinct score of
    ``maps`` is a threshold (equal scores share one), and the curve starts at
    ``(0, 0)``, a threshold above every score. The area under PRO as a function
    of FPR on ``[0, max_fpr]`` is taken by the trapezoidal rule, with the PRO at
    exactly ``FPR = max_fpr`` interpolated linearly between the two curve points
    around it, and divided by ``max_fpr``: a map that scores every defect pixel
    above every normal pixel gets 1.

    The curve comes from one sort of all pixel scores, ``O(P log P)`` for ``P``
    pixels: each defect pixel adds ``1 / (n_regions * region size)`` to the PRO
    once the threshold reaches its score, each normal pixel ``1 / n_normal`` to
    the FPR.

    Regions are the connected components of each mask under 8-connectivity
    (pixels touching by an edge or a corner join, ``scipy.ndimage.label`` with
    a 3x3 structure of ones), as in the MVTec AD reference code; regions never
    span two images. Images without defects contribute only normal pixels: they
    add to the FPR, not to the PRO.

    Parameters
    ----------
    masks : array-like of shape (n_images, height, width) or list of 2-D arrays
        Ground truth, 0/1 or bool, 1 = defect pixel. Over all images there must
        be at least one defect and one normal pixel. A list may hold images of
        different sizes.
    maps : array-like of shape (n_images, height, width) or list of 2-D arrays
        Anomaly maps, higher = more abnormal, finite, each of the shape of its
        mask.
    max_fpr : float, default=0.3
        The FPR up to which the curve is integrated, in (0, 1]; 0.3 is the
        MVTec AD protocol.

    Returns
    -------
    aupro : float
        In [0, 1]; 1 for a perfect map, 0 for one that scores every normal
        pixel above every defect pixel.

    Raises
    ------
    ValueError
        When the shapes do not match (the message names the image), a mask is
        not 0/1, a map holds a NaN or infinite value, an input is empty, the
        masks hold no defect or no normal pixel, or ``max_fpr`` is not in
        (0, 1].

    References
    ----------
    .. [1] P. Bergmann, K. Batzner, M. Fauser, D. Sattlegger and C. Steger.
       "The MVTec Anomaly Detection Dataset: A Comprehensive Real-World Dataset
       for Unsupervised Anomaly Detection". International Journal of Computer
       Vision 129, 1038-1059, 2021.

    Examples
    --------
    >>> import numpy as np
    >>> from skdiffad.metrics import aupro
    >>> masks = np.zeros((2, 4, 4), dtype=int)
    >>> masks[0, :2, :2] = 1                  # a large defect in image 0
    >>> masks[1, 3, 3] = 1                    # a one-pixel defect in image 1
    >>> maps = masks * np.array([1.0, 0.0])[:, None, None]  # misses the small one
    >>> aupro(masks, maps)  # the small defect weighs as much as the large one
    0.575
    """
    max_fpr = check_real(max_fpr, "max_fpr", low=0.0, high=1.0, low_open=True)
    mask_images, map_images = check_masks_and_maps(masks, maps)
    fpr, pro = _pro_curve(mask_images, map_images)
    return _area_up_to(fpr, pro, max_fpr) / max_fpr
