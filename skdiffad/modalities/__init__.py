"""Modality plug-ins: what each kind of data supplies to the estimator shell.

A modality is an encoder, a model recipe (the exact model or a network config)
and a reduction, behind one object with public methods: encode and decode, fold
and reduce (stretch scoring included), its Dask block plan and its generation
recipes. The detectors build one from their parameters at every fit and keep it
fitted as ``modality_``; the shell (:mod:`skdiffad.base`), the Dask services
(:mod:`skdiffad._dask`) and anomaly generation (:mod:`skdiffad.generation`) call
nothing else of a kind of data. ``doc/design.rst`` walks through adding one.
"""

from ._base import Modality, ModelSettings
from .images import ImageModality
from .series import SeriesModality
from .table import TableModality

__all__ = ["ImageModality", "Modality", "ModelSettings", "SeriesModality", "TableModality"]
