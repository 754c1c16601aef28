"""What ``verbose`` shows at the detectors (issue #29): a labelled report per trained
network, progress of long scoring, short logs when stderr is not a terminal, and
nothing at ``verbose=0``."""

import re

import numpy as np
import pytest

from skdiffad import DiffusionImageDetector, DiffusionTSDetector, TabDiffusionDetector
from skdiffad.modalities import Modality


def series(n=240, seed=0):
    t = np.arange(n)
    return np.sin(2 * np.pi * t / 20) + 0.05 * np.random.default_rng(seed).normal(size=n)


def rows(n=200, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 4))


def unet_series(**kwargs):
    params = {**DiffusionTSDetector._unit_test_params(), "denoiser": "unet",
              "window_size": (8, 16), "max_steps": 6}
    return DiffusionTSDetector(**{**params, **kwargs})


@pytest.fixture
def no_scoring_delay(monkeypatch):
    """Scoring reports at once, however quick (it waits ``scoring_delay`` seconds)."""
    monkeypatch.setattr(Modality, "scoring_delay", 0.0)


def test_each_window_length_is_named_in_its_training_report(capsys):
    unet_series(verbose=1).fit(series())
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0] for line in lines] == ["window 8", "window 16"]
    assert all(re.search(r": \d+ epochs in \d+\.\d s, loss=\d\.\d{4}$", line)
               for line in lines)


def test_a_log_of_three_fits_stays_small(capsys):
    """stderr to a file: a line per trained network, no redrawn bar."""
    unet_series(verbose=1).fit(series())
    TabDiffusionDetector(**TabDiffusionDetector._unit_test_params(), denoiser="mlp",
                         verbose=1).fit(rows())
    TabDiffusionDetector(**{**TabDiffusionDetector._unit_test_params(), "max_steps": 600},
                         denoiser="mlp", early_stopping=True, n_iter_no_change=2,
                         verbose=1).fit(rows())
    err = capsys.readouterr().err
    assert "\r" not in err and err.count("\n") == 4
    assert len(err.encode()) < 400
    assert "training: stopped early at epoch " in err


def test_verbose_2_adds_a_line_per_epoch(capsys):
    det = unet_series(verbose=2).fit(series())
    lines = capsys.readouterr().err.splitlines()
    epochs = [h["n_iter"] for h in det.history_["members"]]
    per_epoch = [line for line in lines if re.match(r"window \d+: epoch \d+/\d+, loss=", line)]
    assert len(per_epoch) == sum(epochs) and len(lines) == sum(epochs) + 2


def test_verbose_0_prints_nothing(capsys, no_scoring_delay):
    det = unet_series().fit(series())
    det.decision_function(series(seed=1))
    TabDiffusionDetector(**TabDiffusionDetector._unit_test_params()).fit(rows()).predict(rows())
    assert capsys.readouterr() == ("", "")


def test_the_exact_model_reports_long_scoring(capsys, no_scoring_delay):
    det = TabDiffusionDetector(**TabDiffusionDetector._unit_test_params(), verbose=1)
    det.fit(rows())
    assert re.fullmatch(r"scoring the training samples: 200 samples in \d+\.\d s\n",
                        capsys.readouterr().err)
    det.decision_function(rows(50, seed=1))
    assert capsys.readouterr().err.startswith("scoring: 50 samples in ")


def test_series_scoring_reports_each_window_length(capsys, no_scoring_delay):
    det = DiffusionTSDetector(**{**DiffusionTSDetector._unit_test_params(),
                                 "window_size": (4, 8)}, verbose=1).fit(series())
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "scoring the training series, window 4", "scoring the training series, window 8"]
    assert all(" windows in " in line for line in lines)
    det.decision_function(series(100, seed=1))
    assert capsys.readouterr().err.startswith("scoring, window 4: ")


def test_quick_scoring_says_nothing(capsys):
    TabDiffusionDetector(**TabDiffusionDetector._unit_test_params(), verbose=1).fit(rows())
    assert capsys.readouterr().err == ""


def test_the_image_detector_documents_verbose():
    doc = DiffusionImageDetector.__doc__
    entry = doc[doc.index("    verbose : int, default=0"):].split("\n    max_iter")[0]
    assert "1: a progress bar" in entry and "2: as 1, plus a line per epoch" in entry
