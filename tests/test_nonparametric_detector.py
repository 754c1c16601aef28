"""TabDiffusionDetector with the default scoring: the exact diffusion of the training rows."""

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from skdiffad import TabDiffusionDetector

from .test_tabular import planted


@pytest.fixture(scope="module")
def data():
    return planted()


def test_default_is_nonparametric_and_trains_no_network(data):
    det = TabDiffusionDetector(random_state=0).fit(data[0])
    assert det.denoiser == "exact" and det.scoring == "time" and det.network_ is None
    assert det.model_.stored_.shape == (600, 5) and det.model_.n_neighbors_ == 10
    assert det.n_iter_ == 1


@pytest.mark.parametrize("novelty", [True, False])
def test_detects_planted_anomalies(data, novelty):
    X_train, X_test, y_test = data
    det = TabDiffusionDetector(novelty=novelty, random_state=0).fit(X_train)
    auc = roc_auc_score(y_test, det.decision_function(X_test))
    assert auc > 0.95, f"novelty={novelty}: AUROC {auc:.3f}"
    # the off-ridge anomalies keep every feature inside its marginal range
    off = np.r_[np.zeros(200, bool), np.zeros(10, bool), np.ones(10, bool)]
    keep = (y_test == 0) | off
    assert roc_auc_score(y_test[keep], det.decision_function(X_test)[keep]) > 0.9


def test_training_scores_are_leave_one_out(data):
    X_train = data[0]
    det = TabDiffusionDetector(random_state=0).fit(X_train)
    np.testing.assert_array_equal(det.decision_function(X_train), det.decision_scores_)
    # leaving a row out means it was scored by its other rows: spread, not all at the floor
    assert np.std(det.decision_scores_) > 0.1
    # threshold from honest training scores: about `contamination` of new normal rows flagged
    flagged = det.predict(data[1][:200]).mean()
    assert 0.02 < flagged < 0.25


def test_contaminated_training_needs_novelty_false():
    """A tight cluster of anomalies in the training rows vouches for itself under the
    exact posterior (novelty=True); the neighbourhood estimator sees past it."""
    rng = np.random.default_rng(0)
    normal = rng.normal(size=(900, 4))
    cluster = 4.0 + 0.05 * rng.normal(size=(40, 4))
    X = np.vstack([normal, cluster])
    y = np.r_[np.zeros(900), np.ones(40)]
    auc = {nov: roc_auc_score(y, TabDiffusionDetector(novelty=nov, random_state=0)
                              .fit(X).decision_scores_) for nov in (True, False)}
    assert auc[False] > 0.99
    assert auc[True] < 0.8


def test_auto_neighbours_follow_contamination(data):
    det = TabDiffusionDetector(novelty=False, contamination=0.05, random_state=0).fit(data[0])
    assert det.model_.n_neighbors_ == 30  # ceil(0.05 * 600)
    det = TabDiffusionDetector(novelty=False, random_state=0).fit(data[0][:100])
    assert det.model_.n_neighbors_ == 20  # the floor
    assert TabDiffusionDetector(n_neighbors=3).fit(data[0]).model_.n_neighbors_ == 3
    assert TabDiffusionDetector(n_neighbors=50).fit(data[0][:8]).model_.n_neighbors_ == 7


def test_auto_neighbourhood_stores_a_sample_its_index_can_search(monkeypatch):
    """novelty=False with n_neighbors="auto" stores at most 127 / contamination rows, so
    its contamination share of them (at most 127, plus the row itself) comes from the
    index instead of a partial sort of every stored row (issue #28)."""
    from skdiffad._core import exact

    searched = []
    real = exact.nearest_distances

    def spy(queries, reference, k, **kwargs):
        searched.append((len(reference), k, kwargs.get("index") is not None))
        return real(queries, reference, k, **kwargs)

    monkeypatch.setattr(exact, "nearest_distances", spy)
    X = np.random.default_rng(0).normal(size=(3000, 5))
    for contamination, stored, k in [(0.1, 1270, 127), (0.05, 2540, 127), (0.01, 3000, 30),
                                     (0.5, 254, 127)]:
        searched.clear()
        det = TabDiffusionDetector(novelty=False, contamination=contamination,
                                   random_state=0).fit(X)
        assert len(det.model_.stored_) == stored and det.model_.n_neighbors_ == k
        assert {s[:2] for s in searched} == {(stored, k)} and all(s[2] for s in searched)
    # a seeded uniform sample: the same rows for the same seed, other rows for another
    a = TabDiffusionDetector(novelty=False, random_state=0).fit(X).model_.stored_
    b = TabDiffusionDetector(novelty=False, random_state=1).fit(X).model_.stored_
    np.testing.assert_array_equal(a, TabDiffusionDetector(novelty=False, random_state=0)
                                  .fit(X).model_.stored_)
    assert not np.array_equal(a, b)
    # the sample bounds max_samples, never raises it; explicit neighbours store as before
    assert len(TabDiffusionDetector(novelty=False, max_samples=500).fit(X).model_.stored_) == 500
    explicit = TabDiffusionDetector(novelty=False, n_neighbors=300).fit(X)
    assert len(explicit.model_.stored_) == 3000 and explicit.model_.n_neighbors_ == 300
    # novelty=True stores every row up to max_samples
    assert len(TabDiffusionDetector().fit(X).model_.stored_) == 3000


