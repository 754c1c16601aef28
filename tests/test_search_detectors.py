"""search="ivf" in the series and image detectors, in memory and on Dask (issue #28); the
image detector's per-border-class search stays exact (issue #29)."""

import numpy as np
import pytest

from skdiffad import DiffusionImageDetector, DiffusionTSDetector

pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def series():
    from skdiffad.datasets import make_timeseries_anomalies

    X, y = make_timeseries_anomalies(n_timestamps=6000, n_channels=3, n_anomalies=6,
                                     random_state=1)
    return X, y


@pytest.fixture(scope="module")
def series_pair(series):
    X = series[0]
    params = dict(window_size=(16, 32), random_state=0, device="cpu")
    exact = DiffusionTSDetector(**params).fit(X[:3000])
    ivf = DiffusionTSDetector(search="ivf", **params).fit(X[:3000])
    return exact, ivf


def test_series_windows_are_restored_through_the_index(series, series_pair):
    X, y = series
    exact, ivf = series_pair
    assert all(m._ivf is not None for m in ivf.model_.members)
    assert all(m._ivf is None for m in exact.model_.members)
    # the training windows are scored two-fold, by the exact search
    np.testing.assert_array_equal(ivf.decision_scores_, exact.decision_scores_)
    s_exact, s_ivf = exact.decision_function(X), ivf.decision_function(X)
    assert (s_exact != s_ivf).any()
    assert np.corrcoef(s_exact, s_ivf)[0, 1] > 0.98
    # the anomalies stand out as much (step-wise AUROC within 0.02)
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y, s_ivf) > roc_auc_score(y, s_exact) - 0.02


def test_series_gaps_are_restored_exactly(series, series_pair):
    X = series[0].copy()
    X[4000:4100, 1] = np.nan
    exact, ivf = series_pair
    s_exact, s_ivf = exact.decision_function(X), ivf.decision_function(X)
    # a step whose every window has a gap is scored by the exact search alone
    np.testing.assert_array_equal(s_ivf[4032:4068], s_exact[4032:4068])


def test_dask_series_score_as_in_memory_with_the_index(series, series_pair):
    da = pytest.importorskip("dask.array")
    import dask

    X = series[0]
    ivf = series_pair[1]
    lazy = ivf.decision_function(da.from_array(X, chunks=((1190, 13, 2399, 2398), (3,))))
    with dask.config.set(scheduler="sync"):
        np.testing.assert_array_equal(np.asarray(lazy.compute()), ivf.decision_function(X))


def test_image_patches_are_searched_exactly_within_their_border_class():
    """The image detector restores a patch only from stored patches of its own border
    class (issue #29), a per-place search the index does not serve: search="ivf"
    searches exactly and scores as the default."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:16, 0:16]

    def blobs(n):
        c = rng.uniform(4, 12, (n, 2, 1, 1))
        return np.exp(-((yy - c[:, 0]) ** 2 + (xx - c[:, 1]) ** 2) / 8.0).astype(np.float32)
    train, test = blobs(300), blobs(40)
    test[:10, 2:6, 2:6] += 1.0  # a bright square
    params = dict(patch_size=8, random_state=0, device="cpu")
    exact = DiffusionImageDetector(**params).fit(train)
    ivf = DiffusionImageDetector(search="ivf", **params).fit(train)
    assert ivf.model_.per_site and len(ivf.model_.stored_) >= 1024
    assert ivf.model_._ivf is None
    s_exact, s_ivf = exact.decision_function(test), ivf.decision_function(test)
    np.testing.assert_array_equal(s_ivf, s_exact)
    assert s_ivf[:10].min() > np.median(s_ivf[10:])
