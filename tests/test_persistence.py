"""Versioned saving (issue #25): pickles carry the version and state format, and
``save``/``load`` write a JSON config plus safetensors weights that load without
running code from the file and score bit for bit as the saved detector."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import skdiffad
import skdiffad._persistence as persistence
from skdiffad import (
    DiffusionImageDetector,
    DiffusionTSDetector,
    DiffusionVideoDetector,
    FusionDetector,
    TabDiffusionDetector,
)
from skdiffad._core import ExactModel
from skdiffad._persistence import IncompatibleVersionError

DATA = Path(__file__).parent / "data"

TAB = {"widths": (8,), "max_steps": 4, "n_timesteps": 30, "n_scoring_timesteps": 2,
       "n_inference_steps": 2, "random_state": 0, "device": "cpu"}
TS = {"window_size": 8, "widths": (8,), "kernel_size": 3, "max_steps": 4, "n_timesteps": 30,
      "n_inference_steps": 2, "n_stripes": 2, "random_state": 0, "device": "cpu"}
IMG = {"patch_size": 4, "widths": (4,), "max_steps": 4, "n_timesteps": 30,
       "n_inference_steps": 2, "n_scoring_timesteps": 1, "random_state": 0, "device": "cpu"}

CASES = [
    (TabDiffusionDetector, {}),
    (TabDiffusionDetector, {"novelty": False}),
    *[(TabDiffusionDetector, {"denoiser": "mlp", "scoring": s})
      for s in ("time", "density", "reconstruction", "score")],
    *[(DiffusionTSDetector, {"denoiser": d, "scoring": s})
      for d in ("exact", "unet") for s in ("reconstruction", "imputation")],
    (DiffusionTSDetector, {"window_size": (8, 16)}),
    (DiffusionTSDetector, {"window_size": (8, 16), "aggregation": "window"}),
    (DiffusionTSDetector, {"window_size": (8, 16), "aggregation_window": 12}),
    (DiffusionTSDetector, {"window_size": (8, 16), "spread_floor": 0.05}),
    (DiffusionTSDetector, {"window_size": (8, 16), "denoiser": "unet"}),
    (DiffusionImageDetector, {}),
    (DiffusionImageDetector, {"denoiser": "unet"}),
    (DiffusionImageDetector, {"denoiser": "unet", "scoring": "density"}),
    (DiffusionImageDetector, {"denoiser": "unet", "scoring": "feature", "noise": "simplex",
                              "guidance": 0.5}),
    (DiffusionImageDetector, {"denoiser": "unet", "scoring": "discriminative",
                              "head_widths": (4,), "head_defects": "generated"}),
    (DiffusionVideoDetector, {}),
    (DiffusionVideoDetector, {"scoring": "prediction", "stream": "both"}),
    (DiffusionVideoDetector, {"denoiser": "unet", "scoring": "prediction"}),
    (DiffusionVideoDetector, {"denoiser": "predictor", "scoring": "prediction"}),
]
VID = {"patch_size": 4, "n_past": 2, "temporal_smoothing": 1.0, "widths": (4,),
       "max_steps": 4, "n_timesteps": 30, "n_inference_steps": 2, "n_scoring_timesteps": 1,
       "random_state": 0, "device": "cpu"}
FAST = {TabDiffusionDetector: TAB, DiffusionTSDetector: TS, DiffusionImageDetector: IMG,
        DiffusionVideoDetector: VID}
IDS = [f"{cls.__name__[:-8]}-{'-'.join(map(str, p.values())) or 'default'}"
       for cls, p in CASES]


def _data(cls, seed):
    rng = np.random.default_rng(seed)
    if cls is TabDiffusionDetector:
        return rng.normal(size=(80, 3))
    if cls is DiffusionTSDetector:
        t = np.arange(200)[:, None]
        return np.sin(2 * np.pi * t / 20 + np.array([[0.0, 1.0]])) + 0.05 * rng.normal(size=(200, 2))
    if cls is DiffusionVideoDetector:
        return [rng.random((10, 8, 8)), rng.random((7, 8, 8))]
    return rng.random((12, 10, 10))


def _outputs(det, X):
    """Everything a fitted detector computes from its fitted state alone."""
    out = [det.decision_scores_, np.asarray([det.threshold_]), det.decision_function(X)]
    if isinstance(det, DiffusionTSDetector):
        out.append(np.nan_to_num(det.channel_scores(X), nan=-1))
    if isinstance(det, (DiffusionImageDetector, DiffusionVideoDetector)):
        out.append(det.anomaly_map(X))
    if det.modality_.can_sample():
        sampled = det.sample(2, random_state=0, sampler="ddim", n_steps=2)
        out.append(np.asarray(sampled, dtype=np.float64))
    return out


@pytest.fixture(scope="module", params=range(len(CASES)), ids=IDS)
def fitted(request):
    cls, params = CASES[request.param]
    return cls(**{**FAST[cls], **params}).fit(_data(cls, 0)), _data(cls, 1)


def test_save_and_load_score_bit_for_bit(fitted, tmp_path):
    det, X = fitted
    path = det.save(tmp_path / "det")
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "weights.safetensors"]
    loaded = type(det).load(path)
    assert type(loaded) is type(det) and loaded.get_params() == det.get_params()
    for a, b in zip(_outputs(loaded, X), _outputs(det, X)):
        np.testing.assert_array_equal(a, b)
    # the generic loader finds the class itself
    assert type(skdiffad.load(path)) is type(det)


def test_pickle_round_trip_scores_bit_for_bit(fitted):
    det, X = fitted
    restored = pickle.loads(pickle.dumps(det))
    for a, b in zip(_outputs(restored, X), _outputs(det, X)):
        np.testing.assert_array_equal(a, b)


def test_config_is_json_with_the_versions_and_no_pickled_bytes(tmp_path):
    det = TabDiffusionDetector(**{**TAB, "denoiser": "mlp", "scoring": "density"}).fit(
        _data(TabDiffusionDetector, 0))
    path = det.save(tmp_path / "det")
    config = json.loads((path / "config.json").read_text())
    assert config["skdiffad_version"] == skdiffad.__version__
    assert config["state_format"] == persistence.STATE_FORMAT
    assert config["class"] == "skdiffad.tabular:TabDiffusionDetector"
    assert config["state"]["denoiser"] == "mlp"
    text = (path / "config.json").read_text()
    assert "pickle" not in text and "__reduce__" not in text


def test_a_fusion_of_skdiffad_members_saves_and_loads(tmp_path):
    X = _data(TabDiffusionDetector, 0)
    det = FusionDetector([("a", TabDiffusionDetector(**TAB), [0, 1]),
                          ("b", TabDiffusionDetector(**{**TAB, "denoiser": "mlp"}), slice(2, 3))],
                         fusion="dynamic").fit(X)
    loaded = FusionDetector.load(det.save(tmp_path / "fusion"))
    new = _data(TabDiffusionDetector, 1)
    np.testing.assert_array_equal(loaded.decision_function(new), det.decision_function(new))
    np.testing.assert_array_equal(loaded.modality_scores(new), det.modality_scores(new))


def test_objects_that_need_code_are_refused_at_save(tmp_path):
    from pyod.models.knn import KNN

    X = _data(TabDiffusionDetector, 0)
    det = FusionDetector([("a", KNN(), [0, 1]), ("b", KNN(), [2])]).fit(X)
    with pytest.raises(ValueError, match="pyod.*cannot store without code"):
        det.save(tmp_path / "knn")
    images = DiffusionImageDetector(**{**IMG, "denoiser": "unet", "scoring": "feature",
                                       "feature_extractor": torch.nn.Conv2d(1, 2, 3)})
    images.fit(_data(DiffusionImageDetector, 0))
    with pytest.raises(ValueError, match="user module.*Pickle the detector"):
        images.save(tmp_path / "user")


def test_load_builds_skdiffad_classes_only(tmp_path):
    det = TabDiffusionDetector(**TAB).fit(_data(TabDiffusionDetector, 0))
    path = det.save(tmp_path / "det")
    config = json.loads((path / "config.json").read_text())
    config["state"]["modality_"]["__object__"] = "os:system"
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="'os:system', which is not a class of skdiffad"):
        TabDiffusionDetector.load(path)
    config["class"] = "subprocess:Popen"
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="not a class of skdiffad"):
        TabDiffusionDetector.load(path)


def test_a_saved_folder_of_another_state_format_is_refused_clearly(tmp_path):
    det = TabDiffusionDetector(**TAB).fit(_data(TabDiffusionDetector, 0))
    path = det.save(tmp_path / "det")
    config = json.loads((path / "config.json").read_text())
    config["state_format"], config["skdiffad_version"] = 1, "0.1.7"
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(IncompatibleVersionError, match=r"saved by skdiffad 0\.1\.7 \(state "
                                                       r"format 1\); skdiffad .* reads"):
        TabDiffusionDetector.load(path)
    with pytest.raises(TypeError, match="holds a TabDiffusionDetector, not a "
                                        "DiffusionTSDetector"):
        config["state_format"] = persistence.STATE_FORMAT
        (path / "config.json").write_text(json.dumps(config))
        DiffusionTSDetector.load(path)
    with pytest.raises(FileNotFoundError, match="not a folder written by save"):
        TabDiffusionDetector.load(tmp_path / "nothing")


def test_a_pickle_of_another_state_format_is_refused_clearly(monkeypatch):
    det = TabDiffusionDetector(**TAB).fit(_data(TabDiffusionDetector, 0))
    monkeypatch.setattr(persistence, "STATE_FORMAT", persistence.STATE_FORMAT + 1)
    payload = pickle.dumps(det)
    monkeypatch.undo()
    with pytest.raises(IncompatibleVersionError, match="state format"):
        pickle.loads(payload)


@pytest.mark.parametrize("name", ["tabular_0.1.0.pkl", "series_0.1.0.pkl"])
def test_a_real_unversioned_pickle_of_skdiffad_0_1_is_refused_clearly(name):
    """Pickled by skdiffad 0.1.0 (79acc49), before the stamp existed."""
    with open(DATA / name, "rb") as handle, \
            pytest.raises(IncompatibleVersionError, match="skdiffad 0.1 or earlier.*Refit"):
        pickle.load(handle)


def test_a_detector_saved_in_the_previous_state_format_loads_and_scores_the_same(
        monkeypatch, tmp_path):
    # state format 2 pickled the exact models' stored windows whole
    det = DiffusionTSDetector(**{**FAST[DiffusionTSDetector], "window_size": (8, 16)}) \
        .fit(_data(DiffusionTSDetector, 0))
    X = _data(DiffusionTSDetector, 1)
    compact_size = len(pickle.dumps(det))
    whole = ExactModel.__getstate__

    def format_2(model):
        return {k: v for k, v in whole(model).items() if k != "stored_compact_"} | {
            "stored_": model.stored_}

    monkeypatch.setattr(ExactModel, "__getstate__", format_2)
    monkeypatch.setattr(persistence, "STATE_FORMAT", 2)
    payload = pickle.dumps(det)
    path = det.save(tmp_path / "det")
    monkeypatch.undo()
    assert len(payload) > 2 * compact_size  # the windows whole: 8 and 16 copies of a step
    for old in (pickle.loads(payload), DiffusionTSDetector.load(path)):
        assert all(m.stored_compact_ is None for m in old.model_.members)
        for a, b in zip(_outputs(old, X), _outputs(det, X)):
            np.testing.assert_array_equal(a, b)