def test_max_samples_stores_a_seeded_sample(data):
    X_train = data[0]
    a = TabDiffusionDetector(max_samples=100, random_state=1).fit(X_train)
    b = TabDiffusionDetector(max_samples=100, random_state=1).fit(X_train)
    c = TabDiffusionDetector(max_samples=100, random_state=2).fit(X_train)
    assert a.model_.stored_.shape == (100, 5)
    np.testing.assert_array_equal(a.model_.stored_, b.model_.stored_)
    assert not np.array_equal(a.model_.stored_, c.model_.stored_)
    assert a.decision_scores_.shape == (600,)  # every training row is still scored
    assert roc_auc_score(data[2], a.decision_function(data[1])) > 0.9


def test_missing_values_are_scored_on_observed_features(data):
    X_train, X_test, y_test = data
    X_nan = X_train.copy()
    X_nan[np.random.default_rng(0).random(X_nan.shape) < 0.1] = np.nan
    det = TabDiffusionDetector(random_state=0).fit(X_nan)
    T = X_test.copy()
    T[::7, 2] = np.nan
    s = det.decision_function(T)
    assert np.all(np.isfinite(s)) and np.all(np.isfinite(det.decision_scores_))
    assert roc_auc_score(y_test, s) > 0.9


def test_mixed_frame_with_categories():
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                          "c": rng.choice(["x", "y"], size=n)})
    frame.loc[frame.c == "y", "a"] += 3
    det = TabDiffusionDetector(random_state=0).fit(frame)
    test = pd.DataFrame({"a": [3.0, 3.0], "b": [0.0, 0.0], "c": ["y", "x"]})
    s = det.decision_function(test)
    assert s[1] > s[0]  # a=3 is normal for "y" rows only


def test_pickle_round_trip_scores_identically(data):
    det = TabDiffusionDetector(random_state=0).fit(data[0])
    again = pickle.loads(pickle.dumps(det))
    np.testing.assert_array_equal(again.decision_function(data[1]), det.decision_function(data[1]))


@pytest.mark.parametrize("params, name", [
    ({"n_neighbors": 0}, "n_neighbors"),
    ({"n_neighbors": "many"}, "n_neighbors"),
    ({"max_samples": 0}, "max_samples"),
    ({"novelty": "yes"}, "novelty"),
])
def test_bad_parameters_are_named(data, params, name):
    with pytest.raises(ValueError, match=name):
        TabDiffusionDetector(**params).fit(data[0])


def test_duplicate_rows_find_their_twin_but_never_themselves():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(200, 4))
    X = np.vstack([base, base[:50]])  # 50 rows present twice
    det = TabDiffusionDetector(random_state=0).fit(X)
    s = det.decision_scores_
    # one copy of a row is left out (itself); its twin stays, at distance 0
    np.testing.assert_array_equal(s[:50], s[200:])
    assert s[:50].max() < s[50:200].min()
    # the rule is value-based: scoring the training rows again gives the same scores
    np.testing.assert_array_equal(det.decision_function(X), s)
    # a single row is never its own neighbour: unique rows are not at the floor
    assert np.unique(s[50:200]).size == 150


def test_duplicated_anomalies_vouch_for_each_other_unless_novelty_is_false():
    rng = np.random.default_rng(1)
    normal = rng.normal(size=(500, 3))
    anomalies = np.repeat(rng.normal(6.0, 1.0, size=(8, 3)), 5, axis=0)  # 8 points x 5 copies
    X = np.vstack([normal, anomalies])
    y = np.r_[np.zeros(500), np.ones(40)]
    auc = {nov: roc_auc_score(y, TabDiffusionDetector(novelty=nov, random_state=0)
                              .fit(X).decision_scores_) for nov in (True, False)}
    assert auc[False] > 0.99 and auc[True] < 0.6


