"""A new modality is an encoder, a model recipe and (optionally) a reduction.

The example of ``doc/design.rst``, run: spectra (fixed-length 1-D signals, one score
per signal) added through the public plug-in of :mod:`skdiffad.modalities`, with no
change to the shell, Dask or saving. If this needs a way around the plug-in, the
plug-in is what has to change (issue #25).
"""

import pickle

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.utils._param_validation import StrOptions

from skdiffad.base import BaseDiffusionDetector
from skdiffad.modalities import ArraySamples, Encoded, InputRecord, Modality, validated


class SpectrumEncoder(InputRecord):
    """Spectra ``(n, L)`` as ``(1, L)`` samples, standardised with one training scale."""

    def __init__(self, owner):
        self.owner = owner

    def fit_transform(self, X):
        X = validated(self, X, reset=True, dtype=np.float64, ensure_min_samples=2)
        self.mean_, self.scale_ = float(X.mean()), float(X.std()) or 1.0
        return self._encode(X)

    def transform(self, X):
        return self._encode(validated(self, X, reset=False, dtype=np.float64))

    def inverse_transform(self, Z):
        return np.asarray(Z, dtype=np.float64)[:, 0] * self.scale_ + self.mean_

    def _encode(self, X):
        return Encoded(ArraySamples(((X - self.mean_) / self.scale_)[:, None, :]))


class SpectrumModality(Modality):
    """The exact model of stored spectra, or a 1-D U-Net; one score per spectrum (the
    default reduction: its mean squared restoration error)."""

    kind = "spectra"

    def __init__(self, *, owner, denoiser, widths):
        super().__init__(owner=owner)
        self.denoiser, self.widths = denoiser, widths

    def make_encoder(self):
        return SpectrumEncoder(self.owner)

    def make_model(self, encoded, settings):
        if self.denoiser == "exact":
            return settings.exact_model("reconstruction", exclusion="self")
        network = {"name": "conv1d", "widths": self.widths, "kernel_size": 3}
        return settings.learned_model("reconstruction", network, len(encoded.training))

    def can_sample(self):
        return self.denoiser == "unet"


class SpectrumDetector(BaseDiffusionDetector):
    """Anomaly detector for spectra (a test of the plug-in; see doc/design.rst)."""

    _parameter_constraints = {**BaseDiffusionDetector._parameter_constraints,
                              "denoiser": [StrOptions({"exact", "unet"})],
                              "widths": [tuple]}
    modality_class = SpectrumModality

    def __init__(self, *, denoiser="exact", widths=(8,), n_timesteps=1000,
                 beta_schedule="linear", n_scoring_timesteps=2, n_inference_steps=5,
                 max_samples=10_000, max_steps=600, batch_size=32, learning_rate=1e-3,
                 weight_decay=1e-4, ema_decay=None, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=20, mixed_precision=True,
                 contamination=0.1, device="auto", random_state=None, verbose=0,
                 max_iter="deprecated"):
        self.denoiser, self.widths = denoiser, widths
        self.n_timesteps, self.beta_schedule = n_timesteps, beta_schedule
        self.n_scoring_timesteps, self.n_inference_steps = n_scoring_timesteps, n_inference_steps
        self.max_samples, self.max_steps, self.batch_size = max_samples, max_steps, batch_size
        self.learning_rate, self.weight_decay, self.ema_decay = learning_rate, weight_decay, ema_decay
        self.early_stopping, self.validation_fraction = early_stopping, validation_fraction
        self.n_iter_no_change, self.mixed_precision = n_iter_no_change, mixed_precision
        self.contamination, self.device = contamination, device
        self.random_state, self.verbose, self.max_iter = random_state, verbose, max_iter

    def _make_modality(self):
        return SpectrumModality(owner=type(self).__name__, denoiser=self.denoiser,
                                widths=tuple(self.widths))


def _spectra(n, seed, shift=0):
    """Gaussian peaks at position 20 (+ ``shift``) of 48, with noise."""
    rng = np.random.default_rng(seed)
    grid = np.arange(48)
    peaks = 20 + shift + rng.normal(0, 1, size=(n, 1))
    return np.exp(-0.5 * ((grid - peaks) / 3) ** 2) + 0.03 * rng.normal(size=(n, 48))


@pytest.fixture(scope="module")
def data():
    train = _spectra(200, 0)
    test = np.vstack([_spectra(40, 1), _spectra(10, 2, shift=9)])
    return train, test, np.r_[np.zeros(40), np.ones(10)]


@pytest.mark.parametrize("denoiser", ["exact", "unet"])
def test_a_new_modality_fits_scores_and_finds_anomalies(data, denoiser):
    train, test, y = data
    det = SpectrumDetector(denoiser=denoiser, max_steps=150, n_timesteps=100,
                           random_state=0, device="cpu").fit(train)
    scores = det.decision_function(test)
    assert scores.shape == (50,) and det.decision_scores_.shape == (200,)
    assert roc_auc_score(y, scores) > 0.95
    assert det.n_features_in_ == 48 and det.predict(test).sum() >= 10
    with pytest.raises(ValueError, match="X has 5 features, but SpectrumDetector is "
                                         "expecting 48"):
        det.decision_function(test[:, :5])


def test_a_new_modality_pickles_saves_and_scores_dask_blockwise(data, tmp_path):
    pytest.importorskip("dask")
    import dask.array as da

    train, test, _ = data
    det = SpectrumDetector(random_state=0, device="cpu").fit(train)
    expected = det.decision_function(test)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(det)).decision_function(test),
                                  expected)
    np.testing.assert_array_equal(
        SpectrumDetector.load(det.save(tmp_path / "spectra")).decision_function(test), expected)
    lazy = det.decision_function(da.from_array(test, chunks=(7, 48)))
    np.testing.assert_array_equal(lazy.compute(scheduler="synchronous"), expected)


def test_a_new_modality_samples_through_its_encoder(data):
    train, _, _ = data
    det = SpectrumDetector(denoiser="unet", max_steps=20, n_timesteps=50, random_state=0,
                           device="cpu").fit(train)
    assert det.sample(3, random_state=0, sampler="ddim", n_steps=5).shape == (3, 48)
    exact = SpectrumDetector(random_state=0, device="cpu").fit(train)
    with pytest.raises(ValueError, match="SpectrumDetector has no trained denoiser"):
        exact.sample(2)
