"""The estimator shell every skdiffad detector shares.

It owns what is the same for every data kind: parameter validation, seeding,
device resolution, the call into the one training loop, batched scoring, PyOD's
threshold/labels, and pickling (network config + CPU weights). A detector
subclass only says how its input becomes a float matrix (and mask), and which
network to build for it.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import torch
from pyod.models.base import BaseDetector
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._core.networks import build_network
from ._core.nonparametric import exact_time_scores, nearest_distances
from ._core.schedules import BETA_SCHEDULES, make_schedule
from ._core.scoring import SCORINGS, make_scoring_plan, score_array
from ._neighbours import NeighbourIndex
from ._core.training import TrainingConfig, denoising_loss, time_loss, train_network

__all__ = ["BaseDiffusionDetector", "resolve_device"]

# Gradient steps of max_iter="auto". Diffusion models learn from the number of
# noisy samples they see, not from passes over the data: a fixed budget trains a
# 200-row table as well as a 10k-row one and keeps fit time independent of n.
_AUTO_STEPS = 1000

#: Scorings of the diffusion detectors: the learned paradigms, and diffusion-time
#: estimation under the exact (non-parametric) diffusion of the training rows.
DETECTOR_SCORINGS = ("nonparametric",) + tuple(SCORINGS)

# Neighbours of the exact posterior: its weights fall off as r^-d, so beyond the
# first few the terms vanish (ADBench: k = 1, 5, 10 and 50 within 0.0002 AUROC).
_POSTERIOR_NEIGHBOURS = 10
# Fewest neighbours of the contamination-robust estimator.
_MIN_NEIGHBOURHOOD = 20

# Largest noise-to-signal ratio s_t/a_t that diffusion-time estimation covers, in
# units of the standardised features (DTE's own schedule stops near 1.9).
_TIME_MAX_NOISE = 2.0


def resolve_device(device) -> torch.device:
    """Turn ``"auto" | "cpu" | "cuda" | "cuda:N"`` into a ``torch.device``.

    ``"auto"`` picks CUDA when a GPU is visible; asking for CUDA without one is an
    error rather than a silent fall-back.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}"
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available")
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    return resolved


