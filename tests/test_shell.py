"""The shared estimator shell: one fitted model per fit, state, pickling, parameters.

Every test runs over both detectors and their models (exact and learned), so a
new modality that plugs into the shell gets the same guarantees.
"""

import inspect
import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone

from skdiffad import DiffusionImageDetector, DiffusionTSDetector, TabDiffusionDetector

from .state import deep_state

TAB_FAST = {"widths": (8,), "max_steps": 4, "n_timesteps": 50, "n_scoring_timesteps": 2,
            "n_inference_steps": 2, "device": "cpu", "random_state": 0}
IMG_FAST = {"patch_size": 4, "widths": (4, 8), "max_steps": 5, "n_timesteps": 50,
            "n_inference_steps": 2, "n_scoring_timesteps": 1, "device": "cpu", "random_state": 0}
TS_FAST = {"window_size": 8, "widths": (8,), "kernel_size": 3, "max_steps": 5, "n_timesteps": 50,
           "n_inference_steps": 2, "n_stripes": 2, "device": "cpu", "random_state": 0}

TABULAR = [{"denoiser": "exact", "scoring": "time"}]
TABULAR += [{"denoiser": "mlp", "scoring": s} for s in ("time", "reconstruction", "density", "score")]
TABULAR += [{"denoiser": "exact", "scoring": "time", "novelty": False}]
SERIES = [{"denoiser": d, "scoring": s} for d in ("exact", "unet")
          for s in ("reconstruction", "imputation")]
IMAGES = [{"denoiser": "exact", "scoring": "reconstruction"},
          {"denoiser": "unet", "scoring": "reconstruction"},
          {"denoiser": "unet", "scoring": "density"},
          {"denoiser": "unet", "scoring": "feature"},
          {"denoiser": "unet", "scoring": "discriminative", "head_widths": (4,)}]
CASES = ([(TabDiffusionDetector, {**TAB_FAST, **p}) for p in TABULAR]
         + [(DiffusionTSDetector, {**TS_FAST, **p}) for p in SERIES]
         + [(DiffusionImageDetector, {**IMG_FAST, **p}) for p in IMAGES])
_SHORT = {TabDiffusionDetector: "tab", DiffusionTSDetector: "ts", DiffusionImageDetector: "img"}
IDS = [f"{_SHORT[cls]}-{p.get('denoiser', '')}{p['scoring']}-{p.get('novelty', '')}"
       for cls, p in CASES]


def table(n=300, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 4))


def series(n=400, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None]
    return np.sin(2 * np.pi * t / 25 + np.array([[0.0, 1.0]])) + 0.05 * rng.normal(size=(n, 2))


def images(n=24, seed=0):
    return np.random.default_rng(seed).random((n, 9, 11))


def data_for(cls, seed=0):
    return {TabDiffusionDetector: table, DiffusionTSDetector: series,
            DiffusionImageDetector: images}[cls](seed=seed)


# -------------------------------------------------------------- fitted state
REFITS = [(f, s) for f in (0, 1, 2, 5) for s in (0, 1, 5)]  # tables, exact <-> learned
REFITS += [(6, 8), (8, 6), (7, 9), (9, 6)]  # series: exact <-> U-Net
REFITS += [(10, 11), (11, 10), (12, 10)]  # images: exact <-> U-Net


@pytest.mark.parametrize("first, second", REFITS, ids=lambda i: IDS[i])
def test_a_refit_replaces_the_whole_fitted_state(first, second):
    """Refitting with other settings leaves nothing of the first fit behind: the
    same attributes, model state, scores and pickle as a fresh fit with them."""
    (cls, p1), (_, p2) = CASES[first], CASES[second]
    X = data_for(cls)
    refit = cls(**p1).fit(X).set_params(**{**cls().get_params(), **p2}).fit(X)
    fresh = cls(**p2).fit(X)
    assert set(vars(refit)) == set(vars(fresh))
    assert deep_state(refit.model_) == deep_state(fresh.model_)
    np.testing.assert_array_equal(refit.decision_scores_, fresh.decision_scores_)
    assert len(pickle.dumps(refit)) == len(pickle.dumps(fresh))
    for stale in ("reference_", "index_", "schedule_", "scoring_plan_", "mask_input_"):
        assert not hasattr(refit, stale)


