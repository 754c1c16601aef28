"""The exact model: stored samples, nearest-sample restorations and the exclusion rules."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from skdiffad._neighbours import NeighbourIndex

from skdiffad._core import (
    ArraySamples,
    ExactModel,
    ExclusionError,
    WindowSamples,
    grating_masks,
    make_paradigm,
    window_starts,
)
from skdiffad._core import bound as bound_module
from skdiffad._core import samples as samples_module
from skdiffad._core.nonparametric import exact_time_scores, nearest_distances


def rows(n=40, d=3, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def windows(n=40, length=4, starts=None, channels=1, seed=0):
    series = np.random.default_rng(seed).normal(size=(channels, n)).astype(np.float32)
    if starts is None:
        starts = window_starts(n, length, 1)
    return WindowSamples(series, np.ones_like(series, dtype=bool), starts, length)


def exact_model(paradigm, *, hidden=None, **kwargs):
    """An exact model; the masks are the imputation paradigm's (the others hide nothing)."""
    if paradigm == "imputation" and hidden is not None:
        paradigm = make_paradigm("imputation", hidden=hidden)
    return ExactModel(paradigm, **kwargs)


def fitted(paradigm, samples, seed=0, **kwargs):
    model = exact_model(paradigm, **kwargs)
    assert model.fit(samples, seed=seed, device="cpu") is None
    return model


def collect(model, samples, training=False):
    """The blocks' bounds, and the errors concatenated (per entry, or per sample)."""
    blocks = list(model.errors(samples, training=training))
    bounds = [(start, stop) for start, stop, _, _ in blocks]
    sums = np.concatenate([b[2] for b in blocks])
    counts = None if blocks[0][3] is None else np.concatenate([b[3] for b in blocks])
    return bounds, sums, counts


def recorded_restorations(model, monkeypatch):
    """Record the stored sample each query is restored from (by ``_nearest``)."""
    seen = []
    nearest = model._nearest

    def spy(x, weight, excluded):
        out = nearest(x, weight, excluded)
        seen.append(out.clone())
        return out

    monkeypatch.setattr(model, "_nearest", spy)
    return seen


def stored_index(model, restored):
    """Index of the stored sample equal to each restored query."""
    flat = model.stored_.reshape(len(model.stored_), -1)
    match = (restored.reshape(len(restored), 1, -1) == flat[None]).all(dim=2)
    assert torch.all(match.sum(dim=1) == 1)  # the stored windows are all distinct
    return match.int().argmax(dim=1).numpy()


# ----------------------------------------------------------------- settings
@pytest.mark.parametrize(("kwargs", "match"), [
    ({"paradigm": "density"}, "paradigm must be one of"),
    ({"paradigm": "time", "exclusion": "leave-one-out"}, "exclusion must be one of"),
    ({"paradigm": "time", "estimator": "grid"}, "estimator must be one of"),
    ({"paradigm": "imputation"}, "needs its masks"),
])
def test_bad_settings_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ExactModel(**kwargs)


# ------------------------------------------------------------------ storing
def test_fit_stores_every_sample_in_order_when_there_are_few():
    X = rows(n=30)
    model = fitted("reconstruction", ArraySamples(X), max_samples=30)
    np.testing.assert_array_equal(model.stored_.numpy(), X)
    np.testing.assert_array_equal(model.positions_, np.arange(30))
    assert model.device_ == torch.device("cpu")


def test_fit_stores_a_seeded_sample_of_at_most_max_samples():
    X = rows(n=50)
    model = fitted("time", ArraySamples(X), max_samples=20, n_neighbors=30)
    assert model.stored_.shape == (20, 3)
    assert np.all(np.diff(model.positions_) > 0)  # a subset, in order
    np.testing.assert_array_equal(model.stored_.numpy(), X[model.positions_])
    assert model.n_neighbors_ == 20  # at most the stored samples ...
    own = fitted("time", ArraySamples(X), max_samples=20, n_neighbors=30, exclusion="self")
    assert own.n_neighbors_ == 19  # ... less the query's own when it is left out
    again = fitted("time", ArraySamples(X), max_samples=20)
    other = fitted("time", ArraySamples(X), seed=1, max_samples=20)
    np.testing.assert_array_equal(again.positions_, model.positions_)
    assert not np.array_equal(other.positions_, model.positions_)


def test_stored_windows_keep_their_positions():
    samples = windows(n=200, length=8, starts=window_starts(200, 8, 2))
    model = fitted("reconstruction", samples, max_samples=25)
    assert model.stored_.shape == (25, 1, 8)
    x, _ = samples.take(torch.as_tensor(np.searchsorted(samples.positions, model.positions_)))
    assert torch.equal(model.stored_, x)


