"""Tests of the anomaly generation benchmark (benchmarks/generation.py) on synthetic data.

The pure pieces (SMOTE, ADBench's synthetic types, the C2ST, the weakly supervised
split, the dataset choice) are checked against their documented properties; the
command line runs end to end on a fake ADBench folder in ``tmp_path`` with cheap
stand-ins for the diffusion sampler, skdiffad's ``AnomalyGenerator`` and the
detectors, so neither the real data nor ``skdiffad.generation`` is needed.
"""

import functools
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

try:
    import benchmarks.generation as bg
except ModuleNotFoundError:  # pytest's importlib mode leaves the repository root off sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import benchmarks.generation as bg

import benchmarks.tabular as bt

pytestmark = pytest.mark.benchmark


def _correlated(n, seed=0, rho=0.9):
    rng = np.random.default_rng(seed)
    return rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=n)


def _distance_to_segment(p, a, b):
    ab = b - a
    t = np.clip(np.dot(p - a, ab) / max(np.dot(ab, ab), 1e-300), 0, 1)
    return np.linalg.norm(p - (a + t * ab))


# ---------------------------------------------------------------- SMOTE
def test_smote_rows_lie_on_segments_to_nearest_neighbours():
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    rows = bg.smote(X, 100, np.random.default_rng(1), k_neighbors=5)
    neighbours = NearestNeighbors(n_neighbors=5).fit(X).kneighbors(return_distance=False)
    segments = [(i, j) for i in range(len(X)) for j in neighbours[i]]
    for row in rows:
        assert min(_distance_to_segment(row, X[i], X[j]) for i, j in segments) < 1e-9
    assert rows.shape == (100, 3)
    assert not np.isin(rows, X).all(axis=1).any()  # interpolated, not copies


def test_smote_anomalies_jitters_a_single_anomaly():
    anomaly = np.array([[1.0, -2.0, 3.0]])
    rows = bg.smote_anomalies(anomaly, 2000, np.random.default_rng(0))
    np.testing.assert_allclose(rows.mean(axis=0), anomaly[0], atol=0.01)
    np.testing.assert_allclose(rows.std(axis=0), bg.SINGLE_ANOMALY_JITTER, rtol=0.1)
    two = bg.smote_anomalies(np.array([[0.0, 0.0], [1.0, 1.0]]), 50, np.random.default_rng(0))
    np.testing.assert_allclose(two[:, 0], two[:, 1])  # on the segment between the two
    assert ((two >= 0) & (two <= 1)).all()


# ---------------------------------------------------------------- ADBench types
def test_adbench_global_rows_fill_the_widened_range_box():
    X = _correlated(500)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    rows = bg.adbench_anomalies(X, 4000, kinds="global", random_state=0)
    low, high = 1.1 * X.min(axis=0), 1.1 * X.max(axis=0)
    assert ((rows >= low - 1e-12) & (rows <= high + 1e-12)).all()
    outside = (rows < X.min(axis=0)) | (rows > X.max(axis=0))
    assert 0.02 < outside.mean() < 0.2  # the 10 % widening is used
    assert abs(np.corrcoef(rows.T)[0, 1]) < 0.1


def test_adbench_dependency_rows_keep_marginals_and_lose_correlation():
    X = _correlated(2000, rho=0.9)
    rows = bg.adbench_anomalies(X, 4000, kinds="dependency", random_state=0)
    assert np.corrcoef(X.T)[0, 1] > 0.85
    assert abs(np.corrcoef(rows.T)[0, 1]) < 0.05
    np.testing.assert_allclose(rows.mean(axis=0), X.mean(axis=0), atol=0.06)
    np.testing.assert_allclose(rows.std(axis=0), X.std(axis=0), rtol=0.05)
    for q in (0.1, 0.5, 0.9):
        np.testing.assert_allclose(np.quantile(rows, q, axis=0), np.quantile(X, q, axis=0),
                                   atol=0.1)