def test_many_neighbours_are_searched_in_chunks_of_bounded_memory(monkeypatch):
    """novelty=False looks at up to 1000 neighbours per row: queries are searched in
    chunks of at most _PAIR_ELEMENTS (row, neighbour) pairs, so memory does not
    grow with rows x k (it used to grow by ~480 MB on a 20k x 5 fit), and the
    chunking does not change a single score."""
    from skdiffad._core import exact, nonparametric

    sizes = []
    real = exact.nearest_distances

    def spy(queries, reference, k, **kwargs):
        out = real(queries, reference, k, **kwargs)
        sizes.append(out.size)
        return out

    monkeypatch.setattr(exact, "nearest_distances", spy)
    monkeypatch.setattr(nonparametric, "_PAIR_ELEMENTS", 1 << 16)
    X = np.random.default_rng(0).normal(size=(3000, 5))
    det = TabDiffusionDetector(novelty=False, n_neighbors=300, random_state=0).fit(X)
    assert det.model_.n_neighbors_ == 300
    assert len(sizes) > 1 and max(sizes) <= 1 << 16 and sum(sizes) == 3000 * 300
    monkeypatch.setattr(nonparametric, "_PAIR_ELEMENTS", 1 << 30)  # one chunk
    whole = TabDiffusionDetector(novelty=False, n_neighbors=300, random_state=0).fit(X)
    np.testing.assert_array_equal(whole.decision_scores_, det.decision_scores_)


# --------------------------------------------------------------- search="ivf" (#28)
def test_ivf_search_scores_close_to_the_exact_search():
    pytest.importorskip("faiss")
    X_train, X_test, y_test = planted(n_train=3000, n_test=400, n_anom=40, d=12, seed=3)
    X_test = X_test.copy()
    X_test[::9, 4] = np.nan  # rows with gaps are searched exactly
    exact = TabDiffusionDetector(random_state=0).fit(X_train)
    ivf = TabDiffusionDetector(random_state=0, search="ivf").fit(X_train)
    assert ivf.model_._ivf is not None and exact.model_._ivf is None
    s_exact, s_ivf = exact.decision_function(X_test), ivf.decision_function(X_test)
    np.testing.assert_allclose(s_ivf[::9], s_exact[::9], rtol=1e-12)
    assert (s_ivf != s_exact).any()  # it does miss neighbours
    assert np.corrcoef(s_ivf, s_exact)[0, 1] > 0.99
    auc_exact, auc_ivf = roc_auc_score(y_test, s_exact), roc_auc_score(y_test, s_ivf)
    assert auc_ivf > auc_exact - 0.01, (auc_ivf, auc_exact)
    # a row scores alike alone and in a batch, and after pickling
    np.testing.assert_array_equal(ivf.decision_function(X_test[5:6]), s_ivf[5:6])
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(ivf)).decision_function(X_test),
                                  s_ivf)


def test_a_saved_ivf_detector_loads_with_its_index(tmp_path):
    pytest.importorskip("faiss")
    import skdiffad

    X = np.random.default_rng(0).standard_normal((3000, 12))
    det = TabDiffusionDetector(random_state=0, search="ivf").fit(X)
    loaded = skdiffad.load(det.save(tmp_path / "ivf"))
    assert loaded.search == "ivf" and loaded.model_._ivf is not None
    Q = np.random.default_rng(1).standard_normal((500, 12))
    np.testing.assert_array_equal(loaded.decision_function(Q), det.decision_function(Q))


def test_search_is_validated():
    with pytest.raises(ValueError, match="search"):
        TabDiffusionDetector(search="hnsw").fit(np.zeros((20, 2)))


def test_a_detector_saved_before_search_existed_loads_with_the_exact_search(data):
    det = TabDiffusionDetector(random_state=0).fit(data[0])
    state = det.__getstate__()
    del state["search"]
    old = TabDiffusionDetector.__new__(TabDiffusionDetector)
    old.__setstate__(state)
    assert old.get_params()["search"] == "exact"
    np.testing.assert_array_equal(old.decision_function(data[1]), det.decision_function(data[1]))