# ------------------------------------------------------------------- "self"
def test_self_exclusion_leaves_a_training_row_out_once():
    X = rows(n=40)
    X = np.vstack([X, X[:1]])  # row 0 has an exact twin (row 40)
    model = fitted("time", ArraySamples(X), exclusion="self", n_neighbors=5)
    _, scores, counts = collect(model, ArraySamples(X))
    assert counts is None and scores.shape == (41,)
    for i in (3, 17):  # a row's score is its leave-one-out score
        rest = fitted("time", ArraySamples(np.delete(X, i, axis=0)), n_neighbors=5)
        _, alone, _ = collect(rest, ArraySamples(X[i : i + 1]))
        np.testing.assert_allclose(scores[i], alone[0], rtol=1e-12)
    # a duplicated row still finds its twin, at distance 0
    twin = exact_time_scores(nearest_distances(X[:1], X[1:], 5, exclude_self=False), 3)
    np.testing.assert_allclose(scores[[0, 40]], [twin[0]] * 2, rtol=1e-12)
    assert scores[0] < scores[1:40].min()
    # value-based: a new row equal to a training row scores like it
    _, again, _ = collect(model, ArraySamples(X[3:4].copy()), training=False)
    assert again[0] == scores[3]


def test_no_exclusion_lets_a_training_row_find_itself():
    X = rows(n=40)
    none = fitted("time", ArraySamples(X), n_neighbors=5)
    self_ = fitted("time", ArraySamples(X), exclusion="self", n_neighbors=5)
    _, with_self, _ = collect(none, ArraySamples(X))
    _, without, _ = collect(self_, ArraySamples(X))
    assert np.all(with_self < without)


def test_self_exclusion_applies_to_restorations_too():
    X = rows(n=40)
    model = fitted("reconstruction", ArraySamples(X), exclusion="self")
    _, sums, _ = collect(model, ArraySamples(X), training=True)
    assert np.all(sums.sum(axis=1) > 0)


# --------------------------------------------------------------- restoring
def test_reconstruction_error_is_the_squared_distance_to_the_nearest_stored_sample():
    X, Q = rows(n=40), rows(n=9, seed=1)
    model = fitted("reconstruction", ArraySamples(X))
    bounds, sums, counts = collect(model, ArraySamples(Q))
    assert bounds == [(0, 9)] and sums.shape == counts.shape == (9, 3)
    nearest = X[((Q[:, None] - X[None]) ** 2).sum(axis=2).argmin(axis=1)]
    np.testing.assert_allclose(sums, (Q - nearest) ** 2, rtol=1e-6)
    assert np.all(counts == 1)


def test_imputation_restores_the_hidden_entries_from_the_visible_ones():
    X, Q = rows(n=40, d=4), rows(n=6, d=4, seed=2)
    hidden = grating_masks(4, 2)  # hides features 2, 3 then 0, 1
    model = fitted("imputation", ArraySamples(X), hidden=hidden)
    _, sums, counts = collect(model, ArraySamples(Q))
    assert np.all(counts == 1)  # each entry hidden once by the pair
    expected = np.empty_like(Q)
    for h in hidden.numpy():
        nearest = X[((Q[:, None, ~h] - X[None][:, :, ~h]) ** 2).sum(axis=2).argmin(axis=1)]
        expected[:, h] = (Q[:, h] - nearest[:, h]) ** 2
    np.testing.assert_allclose(sums, expected, rtol=1e-6)
    # the hidden values are never compared on: moving them does not move the choice
    mask = np.ones_like(Q, dtype=bool)
    mask[0, 1] = False
    _, sums_gap, counts_gap = collect(model, ArraySamples(Q * mask, mask))
    assert counts_gap[0, 1] == 0 and sums_gap[0, 1] == 0


# ---------------------------------------------------------------- two-fold
def test_two_fold_uses_the_other_half_and_never_an_overlapping_window(monkeypatch):
    samples = windows(n=40, length=4)  # 37 windows, positions 0..36; halves at 18
    model = fitted("reconstruction", samples, exclusion="two-fold")
    seen = recorded_restorations(model, monkeypatch)
    _, sums, _ = collect(model, samples, training=True)
    used = stored_index(model, seen[0][:37])
    pos = samples.positions
    stored = model.positions_[used]
    assert np.all(np.abs(stored - pos) >= 4)
    assert np.all((stored >= 18) != (pos >= 18))
    # and it is the nearest of those allowed
    x = model.stored_.reshape(37, -1).numpy()
    for i in range(37):
        allowed = (np.abs(model.positions_ - pos[i]) >= 4) & (
            (model.positions_ >= 18) != (pos[i] >= 18))
        d2 = ((x[allowed] - x[i]) ** 2).sum(axis=1)
        assert np.isclose(((x[used[i]] - x[i]) ** 2).sum(), d2.min(), rtol=1e-5)
    np.testing.assert_allclose(sums.reshape(37, -1), (x[used] - x) ** 2, rtol=1e-6)


def test_two_fold_is_not_applied_to_new_data():
    samples = windows(n=40, length=4)
    model = fitted("reconstruction", samples, exclusion="two-fold")
    _, sums, counts = collect(model, samples, training=False)
    assert np.all(sums == 0) and np.all(counts == 1)  # every window finds itself
    _, trained, _ = collect(model, samples, training=True)
    assert np.all(trained.sum(axis=(1, 2)) > 0)


def test_two_fold_falls_back_to_any_non_overlapping_window(monkeypatch):
    # 37 positions, halves at 18: the window at 17 overlaps the only one of the
    # other half (19), so it may use its own half, never 19 itself
    samples = windows(n=40, length=4, starts=np.array([0, 6, 12, 17, 19]))
    model = fitted("imputation", samples, exclusion="two-fold",
                   hidden=grating_masks(4, 2).reshape(2, 1, 4))
    seen = recorded_restorations(model, monkeypatch)
    collect(model, samples, training=True)
    for restored in seen:  # one restoration per mask
        stored = model.positions_[stored_index(model, restored[:5])]
        assert stored[3] in (0, 6, 12)
        assert stored[4] in (0, 6, 12)  # 19 may not use 17: it overlaps
        assert np.all(stored[:3] == 19)  # the first half uses the other half