def test_adbench_local_and_clustered_rows_spread_and_move_the_mixture(fast_models):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 2))  # one Gaussian: BIC picks one component
    local = bg.adbench_anomalies(X, 3000, kinds="local", random_state=0)
    np.testing.assert_allclose(local.var(axis=0), bg.ADBENCH_ALPHA * X.var(axis=0), rtol=0.1)
    np.testing.assert_allclose(local.mean(axis=0), 0, atol=0.15)
    two = np.vstack([X[:500] + [3, 0], X[500:] - [3, 0]])
    clustered = bg.adbench_anomalies(two, 2000, kinds="clustered", random_state=0)
    np.testing.assert_allclose(np.abs(clustered[:, 0]).mean(), 3 * bg.ADBENCH_ALPHA, rtol=0.05)
    np.testing.assert_allclose(clustered[:, 1].std(), 1, rtol=0.1)


def test_adbench_mixture_splits_rows_between_kinds(fast_models):
    X = _correlated(200)
    rows = bg.adbench_anomalies(X, 10, random_state=0)
    assert rows.shape == (10, 2) and np.isfinite(rows).all()
    np.testing.assert_array_equal(rows, bg.adbench_anomalies(X, 10, random_state=0))
    with pytest.raises(ValueError, match="unknown ADBench kind"):
        bg.adbench_anomalies(X, 10, kinds="fewshot")


# ---------------------------------------------------------------- metrics
@pytest.fixture
def fast_models(monkeypatch):
    """Fewer boosting rounds and mixture components: the same code paths, quicker."""
    monkeypatch.setattr(bg, "HistGradientBoostingClassifier",
                        functools.partial(bg.HistGradientBoostingClassifier, max_iter=20))
    monkeypatch.setattr(bg, "MAX_COMPONENTS", 3)


def test_c2st_is_chance_on_one_distribution_and_one_on_shifted_ones(fast_models):
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(300, 3)), rng.normal(size=(300, 3))
    assert abs(bg.c2st_auroc(A, B, random_state=0) - 0.5) < 0.1
    assert bg.c2st_auroc(A, B + 3, random_state=0) > 0.98


def test_mean_wasserstein_is_the_mean_column_shift():
    A = np.random.default_rng(0).normal(size=(200, 2))
    assert bg.mean_wasserstein(A, A + [1.0, 3.0]) == pytest.approx(2.0)


def test_generators_fit_and_sample_rows_of_the_right_shape(fast_models):
    X = _correlated(120)
    for name in ("gmm", "smote", "copy"):
        rows = bg.GENERATORS[name](0).fit(X).sample(50, random_state=0)
        assert rows.shape == (50, 2) and np.isfinite(rows).all(), name
    copies = bg.GENERATORS["copy"](0).fit(X).sample(50, random_state=0)
    assert np.isin(copies, X).all()


# ---------------------------------------------------------------- splits
def _labelled_data(n_normal=400, n_anomalies=60, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(size=(n_normal, d)), rng.normal(4, 1, size=(n_anomalies, d))])
    y = np.r_[np.zeros(n_normal, int), np.ones(n_anomalies, int)]
    return X, y


@pytest.mark.parametrize("labelled, expected", [(5, 5), ("5", 5), ("0.1", 4), (0.01, 1),
                                                ("100", 42)])
def test_weakly_supervised_split_keeps_exactly_the_labelled_anomalies(labelled, expected):
    X, y = _labelled_data()
    split = bg.weakly_supervised_split(X, y, labelled, random_state=0)
    assert split["n_labelled"] == expected == int(split["y_train"].sum())
    assert split["n_labelled"] + split["n_dropped"] == 42  # 70 % of 60 anomalies
    assert len(split["y_test"]) == 138 and int(split["y_test"].sum()) == 18
    assert int((split["y_train"] == 0).sum()) == 280
    normal = split["X_train"][split["y_train"] == 0]
    np.testing.assert_allclose(normal.mean(axis=0), 0, atol=1e-12)
    capped = bg.weakly_supervised_split(X, y, labelled, random_state=0, max_train=100)
    assert capped["subsampled"] and int((capped["y_train"] == 0).sum()) == 100
    assert int(capped["y_train"].sum()) == expected


