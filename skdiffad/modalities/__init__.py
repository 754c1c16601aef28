"""Modality plug-ins: what each kind of data supplies to the estimator shell.

A modality is an encoder, a model recipe (the exact model or a network config)
and a reduction, behind one object with public methods: encode and decode, fold
and reduce (stretch scoring included), its Dask block plan and its generation
recipes. The detectors build one from their parameters at every fit and keep it
fitted as ``modality_``; the shell (:mod:`skdiffad.base`), the Dask services
(:mod:`skdiffad._dask`) and anomaly generation (:mod:`skdiffad.generation`) call
nothing else of a kind of data. ``doc/design.rst`` walks through adding one.

What a new modality is built of is exported here too: the encoded forms
(:class:`Encoded`, :class:`ScalesEncoded`), the samples a model reads
(:class:`ArraySamples`, :class:`WindowSamples`, :class:`PatchSamples`), and the
input record and validation an encoder uses (:class:`InputRecord`,
:func:`validated`).
"""

from .._core.samples import ArraySamples, PatchSamples, Samples, WindowSamples
from .._encoders import Encoded, InputRecord, ScalesEncoded
from .._encoders._base import validated
from ._base import Modality, ModelSettings
from .images import ImageModality
from .series import SeriesModality
from .table import TableModality
from .video import VideoModality

__all__ = [
    # the plug-in and what it is built of
    "Modality", "ModelSettings", "Encoded", "ScalesEncoded", "InputRecord", "validated",
    "Samples", "ArraySamples", "WindowSamples", "PatchSamples",
    # the modalities of the package
    "ImageModality", "SeriesModality", "TableModality", "VideoModality",
]