def test_two_fold_raises_when_a_window_overlaps_every_stored_window():
    samples = windows(n=127, length=64, starts=window_starts(127, 64, 16))
    model = fitted("reconstruction", samples, exclusion="two-fold")
    with pytest.raises(ExclusionError, match="overlaps every stored sample") as info:
        list(model.errors(samples, training=True))
    assert isinstance(info.value, ValueError)
    assert (info.value.position, info.value.extent, info.value.n_positions) == (0, 64, 64)
    assert len(list(model.errors(samples, training=False))) == 1  # new data is fine


# ------------------------------------------------------------------ blocks
def test_errors_come_in_consecutive_blocks_that_do_not_change_them(monkeypatch):
    samples = windows(n=120, length=4)  # 117 windows
    model = fitted("reconstruction", samples, exclusion="two-fold")
    bounds, whole, counts = collect(model, samples, training=True)
    assert bounds == [(0, 117)]
    monkeypatch.setitem(samples_module.SCORING_MEMORY, "cpu", 1)  # the smallest blocks: 32
    bounds, blocked, blocked_counts = collect(model, samples, training=True)
    assert bounds == [(0, 32), (32, 64), (64, 96), (96, 117)]
    assert np.array_equal(blocked, whole) and np.array_equal(blocked_counts, counts)


# ---------------------------------------------------------------- pickling
@pytest.mark.parametrize("paradigm", ["time", "reconstruction", "imputation"])
def test_a_pickled_model_rebuilds_its_search_and_scores_the_same(paradigm):
    X, Q = rows(n=60, d=4), rows(n=10, d=4, seed=3)
    model = fitted(paradigm, ArraySamples(X), exclusion="self" if paradigm == "time" else "none",
                   hidden=grating_masks(4, 2), index=NeighbourIndex, n_neighbors=4)
    state = model.__getstate__()
    assert not any(key.startswith("_") for key in state)
    copy = pickle.loads(pickle.dumps(model))
    for key in ("_index", "_rows") if paradigm == "time" else ("_flat", "_flat_t", "_sq_t",
                                                                "_positions"):
        assert hasattr(copy, key)
    _, expected, expected_counts = collect(model, ArraySamples(Q))
    _, got, got_counts = collect(copy, ArraySamples(Q))
    assert np.array_equal(got, expected)
    assert (got_counts is None) == (expected_counts is None)
    if got_counts is not None:
        assert np.array_equal(got_counts, expected_counts)


def test_a_pickled_time_model_holds_the_stored_rows_not_the_tree():
    X = rows(n=5000, d=12)
    model = fitted("time", ArraySamples(X), index=NeighbourIndex, exclusion="self")
    assert model._index is not None and model._index.tree_ is not None
    assert "_index" not in model.__getstate__()
    blob = pickle.dumps(model)
    # the rows (240 kB) and their positions (40 kB); a k-d tree would add its own
    # float64 copy of the rows and more
    assert len(blob) < 1.2 * X.nbytes


def test_a_model_saved_from_a_gpu_loads_on_the_cpu_with_a_warning(monkeypatch):
    model = fitted("reconstruction", ArraySamples(rows()))
    model.device_ = torch.device("cuda:0")  # as if fitted on a GPU
    blob = pickle.dumps(model)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(UserWarning, match="the exact model was fitted on cuda:0"):
        copy = pickle.loads(blob)
    assert copy.device_ == torch.device("cpu") and copy._flat.device.type == "cpu"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        list(copy.errors(ArraySamples(rows(n=3))))


# -------------------------------------------------------------------- CUDA
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("paradigm", ["time", "reconstruction", "imputation"])
def test_cuda_scores_match_the_cpu_and_repeat_exactly(paradigm):
    X, Q = rows(n=300, d=6), rows(n=50, d=6, seed=4)
    kwargs = {"hidden": grating_masks(6, 2), "n_neighbors": 5,
              "exclusion": "self" if paradigm == "time" else "none"}
    cpu = fitted(paradigm, ArraySamples(X), **kwargs)
    gpu = exact_model(paradigm, **kwargs)
    gpu.fit(ArraySamples(X), seed=0, device="cuda")
    _, expected, _ = collect(cpu, ArraySamples(Q))
    _, first, _ = collect(gpu, ArraySamples(Q))
    _, second, _ = collect(gpu, ArraySamples(Q))
    np.testing.assert_allclose(first, expected, rtol=1e-4)
    assert np.array_equal(first, second)


# ------------------------------------------------------------------ per site
def _patches(n_images=6, seed=0):
    """Images whose left half is dark and right half bright, with noise."""
    rng = np.random.default_rng(seed)
    images = rng.normal(0, 0.05, size=(n_images, 1, 4, 8)).astype(np.float32)
    images[..., 4:] += 1.0
    return samples_module.PatchSamples(images, 4, 4)