def test_weakly_supervised_split_is_seeded_and_rejects_bad_counts():
    X, y = _labelled_data()
    a = bg.weakly_supervised_split(X, y, 5, random_state=3)
    b = bg.weakly_supervised_split(X, y, 5, random_state=3)
    np.testing.assert_array_equal(a["X_train"], b["X_train"])
    with pytest.raises(ValueError, match="fraction"):
        bg.labelled_count("1.5", 10)
    with pytest.raises(ValueError, match="no anomaly"):
        bg.labelled_count(5, 0)
    assert bg.n_synthetic(30_000) == bg.MAX_SYNTHETIC and bg.n_synthetic(5) == 1


def test_choose_datasets_by_prefix_name_and_split():
    names = ["1_ALOI", "6_cardio", "8_celeba", "16_http", "38_thyroid", "46_WPBC"]
    assert bg.choose_datasets(names) == ["1_ALOI", "6_cardio", "38_thyroid", "46_WPBC"]
    assert bg.choose_datasets(names, "6") == ["6_cardio"]
    assert bg.choose_datasets(names, "http,wpbc") == ["16_http", "46_WPBC"]
    assert bg.choose_datasets(names, split="tuning") == ["6_cardio", "38_thyroid"]
    assert bg.choose_datasets(names, split="evaluation") == ["1_ALOI", "46_WPBC"]


def test_normal_halves_are_disjoint_capped_and_standardised():
    X = np.arange(200, dtype=float)[:, None] * [1.0, 2.0]
    halves = bg.normal_halves(X, seed=0, max_train=60, name="toy")
    fit, held = halves["X_fit"], halves["X_heldout"]
    assert fit.shape == held.shape == (60, 2) and halves["subsampled"]
    np.testing.assert_allclose(fit.mean(axis=0), 0, atol=1e-12)
    assert not np.isin(held[:, 0], fit[:, 0]).any()


# ---------------------------------------------------------------- end to end
class StandInGenerator:
    """``AnomalyGenerator``'s contract: shifted Gaussian rows, further for stronger ones."""

    calls = 0

    def __init__(self, detector=None, kind=None, strength=1.0, random_state=None):
        self.detector, self.kind, self.strength = detector, kind, strength
        self.random_state = random_state

    def fit(self, X, anomalies=None):
        type(self).calls += 1
        self.mean_, self.std_ = X.mean(axis=0), X.std(axis=0)
        self.rng_ = np.random.default_rng(self.random_state)
        return self

    def generate(self, n, kind=None, strength=None):
        kind = self.kind if kind is None else kind
        if kind == "dependency":
            raise NotImplementedError("no dependency anomalies here")
        strength = self.strength if strength is None else strength
        rows = self.mean_ + self.std_ * (self.rng_.normal(size=(n, len(self.mean_)))
                                         + 3 * strength)
        return rows, np.ones(n, dtype=int)


class _Broken:
    def fit(self, X):
        raise RuntimeError("boom")


class _GaussianSampler:
    def fit(self, X):
        self.mean_, self.std_ = X.mean(axis=0), X.std(axis=0)
        return self

    def sample(self, n, random_state=None):
        rng = np.random.default_rng(random_state)
        return self.mean_ + self.std_ * rng.normal(size=(n, len(self.mean_)))


def _write_set(folder, name, seed, n_normal=150, n_anomalies=20, d=3):
    X, y = _labelled_data(n_normal, n_anomalies, d, seed)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / f"{name}.npz", X=X, y=y)


