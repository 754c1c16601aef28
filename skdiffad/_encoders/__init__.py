"""Encoders: a detector's input turned into samples of one event shape.

An encoder is fitted on the training input (its statistics: centres, scales,
categories) and turns any input of its kind into an :class:`Encoded` object:
the samples a model scores (and, when they differ, the samples it learns from),
each of shape ``(C, *spatial)`` with an observation mask; a series encoded at
several window lengths is a :class:`ScalesEncoded`, one part per length. Encoders
know arrays and DataFrames; the models in ``skdiffad._core`` see only the samples.
Each encoder records the number and names of the features it was fitted on
(:class:`InputRecord`); the detector copies them once its fit has succeeded.
"""

from ._base import CLIP, Encoded, InputRecord, ScalesEncoded
from .images import ImageEncoder, is_image_list
from .series import SeriesEncoder
from .tabular import TabularEncoder
from .video import VideoEncoder

__all__ = ["CLIP", "Encoded", "ImageEncoder", "InputRecord", "ScalesEncoded", "SeriesEncoder",
           "TabularEncoder", "VideoEncoder", "is_image_list"]