def test_per_site_restores_a_patch_from_its_own_place_only():
    train = _patches()
    assert train.sites.tolist() == [0, 1] * 6 and train.n_sites == 2
    anywhere = fitted("reconstruction", train)
    own_site = fitted("reconstruction", train, per_site=True)
    # a bright patch where the left (dark) half should be: from anywhere it is restored
    # by a bright patch (no error), from its own place by a dark one
    query = _patches(1, seed=1)
    query.images[..., :4] += 1.0
    _, sums_any, _ = collect(anywhere, query)
    _, sums_site, _ = collect(own_site, query)
    assert sums_any[0].mean() < 0.05 and sums_site[0].mean() > 0.5
    np.testing.assert_array_equal(sums_any[1], sums_site[1])  # the right patch is normal


def test_per_site_caps_the_stored_samples_of_each_site():
    model = fitted("reconstruction", _patches(10), per_site=True, max_samples=3)
    assert model.stored_.shape[0] == 6
    assert sorted(model.sites_.tolist()) == [0, 0, 0, 1, 1, 1]


def test_per_site_two_fold_uses_the_other_half_of_the_same_site(monkeypatch):
    train = _patches(8)
    model = fitted("reconstruction", train, per_site=True, exclusion="two-fold")
    seen = []
    original = model._nearest

    def spy(x, weight, excluded, ref=None):
        seen.append(excluded.clone())
        return original(x, weight, excluded, ref)

    monkeypatch.setattr(model, "_nearest", spy)
    collect(model, train, training=True)
    # every site's queries may use only stored samples of the other half of the images
    assert len(seen) == 2
    for excluded in seen:
        allowed = (~excluded[:8]).numpy()
        assert np.array_equal(allowed[:4], np.tile([False] * 4 + [True] * 4, (4, 1)))
        assert np.array_equal(allowed[4:], np.tile([True] * 4 + [False] * 4, (4, 1)))


def test_per_site_needs_samples_with_sites_and_elementwise_errors():
    with pytest.raises(ValueError, match="per_site restores samples entry by entry"):
        exact_model("time", per_site=True)
    with pytest.raises(ValueError, match="per_site takes exclusion"):
        exact_model("reconstruction", per_site=True, exclusion="self")
    with pytest.raises(ValueError, match="needs samples with sites"):
        fitted("reconstruction", ArraySamples(rows()), per_site=True)
    model = fitted("reconstruction", _patches(), per_site=True)
    with pytest.raises(ValueError, match="score samples with sites"):
        collect(model, ArraySamples(rows(d=16).reshape(-1, 1, 4, 4)))


