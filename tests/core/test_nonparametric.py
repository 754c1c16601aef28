"""The exact-diffusion time estimator: neighbour search and the closed-form posterior."""

import math

import numpy as np
import pytest
import torch
from scipy.special import digamma
from skdiffad._neighbours import NeighbourIndex

from skdiffad._core import ArraySamples, ExactModel
from skdiffad._core import nonparametric
from skdiffad._core.nonparametric import (
    MAX_INDEX_NEIGHBOURS,
    exact_time_scores,
    nearest_distances,
    query_chunk,
)


def brute_distances(Q, R, k):
    d = np.sqrt(((Q[:, None, :].astype(float) - R[None].astype(float)) ** 2).sum(-1))
    return np.sort(d, axis=1)[:, :k]


@pytest.fixture
def rows():
    rng = np.random.default_rng(0)
    return (rng.normal(size=(300, 5)).astype(np.float32),
            rng.normal(size=(70, 5)).astype(np.float32))


@pytest.mark.parametrize("use_index", [False, True])
def test_distances_match_brute_force(rows, use_index):
    R, Q = rows
    index = NeighbourIndex(R) if use_index else None
    got = nearest_distances(Q, R, 7, index=index, exclude_self=False)
    np.testing.assert_allclose(got, brute_distances(Q, R, 7), rtol=1e-12)


def test_tree_and_matrix_product_paths_agree(rows):
    R, Q = rows
    a = nearest_distances(Q, R, 5)
    b = nearest_distances(Q, R, 5, index=NeighbourIndex(R))
    np.testing.assert_allclose(a, b, rtol=1e-14)
    wide = np.hstack([R] * 4)  # 20 features: the brute-force index
    index = NeighbourIndex(wide)
    assert index.tree_ is None
    np.testing.assert_array_equal(nearest_distances(np.hstack([Q] * 4), wide, 5, index=index),
                                  nearest_distances(np.hstack([Q] * 4), wide, 5))


@pytest.mark.parametrize("use_index", [False, True])
def test_a_stored_row_is_not_its_own_neighbour_but_a_duplicate_is(rows, use_index):
    R, _ = rows
    R = np.vstack([R, R[:1]])  # row 0 now has an exact duplicate (row 300)
    got = nearest_distances(R, R, 3, index=NeighbourIndex(R) if use_index else None)
    np.testing.assert_allclose(got[1:300], brute_distances(R[1:300], R, 4)[:, 1:], rtol=1e-12)
    assert got[0, 0] == 0.0 and got[300, 0] == 0.0  # its duplicate, once
    assert got[0, 1] > 0


@pytest.mark.parametrize("width", [1, 4])  # 5 features: tree; 20: brute force
@pytest.mark.parametrize("use_index", [False, True])
def test_row_result_independent_of_batch(rows, use_index, width):
    R, Q = np.hstack([rows[0]] * width), np.hstack([rows[1]] * width)
    index = NeighbourIndex(R) if use_index else None
    whole = nearest_distances(Q, R, 5, index=index)
    alone = np.vstack([nearest_distances(Q[i : i + 1], R, 5, index=index)
                       for i in range(len(Q))])
    assert np.array_equal(whole, alone)