def test_a_failed_refit_keeps_the_previous_model():
    det = DiffusionTSDetector(**{**TS_FAST, "window_size": 64}).fit(series(600))
    before = deep_state(det.model_), det.decision_scores_.copy()
    with pytest.raises(ValueError, match="too short"):
        det.fit(series(130))
    assert deep_state(det.model_) == before[0]
    np.testing.assert_array_equal(det.decision_scores_, before[1])


@pytest.mark.parametrize("cls, params", CASES, ids=IDS)
def test_scoring_changes_no_state_at_all(cls, params):
    """decision_function, predict and predict_proba leave every attribute, the
    model's private search caches and every weight exactly as they were."""
    det = cls(**params).fit(data_for(cls))
    before = deep_state(det)
    new = data_for(cls, seed=1)
    first = det.decision_function(new)
    det.predict(new)
    det.predict_proba(new)
    if cls is DiffusionTSDetector:
        det.channel_scores(new)
    if cls is DiffusionImageDetector:
        det.anomaly_map(new)
        det.predict_mask(new)
    assert deep_state(det) == before
    np.testing.assert_array_equal(det.decision_function(new), first)


# ---------------------------------------------------------------- pickling
@pytest.mark.parametrize("cls, params", CASES, ids=IDS)
def test_pickle_round_trip_is_exact_and_saves_no_search_index(cls, params):
    det = cls(**params).fit(data_for(cls))
    blob = pickle.dumps(det)
    restored = pickle.loads(blob)
    new = data_for(cls, seed=1)
    np.testing.assert_array_equal(restored.decision_function(new), det.decision_function(new))
    assert deep_state(restored) == deep_state(det)  # caches rebuilt exactly on load
    state = det.model_.__getstate__()
    assert not any(k.startswith("_") and k != "_saved_networks" for k in state)


def test_the_exact_model_pickles_its_rows_once():
    """The stored rows are saved once, as float32: no k-d tree copy, no float64 copy."""
    X = table(n=5000)
    det = TabDiffusionDetector(random_state=0).fit(X)
    assert det.model_._index is not None  # a tree is in use ...
    assert len(pickle.dumps(det)) < 1.2 * det.model_.stored_.numel() * 4 + 200_000  # ... not saved


# ---------------------------------------------------------------- parameters
@pytest.mark.parametrize("cls, params", CASES, ids=IDS)
def test_clone_gives_an_unfitted_copy_that_refits_identically(cls, params):
    det = cls(**params).fit(data_for(cls))
    copy = clone(det)
    assert not hasattr(copy, "model_") and not hasattr(copy, "decision_scores_")
    assert copy.get_params() == det.get_params() and copy is not det
    np.testing.assert_array_equal(copy.fit(data_for(cls)).decision_scores_, det.decision_scores_)


@pytest.mark.slow
@pytest.mark.parametrize("cls, X", [(TabDiffusionDetector, table()),
                                    (DiffusionTSDetector, series())])
def test_max_steps_is_a_public_step_budget(cls, X):
    learned = ({"denoiser": "mlp", "scoring": "density"} if cls is TabDiffusionDetector
               else {"denoiser": "unet"})
    base = {**(TAB_FAST if cls is TabDiffusionDetector else TS_FAST), **learned}
    base.pop("max_iter", None)
    det = cls(**{**base, "max_steps": 7}).fit(X)
    assert det.history_["n_steps"] == 7
    assert clone(det).max_steps == 7  # a parameter, not an instance override: clone keeps it
    # 1000 for tables, 600 for series: the signature's default
    default = cls(**{k: v for k, v in base.items() if k != "max_steps"}).fit(X)
    assert default.history_["n_steps"] == inspect.signature(cls).parameters["max_steps"].default
    with pytest.raises(ValueError, match="max_steps"):
        cls(**{**base, "max_steps": 0}).fit(X)


@pytest.mark.slow
@pytest.mark.parametrize("cls, X", [(TabDiffusionDetector, table()),
                                    (DiffusionTSDetector, series())])