# ------------------------------------------------- the projected lower bound (#27)
def smooth_windows(n=3000, length=32, channels=3, seed=0, noise=0.01):
    """Windows of a smooth periodic series (where the projected bound settles queries)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    series = np.stack([np.sin(2 * np.pi * t / (37 + 11 * c) + c) for c in range(channels)])
    series = (series + noise * rng.normal(size=series.shape)).astype(np.float32)
    return WindowSamples(series, np.ones_like(series, dtype=bool),
                         window_starts(n, length, 1), length)


def float64_nearest(model, queries):
    """Index of the stored sample nearest to each query in float64, ties to the first."""
    stored = model.stored_.reshape(len(model.stored_), -1).double().numpy()
    q = queries.reshape(len(queries), -1).double().numpy()
    d2 = ((q[:, None, :] - stored[None]) ** 2).sum(axis=2)
    return d2.argmin(axis=1)


@pytest.mark.parametrize("d", [64, 65, 203])
@pytest.mark.parametrize("source", ["smooth", "noise", "low rank"])
def test_projected_rows_are_never_farther_apart_than_the_rows(d, source):
    from skdiffad._core.bound import ProjectedBound

    rng = np.random.default_rng(d)
    if source == "smooth":
        t = np.arange(d)[None] + rng.integers(0, 500, size=(800, 1))
        x = np.sin(2 * np.pi * t / 37) + 0.05 * rng.normal(size=(800, d))
    elif source == "noise":
        x = rng.normal(size=(800, d))
    else:  # rank 3: the directions beyond it are arbitrary, and the bound still holds
        x = rng.normal(size=(800, 3)) @ rng.normal(size=(3, d))
    x = torch.as_tensor(x.astype(np.float32))
    bound = ProjectedBound(x[:500])
    basis = bound.basis.astype(np.float64)
    assert np.allclose(basis.T @ basis, np.eye(basis.shape[1]), atol=1e-6)
    a, b = (bound.project(part.numpy()).astype(np.float64) for part in (x[500:650], x[650:]))
    projected = ((a - b) ** 2).sum(axis=1)
    full = ((x[500:650].double() - x[650:].double()) ** 2).sum(dim=1).numpy()
    assert np.all(projected <= full * (1 + 1e-5))
    if source == "smooth":
        assert float((projected / full).mean()) > 0.9  # tight where the data are smooth
    if source == "noise":
        assert float((projected / full).mean()) < 0.9  # a bound, not equality


def bound_over_smooth_windows(n_queries):
    """``(bound, stored, queries)``: the projected bound over smooth training windows,
    both flat, and as many flat noisier new windows."""
    from skdiffad._core.bound import ProjectedBound

    train, new = smooth_windows(seed=0), smooth_windows(n=n_queries, seed=1, noise=0.2)
    stored, _ = train.take(torch.arange(len(train)))
    stored = stored.reshape(len(stored), -1).contiguous()
    queries, _ = new.take(torch.arange(len(new)))
    return ProjectedBound(stored), stored, queries.reshape(len(queries), -1).contiguous()


def test_the_bound_candidates_are_every_sample_within_the_bound():
    bound, stored, q = bound_over_smooth_windows(700)
    rows, cols = bound.candidates(q, stored, lambda chunk, upper: 0.0 * upper)
    p, s = bound.project(q.numpy()).astype(np.float64), bound.project(stored.numpy())
    lower = ((p[:, None, :] - s.astype(np.float64)[None]) ** 2).sum(axis=2)
    nearest = lower.argmin(axis=1)
    attained = ((q.double() - stored[nearest].double()) ** 2).sum(dim=1).numpy()
    expected = lower <= attained[:, None] * (1 - 1e-4)  # clear of the rounding
    got = np.zeros_like(expected)
    got[rows.numpy(), cols.numpy()] = True
    assert np.all(got[expected])  # every sample clearly within is a candidate
    assert not np.any(got & (lower > attained[:, None] * (1 + 1e-4)))  # none clearly out
    assert np.all(got[np.arange(len(q)), float64_nearest_rows(stored, q)])
    assert len(rows) < 0.01 * lower.size  # and few


def float64_nearest_rows(stored, queries):
    d2 = ((queries.double().numpy()[:, None, :] - stored.double().numpy()[None]) ** 2).sum(axis=2)
    return d2.argmin(axis=1)


def test_the_bound_settles_smooth_windows_and_finds_the_float64_nearest():
    train, new = smooth_windows(seed=0), smooth_windows(n=1200, seed=1)
    model = fitted("reconstruction", train)
    assert model._bound is not None  # the probe found it pays here
    queries, _ = new.take(torch.arange(len(new)))
    found = model._nearest_full(queries.reshape(len(queries), -1))
    assert model._bound_settled >= 0.9 * model._bound_seen > 0
    assert np.array_equal(found.numpy(), float64_nearest(model, queries))


def test_the_bound_and_the_full_product_give_the_same_answers_in_any_batch(monkeypatch):
    train, new = smooth_windows(seed=0), smooth_windows(n=1200, seed=1, noise=0.2)
    model = fitted("reconstruction", train)
    assert model._bound is not None
    queries, _ = new.take(torch.arange(len(new)))
    flat = queries.reshape(len(queries), -1)
    with_bound = model._nearest_full(flat)
    model._bound_seen, model._bound_settled = 10**9, 0  # the bound given up: full products
    full = model._nearest_full(flat)
    model._bound_seen, model._bound_settled = 0, 0
    pieces = torch.cat([model._nearest_full(flat[i:i + 37]) for i in range(0, len(flat), 37)])
    assert np.array_equal(with_bound.numpy(), full.numpy())
    assert np.array_equal(pieces.numpy(), full.numpy())
    assert np.array_equal(full.numpy(), float64_nearest(model, queries))


def test_near_ties_of_the_full_product_are_settled_in_float64():
    # two stored rows, equally far from the query as float32 products see them (a
    # common large entry swamps the difference), the second nearer in float64
    d, delta = 64, 2 * 2.0 ** -24
    stored = np.zeros((2, d), dtype=np.float32)
    stored[:, 2] = 100.0
    stored[0, 1] = stored[1, 0] = 1.0
    query = np.zeros((1, d), dtype=np.float32)
    query[0, :3] = 0.5 + delta, 0.5, 100.0
    model = fitted("reconstruction", ArraySamples(stored))
    found = model._product_nearest(torch.as_tensor(query))
    assert float64_nearest(model, torch.as_tensor(query))[0] == 1
    assert found.item() == 1
    # the float32 products alone cannot tell them apart
    products = torch.as_tensor(query) @ torch.as_tensor(stored).T
    sq = torch.as_tensor(stored).pow(2).sum(dim=1)
    assert (sq - 2 * products)[0, 0] == (sq - 2 * products)[0, 1]


def test_noisy_windows_keep_the_float32_search():
    model = fitted("reconstruction", windows(n=3000, length=32, channels=3))
    assert model._bound is None  # white noise: the probe finds the bound does not pay


def test_the_bound_is_rebuilt_after_pickling_and_scores_the_same():
    train, new = smooth_windows(seed=0), smooth_windows(n=600, seed=1)
    model = fitted("reconstruction", train)
    _, before, _ = collect(model, new)
    loaded = pickle.loads(pickle.dumps(model))
    assert loaded._bound is not None
    _, after, _ = collect(loaded, new)
    assert np.array_equal(before, after)


def test_self_exclusion_keeps_the_search_that_leaves_the_query_out():
    train = smooth_windows(seed=0)
    model = fitted("reconstruction", train, exclusion="self")
    assert model._bound is None
    queries, _ = train.take(torch.arange(50))
    restored = model._nearest(queries, torch.ones_like(queries), None)
    same = (restored == queries).reshape(len(queries), -1).all(dim=1)
    assert not bool(same.any())  # never the query itself


def test_the_bound_resolves_exact_twins_to_the_first_stored():
    # a cycle repeated exactly: every window has twins, and the answer is the first
    cycle = np.sin(2 * np.pi * np.arange(40) / 40)[None] * np.array([[1.0], [0.5], [2.0]])
    series = np.tile(cycle, (1, 60)).astype(np.float32)
    train = WindowSamples(series, np.ones_like(series, dtype=bool),
                          window_starts(series.shape[1], 32, 1), 32)
    model = fitted("reconstruction", train)
    shifted = np.roll(series, 7, axis=1)[:, :600] * np.float32(1.001)
    new = WindowSamples(shifted, np.ones_like(shifted, dtype=bool),
                        window_starts(600, 32, 32), 32)
    queries, _ = new.take(torch.arange(len(new)))
    flat = queries.reshape(len(queries), -1)
    expected = float64_nearest(model, queries)
    assert np.all(expected < 40)  # the first of each set of twins
    assert np.array_equal(model._product_nearest(flat).numpy(), expected)
    # the probe turned the bound down (every window has 60 twins); forced, it gives
    # the same answers through its candidates
    from skdiffad._core.bound import ProjectedBound

    model._bound = ProjectedBound(model._flat)
    model._bound_seen, model._bound_settled = 0, 0
    assert np.array_equal(model._nearest_full(flat).numpy(), expected)
    assert model._bound_seen == len(flat)


def test_the_bound_leaves_numpys_blas_threads_as_they_were():
    from threadpoolctl import threadpool_info

    from skdiffad._core.bound import ProjectedBound

    before = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
    train = smooth_windows(seed=0)
    stored, _ = train.take(torch.arange(len(train)))
    stored = stored.reshape(len(stored), -1).contiguous()
    ProjectedBound(stored).candidates(stored[:40], stored, lambda chunk, upper: 0.0 * upper)
    after = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
    assert after == before


# ------------------------------------------------ the spread weighting (#27 round 8)
def bursty_rows(n=300, d=4, seed=0):
    """Rows whose last entry is flat but for rare, tall bursts of varied height (in
    units of the other entries' spread)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    x[:, -1] *= 0.01
    burst = rng.choice(n, size=n // 10, replace=False)
    x[burst, -1] += rng.uniform(50, 400, size=len(burst)).astype(np.float32)
    return x


def spread_reference(stored, queries, floor, k, excluded=None):
    """``(x_hat - x)^2`` of every entry times ``floor / max(v, floor)``, ``v`` the
    entry's variance over the query's ``k`` nearest stored rows (float64), on the
    entries whose stored range exceeds ``2 sqrt(floor)`` (others: weight 1)."""
    s, q = stored.astype(np.float64), queries.astype(np.float64)
    d2 = ((q[:, None] - s[None]) ** 2).sum(axis=2)
    if excluded is not None:
        d2[excluded] = np.inf
    order = np.argsort(d2, axis=1, kind="stable")
    err = (s[order[:, 0]] - q) ** 2
    var = np.stack([s[row[:k][np.isfinite(d2[i, row[:k]])]].var(axis=0)
                    for i, row in enumerate(order)])
    weight = floor / np.maximum(var, floor)
    weight[:, (s.max(axis=0) - s.min(axis=0)) ** 2 <= 4 * floor] = 1.0
    return err * weight


@pytest.mark.parametrize("k", [1, 3, 10])
def test_spread_weights_each_error_by_its_neighbours_variance_above_the_floor(k):
    stored, queries = bursty_rows(seed=0), bursty_rows(n=60, seed=1)
    model = fitted("reconstruction", ArraySamples(stored), n_neighbors=k, spread_floor=100.0)
    assert model._spread_cols.tolist() == [3]  # only the bursting entry can spread
    _, sums, counts = collect(model, ArraySamples(queries))
    expected = spread_reference(stored, queries, 100.0, k)
    np.testing.assert_allclose(sums, expected, rtol=1e-4, atol=1e-6)
    assert np.array_equal(counts, np.ones_like(counts))  # the weights are not counts
    plain = collect(fitted("reconstruction", ArraySamples(stored)), ArraySamples(queries))[1]
    assert np.array_equal(sums[:, :3], plain[:, :3])  # the other entries: to the bit
    if k > 1:  # the bursts' errors are weighted down where the neighbours disagree
        assert (sums[:, 3] < plain[:, 3] - 1e-9).any()
    assert (sums[:, 3] <= plain[:, 3]).all()


def test_spread_leaves_every_error_as_it_was_where_no_entry_can_spread():
    stored, queries = rows(n=200, d=5, seed=0), rows(n=30, d=5, seed=1)
    model = fitted("reconstruction", ArraySamples(stored), spread_floor=1000.0)
    assert model._spread_cols is None
    plain = fitted("reconstruction", ArraySamples(stored))
    assert np.array_equal(collect(model, ArraySamples(queries))[1],
                          collect(plain, ArraySamples(queries))[1])


def test_spread_of_training_windows_reads_only_the_stored_windows_they_may_use(monkeypatch):
    rng = np.random.default_rng(0)
    series = (0.01 * rng.normal(size=(1, 400))).astype(np.float32)
    for start in rng.choice(np.arange(0, 390, 13), size=12, replace=False):
        series[0, start:start + 3] += rng.uniform(20, 80)
    samples = WindowSamples(series, np.ones_like(series, dtype=bool),
                            window_starts(400, 6, 1), 6)
    model = fitted("reconstruction", samples, exclusion="two-fold", n_neighbors=4,
                   spread_floor=1.0)
    assert model._spread_cols is not None
    _, sums, _ = collect(model, samples, training=True)
    stored = model.stored_.reshape(len(model.stored_), -1).numpy()
    queries, _ = samples.take(torch.arange(len(samples)))
    excluded = model._two_fold(samples, torch.as_tensor(samples.positions),
                               model._positions).numpy()
    expected = spread_reference(stored, queries.reshape(len(queries), -1).numpy(), 1.0, 4,
                                excluded)
    np.testing.assert_allclose(sums.reshape(len(sums), -1), expected, rtol=1e-4, atol=1e-6)


def test_the_bound_finds_the_same_k_nearest_as_the_full_product():
    train, new = smooth_windows(seed=0), smooth_windows(n=900, seed=1, noise=0.2)
    model = fitted("reconstruction", train, spread_floor=1e-4)
    assert model._bound is not None
    queries, _ = new.take(torch.arange(len(new)))
    flat = queries.reshape(len(queries), -1)
    found, measured = model._bound_k_nearest(flat, 10)
    d2 = ((flat.double()[:, None] - model._flat.double()[None]) ** 2).sum(dim=2)
    expected = torch.topk(d2, 10, dim=1, largest=False).indices
    assert np.array_equal(np.sort(found.numpy(), axis=1), np.sort(expected.numpy(), axis=1))
    # the distances come as the pair measure gives them (none left unmeasured here)
    rows = torch.arange(len(flat)).repeat_interleave(10)
    assert torch.equal(measured.reshape(-1),
                       bound_module.pair_sq(flat, model._flat, rows, found.reshape(-1)))
    pieces = torch.cat([model._bound_k_nearest(flat[i:i + 37], 10)[0]
                        for i in range(0, len(flat), 37)])
    assert np.array_equal(np.sort(pieces.numpy(), axis=1), np.sort(found.numpy(), axis=1))


def test_the_bound_candidates_hold_every_one_of_the_k_nearest():
    bound, stored, q = bound_over_smooth_windows(500)
    few = bound.candidates(q, stored, lambda chunk, upper: 0.0 * upper)[0]
    rows, cols = bound.candidates(q, stored, lambda chunk, upper: 0.0 * upper, k=8)
    got = np.zeros((len(q), len(stored)), dtype=bool)
    got[rows.numpy(), cols.numpy()] = True
    d2 = ((q.double()[:, None] - stored.double()[None]) ** 2).sum(dim=2)
    nearest = torch.topk(d2, 8, dim=1, largest=False).indices.numpy()
    assert got[np.arange(len(q))[:, None], nearest].all()
    assert len(few) < len(rows) < 0.05 * got.size  # more than for one, still few


def test_a_pickled_spread_model_scores_the_same():
    stored, queries = bursty_rows(seed=0), bursty_rows(n=40, seed=1)
    model = fitted("reconstruction", ArraySamples(stored), spread_floor=100.0)
    loaded = pickle.loads(pickle.dumps(model))
    assert loaded.spread_floor == 100.0 and loaded._spread_cols.tolist() == [3]
    assert np.array_equal(collect(loaded, ArraySamples(queries))[1],
                          collect(model, ArraySamples(queries))[1])


def test_a_model_saved_before_the_spread_weighting_counts_every_error():
    model = fitted("reconstruction", ArraySamples(bursty_rows(seed=0)))
    state = model.__getstate__()
    del state["spread_floor"]
    old = ExactModel.__new__(ExactModel)
    old.__setstate__(state)
    assert old.spread_floor is None and old._spread_cols is None


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"paradigm": "reconstruction", "spread_floor": 0}, "spread_floor must be a positive"),
    ({"paradigm": "reconstruction", "spread_floor": -1.0}, "spread_floor must be a positive"),
    ({"paradigm": "reconstruction", "spread_floor": float("nan")}, "must be a positive"),
    ({"paradigm": "reconstruction", "spread_floor": float("inf")}, "must be a positive"),
    ({"paradigm": "reconstruction", "spread_floor": True}, "must be a positive"),
    ({"paradigm": "reconstruction", "spread_floor": "1"}, "must be a positive"),
    ({"paradigm": "time", "spread_floor": 1.0}, "takes the 'reconstruction' paradigm"),
    ({"paradigm": "reconstruction", "spread_floor": 1.0, "exclusion": "self"},
     "exclusion='none' or 'two-fold'"),
    ({"paradigm": "reconstruction", "spread_floor": 1.0, "per_site": True},
     "no per_site search"),
])
def test_bad_spread_settings_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ExactModel(**kwargs)


