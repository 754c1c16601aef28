"""Metrics for anomaly scores and anomaly labels.

Three families, all with the conventions of the rest of the package: label 1 is
an anomaly, a higher score is more abnormal, and a threshold ``t`` flags the
points whose score is ``>= t``.

* Point-wise, threshold-free: :func:`auroc`, :func:`aupr` (scikit-learn's
  numbers behind this package's input checks), and the best F1 over all
  thresholds, :func:`best_f1`.
* Range-aware, for time series: the Volume Under the Surface :func:`vus_roc` and
  :func:`vus_pr` (Paparrizos et al., VLDB 2022), and the range-based precision and
  recall of Tatbul et al. (NeurIPS 2018), :func:`range_precision_recall`,
  :func:`range_f1` and :func:`best_range_f1`, and the UCR anomaly archive's
  own measure, :func:`top_score_hit` (is the highest score in the anomaly?).
* Point adjustment, :func:`point_adjusted_f1` and :func:`best_point_adjusted_f1`,
  kept only so that numbers can be compared with papers that report it: it
  inflates scores (Kim et al., AAAI 2022).
* Pixel-level, for anomaly maps of images (localisation), over the pixels of
  all images pooled: :func:`pixel_auroc`, :func:`pixel_aupr`, the per-region
  overlap :func:`aupro` (Bergmann et al., IJCV 2021), and the overlap of the
  flagged pixels with the defects, :func:`dice` and :func:`iou` at a threshold
  and :func:`best_dice` and :func:`best_iou` over all thresholds. They take
  masks and maps of shape ``(n_images, height, width)``, or lists of 2-D
  arrays for images of different sizes.

:func:`anomaly_ranges` turns a 0/1 vector into its ``[start, stop)`` runs of 1s.
Every function raises a ``ValueError`` naming the argument at fault for input
that is not 1-D, of unequal lengths, not 0/1 labels, or not finite scores, and
for labels with which the metric is undefined (no anomaly, or no normal point);
the pixel metrics name ``masks`` or ``maps``, and the image at fault.
"""

from ._pixel import best_dice, best_iou, dice, iou, pixel_aupr, pixel_auroc
from ._point_f1 import best_f1, best_point_adjusted_f1, point_adjusted_f1
from ._pro import aupro
from ._range import best_range_f1, range_f1, range_precision_recall
from ._range import BIASES, CARDINALITIES  # noqa: F401  (the option values; not in __all__)
from ._ranking import aupr, auroc
from ._series import anomaly_ranges
from ._top import top_score_hit
from ._vus import vus_pr, vus_roc

__all__ = [
    "anomaly_ranges",
    "aupr",
    "aupro",
    "auroc",
    "best_dice",
    "best_f1",
    "best_iou",
    "best_point_adjusted_f1",
    "best_range_f1",
    "dice",
    "iou",
    "pixel_aupr",
    "pixel_auroc",
    "point_adjusted_f1",
    "range_f1",
    "range_precision_recall",
    "top_score_hit",
    "vus_pr",
    "vus_roc",
]
