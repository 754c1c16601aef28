"""Dask collections in, lazy collections out, scored blockwise to the bit (issue #15)."""

import time

import numpy as np
import pandas as pd
import pytest

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")

from skdiffad import (  # noqa: E402
    DiffusionImageDetector,
    DiffusionTSDetector,
    TabDiffusionDetector,
    _dask,
)

SYNC = {"scheduler": "sync"}
dask_config = pytest.importorskip("dask").config.set


# ---------------------------------------------------------------- tables
@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(900, 4))
    X[::7, 2] = np.nan
    X[-30:] += 4
    return X


@pytest.fixture(scope="module")
def table_detector(table):
    return TabDiffusionDetector(random_state=0).fit(table[:400])


def test_dask_array_rows_score_as_in_memory(table, table_detector):
    det = table_detector
    dX = da.from_array(table, chunks=((100, 333, 467), (3, 1)))  # uneven rows, split columns
    scores = det.decision_function(dX)
    assert isinstance(scores, da.Array) and scores.chunks == ((100, 333, 467),)
    np.testing.assert_array_equal(scores.compute(**SYNC), det.decision_function(table))
    np.testing.assert_array_equal(det.score_samples(dX).compute(**SYNC),
                                  det.score_samples(table))
    labels = det.predict(dX).compute(**SYNC)
    np.testing.assert_array_equal(labels, det.predict(table))
    assert labels[-30:].mean() > 0.9
    np.testing.assert_array_equal(det.predict_proba(dX).compute(**SYNC), det.predict_proba(table))
    np.testing.assert_array_equal(det.predict_confidence(dX).compute(**SYNC),
                                  det.predict_confidence(table))
    lazy_labels, confidence = det.predict(dX, return_confidence=True)
    np.testing.assert_array_equal(confidence.compute(**SYNC), det.predict_confidence(table))


def test_dask_dataframe_keeps_index_and_mixed_types():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=300), "y": rng.normal(size=300),
                          "kind": pd.Categorical(rng.choice(["a", "b", "c"], 300))},
                         index=pd.RangeIndex(1000, 1300, name="row"))
    frame.loc[frame.index[::11], "y"] = np.nan
    det = TabDiffusionDetector(random_state=0).fit(frame.iloc[:150])
    lazy = det.decision_function(dd.from_pandas(frame, npartitions=4))
    assert isinstance(lazy, dd.Series)
    scores = lazy.compute(**SYNC)
    pd.testing.assert_index_equal(scores.index, frame.index)
    np.testing.assert_array_equal(scores.to_numpy(), det.decision_function(frame))
    labels = det.predict(dd.from_pandas(frame, npartitions=3)).compute(**SYNC)
    np.testing.assert_array_equal(labels.to_numpy(), det.predict(frame))


def test_dask_series_input_to_a_table_detector_is_a_clear_error(table_detector):
    series = dd.from_pandas(pd.Series(np.arange(10.0)), npartitions=2)
    with pytest.raises(TypeError, match="not a Dask Series"):
        table_detector.decision_function(series)


def test_unknown_chunk_sizes_are_a_clear_error(table, table_detector):
    dX = da.from_array(table, chunks=300)
    dX = dX[dX[:, 0] > -10]  # boolean indexing: chunk sizes unknown
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        table_detector.decision_function(dX)