@pytest.fixture
def fake_data(tmp_path, monkeypatch, fast_models):
    folder = tmp_path / "data" / "tabular" / "adbench"
    _write_set(folder, "6_cardio", 0)     # tuning split
    _write_set(folder, "99_toy", 1)       # evaluation split
    _write_set(folder, "16_http", 2)      # large: skipped unless named
    monkeypatch.setattr(bg, "GENERATORS", {"diffusion": lambda seed: _GaussianSampler(),
                                           "gmm": bg.GENERATORS["gmm"],
                                           "copy": bg.GENERATORS["copy"],
                                           "broken": lambda seed: _Broken()})

    def stand_in(seed, kind=None, strength=1.0):
        return StandInGenerator(kind=kind, random_state=seed)

    monkeypatch.setattr(bg, "make_anomaly_generator", stand_in)
    monkeypatch.setattr(StandInGenerator, "calls", 0)
    monkeypatch.setitem(bt.DETECTORS, "Broken", lambda seed, d, device: _Broken())
    monkeypatch.setattr(bg, "STRESS_DETECTORS", ("KNN", "LOF", "Broken"))
    monkeypatch.setattr(bg, "STRESS_SETS", ("99_toy",))
    monkeypatch.setattr(bg, "STRESS_N_ANOMALIES", 20)
    monkeypatch.setattr(bg, "STRESS_BATCH", 10)
    # the warm-up only steadies timings; it costs seconds here
    monkeypatch.setattr(bg, "warm_up", lambda detectors, device: None)
    return tmp_path


@pytest.mark.slow
def test_command_line_runs_every_study_and_resumes(fake_data, capsys):
    out = fake_data / "out"
    argv = ["--data-dir", str(fake_data / "data"), "--out", str(out), "--seeds", "0",
            "--max-train", "50", "--labelled", "5,0.1"]
    bg.main(argv)

    fidelity = bg.read_runs(out / bg.FIDELITY_CSV)
    assert set(fidelity["dataset"]) == {"6_cardio", "99_toy"}  # 16_http skipped
    assert len(fidelity) == 2 * 4
    assert dict(zip(fidelity["dataset"], fidelity["split"])) == {"6_cardio": "tuning",
                                                                 "99_toy": "evaluation"}
    ok = fidelity[fidelity["generator"] != "broken"]
    assert (ok["error"] == "").all() and ok["c2st_auroc"].between(0, 1).all()
    assert (ok["n_fit"] == 50).all() and ok["subsampled"].all()
    broken = fidelity[fidelity["generator"] == "broken"]
    assert broken["c2st_auroc"].isna().all() and broken["error"].str.contains("boom").all()

    utility = bg.read_runs(out / bg.UTILITY_CSV)
    assert len(utility) == 2 * 2 * 4 and set(utility["labelled"]) == {"5", "0.1"}
    assert (utility["error"] == "").all(), utility["error"].tolist()
    assert set(utility.loc[utility["labelled"] == "5", "n_labelled"]) == {5}
    assert set(utility.loc[utility["labelled"] == "0.1", "n_labelled"]) == {1}
    assert (utility.loc[utility["arm"] == "real", "n_synth"] == 0).all()
    assert (utility.loc[utility["arm"] != "real", "n_synth"] == 5).all()  # 50 normal // 10
    assert utility["auroc"].between(0, 1).all()

    stress = bg.read_runs(out / bg.STRESS_CSV)
    assert set(stress["dataset"]) == {"99_toy"}
    assert len(stress) == 3 * len(bg.STRESS_KINDS) * len(bg.STRESS_STRENGTHS)
    failed = stress[stress["error"] != ""]
    assert set(failed["detector"]) | set(failed["kind"]) >= {"Broken", "dependency"}
    assert failed["detection_rate"].isna().all()
    good = stress[stress["error"] == ""]
    assert set(good["detector"]) == {"KNN", "LOF"} and good["auroc"].between(0, 1).all()
    rate = good.groupby(["detector", "strength"])["detection_rate"].mean().unstack()
    assert (rate[2.0] >= rate[0.25]).all() and rate.loc["KNN", 2.0] > 0.9

    summary = (out / bg.SUMMARY_MD).read_text()
    for heading in ("## Fidelity", "## Utility", "## Stress", "Tuning split",
                    "Evaluation split", "diffusion's C2ST below GMM's", "boom"):
        assert heading in summary
    assert (out / bg.STRESS_PNG).stat().st_size > 0
    calls = StandInGenerator.calls

    capsys.readouterr()
    bg.main(argv + ["--resume"])
    for name, frame in [(bg.FIDELITY_CSV, fidelity), (bg.UTILITY_CSV, utility),
                        (bg.STRESS_CSV, stress)]:
        assert len(pd.read_csv(out / name)) == len(frame)
    assert StandInGenerator.calls == calls  # nothing rerun
    assert "FAILED" not in capsys.readouterr().out


