"""The scoring paradigms as objects, their registry, and their maths on one batch.

A paradigm (:class:`Paradigm`) holds its own options, checked once when it is
built, and tells the models everything they need about it: the network to
train, the training loss, the fixed scoring plan, the errors of a batch and,
for ``"discriminative"``, the head trained after the denoiser. The survey's
five paradigms of one network, two image paradigms built on a
reconstruction-trained denoiser, and a non-diffusion ablation:

============================  ==========  ===========  ==========  =====
paradigm                      generative  elementwise  event_rank  exact
============================  ==========  ===========  ==========  =====
:class:`Reconstruction`       yes         yes          any [#]_    yes
:class:`Imputation`           no          yes          any         yes
:class:`Density`              yes         yes          any         no
:class:`Score`                yes         no           any         no
:class:`Time`                 no          no           any         yes
:class:`Feature`              yes         yes          3           no
:class:`Discriminative`       yes         yes          3           no
:class:`Prediction` [#p]_     no          yes          any         no
============================  ==========  ===========  ==========  =====

.. [#] 3 (images ``(C, H, W)``) with ``noise="simplex"``.
.. [#p] Not diffusion: a plain predictor of hidden entries, the ablation of
   the conditional (imputation) model.

:func:`make_paradigm` builds one by name from :data:`PARADIGMS`::

    make_paradigm("reconstruction", n_grid=4, guidance=0.5)
    make_paradigm("imputation", hidden=grating_masks(64, 8)[:, None, :])
    make_paradigm("time", n_bins=9)

The formulas themselves, one batch at a time, are in :mod:`skdiffad._core.scoring`.
"""

from __future__ import annotations

from ..scoring import (
    accumulate,
    ddim_path,
    expected_times,
    feature_errors,
    imputation_errors,
    impute,
    negative_elbo_terms,
    reconstruct,
    reconstruct_conditioned,
    reconstruction_errors,
    restorations,
    score_norms,
)
from .base import TIME_EMBED_DIM, Paradigm
from .density import Density
from .discriminative import Discriminative
from .feature import Feature
from .imputation import Imputation
from .prediction import Prediction
from .reconstruction import Reconstruction, Restoring
from .score import Score
from .time_estimation import TIME_MAX_NOISE, Time

__all__ = [
    "Density", "Discriminative", "Feature", "Imputation", "PARADIGMS", "Paradigm", "Prediction",
    "Reconstruction", "Restoring", "Score", "TIME_EMBED_DIM", "TIME_MAX_NOISE", "Time",
    "accumulate", "ddim_path", "expected_times", "feature_errors", "impute",
    "imputation_errors", "make_paradigm", "negative_elbo_terms", "reconstruct",
    "reconstruct_conditioned", "reconstruction_errors", "restorations", "score_norms",
]

#: Every paradigm class by name, in the survey's order, then the image paradigms.
PARADIGMS = {cls.name: cls for cls in (Reconstruction, Imputation, Density, Score, Time,
                                       Feature, Discriminative, Prediction)}


def make_paradigm(paradigm, **options):
    """A paradigm object from its name and options.

    Parameters
    ----------
    paradigm : str or Paradigm
        A name of :data:`PARADIGMS`; a :class:`Paradigm` is returned as it is
        (and takes no options here).
    **options
        The paradigm's options (its class's ``options``); the others are
        refused.

    Returns
    -------
    paradigm : Paradigm

    Examples
    --------
    >>> make_paradigm("density", n_grid=4)
    Density(n_grid=4)
    >>> make_paradigm("score", n_bins=3)
    Traceback (most recent call last):
    ...
    ValueError: paradigm 'score' takes no option 'n_bins'; its options are ('n_grid',)
    """
    if isinstance(paradigm, Paradigm):
        if options:
            raise ValueError(f"options {sorted(options)} were given with a built paradigm "
                             f"{paradigm!r}; give them to its constructor")
        return paradigm
    if not isinstance(paradigm, str) or paradigm not in PARADIGMS:
        raise ValueError(f"unknown paradigm {paradigm!r}: paradigm must be one of "
                         f"{tuple(PARADIGMS)} (or a Paradigm object)")
    cls = PARADIGMS[paradigm]
    unknown = [name for name in options if name not in cls.options]
    if unknown:
        raise ValueError(f"paradigm {paradigm!r} takes no option {unknown[0]!r}; its options "
                         f"are {cls.options}")
    return cls(**options)