def test_spread_with_imputation_masks_is_refused():
    with pytest.raises(ValueError, match="takes the 'reconstruction' paradigm"):
        exact_model("imputation", hidden=grating_masks(8, 2), spread_floor=1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_spread_weights_match_the_cpu_and_repeat_exactly():
    stored, queries = bursty_rows(seed=0), bursty_rows(n=60, seed=1)
    cpu = fitted("reconstruction", ArraySamples(stored), spread_floor=100.0)
    gpu = exact_model("reconstruction", spread_floor=100.0)
    gpu.fit(ArraySamples(stored), seed=0, device="cuda")
    _, expected, _ = collect(cpu, ArraySamples(queries))
    _, first, _ = collect(gpu, ArraySamples(queries))
    _, second, _ = collect(gpu, ArraySamples(queries))
    np.testing.assert_allclose(first, expected, rtol=1e-4, atol=1e-6)
    assert np.array_equal(first, second)


def test_spread_restores_from_the_float64_nearest_of_the_k_found():
    train, new = smooth_windows(seed=0), smooth_windows(n=600, seed=1, noise=0.2)
    model = fitted("reconstruction", train, spread_floor=1e-4)
    assert model._bound is not None and model._spread_cols is not None
    queries, _ = new.take(torch.arange(len(new)))
    flat = queries.reshape(len(queries), -1)
    w = torch.ones_like(flat)
    found, measured = model._k_nearest(flat, w, None)
    assert np.array_equal(model._first(flat, w, found).numpy(), float64_nearest(model, queries))
    assert np.array_equal(model._first(flat, w, found, measured).numpy(),
                          float64_nearest(model, queries))
    measured[::3] = float("nan")  # the full product's rows: measured by _first itself
    assert np.array_equal(model._first(flat, w, found, measured).numpy(),
                          float64_nearest(model, queries))
    # the restoration's errors are those of the float64 nearest, weighted
    _, sums, _ = collect(model, new)
    nearest = model._flat[torch.as_tensor(float64_nearest(model, queries))]
    err = ((nearest - flat).double() ** 2).numpy()
    weights = model._spread_weights(found).numpy()
    expected = err.copy()
    expected[:, model._spread_cols.numpy()] *= weights
    np.testing.assert_array_equal(sums.reshape(len(sums), -1), expected)


def test_spread_floor_takes_any_real_number():
    model = ExactModel("reconstruction", spread_floor=np.float32(100.0))
    assert model.spread_floor == 100.0 and type(model.spread_floor) is float


@pytest.mark.parametrize("elements", [1 << 18, 300, 1])
def test_pair_distances_are_each_pairs_own_in_any_slicing(monkeypatch, elements):
    rng = np.random.default_rng(0)
    q = torch.from_numpy(rng.normal(size=(30, 50)).astype(np.float32))
    stored = torch.from_numpy(rng.normal(size=(80, 50)).astype(np.float32) * 100)
    rows = torch.from_numpy(rng.integers(0, 30, 517))
    cols = torch.from_numpy(rng.integers(0, 80, 517))
    monkeypatch.setattr(bound_module, "_PAIR_ELEMENTS", elements)
    got = bound_module.pair_sq(q, stored, rows, cols)
    diff = q[rows] - stored[cols]
    assert got.dtype == torch.float32 and torch.equal(got, (diff * diff).sum(dim=1))
    one = torch.cat([bound_module.pair_sq(q, stored, rows[i:i + 1], cols[i:i + 1])
                     for i in range(len(rows))])
    assert torch.equal(one, got)  # the same whatever the other pairs
    assert len(bound_module.pair_sq(q, stored, rows[:0], cols[:0])) == 0


@pytest.mark.parametrize("samples", ["smooth", "bursty"])
def test_the_search_reads_the_stored_samples_without_a_transposed_copy(samples):
    # the products read the stored samples transposed in place: the model holds one
    # copy of them, and every error is the one a contiguous transposed copy gives
    if samples == "smooth":
        train, new = smooth_windows(seed=0), smooth_windows(n=600, seed=1, noise=0.2)
        model = fitted("reconstruction", train)
    else:
        train, new = ArraySamples(bursty_rows(seed=0)), ArraySamples(bursty_rows(n=80, seed=1))
        model = fitted("reconstruction", train, spread_floor=100.0)
    assert model._flat_t.data_ptr() == model._flat.data_ptr()
    for training, data in ((False, new), (True, train)):
        in_place = collect(model, data, training=training)[1]
        model._flat_t = model._flat.T.contiguous()
        model._sq_t = model._flat_t * model._flat_t
        copied = collect(model, data, training=training)[1]
        model.to("cpu")
        assert np.array_equal(in_place, copied)
    if samples == "smooth":
        assert model._bound is not None


def test_a_pickle_holds_the_stored_windows_as_the_stretch_of_series_they_cover():
    train, new = smooth_windows(n=800, seed=0), smooth_windows(n=300, seed=1)
    model = fitted("reconstruction", train, spread_floor=1e-4)
    assert model.stored_compact_["series"].shape == (3, 800)
    payload = pickle.dumps(model)
    assert len(payload) < model.stored_.numel() * 4 / 10  # 32-step windows: a 32nd
    assert "stored_" not in model.__getstate__()
    loaded = pickle.loads(payload)
    assert loaded.stored_.is_contiguous() and torch.equal(loaded.stored_, model.stored_)
    assert np.array_equal(collect(loaded, new)[1], collect(model, new)[1])
    assert np.array_equal(collect(loaded, train, training=True)[1],
                          collect(model, train, training=True)[1])


def test_windows_far_apart_and_rows_are_pickled_as_they_are():
    # three windows of a long series: the stretch they cover is larger than they are
    sparse = fitted("reconstruction", smooth_windows(n=3000, length=4), max_samples=3)
    assert sparse.stored_compact_ is None and "stored_" in sparse.__getstate__()
    model = fitted("reconstruction", ArraySamples(rows()))
    assert model.stored_compact_ is None
    loaded = pickle.loads(pickle.dumps(sparse))
    assert torch.equal(loaded.stored_, sparse.stored_)