def test_the_0_1_spellings_of_the_budget_still_work_with_a_future_warning(cls, X):
    """max_iter (epochs) and max_steps=None keep 0.1's meaning for one release."""
    learned = ({"denoiser": "mlp", "scoring": "density"} if cls is TabDiffusionDetector
               else {"denoiser": "unet"})
    base = {**(TAB_FAST if cls is TabDiffusionDetector else TS_FAST), **learned}
    base.pop("max_iter", None)
    base.pop("max_steps", None)
    with pytest.warns(FutureWarning, match="max_iter.*pass max_steps= instead"):
        capped = cls(**{**base, "max_iter": 50, "max_steps": 3}).fit(X)
    assert capped.history_["n_steps"] == 3 and capped.n_iter_ <= 3
    with pytest.warns(FutureWarning, match="max_iter"):
        uncapped = cls(**{**base, "max_iter": 2}).fit(X)  # 0.1: epochs with no cap
    assert uncapped.n_iter_ == 2 and uncapped.history_["n_steps"] > 3
    with pytest.warns(FutureWarning, match="max_steps=None"):
        default = cls(**{**base, "max_steps": None}).fit(X)
    assert default.history_["n_steps"] == inspect.signature(cls).parameters["max_steps"].default


@pytest.mark.parametrize("cls, X", [(TabDiffusionDetector, table()),
                                    (DiffusionTSDetector, series())])
def test_mixed_precision_is_validated_and_the_cpu_path_ignores_it(cls, X):
    learned = ({"denoiser": "mlp", "scoring": "density"} if cls is TabDiffusionDetector
               else {"denoiser": "unet"})
    base = {**(TAB_FAST if cls is TabDiffusionDetector else TS_FAST), **learned}
    a = cls(**{**base, "mixed_precision": True}).fit(X).decision_scores_
    b = cls(**{**base, "mixed_precision": False}).fit(X).decision_scores_
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="mixed_precision"):
        cls(**{**base, "mixed_precision": "yes"}).fit(X)


def test_parameters_of_one_detector_are_not_checked_on_the_other():
    """The shell validates only what every detector has; table-only settings
    (novelty, n_neighbors, n_bins) are not parameters of the series detector."""
    ts_params = DiffusionTSDetector().get_params()
    assert not {"novelty", "n_neighbors", "n_bins", "hidden_dims"} & set(ts_params)
    assert not {"window_size", "stride"} & set(TabDiffusionDetector().get_params())
    for cls in (TabDiffusionDetector, DiffusionTSDetector, DiffusionImageDetector):
        assert set(cls._parameter_constraints) == set(cls().get_params())


def test_tags_are_honest():
    for cls in (TabDiffusionDetector, DiffusionTSDetector):
        tags = cls(device="cpu").__sklearn_tags__()
        assert tags.input_tags.allow_nan and not tags.input_tags.sparse
        assert not tags.non_deterministic  # every CPU result is reproducible
    if torch.cuda.is_available():  # training on CUDA is not bit-reproducible
        assert TabDiffusionDetector(device="cuda").__sklearn_tags__().non_deterministic


# ------------------------------------------------------ values near float64's limit
def _unit_scale_cases(rng):
    """(class, params, training data, new data with a few extreme samples)."""
    wave = lambda n: np.sin(np.arange(n) / 5.0)[:, None] + 0.1 * rng.normal(size=(n, 2))
    series = wave(300)
    series[100:104] += 2.0
    new = [rng.normal(size=(60, 4)), series, rng.normal(0.5, 0.1, size=(12, 9, 9))]
    new[0][:3] *= 5
    new[2][:3, 3:6, 3:6] += 0.5
    return [(TabDiffusionDetector, TAB_FAST, rng.normal(size=(120, 4)), new[0]),
            (DiffusionTSDetector, TS_FAST, wave(300), new[1]),
            (DiffusionImageDetector, IMG_FAST, rng.normal(0.5, 0.1, size=(16, 9, 9)), new[2])]


@pytest.mark.parametrize("size", [1e150, 1e300, 1e307])
def test_values_near_the_float64_limit_score_as_the_same_data_at_unit_scale(size):
    # N(0, 1) rows x 1e300 once fitted silently with an infinite scale, and every
    # row got the same score; each detector must rank them as the unscaled data
    for cls, params, X, new in _unit_scale_cases(np.random.default_rng(0)):
        reference = cls(**params).fit(X).decision_function(new)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            det = cls(**params).fit(X * size)
            scores = det.decision_function(new * size)
        assert np.all(np.isfinite(det.decision_scores_)), cls.__name__
        assert np.all(np.isfinite(scores)) and np.unique(scores).size > 4, cls.__name__
        assert np.corrcoef(scores, reference)[0, 1] > 0.999, cls.__name__