# ---------------------------------------------------------------- series
def _series(n=2400, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    X = np.c_[np.sin(t / 20), np.cos(t / 33), rng.normal(size=n) * 0.1]
    X += 0.05 * rng.normal(size=X.shape)
    X[1700:1740, 1] += 2.5
    return X


def _with_gaps(X):
    X = X.copy()
    X[:15] = np.nan                # the series starts with nothing observed
    X[900:1150] = np.nan           # a gap longer than any window (and the overlap)
    X[1300:1310, 0] = np.nan       # one channel missing for a while
    X[-9:] = np.nan                # and ends with nothing observed
    return X


SERIES_CASES = {
    "auto": {"window_size": "auto"},
    "multiscale": {"window_size": (16, 32)},
    "single": {"window_size": 24, "stride": 7},
    "step": {"window_size": (8, 16), "aggregation": "step"},
    "window_mean": {"window_size": (8, 16), "aggregation": "window_mean"},
    "window": {"window_size": (8, 16), "aggregation": "window"},
    "aggregation_window": {"window_size": (8, 16), "aggregation_window": 12},
    # a floor low enough for every channel to spread: the 10 nearest windows' variances
    "spread": {"window_size": (8, 16), "spread_floor": 0.05},
    "imputation": {"window_size": 16, "scoring": "imputation", "n_stripes": 4},
    "unet": {"window_size": (8, 16), "denoiser": "unet", "widths": (8,), "kernel_size": 3,
             "max_steps": 15, "n_timesteps": 50, "n_inference_steps": 2},
}
CHUNKINGS = [(600, 600, 600, 600), (5, 1190, 13, 1192), (2399, 1)]


@pytest.mark.parametrize("case", list(SERIES_CASES))
def test_dask_series_scores_are_bit_identical_on_uneven_chunks_with_gaps(case):
    X = _series()
    det = DiffusionTSDetector(random_state=0, **SERIES_CASES[case]).fit(X[:800])
    test = _with_gaps(X)
    scores, channels = det.decision_function(test), det.channel_scores(test)
    assert np.isfinite(scores).all()
    for chunks in CHUNKINGS:
        dX = da.from_array(test, chunks=(chunks, 2 if chunks[0] == 600 else 3))
        lazy = det.decision_function(dX)
        assert isinstance(lazy, da.Array) and lazy.shape == (len(test),)
        np.testing.assert_array_equal(lazy.compute(**SYNC), scores)
        np.testing.assert_array_equal(det.channel_scores(dX).compute(**SYNC), channels)
    labels = det.predict(da.from_array(test, chunks=500)).compute(**SYNC)
    np.testing.assert_array_equal(labels, det.predict(test))


@pytest.mark.parametrize("spread_floor", [None, 0.05])
def test_dask_series_scores_are_bit_identical_where_the_pooled_bound_searches(spread_floor):
    # smooth channels: the exact search's pooled lower bound settles most windows (and
    # finds the 10 nearest of each, with a floor low enough for every channel to spread)
    t = np.arange(2400)
    X = np.c_[np.sin(t / 20), np.cos(t / 33)] + 0.01 * np.random.default_rng(0).normal(
        size=(2400, 2))
    X[1700:1740, 1] += 2.5
    det = DiffusionTSDetector(random_state=0, window_size=(32, 64),
                              spread_floor=spread_floor).fit(X[:800])
    assert all(member._bound is not None for member in det.model_.members)
    assert all((member._spread_cols is None) == (spread_floor is None)
               for member in det.model_.members)
    test = _with_gaps(X)
    scores = det.decision_function(test)
    assert np.isfinite(scores).all() and scores[1700:1740].min() > np.median(scores)
    for chunks in CHUNKINGS:
        lazy = det.decision_function(da.from_array(test, chunks=(chunks, 2)))
        np.testing.assert_array_equal(lazy.compute(**SYNC), scores)


def test_dask_dataframe_series_keeps_its_index_and_channel_names():
    X = _with_gaps(_series())
    frame = pd.DataFrame(X, columns=["a", "b", "c"],
                         index=pd.date_range("2026-01-01", periods=len(X), freq="min"))
    det = DiffusionTSDetector(random_state=0, window_size=(16, 32)).fit(frame.iloc[:800])
    lazy = det.decision_function(dd.from_pandas(frame, npartitions=5))
    assert isinstance(lazy, dd.Series)
    scores = lazy.compute(**SYNC)
    pd.testing.assert_index_equal(scores.index, frame.index)
    np.testing.assert_array_equal(scores.to_numpy(), det.decision_function(frame))
    per_channel = det.channel_scores(dd.from_pandas(frame, npartitions=3)).compute(**SYNC)
    assert list(per_channel.columns) == ["a", "b", "c"]
    np.testing.assert_array_equal(per_channel.to_numpy(), det.channel_scores(frame))
    with pytest.raises(ValueError, match="channel names"):
        det.decision_function(dd.from_pandas(frame.rename(columns={"a": "z"}), npartitions=2))


def test_dask_series_bad_input_names_what_is_wrong():
    X = _series(1200)
    det = DiffusionTSDetector(random_state=0, window_size=(16, 32)).fit(X[:800])
    with pytest.raises(ValueError, match="3 channels"):
        det.decision_function(da.from_array(X[:, :2], chunks=300))
    with pytest.raises(ValueError, match="fewer than window_size=16"):
        det.decision_function(da.from_array(X[:10], chunks=5))
    with pytest.raises(ValueError, match="shape"):
        det.decision_function(da.zeros((40, 3, 2), chunks=10))
    with pytest.raises(TypeError, match="Dask collection"):
        det.predict_proba(da.from_array(X, chunks=300))
    blank = da.full((600, 3), np.nan, chunks=200)
    with pytest.raises(ValueError, match="no observed value"):
        det.decision_function(blank).compute(**SYNC)


# ---------------------------------------------------------------- images
def test_dask_images_scores_maps_and_masks():
    rng = np.random.default_rng(0)
    images = rng.random((90, 12, 12))
    images[-10:, 3:7, 3:7] = 3.0
    det = DiffusionImageDetector(random_state=0).fit(images[:40])
    for X in (images, images[..., None]):
        dX = da.from_array(X, chunks=(35,) + X.shape[1:])
        np.testing.assert_array_equal(det.decision_function(dX).compute(**SYNC),
                                      det.decision_function(X))
        maps = det.anomaly_map(dX)
        assert maps.shape == (90, 12, 12) and maps.dtype == np.float64
        np.testing.assert_array_equal(maps.compute(**SYNC), det.anomaly_map(X))
        np.testing.assert_array_equal(det.predict_mask(dX).compute(**SYNC), det.predict_mask(X))
    assert det.predict(da.from_array(images, chunks=30)).compute(**SYNC)[-10:].all()


# ---------------------------------------------------------------- a cluster
@pytest.fixture
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=40) as local:
        with distributed.Client(local) as client:
            yield local, client