def test_command_line_runs_one_study_on_named_sets(fake_data):
    out = fake_data / "one"
    bg.main(["--data-dir", str(fake_data / "data"), "--out", str(out), "--seeds", "1",
             "--studies", "utility", "--datasets", "16", "--labelled", "1"])
    utility = bg.read_runs(out / bg.UTILITY_CSV)
    assert set(utility["dataset"]) == {"16_http"} and len(utility) == 4
    assert not (out / bg.FIDELITY_CSV).exists() and not (out / bg.STRESS_PNG).exists()
    assert "## Utility" in (out / bg.SUMMARY_MD).read_text()


def test_real_anomaly_generator_serves_both_studies(monkeypatch):
    """skdiffad's AnomalyGenerator, with a tiny detector, as the utility and stress studies call it."""
    generation = pytest.importorskip("skdiffad.generation")
    from skdiffad import TabDiffusionDetector

    generator = bg.make_anomaly_generator(0, kind=bg.UTILITY_KIND)
    assert isinstance(generator, generation.AnomalyGenerator)
    assert generator.get_params()["kind"] == bg.UTILITY_KIND

    def tiny(seed, kind=None, strength=1.0):
        detector = TabDiffusionDetector(denoiser="mlp", scoring="density", max_steps=1,
                                        n_timesteps=20, device="cpu", random_state=seed)
        return generation.AnomalyGenerator(detector=detector, kind=kind, strength=strength,
                                           n_steps=2, random_state=seed)

    monkeypatch.setattr(bg, "make_anomaly_generator", tiny)
    X, y = _labelled_data(n_normal=60, n_anomalies=3)
    rows = bg.synthetic_anomalies("diffusion", X[y == 0], X[y == 1], 10, seed=0)
    assert rows.shape == (10, 3) and np.isfinite(rows).all()
    monkeypatch.setattr(bg, "STRESS_N_ANOMALIES", 8)
    sets = bg._generate_stress_sets(X[y == 0], 0, [("global", 0.5), ("dependency", 2.0)])
    assert all(error == "" and rows.shape == (8, 3) for rows, error, _, _ in sets.values())


def test_grid_arms_name_their_setting_and_share_one_fitted_generator(monkeypatch):
    for kinds, strength in bg.KIND_GRID:
        assert bg._parse_grid_arm(bg.grid_arm(kinds, strength)) == (tuple(kinds), strength)
    monkeypatch.setattr(bg, "make_anomaly_generator",
                        lambda seed, kind=None, strength=1.0: StandInGenerator(
                            kind=kind, strength=strength, random_state=seed))
    monkeypatch.setattr(StandInGenerator, "calls", 0)
    bg._GENERATOR_CACHE.clear()
    X, y = _labelled_data(n_normal=60, n_anomalies=3)
    weak = bg.synthetic_anomalies(bg.grid_arm(("local",), 1.0), X[y == 0], X[y == 1], 50, 0)
    strong = bg.synthetic_anomalies(bg.grid_arm(("local",), 3.0), X[y == 0], X[y == 1], 50, 0)
    bg.synthetic_anomalies("diffusion", X[y == 0], X[y == 1], 50, 0)
    assert StandInGenerator.calls == 1
    assert strong.mean() > weak.mean()  # the stand-in shifts rows by 3 x strength
    bg.synthetic_anomalies("diffusion", X[y == 0], X[y == 1], 50, 1)  # another seed: refit
    assert StandInGenerator.calls == 2
