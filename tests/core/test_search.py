"""The exact model's inverted-file index (issue #28)."""

import pickle
import sys

import numpy as np
import pytest
import torch

from skdiffad._core import search as search_module
from skdiffad._core.exact import ExactModel
from skdiffad._core.nonparametric import nearest_distances
from skdiffad._core.samples import ArraySamples
from skdiffad._core.search import IVFIndex, ivf_lists
from skdiffad._neighbours import NeighbourIndex

faiss = pytest.importorskip("faiss")


def clustered(n, d=8, n_clusters=200, seed=0, spread=0.01):
    """Tight clusters far apart, more of them than an index has lists: the k-means
    keeps each whole in one list, so the list a point reads holds its neighbours."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-3, 3, size=(n_clusters, d))
    labels = rng.integers(n_clusters, size=n)
    return (centres[labels] + spread * rng.standard_normal((n, d))).astype(np.float32)


def exact_neighbours(queries, rows, k):
    d = torch.cdist(torch.from_numpy(queries).double(), torch.from_numpy(rows).double())
    values, indices = torch.topk(d, k, dim=1, largest=False)
    return values.numpy(), indices.numpy()


def test_lists_are_twice_sqrt_of_the_stored_samples():
    assert ivf_lists(10_000) == 200 and ivf_lists(1) == 2 and ivf_lists(3000) == 110
    index = IVFIndex(clustered(2000), seed=0)
    assert index.n_lists == 89 and index.centres_.shape == (89, 8)
    assert IVFIndex(clustered(3), seed=0).n_lists == 3  # never more lists than samples
    assert index._index.ntotal == 2000


def test_finds_the_exact_neighbours_where_clusters_are_apart():
    rows, queries = clustered(3000, seed=0), clustered(500, seed=0)[::-1].copy()
    queries += np.float32(0.003)
    distances, found = IVFIndex(rows, seed=0).kneighbors(queries, 5)
    want_d, want_i = exact_neighbours(queries, rows, 5)
    np.testing.assert_array_equal(np.sort(found, axis=1), np.sort(want_i, axis=1))
    np.testing.assert_allclose(distances, want_d, rtol=1e-5, atol=1e-6)
    assert (np.diff(distances, axis=1) >= 0).all()


def test_a_query_answer_does_not_depend_on_its_batch():
    rng = np.random.default_rng(1)
    rows = rng.standard_normal((4000, 16)).astype(np.float32)
    queries = rng.standard_normal((300, 16)).astype(np.float32)
    index = IVFIndex(rows, seed=3)
    d_all, i_all = index.kneighbors(queries, 7)
    for lo, hi in [(0, 1), (17, 18), (5, 40), (100, 300)]:
        d, i = index.kneighbors(queries[lo:hi], 7)
        np.testing.assert_array_equal(i, i_all[lo:hi])
        np.testing.assert_array_equal(d, d_all[lo:hi])


def test_the_lists_are_seeded():
    rows = np.random.default_rng(2).standard_normal((3000, 10)).astype(np.float32)
    a, b, c = IVFIndex(rows, seed=5), IVFIndex(rows, seed=5), IVFIndex(rows, seed=6)
    np.testing.assert_array_equal(a.centres_, b.centres_)
    assert not np.array_equal(a.centres_, c.centres_)


def test_reads_only_its_lists_and_says_where_they_hold_too_few():
    rows = np.random.default_rng(3).standard_normal((1100, 4)).astype(np.float32)
    index = IVFIndex(rows, seed=0, n_probe=1)
    queries = rows[:50] + np.float32(1e-3)
    home = index._probes(rows, 1)[0][:, 0]  # the list of every stored row
    want = index._probes(queries, 1)[0][:, 0]  # the one list each query reads
    distances, found = index.kneighbors(queries, 8)
    assert (found >= 0).sum() > 300 and (home[found] == want[:, None])[found >= 0].all()
    # one list of about 17 rows cannot give 120 neighbours: the rest is marked missing
    distances, found = index.kneighbors(queries, 120)
    assert (found < 0).any() and np.isinf(distances[found < 0]).all()
    sizes = np.bincount(home, minlength=index.n_lists)
    assert ((found >= 0).sum(axis=1) == sizes[want]).all()


def test_nearest_distances_take_gaps_and_short_lists_from_brute_force():
    rng = np.random.default_rng(4)
    rows = rng.standard_normal((1500, 6)).astype(np.float32)
    queries = rng.standard_normal((200, 6)).astype(np.float32)
    mask = np.ones_like(queries, dtype=bool)
    mask[::7, 2] = False
    index = IVFIndex(rows, seed=0, n_probe=1)
    got = nearest_distances(queries, rows, 120, query_mask=mask, index=index)
    exact = nearest_distances(queries, rows, 120, query_mask=mask)
    # rows with gaps, and rows whose one list holds fewer than 121 rows: exactly as before
    np.testing.assert_array_equal(got[::7], exact[::7])
    assert np.isfinite(got).all()
    one = nearest_distances(queries[7:8], rows, 120, query_mask=mask[7:8], index=index)
    np.testing.assert_array_equal(one, got[7:8])


def _time_model(rows, search, **kw):
    samples = ArraySamples(rows)
    # the tables' k-d tree: the exact distances of the exact neighbours (brute force
    # ranks by float32 products, which can swap near neighbours of far-out rows)
    model = ExactModel("time", exclusion="self", n_neighbors=5, search=search,
                       index=NeighbourIndex, **kw)
    model.fit(samples, seed=0, device="cpu")
    return model


def _scores(model, x):
    samples = ArraySamples(x)
    return np.concatenate([s for _, _, s, _ in model.errors(samples)])


def test_the_exact_model_scores_alike_where_the_index_finds_the_neighbours():
    rows = clustered(3000, seed=5)
    exact, ivf = _time_model(rows, "exact"), _time_model(rows, "ivf")
    assert ivf._index is ivf._ivf and isinstance(ivf._index, IVFIndex)
    queries = clustered(400, seed=5) + np.float32(0.002)
    # the index's distances are direct float32 ones: equal up to their rounding
    np.testing.assert_allclose(_scores(ivf, queries), _scores(exact, queries), atol=1e-4)
    # the stored rows themselves: leave-one-out, the query's own row left out
    np.testing.assert_allclose(_scores(ivf, rows[:300]), _scores(exact, rows[:300]), atol=1e-4)


def test_few_stored_samples_search_exactly():
    rows = clustered(900, seed=6)
    ivf = _time_model(rows, "ivf")
    assert ivf._ivf is None
    queries = clustered(50, seed=7)
    np.testing.assert_array_equal(_scores(ivf, queries), _scores(_time_model(rows, "exact"),
                                                                   queries))


def test_the_index_is_rebuilt_on_load_and_scores_bit_for_bit():
    rows = np.random.default_rng(8).standard_normal((2500, 12)).astype(np.float32)
    model = _time_model(rows, "ivf")
    queries = np.random.default_rng(9).standard_normal((300, 12)).astype(np.float32)
    loaded = pickle.loads(pickle.dumps(model))
    assert isinstance(loaded._index, IVFIndex)
    np.testing.assert_array_equal(_scores(loaded, queries), _scores(model, queries))


def test_without_faiss_fit_says_how_to_install_and_load_falls_back(monkeypatch):
    rows = np.random.default_rng(10).standard_normal((2500, 12)).astype(np.float32)
    state = pickle.dumps(_time_model(rows, "ivf"))
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss now raises ImportError
    with pytest.raises(ImportError, match=r"pip install faiss-cpu"):
        ExactModel("time", search="ivf")
    with pytest.warns(RuntimeWarning, match="searches exactly instead"):
        loaded = pickle.loads(state)
    assert loaded._ivf is None
    queries = np.random.default_rng(11).standard_normal((50, 12)).astype(np.float32)
    np.testing.assert_array_equal(_scores(loaded, queries),
                                  _scores(_time_model(rows, "exact"), queries))


def test_unknown_search_is_refused():
    with pytest.raises(ValueError, match="search must be one of"):
        ExactModel("time", search="hnsw")


def test_restoration_takes_the_nearest_stored_sample_from_the_index():
    rows = clustered(2400, d=12, seed=12, spread=0.2)
    samples = ArraySamples(rows.reshape(-1, 3, 4))
    models = {}
    for search in ("exact", "ivf"):
        models[search] = ExactModel("reconstruction", search=search)
        models[search].fit(samples, seed=0, device="cpu")
    assert models["ivf"]._ivf is not None
    noise = np.random.default_rng(13).normal(0, 0.1, (300, 12)).astype(np.float32)
    queries = (rows[:300] + noise).reshape(-1, 3, 4)
    q = ArraySamples(queries)
    got = [np.concatenate([s for _, _, s, _ in models[k].errors(q)]) for k in models]
    same = np.isclose(got[1], got[0], rtol=1e-5).all(axis=(1, 2))
    assert same.mean() >= 0.99, same.mean()


def test_the_index_applies_on_the_cpu_only():
    assert search_module.SEARCHES == ("exact", "ivf")
    model = _time_model(clustered(2000), "ivf")
    assert model.device_.type == "cpu" and model._ivf is not None


def test_the_lists_do_not_depend_on_the_thread_count():
    rows = np.random.default_rng(14).standard_normal((5000, 40)).astype(np.float32)
    queries = np.random.default_rng(15).standard_normal((500, 40)).astype(np.float32)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = IVFIndex(rows, seed=0)
        want = one.kneighbors(queries, 5)
        torch.set_num_threads(2)
        faiss.omp_set_num_threads(2)
        two = IVFIndex(rows, seed=0)
        got = two.kneighbors(queries, 5)
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(one.centres_, two.centres_)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[0], want[0])


def test_long_samples_are_clustered_in_a_seeded_projection_and_still_found():
    # 300 values a sample: the k-means runs in a 64-dimensional random projection
    rows, queries = clustered(3000, d=300, seed=0), clustered(400, d=300, seed=0)
    queries = queries[::-1].copy() + np.float32(0.003)
    a, b, c = IVFIndex(rows, seed=5), IVFIndex(rows, seed=5), IVFIndex(rows, seed=6)
    np.testing.assert_array_equal(a.centres_, b.centres_)
    assert not np.array_equal(a.centres_, c.centres_)
    assert a.centres_.shape == (110, 300)  # centres in the full space
    _, found = a.kneighbors(queries, 1)
    _, want = exact_neighbours(queries, rows, 1)
    assert np.mean(found[:, 0] == want[:, 0]) >= 0.95


def test_short_samples_are_clustered_without_projection(monkeypatch):
    rows = np.random.default_rng(2).standard_normal((3000, 10)).astype(np.float32)
    before = IVFIndex(rows, seed=5).centres_
    monkeypatch.setattr(search_module, "_PROJECT_ABOVE", 4)  # now projected
    assert not np.array_equal(IVFIndex(rows, seed=5).centres_, before)


def test_one_neighbour_fewer_first_gives_the_k_plus_one_searchs_distances():
    class AllAtOnce:  # the same index, searched for k + 1 neighbours at once
        def __init__(self, index):
            self.kneighbors = index.kneighbors

    rng = np.random.default_rng(3)
    stored = np.round(rng.normal(size=(3000, 6)), 1).astype(np.float32)  # many ties
    # new rows, training rows (their own row at distance 0) and duplicates of them
    queries = np.concatenate([np.round(rng.normal(size=(400, 6)), 1), stored[:300],
                              stored[:50]]).astype(np.float32)
    index = IVFIndex(stored, seed=0)
    fast = nearest_distances(queries, stored, 10, index=index)
    plain = nearest_distances(queries, stored, 10, index=AllAtOnce(index))
    assert not hasattr(AllAtOnce(index), "sorted_distances")  # the k + 1 search itself
    assert np.array_equal(fast, plain)
    assert np.all(fast[400:] > 0)  # a training row's own row was left out


def test_the_lists_are_chosen_alike_in_any_block_size(monkeypatch):
    rows = np.random.default_rng(5).normal(size=(4000, 12)).astype(np.float32)
    queries = np.random.default_rng(6).normal(size=(3000, 12)).astype(np.float32)
    index = IVFIndex(rows, seed=0)
    lists, dist = index._probes(queries, 3)
    monkeypatch.setattr(search_module, "_PROBE_ELEMENTS", 7 * index.n_lists)
    again, dist_again = index._probes(queries, 3)
    assert np.array_equal(lists, again)
    # the lists are each query's three nearest centres, nearest first
    d2 = ((queries[:, None, :].astype(np.float64) - index.centres_[None]) ** 2).sum(axis=2)
    assert np.array_equal(np.sort(lists, axis=1), np.sort(np.argsort(d2, axis=1)[:, :3], axis=1))
