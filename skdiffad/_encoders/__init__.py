"""Encoders: a detector's input turned into samples of one event shape.

An encoder is fitted on the training input (its statistics: centres, scales,
categories) and turns any input of its kind into an :class:`Encoded` object:
the samples a model scores (and, when they differ, the samples it learns from),
each of shape ``(C, *spatial)`` with an observation mask. Encoders know arrays
and DataFrames; the models in ``skdiffad._core`` see only the samples.
"""

from ._base import CLIP, Encoded
from .images import ImageEncoder
from .series import SeriesEncoder
from .tabular import TabularEncoder

__all__ = ["CLIP", "Encoded", "ImageEncoder", "SeriesEncoder", "TabularEncoder"]