@pytest.mark.cluster
@pytest.mark.slow
def test_local_cluster_ships_the_model_once_per_worker(cluster, table, table_detector):
    _, client = cluster
    det = DiffusionTSDetector(random_state=0, window_size=(16, 32)).fit(_series()[:800])
    series = _with_gaps(_series(6000, seed=2))
    before = client.run(_dask.shipments)
    lazy = det.decision_function(da.from_array(series, chunks=(500, 3)))  # 12 blocks
    np.testing.assert_array_equal(client.compute(lazy).result(), det.decision_function(series))
    after = client.run(_dask.shipments)
    per_worker = [after[w] - before[w] for w in after]
    # the model went to each worker that ran a block once, not once per block
    assert sum(per_worker) >= 1 and max(per_worker) == 1, per_worker
    rows = table_detector.decision_function(da.from_array(table, chunks=50))  # 18 blocks
    np.testing.assert_array_equal(client.compute(rows).result(),
                                  table_detector.decision_function(table))


@pytest.mark.cluster
@pytest.mark.slow
def test_a_worker_killed_mid_scoring_leaves_a_complete_result(cluster):
    local, client = cluster
    det = DiffusionTSDetector(random_state=0, window_size=(16, 32)).fit(_series()[:800])
    series = _with_gaps(_series(40_000, seed=3))
    expected = det.decision_function(series)
    future = client.compute(det.decision_function(da.from_array(series, chunks=(1000, 3))))
    deadline = time.monotonic() + 60
    while not any(client.processing().values()) and time.monotonic() < deadline:
        time.sleep(0.01)
    victim = next(iter(local.workers.values()))
    victim.process.process.kill()  # the nanny starts a new worker; Dask reruns what was lost
    assert not future.done()
    np.testing.assert_array_equal(future.result(timeout=120), expected)