class BaseDiffusionDetector(BaseDetector):
    """Shared fit/score flow of the diffusion detectors (not for direct use).

    Subclasses implement ``_fit_input(X)`` / ``_score_input(X)`` returning
    ``(Z, mask)`` (a float32 matrix and a boolean observation mask or ``None``),
    and ``_network_config(in_dim, out_dim, time_embed_dim)``.
    """

    _parameter_constraints: dict = {
        "scoring": [StrOptions(set(DETECTOR_SCORINGS))],
        "n_timesteps": [Interval(numbers.Integral, 2, None, closed="left")],
        "beta_schedule": [StrOptions(set(BETA_SCHEDULES))],
        "n_bins": [Interval(numbers.Integral, 2, None, closed="left")],
        "n_scoring_timesteps": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_inference_steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "ema_decay": [None, Interval(numbers.Real, 0, 1, closed="neither")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
        "contamination": [Interval(numbers.Real, 0, 0.5, closed="right")],
        "novelty": ["boolean"],
        "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "max_samples": [Interval(numbers.Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    #: gradient steps of ``max_iter="auto"``
    _auto_steps = _AUTO_STEPS

    # ------------------------------------------------------------- subclass API
    def _fit_input(self, X):  # pragma: no cover - abstract
        raise NotImplementedError

    def _score_input(self, X):  # pragma: no cover - abstract
        raise NotImplementedError

    def _network_config(self, in_dim, out_dim, time_embed_dim):  # pragma: no cover
        raise NotImplementedError

    # ---------------------------------------------------------------- helpers
    def _check_extra_params(self):
        """Hook for checks that span several parameters."""

    def _training_config(self, n_samples):
        max_iter, max_steps = self.max_iter, None
        if max_iter == "auto":
            n_train = n_samples
            if self.early_stopping:
                n_train -= int(n_samples * self.validation_fraction)
            steps_per_epoch = -(-max(n_train, 1) // min(self.batch_size, max(n_train, 1)))
            max_iter = -(-self._auto_steps // steps_per_epoch)
            max_steps = self._auto_steps
        return TrainingConfig(
            max_iter=max_iter,
            max_steps=max_steps,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            ema_decay=self.ema_decay,
            early_stopping=self.early_stopping,
            validation_fraction=self.validation_fraction,
            n_iter_no_change=self.n_iter_no_change,
            verbose=self.verbose,
        )

    def _time_max_step(self, schedule):
        """Last step of diffusion-time estimation: where ``s_t / a_t`` reaches
        ``_TIME_MAX_NOISE``. Standardised data has unit spread, so noise-to-signal
        ratios well above 1 all look alike and would waste the classifier's bins."""
        return schedule.last_step_below(_TIME_MAX_NOISE)

    def _loss(self, schedule):
        mask_input = self.mask_input_
        if self.scoring == "time":
            n_bins, t_max = self.n_bins, self._time_max_step(schedule)

            def loss(network, x, mask, generator):
                return time_loss(network, schedule, x, mask, generator,
                                 n_bins=n_bins, t_max=t_max, mask_input=mask_input)
        else:
            def loss(network, x, mask, generator):
                return denoising_loss(network, schedule, x, mask, generator,
                                      mask_input=mask_input)
        return loss

    # -------------------------------------------------------------------- fit
    def fit(self, X, y=None):
        """Fit the diffusion model on ``X`` (``y`` is ignored).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; see the class docstring for the accepted kinds.
        y : Ignored
            Present for API consistency.

        Returns
        -------
        self : object
            The fitted detector.
        """
        self._validate_params()
        self._check_extra_params()
        Z, mask = self._fit_input(X)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        self.device_ = resolve_device(self.device)
        if self.scoring == "nonparametric":
            return self._fit_nonparametric(Z, mask, seed)
        self.schedule_ = make_schedule(self.beta_schedule, self.n_timesteps)
        self.mask_input_ = mask is not None
        n_features = Z.shape[1]
        in_dim = n_features * (2 if self.mask_input_ else 1)
        if self.scoring == "time":
            config = self._network_config(in_dim, self.n_bins, 0)
        else:
            config = self._network_config(in_dim, n_features, 64)
            config["gaussian_skip"] = True
        config["n_timesteps"] = self.n_timesteps
        gen = torch.Generator().manual_seed(seed)
        network = build_network(config).reset_parameters(gen)
        if config.get("gaussian_skip"):
            network.set_gaussian_skip(self.schedule_)
        network = network.to(self.device_)
        tensors = [torch.as_tensor(Z, device=self.device_),
                   None if mask is None else torch.as_tensor(mask, device=self.device_)]
        history = train_network(network, self._loss(self.schedule_.to(self.device_)), tensors,
                                self._training_config(Z.shape[0]), seed=seed,
                                device=self.device_)
        self.network_ = network
        self._record_training(history)
        self.scoring_plan_ = make_scoring_plan(
            self.scoring, self.schedule_, n_features, self.n_scoring_timesteps,
            torch.Generator().manual_seed(seed + 3),
            n_inference_steps=self.n_inference_steps, n_bins=self.n_bins,
            t_max=self._time_max_step(self.schedule_),
        )
        return self._finish_fit(Z, mask)

    def _record_training(self, history):
        """Set ``history_``, the loss curves and ``n_iter_`` from ``train_network``'s
        history, or for a fit that trains nothing (``None``: one pass, storing data)."""
        history = {} if history is None else history
        self.history_ = history
        self.loss_curve_ = list(history.get("loss", []))
        self.validation_loss_curve_ = list(history.get("val_loss", []))
        self.n_iter_ = history.get("n_iter", 1)

    def _training_scores(self, Z, mask):
        """Scores of the training data, ``decision_scores_`` (the exact scorers
        leave each row's own contribution out; see the subclasses)."""
        return self._score_matrix(Z, mask)

    def _finish_fit(self, Z, mask):
        self.decision_scores_ = self._training_scores(Z, mask)
        # PyOD's predict_proba reads _classes; its _set_n_classes(y) would warn
        # whenever y is passed, which GridSearchCV always does.
        self._classes = 2
        self._process_decision_scores()
        return self

    def _fit_nonparametric(self, Z, mask, seed):
        """Store (a sample of) the training rows: the exact diffusion needs nothing else."""
        rows = Z  # the encoder already put missing values at 0, the training mean
        n = rows.shape[0]
        if n > self.max_samples:
            keep = np.sort(np.random.default_rng(seed).choice(n, self.max_samples, replace=False))
            rows = rows[keep]
        self.reference_ = np.ascontiguousarray(rows, dtype=np.float32)
        # a search tree (or sklearn's blocked brute force in high dimension) for
        # CPU queries without gaps; CUDA and masked queries use matrix products
        self.index_ = NeighbourIndex(self.reference_)
        self.n_neighbors_ = self._resolve_neighbours(self.reference_.shape[0])
        self.mask_input_ = mask is not None
        self.network_ = None
        self.scoring_plan_ = None
        self._record_training(None)
        return self._finish_fit(Z, mask)

    def _resolve_neighbours(self, n_reference):
        if self.n_neighbors != "auto":
            k = self.n_neighbors
        elif self.novelty:
            k = _POSTERIOR_NEIGHBOURS
        else:
            # look past a cluster as large as the expected number of anomalies
            k = max(_MIN_NEIGHBOURHOOD, int(np.ceil(self.contamination * n_reference)))
        return int(max(1, min(k, n_reference - 1 if n_reference > 1 else 1)))

    # ---------------------------------------------------------------- scoring
    def _score_matrix(self, Z, mask):
        if self.scoring == "nonparametric":
            distances = nearest_distances(Z, self.reference_, self.n_neighbors_,
                                          query_mask=mask, device=self.device_,
                                          index=self.index_)
            scores = exact_time_scores(distances, self.reference_.shape[1],
                                       "posterior" if self.novelty else "neighbourhood")
        else:
            scores = score_array(
                self.network_, self.schedule_, self.scoring_plan_, Z, mask,
                batch_size=max(self.batch_size, 4096), device=self.device_,
                mask_input=self.mask_input_,
            )
        if not np.all(np.isfinite(scores)):
            bad = int(np.sum(~np.isfinite(scores)))
            raise FloatingPointError(
                f"{bad} of {len(scores)} scores are not finite; the input holds values "
                "too extreme for float32 after standardisation"
            )
        return scores

    def decision_function(self, X):
        """Anomaly score of each row of ``X``; higher means more abnormal.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to score, of the same kind as the data seen in fit (a DataFrame
            with the fitted columns, or a numeric array).

        Returns
        -------
        scores : ndarray of shape (n_samples,), float64
            Anomaly scores in the units of the chosen ``scoring``.
        """
        check_is_fitted(self, ["network_", "scoring_plan_", "decision_scores_"])
        Z, mask = self._score_input(X)
        return self._score_matrix(Z, mask)

    def score_samples(self, X):
        """Opposite of :meth:`decision_function` (scikit-learn's sign: higher = more normal).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,), float64
            Negated anomaly scores.
        """
        return -self.decision_function(X)

    # ------------------------------------------------------------- persistence
    def __getstate__(self):
        state = super().__getstate__().copy()
        network = state.get("network_")
        if network is not None:
            del state["network_"]
            state["_network_state"] = {
                "config": dict(network.config),
                "weights": {k: v.detach().cpu() for k, v in network.state_dict().items()},
                "dtype": str(next(network.parameters()).dtype).replace("torch.", ""),
            }
        return state

    def __setstate__(self, state):
        saved = state.pop("_network_state", None)
        super().__setstate__(state)
        device = getattr(self, "device_", None)
        if device is None:
            return
        if device.type == "cuda" and not torch.cuda.is_available():
            warnings.warn(
                f"{type(self).__name__} was fitted on {device} but CUDA is not available; "
                "loading it on the CPU",
                UserWarning,
                stacklevel=2,
            )
            device = torch.device("cpu")
            self.device_ = device
        if saved is None:
            return
        network = build_network(saved["config"]).to(getattr(torch, saved["dtype"]))
        network.load_state_dict(saved["weights"])
        self.network_ = network.to(device).eval()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.non_deterministic = False
        return tags