def test_masked_distance_uses_observed_features_rescaled(rows):
    R, Q = rows
    mask = np.ones_like(Q, dtype=bool)
    mask[:, 0] = False
    Qi = Q.copy()
    Qi[:, 0] = 0.0
    got = nearest_distances(Qi, R, 4, query_mask=mask, exclude_self=False)
    expected = brute_distances(Q[:, 1:], R[:, 1:], 4) * math.sqrt(5 / 4)
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_k_is_reduced_to_the_rows_available(rows):
    R, Q = rows
    assert nearest_distances(Q, R[:4], 10).shape == (70, 3)
    assert nearest_distances(Q, R[:4], 10, exclude_self=False).shape == (70, 4)
    assert nearest_distances(Q[:0], R, 3).shape == (0, 3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(rows):
    R, Q = rows
    np.testing.assert_allclose(nearest_distances(Q, R, 5, device="cuda"),
                               nearest_distances(Q, R, 5), rtol=1e-12)


@pytest.mark.parametrize("d", [1, 3, 8])
def test_posterior_mean_matches_numerical_integration(d):
    """E[log sigma | x] for p(x | sigma) = mean_i N(x; x_i, sigma^2 I), flat in log sigma."""
    r = np.array([[0.7, 1.1, 2.5]]) * math.sqrt(d)
    log_s = np.linspace(-12, 40, 400_001)  # d = 1 has a slow 1/sigma tail
    s2 = np.exp(2 * log_s)[:, None]
    lik = (s2 ** (-d / 2) * np.exp(-(r**2) / (2 * s2))).sum(axis=1)
    expected = (lik * log_s).sum() / lik.sum()
    got = exact_time_scores(r, d)
    # the distance floor (1e-3 per feature) shifts the answer by ~1e-7 here
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_posterior_weights_fall_off_as_r_to_the_minus_d():
    d = 4
    r = np.array([[1.0, 2.0]])
    w = np.array([1.0, 2.0**-d])
    w /= w.sum()
    expected = (w * np.log(r[0])).sum() - 0.5 * (math.log(2) + digamma(d / 2))
    np.testing.assert_allclose(exact_time_scores(r, d), expected, atol=1e-5)  # floor


def test_neighbourhood_estimator_is_the_log_mean_distance():
    r = np.array([[1.0, 2.0, 6.0], [0.5, 0.5, 0.5]])
    d = 3
    const = 0.5 * (math.log(2) + digamma(d / 2))
    np.testing.assert_allclose(exact_time_scores(r, d, "neighbourhood"),
                               np.log([3.0, 0.5]) - const, atol=1e-5)  # floor


def test_scores_increase_with_distance_and_are_finite_at_zero():
    r = np.array([[0.0, 0.0], [0.1, 0.2], [1.0, 2.0], [10.0, 20.0]])
    for estimator in ("posterior", "neighbourhood"):
        s = exact_time_scores(r, 2, estimator)
        assert np.all(np.isfinite(s)) and np.all(np.diff(s) > 0)


def test_unknown_estimator_is_named():
    with pytest.raises(ValueError, match="estimator"):
        exact_time_scores(np.ones((1, 2)), 2, "grid")


@pytest.mark.parametrize("width", [1, 4])  # 5 features: tree; 20: brute force
def test_chunked_queries_give_the_same_scores(rows, monkeypatch, width):
    # the exact model searches its queries in chunks of query_chunk(k) rows; a
    # row's distances, and so its score, must not depend on the chunking
    R, Q = np.hstack([rows[0]] * width), np.hstack([rows[1]] * width)
    model = ExactModel("time", exclusion="self", n_neighbors=5, index=NeighbourIndex)
    model.fit(ArraySamples(R), seed=0, device="cpu")
    assert model._index is not None

    def scores():
        blocks = list(model.errors(ArraySamples(Q)))
        return [(start, stop) for start, stop, _, _ in blocks], np.concatenate(
            [b[2] for b in blocks])

    whole_blocks, whole = scores()
    assert whole_blocks == [(0, 70)]
    monkeypatch.setattr(nonparametric, "_PAIR_ELEMENTS", 16 * 6)  # 16 queries of 5 + 1
    chunks, chunked = scores()
    assert chunks == [(0, 16), (16, 32), (32, 48), (48, 64), (64, 70)]
    assert np.array_equal(chunked, whole)
    expected = exact_time_scores(nearest_distances(Q, R, 5), Q.shape[1])
    np.testing.assert_allclose(whole, expected, rtol=1e-12)


def test_query_chunk_bounds_the_pairs_held_at_once(monkeypatch):
    assert query_chunk(1) == nonparametric._PAIR_ELEMENTS
    assert query_chunk(1000) == nonparametric._PAIR_ELEMENTS // 1000
    assert query_chunk(0) == nonparametric._PAIR_ELEMENTS  # never a division by zero
    monkeypatch.setattr(nonparametric, "_PAIR_ELEMENTS", 100)
    assert query_chunk(7) == 14 and query_chunk(1000) == 1


@pytest.mark.parametrize("use_index", [False, True])
def test_unsorted_distances_are_the_same_set(rows, use_index):
    R, Q = rows
    index = NeighbourIndex(R) if use_index else None
    sorted_ = nearest_distances(Q, R, 9, index=index)
    unsorted = nearest_distances(Q, R, 9, index=index, sort=False)
    np.testing.assert_array_equal(np.sort(unsorted, axis=1), sorted_)
    assert np.all(np.diff(sorted_, axis=1) >= 0)


class RecordingIndex(NeighbourIndex):
    """A search index that records how many neighbours it was asked for."""

    calls = []

    def kneighbors(self, queries, n_neighbors):
        self.calls.append(n_neighbors)
        return super().kneighbors(queries, n_neighbors)


def test_the_index_answers_up_to_max_index_neighbours_and_brute_force_above(monkeypatch):
    rng = np.random.default_rng(3)
    R = rng.normal(size=(400, 3)).astype(np.float32)
    Q = np.vstack([rng.normal(size=(30, 3)).astype(np.float32), R[:5]])
    index = RecordingIndex(R)
    RecordingIndex.calls = []
    k = MAX_INDEX_NEIGHBOURS - 1  # k + 1 with the query's own row: just within
    low = nearest_distances(Q, R, k, index=index)
    assert RecordingIndex.calls == [MAX_INDEX_NEIGHBOURS]
    np.testing.assert_allclose(low, nearest_distances(Q, R, k), rtol=1e-12)
    RecordingIndex.calls = []
    high = nearest_distances(Q, R, 200, index=index)  # a partial sort, not the tree
    assert RecordingIndex.calls == []
    np.testing.assert_allclose(high[:30], brute_distances(Q[:30], R, 200), rtol=1e-12)
    # a stored row's own copy is left out (once) on that path too
    np.testing.assert_allclose(high[30:], brute_distances(Q[30:], R, 201)[:, 1:], rtol=1e-12)
    unsorted = nearest_distances(Q, R, 200, index=index, sort=False)
    np.testing.assert_array_equal(np.sort(unsorted, axis=1), high)
