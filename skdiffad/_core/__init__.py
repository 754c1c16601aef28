"""The torch diffusion core shared by every skdiffad detector.

Knows tensors, not estimators: it never imports scikit-learn or pandas. Private:
the detectors are the public API; what is here may change between releases.

* :mod:`.samples` -- data as samples fetched in batches (rows, windows);
* :mod:`.schedules` -- noise schedules, DDPM and DDIM steps;
* :mod:`.networks` -- denoisers over ``(N, C, *spatial)``;
* :mod:`.training` -- the one training loop and its losses;
* :mod:`.paradigms` -- the scoring paradigms as objects (their options, network,
  loss, plan and batch errors), their registry and their maths on one batch;
* :mod:`.plans` -- the fixed grids, noise and masks of scoring;
* :mod:`.sampling` -- new samples from a trained network (DDPM and DDIM chains);
* :mod:`.noise`, :mod:`.synthetic`, :mod:`.features`, :mod:`.discriminative` -- the
  image paradigms' pieces: simplex noise, pasted defects, feature distances and the
  segmentation head;
* :mod:`.nonparametric` -- the exact diffusion's posterior and nearest-sample search;
* :mod:`.exact`, :mod:`.learned` -- the two models a detector fits;
* :mod:`.devices` -- ``device="auto"`` and loading a model fitted elsewhere.
"""

from .devices import loadable_device, resolve_device
from .ensemble import ScaleEnsemble
from .exact import ExactModel, ExclusionError
from .learned import LearnedModel
from .networks import ConvDenoiser1d, MLPDenoiser, build_network, timestep_embedding
from .nonparametric import exact_time_scores, nearest_distances
from .paradigms import (
    PARADIGMS,
    Density,
    Discriminative,
    Feature,
    Imputation,
    Prediction,
    Paradigm,
    Reconstruction,
    Score,
    Time,
    feature_errors,
    make_paradigm,
    negative_elbo_terms,
)
from .plans import ScoringPlan, grating_masks
from .sampling import SAMPLERS, draw_samples
from .samples import ArraySamples, Samples, WindowSamples, gather_windows, window_starts
from .schedules import BETA_SCHEDULES, NoiseSchedule, make_schedule
from .synthetic import harmonise
from .training import (
    TrainingConfig,
    denoising_loss,
    imputation_loss,
    time_loss,
    train_network,
)

__all__ = [
    "ArraySamples", "BETA_SCHEDULES", "ConvDenoiser1d", "Density", "Discriminative",
    "ExactModel", "ExclusionError", "Feature", "Imputation", "LearnedModel", "MLPDenoiser",
    "NoiseSchedule", "PARADIGMS", "Paradigm", "Prediction", "Reconstruction", "SAMPLERS", "Samples",
    "ScaleEnsemble", "Score", "ScoringPlan", "Time", "TrainingConfig", "WindowSamples",
    "build_network", "denoising_loss", "draw_samples", "exact_time_scores", "feature_errors",
    "gather_windows", "grating_masks", "harmonise", "imputation_loss", "loadable_device",
    "make_paradigm", "make_schedule", "nearest_distances", "negative_elbo_terms",
    "resolve_device", "time_loss", "timestep_embedding", "train_network", "window_starts",
]