# ---------------------------------------------------------------- fit
@pytest.mark.slow
def test_sample_rows_is_a_uniform_sample_in_order():
    X = np.arange(1000.0)[:, None] * [1.0, -1.0]
    dX = da.from_array(X, chunks=(130, 2))
    counts = np.zeros(1000)
    for seed in range(300):
        sample = _dask.sample_rows(dX, 100, seed)
        assert sample.shape == (100, 2) and np.all(np.diff(sample[:, 0]) > 0)
        counts[sample[:, 0].astype(int)] += 1
    # every row drawn with probability 0.1: 30 expected draws each (sd 5.2)
    assert abs(counts.mean() - 30) < 1e-9 and counts.min() > 10 and counts.max() < 52
    assert np.array_equal(_dask.sample_rows(dX, 5000, 0), X)  # fewer rows: all of them
    np.testing.assert_array_equal(_dask.sample_rows(dX, 100, 7), _dask.sample_rows(dX, 100, 7))


def test_fit_on_dask_uses_a_sample_of_max_samples_rows(table):
    dX = da.from_array(table, chunks=(170, 4))
    det = TabDiffusionDetector(random_state=3, max_samples=250).fit(dX)
    sample = _dask.sample_rows(dX, 250, _seed(3))
    assert det.decision_scores_.shape == (250,)
    in_memory = TabDiffusionDetector(random_state=3, max_samples=250).fit(sample)
    np.testing.assert_array_equal(det.decision_function(table),
                                  in_memory.decision_function(table))
    frame = pd.DataFrame(table, columns=list("abcd"))
    det = TabDiffusionDetector(random_state=0, max_samples=300).fit(
        dd.from_pandas(frame, npartitions=4))
    assert det.decision_scores_.shape == (300,) and list(det.feature_names_in_) == list("abcd")


def _stream(X, chunk, kept=3, max_validation=50):
    from skdiffad._core.samples import ArraySamples

    def encode(block):
        return ArraySamples(np.nan_to_num(block), None if not np.isnan(block).any()
                            else ~np.isnan(block))

    like = encode(X[:10])
    return _dask.BlockSamples(da.from_array(X, chunks=(chunk, X.shape[1])), encode, like,
                              max_validation=max_validation, kept=kept)


