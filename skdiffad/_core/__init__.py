"""The torch diffusion core shared by every skdiffad detector.

Knows tensors, not estimators: it never imports scikit-learn or pandas.
"""

from .nonparametric import exact_time_scores, nearest_distances
from .networks import MLPDenoiser, build_network, timestep_embedding
from .schedules import BETA_SCHEDULES, NoiseSchedule, make_schedule
from .scoring import SCORINGS, ScoringPlan, make_scoring_plan, negative_elbo, score_array, score_batch
from .training import TrainingConfig, denoising_loss, time_loss, train_network

__all__ = [
    "BETA_SCHEDULES", "MLPDenoiser", "NoiseSchedule", "SCORINGS", "ScoringPlan",
    "TrainingConfig", "build_network", "denoising_loss", "exact_time_scores", "make_schedule",
    "make_scoring_plan", "nearest_distances", "negative_elbo", "score_array", "score_batch", "time_loss",
    "timestep_embedding", "train_network",
]
