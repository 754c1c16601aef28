"""What every encoder shares: the encoded form and the clipping bound."""

from __future__ import annotations

from dataclasses import dataclass

from .._core.samples import Samples

__all__ = ["CLIP", "Encoded"]

# Standardised values beyond this many standard deviations are clipped: the order
# of such points no longer matters (they are anomalies at any threshold) and it
# keeps float32 arithmetic finite.
CLIP = 1e4


@dataclass
class Encoded:
    """An input as a model sees it.

    Attributes
    ----------
    samples : Samples
        The units that are scored (table rows, windows every ``stride`` steps,
        images).
    training : Samples or None
        The units a model learns from, when they differ from ``samples`` (every
        window of the training series); ``None``: the same.
    working_size : tuple of int or None
        Images: the height and width the model sees.
    sizes : list of tuple of int or None
        Images: each input's own height and width (maps come back at it).
    """

    samples: Samples
    training: Samples | None = None
    working_size: tuple | None = None
    sizes: list | None = None

    def __post_init__(self):
        if self.training is None:
            self.training = self.samples