def test_a_streamed_epoch_reads_every_training_row_once_a_few_blocks_at_a_time():
    import torch

    X = np.arange(2000.0).reshape(1000, 2)
    X[::9, 1] = np.nan
    stream = _stream(X, chunk=90)  # 12 blocks, 3 held at a time
    train, val = stream.split(0.1, torch.Generator().manual_seed(0))
    # the held-out rows: min(floor(1000 * 0.1), 50), uniform, read in one pass and held
    assert len(val) == 50 and len(train) == 950 and len(np.unique(val.numpy())) == 50
    x, mask = stream.take(val)
    np.testing.assert_array_equal(x.numpy(), np.nan_to_num(X[val.numpy()]).astype(np.float32))
    np.testing.assert_array_equal(mask.numpy(), ~np.isnan(X[val.numpy()]))
    assert stream.block_loads == 0
    order = stream.epoch_order(train, torch.Generator().manual_seed(1))
    assert len(order) == 950
    seen, blocks_per_batch = [], []
    for start in range(0, len(order), 64):
        idx = order[start : start + 64]
        x, mask = stream.take(idx)
        rows = idx.numpy()
        np.testing.assert_array_equal(x.numpy(), np.nan_to_num(X[rows]).astype(np.float32))
        np.testing.assert_array_equal(mask.numpy(), ~np.isnan(X[rows]))
        seen.append(rows)
        blocks_per_batch.append(len(np.unique(rows // 90)))
    seen = np.concatenate(seen)
    # every training row once, no held-out row, in a shuffled order
    np.testing.assert_array_equal(np.sort(seen), np.setdiff1d(np.arange(1000), val.numpy()))
    assert not np.array_equal(seen, np.sort(seen))
    # each block computed once in the epoch, never more than 3 held; a batch mixes the
    # rows of its group's blocks (a batch on a group boundary reads two groups)
    assert stream.block_loads == 12 and stream.most_held == 3
    assert max(blocks_per_batch) <= 6 and np.median(blocks_per_batch) == 3
    again = stream.epoch_order(train, torch.Generator().manual_seed(1))
    np.testing.assert_array_equal(again[0:950].numpy(), seen)  # seeded: the same order
    # a step budget shorter than an epoch: a uniform subset spread over every block
    loads = stream.block_loads
    short = stream.epoch_order(train, torch.Generator().manual_seed(2), limit=120)
    assert len(short) == 120
    rows = np.concatenate([stream.take(short[i : i + 64])[0].numpy()[:, 0] / 2
                           for i in range(0, 120, 64)]).astype(int)
    assert len(np.unique(rows)) == 120 and not np.isin(rows, val.numpy()).any()
    touched = len(np.unique(rows // 90))
    assert touched >= 10 and stream.block_loads - loads <= touched  # each block read once
    with pytest.raises(TypeError, match="its own split"):
        stream.epoch_order(torch.arange(10), torch.Generator())


@pytest.mark.parametrize("frame", [False, True])
def test_fit_on_dask_streams_every_row_through_the_training_loop(table, frame):
    import pickle

    X = table
    if frame:
        X = pd.DataFrame(table, columns=list("abcd"))
        X["kind"] = np.where(np.arange(len(X)) % 3 == 0, "x", "y")
        lazy = dd.from_pandas(X, npartitions=9)
    else:
        lazy = da.from_array(X, chunks=(100, 4))
    params = dict(denoiser="mlp", scoring="density", widths=(32, 32), max_steps=80, max_samples=200,
                  early_stopping=True, random_state=0)
    det = TabDiffusionDetector(**params).fit(lazy)
    history = det.history_
    assert history["streamed_samples"] == 900 and history["streamed_blocks"] == 9
    assert history["n_steps"] == 80 and history["block_loads"] >= 9
    assert history["most_blocks_held"] <= _dask.STREAM_BLOCKS
    assert len(history["val_loss"]) == history["n_iter"]  # validated on 90 held rows
    assert det.decision_scores_.shape == (200,)  # the training scores are the sample's
    scores = np.asarray(det.decision_function(X))  # a Series for the frame
    assert np.all(np.isfinite(scores))
    # the shifted last 30 rows rank on top
    assert np.mean(scores[-30:, None] > scores[None, :-30]) > 0.9
    again = TabDiffusionDetector(**params).fit(lazy)
    np.testing.assert_array_equal(again.decision_function(X), scores)
    loaded = pickle.loads(pickle.dumps(det))  # nothing of the Dask source is kept
    np.testing.assert_array_equal(loaded.decision_function(X), scores)


def test_fit_on_dask_images_streams_a_learned_denoiser():
    rng = np.random.default_rng(0)
    images = rng.random((120, 12, 12))
    det = DiffusionImageDetector(denoiser="unet", widths=(8,), max_steps=12, batch_size=16,
                                 max_samples=40, random_state=0)
    det.fit(da.from_array(images, chunks=(25, 12, 12)))
    assert det.history_["streamed_samples"] == 120 and det.history_["streamed_blocks"] == 5
    assert det.decision_scores_.shape == (40,)
    assert np.all(np.isfinite(det.decision_function(images[:10])))


def _seed(random_state):
    from skdiffad.base import _seed_from

    return _seed_from(random_state)


@pytest.mark.parametrize("case", [c for c in SERIES_CASES if c != "unet"])
def test_fit_on_a_dask_series_equals_the_in_memory_fit(case):
    train = _with_gaps(_series())[:1500]
    params = dict(random_state=0, **SERIES_CASES[case])
    memory = DiffusionTSDetector(**params).fit(train)
    with_dask = DiffusionTSDetector(**params)
    with dask_config(SYNC):
        with_dask.fit(da.from_array(train, chunks=((5, 700, 13, 782), 3)))
    # the scaling saw every step (fewer than SCALING_STEPS), the exact model gathered
    # the same windows from the blocks, the training scores were scored blockwise
    np.testing.assert_array_equal(with_dask.decision_scores_, memory.decision_scores_)
    assert with_dask.threshold_ == memory.threshold_
    test = _with_gaps(_series(seed=1))
    np.testing.assert_array_equal(with_dask.decision_function(test),
                                  memory.decision_function(test))
    history = with_dask.history_
    assert history["streamed_blocks"] == 4 and history["block_loads"] >= 4
    assert history["most_blocks_held"] <= _dask.STREAM_BLOCKS


def test_fit_on_a_dask_series_streams_windows_to_a_network():
    import pickle

    train = _with_gaps(_series())[:1500]
    det = DiffusionTSDetector(random_state=0, early_stopping=True, **SERIES_CASES["unet"])
    with dask_config(SYNC):
        det.fit(dd.from_pandas(pd.DataFrame(train, columns=["x", "y", "z"]), npartitions=6))
    history = det.history_
    assert [h["n_steps"] for h in history["members"]] == [15, 15]  # one network per length
    assert history["streamed_blocks"] == 6 and history["block_loads"] >= 6
    assert history["most_blocks_held"] <= _dask.STREAM_BLOCKS
    assert det.decision_scores_.shape == (1500,) and list(det.feature_names_in_) == list("xyz")
    test = pd.DataFrame(_series(), columns=list("xyz"))
    scores = det.decision_function(test)
    assert np.isfinite(scores).all()
    loaded = pickle.loads(pickle.dumps(det))
    np.testing.assert_array_equal(loaded.decision_function(test), scores)


@pytest.mark.parametrize("case", ["short", "two-fold", "blank channel", "text column"])
def test_fit_on_a_bad_dask_series_says_what_is_wrong_as_in_memory(case):
    X = _series(40)
    params, error = {"random_state": 0, "window_size": 16, "max_samples": 5}, ValueError
    if case == "short":
        X, params["window_size"] = X[:10], 32
    elif case == "two-fold":
        X = X[:20]
    elif case == "blank channel":
        X[:, 1] = np.nan
    frame = pd.DataFrame(X, columns=list("abc"))
    if case == "text column":
        frame["c"], error = "x", TypeError
    with pytest.raises(error) as memory:
        DiffusionTSDetector(**params).fit(frame)
    with pytest.raises(error) as lazy, dask_config(SYNC):
        DiffusionTSDetector(**params).fit(dd.from_pandas(frame, npartitions=3))
    assert str(lazy.value)[:60] == str(memory.value)[:60]


def test_fit_on_a_long_dask_series_scales_on_a_sample_of_steps(monkeypatch):
    import skdiffad.modalities.series as series_modality

    monkeypatch.setattr(series_modality, "SCALING_STEPS", 400)
    train, test = _series(3000)[:2000], _series(3000, seed=4)
    test[2500:2530, 0] += 3.0
    memory = DiffusionTSDetector(random_state=0, window_size=(16, 32)).fit(train)
    with dask_config(SYNC):
        sampled = DiffusionTSDetector(random_state=0, window_size=(16, 32)).fit(
            da.from_array(train, chunks=300))
    assert not np.array_equal(sampled.encoder_.scale_, memory.encoder_.scale_)
    np.testing.assert_allclose(sampled.encoder_.scale_, memory.encoder_.scale_, rtol=0.15)
    scores = sampled.decision_function(test)
    assert np.corrcoef(scores, memory.decision_function(test))[0, 1] > 0.95
    assert scores[2500:2530].min() > np.percentile(scores[:2400], 99)


def test_fit_on_a_long_dask_series_reads_its_period_from_the_first_steps(monkeypatch):
    import skdiffad._encoders.series as series_encoding

    monkeypatch.setattr(series_encoding, "PERIOD_STEPS", 1000)
    t = np.arange(6000)[:, None]
    train = np.sin(2 * np.pi * t / np.where(t < 1000, 40, 90)) \
        + 0.05 * np.random.default_rng(0).normal(size=(6000, 1))
    memory = DiffusionTSDetector(random_state=0).fit(train)
    with dask_config(SYNC):
        lazy = DiffusionTSDetector(random_state=0).fit(da.from_array(train, chunks=700))
    assert memory.period_ == lazy.period_ == 40
    assert lazy.window_sizes_ == memory.window_sizes_ == (20, 32, 40, 64, 80, 128)
    np.testing.assert_array_equal(lazy.decision_scores_, memory.decision_scores_)
    # six lengths, scored blockwise with gaps: the in-memory bits
    test = train[:2400].copy()
    test[:15], test[900:1150], test[-9:] = np.nan, np.nan, np.nan
    test[1500:1520] += 2.0
    for chunks in CHUNKINGS:
        dX = da.from_array(test, chunks=(chunks, 1))
        np.testing.assert_array_equal(lazy.decision_function(dX).compute(**SYNC),
                                      memory.decision_function(test))
        np.testing.assert_array_equal(lazy.channel_scores(dX).compute(**SYNC),
                                      memory.channel_scores(test))


# ---------------------------------------------------------------- recipes
def test_dask_ml_parallel_post_fit_wraps_a_detector(table, table_detector):
    wrappers = pytest.importorskip("dask_ml.wrappers")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    wrapped = wrappers.ParallelPostFit(make_pipeline(
        StandardScaler(), TabDiffusionDetector(random_state=0))).fit(table[:400])
    dX = da.from_array(table, chunks=(200, 4))
    labels = wrapped.predict(dX)
    assert isinstance(labels, da.Array)
    np.testing.assert_array_equal(labels.compute(**SYNC), wrapped.estimator.predict(table))


@pytest.mark.cluster
@pytest.mark.slow
def test_grid_search_under_the_joblib_dask_backend(cluster, table):
    import joblib
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    y = np.r_[np.zeros(870, dtype=int), np.ones(30, dtype=int)]
    grid = {"max_samples": [50, 400], "n_neighbors": [1, 5]}

    def search():
        return GridSearchCV(TabDiffusionDetector(random_state=0), grid, scoring="roc_auc",
                            cv=StratifiedKFold(3, shuffle=True, random_state=0),
                            n_jobs=2).fit(table, y)

    local = search()
    with joblib.parallel_backend("dask"):
        on_dask = search()
    assert on_dask.best_params_ == local.best_params_
    np.testing.assert_array_equal(on_dask.cv_results_["mean_test_score"],
                                  local.cv_results_["mean_test_score"])


def test_fusion_of_row_members_scores_a_dask_table(table):
    from skdiffad import FusionDetector

    fused = FusionDetector([("a", TabDiffusionDetector(random_state=0), [0, 1]),
                            ("b", TabDiffusionDetector(random_state=0), [2, 3])]).fit(table[:400])
    dX = da.from_array(table, chunks=(250, 4))
    np.testing.assert_array_equal(fused.decision_function(dX).compute(**SYNC),
                                  fused.decision_function(table))
    np.testing.assert_array_equal(fused.predict(dX).compute(**SYNC), fused.predict(table))
    frame = pd.DataFrame(table, columns=list("wxyz"))
    named = FusionDetector([("a", TabDiffusionDetector(random_state=0), ["w", "x"]),
                            ("b", TabDiffusionDetector(random_state=0), ["y", "z"])]
                           ).fit(frame.iloc[:400])
    lazy = dd.from_pandas(frame, npartitions=3)
    scores = named.decision_function(lazy).compute(**SYNC)
    np.testing.assert_array_equal(scores.to_numpy(), named.decision_function(frame))
    # the lazy results have the names, index and columns of the in-memory ones
    for method in ("decision_function", "score_samples", "predict", "predict_confidence"):
        pd.testing.assert_series_equal(getattr(named, method)(lazy).compute(**SYNC),
                                       getattr(named, method)(frame))
    pd.testing.assert_frame_equal(named.predict_proba(lazy).compute(**SYNC),
                                  named.predict_proba(frame))
    series = FusionDetector([("s", DiffusionTSDetector(window_size=8), [0, 1]),
                             ("t", DiffusionTSDetector(window_size=8), [2, 3])]).fit(table[:400])
    with pytest.raises(TypeError, match="DiffusionTSDetector scores steps"):
        series.decision_function(dX)
    with pytest.raises(TypeError, match=r"FusionDetector\.predict_proba scores a Dask .* "
                                        "DiffusionTSDetector scores steps"):
        series.predict_proba(dX)
    with pytest.raises(TypeError, match="fit on a sample"):
        FusionDetector([("a", TabDiffusionDetector(), [0, 1])]).fit(dX)
