"""Regenerate every figure of the skdiffad documentation into ``doc/_static/``.

Run from the repository root::

    python doc/figures.py

The tabular figures use a 2-D toy set (scikit-learn's two moons) so the anomaly
score can be drawn over the whole plane; the time-series figure uses a synthetic
two-period signal with four planted anomalies. Every trained table model is fitted with
small settings (``widths=(64, 64)``, ``max_steps=2000``: 500 epochs of the 1000 rows)
and ``random_state=0`` on one CPU thread; the whole script takes well under three
minutes on a 2-core CPU. The figures illustrate how each paradigm behaves; they are
not a benchmark.
"""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import make_moons  # noqa: E402

from skdiffad import DiffusionTSDetector, TabDiffusionDetector  # noqa: E402
from skdiffad._core.nonparametric import nearest_distances  # noqa: E402
from skdiffad._core.schedules import make_schedule  # noqa: E402
from skdiffad._reductions import step_columns  # noqa: E402

OUT = Path(__file__).resolve().parent / "_static"
SEED = 0
SETTINGS = dict(widths=(64, 64), max_steps=2000, early_stopping=False, device="cpu",
                random_state=SEED)
#: The five paradigms of the table detector: figure name -> (denoiser, scoring).
PARADIGMS = {
    "nonparametric": ("exact", "time"),
    "reconstruction": ("mlp", "reconstruction"),
    "density": ("mlp", "density"),
    "score": ("mlp", "score"),
    "time": ("mlp", "time"),
}
#: The score each paradigm maps, by (denoiser, scoring).
TITLES = {
    ("exact", "time"): "posterior mean of log sigma",
    ("mlp", "reconstruction"): "reconstruction error",
    ("mlp", "density"): "negative ELBO (nats / feature)",
    ("mlp", "score"): "score norm",
    ("mlp", "time"): "expected diffusion time (fraction of range)",
}
XLIM, YLIM, GRID = (-2.0, 3.0), (-1.5, 2.0), 120
DPI = 90

plt.rcParams.update({"font.size": 9, "axes.titlesize": 9, "figure.dpi": DPI})


# ------------------------------------------------------------------ data
def toy_data():
    """Two moons for training; a few on-moon inliers and off-moon anomalies to show."""
    X, _ = make_moons(n_samples=1000, noise=0.08, random_state=SEED)
    inliers = np.array([[-0.9, 0.4], [0.0, 1.0], [1.0, 0.0], [1.9, 0.3]])
    anomalies = np.array([[-1.4, -1.0], [0.5, 0.25], [2.6, 1.6], [0.0, -0.9]])
    return X, inliers, anomalies


def grid():
    xx, yy = np.meshgrid(np.linspace(*XLIM, GRID), np.linspace(*YLIM, GRID))
    return xx, yy, np.column_stack([xx.ravel(), yy.ravel()])


def standardise(det, X):
    """The detector's own column scaling of a numeric array (its model space)."""
    return ((X - det.encoder_.mean_) / det.encoder_.scale_).astype(np.float32)


def unstandardise(det, Z):
    return Z * det.encoder_.scale_ + det.encoder_.mean_


# --------------------------------------------------------------- drawing
def heat_map(ax, det, X, scores, xx, yy, *, colorbar=True, title=None):
    """Filled contours of ``scores`` over the grid, training points and ``threshold_``."""
    z = scores.reshape(xx.shape)
    lo, hi = np.quantile(scores, [0.0, 0.98])
    levels = np.linspace(lo, hi, 13)
    cs = ax.contourf(xx, yy, np.clip(z, lo, hi), levels=levels, cmap="viridis")
    ax.contour(xx, yy, z, levels=[det.threshold_], colors="white", linewidths=1.2)
    ax.scatter(X[:, 0], X[:, 1], s=1.5, c="black", alpha=0.35, linewidths=0)
    ax.set(xlim=XLIM, ylim=YLIM, xticks=[], yticks=[],
           title=title or TITLES[det.denoiser, det.scoring])
    if colorbar:
        plt.colorbar(cs, ax=ax, fraction=0.046, pad=0.03, format="%.3g")


def save(fig, name):
    path = OUT / name
    fig.savefig(path, dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    print(f"  wrote {path.relative_to(OUT.parent.parent)} ({path.stat().st_size / 1024:.0f} KB)")


# --------------------------------------------------------------- figures
def figure_schedules():
    """a_t, s_t and log-SNR of the three schedules."""
    fig, axes = plt.subplots(1, 3, figsize=(10, 2.8), constrained_layout=True)
    for name, style in (("linear", "-"), ("cosine", "--"), ("ve", ":")):
        sched = make_schedule(name, 1000)
        t = np.arange(1, 1001) / 1000
        a, s = sched.alphas[1:].numpy(), sched.sigmas[1:].numpy()
        label = {"linear": "linear (VP)", "cosine": "cosine (VP)", "ve": "ve (VE)"}[name]
        axes[0].plot(t, a, style, label=label)
        axes[1].plot(t, s, style, label=label)
        axes[2].plot(t, np.log(a**2 / s**2), style, label=label)
    axes[0].set(title="signal scale $a_t$", xlabel="$t / T$")
    axes[1].set(title="noise scale $s_t$ (log axis)", xlabel="$t / T$", yscale="log")
    axes[2].set(title=r"log signal-to-noise ratio $\log(a_t^2 / s_t^2)$", xlabel="$t / T$")
    axes[0].legend(frameon=False)
    save(fig, "schedules.png")


def figure_forward(X):
    """x_t at a few t (top) and the same points in data scale x_t / a_t (bottom)."""
    sched = make_schedule("linear", 1000)
    Z = torch.as_tensor((X - X.mean(0)) / X.std(0), dtype=torch.float32)
    noise = torch.randn(Z.shape, generator=torch.Generator().manual_seed(SEED))
    steps = (0, 50, 150, 300, 500)
    fig, axes = plt.subplots(2, len(steps), figsize=(11, 4.4), constrained_layout=True)
    for j, t in enumerate(steps):
        x_t = sched.add_noise(Z, noise, t).numpy()
        a, s = float(sched.alphas[t]), float(sched.sigmas[t])
        top, bottom = axes[0, j], axes[1, j]
        top.scatter(x_t[:, 0], x_t[:, 1], s=1.5, c="C0", linewidths=0)
        top.set(xlim=(-7, 7), ylim=(-7, 7), xticks=[], yticks=[],
                title=f"$x_t$, t = {t}\n$a_t$ = {a:.2f}, $s_t$ = {s:.2f}")
        bottom.scatter(x_t[:, 0] / a, x_t[:, 1] / a, s=1.5, c="C1", linewidths=0)
        bottom.set(xlim=(-7, 7), ylim=(-7, 7), xticks=[], yticks=[],
                   title=f"$x_t / a_t$, t = {t}\n$s_t / a_t$ = {s / a:.2f}")
    axes[0, 0].set_ylabel("variance preserving\n(what the denoiser sees)")
    axes[1, 0].set_ylabel("data scale\n(what the time classifier sees)")
    save(fig, "forward_noising.png")


def ddim_reconstruct(det, X, t0, n_steps, seed=SEED):
    """Diffuse rows of ``X`` to step ``t0`` and denoise them back with DDIM (eta = 0)."""
    sched, net = det.model_.schedule_, det.network_
    x0 = torch.as_tensor(standardise(det, X))
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
    x_t0 = sched.add_noise(x0, noise, t0)
    x = x_t0
    steps = np.linspace(t0, 0, n_steps + 1).round().astype(int)
    with torch.inference_mode():
        for t, s in zip(steps[:-1], steps[1:]):
            eps = net(x, torch.tensor(int(t)))
            x = sched.ddim_step(x, eps, int(t), int(s))
    return unstandardise(det, x_t0.numpy()), unstandardise(det, x.numpy())


def figure_reconstruction(det, X, inliers, anomalies, xx, yy, scores):
    t0 = int(0.1 * det.model_.schedule_.n_timesteps)
    points = np.vstack([inliers, anomalies])
    colours = ["C2"] * len(inliers) + ["C3"] * len(anomalies)
    noised, rebuilt = ddim_reconstruct(det, points, t0, det.n_inference_steps)
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.1), constrained_layout=True)
    panels = ((points, "1. the rows $x_0$ (green: normal, red: anomalous)"),
              (noised, f"2. diffused to $t_0$ = {t0}"),
              (rebuilt, f"3. denoised back ({det.n_inference_steps} DDIM steps)"))
    for ax, (P, title) in zip(axes[:3], panels):
        ax.scatter(X[:, 0], X[:, 1], s=1.5, c="0.6", linewidths=0)
        if P is rebuilt:
            for p, q, c in zip(points, rebuilt, colours):
                ax.plot([p[0], q[0]], [p[1], q[1]], c=c, lw=1)
            ax.scatter(points[:, 0], points[:, 1], s=25, facecolors="none", edgecolors=colours)
        ax.scatter(P[:, 0], P[:, 1], s=25, c=colours, marker="o" if P is points else "x")
        ax.set(xlim=XLIM, ylim=YLIM, xticks=[], yticks=[], title=title)
    heat_map(axes[3], det, X, scores, xx, yy, title="4. score: squared error, averaged over $t_0$")
    save(fig, "reconstruction.png")


def figure_density(det, X, xx, yy, scores):
    rng = np.random.default_rng(SEED)
    uniform = np.column_stack([rng.uniform(*XLIM, 300), rng.uniform(*YLIM, 300)])
    nearest = np.sqrt(((uniform[:, None, :] - X[None, :, :]) ** 2).sum(-1)).min(axis=1)
    far = uniform[nearest > 0.3]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.3), constrained_layout=True)
    heat_map(axes[0], det, X, scores, xx, yy)
    far_scores = det.decision_function(far)
    low = min(det.decision_scores_.min(), far_scores.min())
    bins = np.geomspace(low, max(det.decision_scores_.max(), far_scores.max()), 40)
    axes[1].hist(det.decision_scores_, bins=bins, alpha=0.7, density=True,
                 label="training rows")
    axes[1].hist(far_scores, bins=bins, alpha=0.7, density=True,
                 label="uniform points > 0.3 from any training row")
    axes[1].axvline(det.threshold_, c="k", ls="--", lw=1, label="threshold_")
    axes[1].set(xlabel="negative ELBO (nats per feature, log axis)", xscale="log",
                ylabel="density of rows", yticks=[],
                title="scores of training rows vs. points off the data")
    axes[1].legend(frameon=False, loc="upper right", fontsize=8)
    save(fig, "density.png")


def figure_score(det, X, xx, yy, scores):
    """The learned score field at a small noise level, and the score-norm map."""
    t = int(0.05 * det.model_.schedule_.n_timesteps)
    gx, gy = np.meshgrid(np.linspace(*XLIM, 22), np.linspace(*YLIM, 16))
    P = np.column_stack([gx.ravel(), gy.ravel()])
    z = torch.as_tensor(standardise(det, P))
    with torch.inference_mode():
        eps = det.network_(z, torch.tensor(t)).numpy()
    score = -eps / float(det.model_.schedule_.sigmas[t])  # grad log p_t in model space
    score = score / det.encoder_.scale_  # back to data units
    norm = np.linalg.norm(score, axis=1, keepdims=True)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.3), constrained_layout=True)
    axes[0].scatter(X[:, 0], X[:, 1], s=1.5, c="0.6", linewidths=0)
    axes[0].quiver(P[:, 0], P[:, 1], score[:, 0] / norm[:, 0], score[:, 1] / norm[:, 0],
                   np.log(norm[:, 0]), cmap="viridis", scale=30, width=0.004)
    axes[0].set(xlim=XLIM, ylim=YLIM, xticks=[], yticks=[],
                title=f"learned score direction at t = {t} (colour: log norm)")
    heat_map(axes[1], det, X, scores, xx, yy)
    save(fig, "score.png")


def figure_time(det, X, inliers, anomalies, xx, yy, scores):
    """The classifier's distribution over time bins for two rows, and the map."""
    points = np.array([inliers[1], anomalies[2]])
    with torch.inference_mode():
        logits = det.network_(torch.as_tensor(standardise(det, points)))
    proba = torch.softmax(logits.double(), dim=1).numpy()
    centres = det.model_.plan_.weights.numpy()  # bin centres, as a fraction of the range
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.3), constrained_layout=True)
    width = 0.4 / det.n_bins
    for k, (label, c) in enumerate((("normal row", "C2"), ("anomalous row", "C3"))):
        expected = float(proba[k] @ centres)
        axes[0].bar(centres + (k - 0.5) * width, proba[k], width=width, color=c,
                    label=f"{label}: score {expected:.2f}")
    axes[0].set(xlabel="diffusion-time bin (centre, fraction of the trained range)",
                ylabel="probability",
                title="classifier's belief: how long was this row diffused?")
    axes[0].legend(frameon=False)
    heat_map(axes[1], det, X, scores, xx, yy)
    axes[1].scatter(points[:, 0], points[:, 1], s=40, c=["C2", "C3"], edgecolors="white")
    save(fig, "time.png")


def figure_nonparametric(det, X, inliers, anomalies, xx, yy, scores):
    """Posterior over the noise level for two rows under the exact diffusion, and the map."""
    points = np.array([inliers[1], anomalies[2]])
    Z = standardise(det, points)
    r = nearest_distances(Z, det.model_.stored_.numpy(), det.model_.n_neighbors_)
    d = Z.shape[1]
    log_s = np.linspace(-6, 3, 901)
    # p(log sigma | x) ~ sum_i sigma^-d exp(-r_i^2 / 2 sigma^2), flat prior in log sigma
    logp = np.logaddexp.reduce(-d * log_s[None, None] - r[:, :, None] ** 2
                               / (2 * np.exp(2 * log_s[None, None])), axis=1)
    post = np.exp(logp - logp.max(axis=1, keepdims=True))
    post /= post.sum(axis=1, keepdims=True) * (log_s[1] - log_s[0])
    point_scores = det.decision_function(points)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.3), constrained_layout=True)
    for k, (label, c) in enumerate((("normal row", "C2"), ("anomalous row", "C3"))):
        axes[0].plot(log_s, post[k], color=c, label=f"{label}: score {point_scores[k]:.2f}")
        axes[0].axvline(point_scores[k], color=c, linestyle=":")
    axes[0].set(xlabel="log sigma (standardised units)", ylabel="posterior density",
                title="at which noise level does the row look like a diffused training row?")
    axes[0].legend(frameon=False)
    heat_map(axes[1], det, X, scores, xx, yy)
    axes[1].scatter(points[:, 0], points[:, 1], s=40, c=["C2", "C3"], edgecolors="white")
    save(fig, "nonparametric.png")


def figure_all_maps(detectors, X, xx, yy, all_scores):
    """The five paradigms side by side, coloured by rank so the maps compare."""
    fig, axes = plt.subplots(1, 5, figsize=(16, 3.0), constrained_layout=True)
    for ax, name in zip(axes, PARADIGMS):
        det, scores = detectors[name], all_scores[name]
        ranks = scores.argsort().argsort() / (len(scores) - 1)
        z = ranks.reshape(xx.shape)
        ax.contourf(xx, yy, z, levels=np.linspace(0, 1, 11), cmap="viridis")
        ax.contour(xx, yy, scores.reshape(xx.shape), levels=[det.threshold_],
                   colors="white", linewidths=1.2)
        ax.scatter(X[:, 0], X[:, 1], s=1.5, c="black", alpha=0.35, linewidths=0)
        denoiser, scoring = PARADIGMS[name]
        ax.set(xlim=XLIM, ylim=YLIM, xticks=[], yticks=[],
               title=f'denoiser="{denoiser}", scoring="{scoring}"')
    save(fig, "score_maps.png")


def timeseries_data():
    """A two-period signal: 2000 normal training steps, then 2000 test steps
    with four planted anomalies (spike, level shift, faster oscillation, noise)."""
    rng = np.random.default_rng(SEED)
    t = np.arange(4000)
    x = np.sin(2 * np.pi * t / 60) + 0.4 * np.sin(2 * np.pi * t / 17) + 0.05 * rng.normal(size=4000)
    train, test = x[:2000], x[2000:].copy()
    y = np.zeros(2000, dtype=int)
    test[300:303] += 3.0
    y[300:303] = 1
    test[700:780] += 1.2
    y[700:780] = 1
    fast = np.arange(1100, 1180)
    test[fast] = np.sin(2 * np.pi * fast / 20) + 0.4 * np.sin(2 * np.pi * fast / 6)
    y[fast] = 1
    test[1500:1560] += 0.6 * rng.normal(size=60)
    y[1500:1560] = 1
    return train, test, y


def step_errors(det, X):
    """Each step's error before aggregation: the fitted model's window errors folded
    onto the steps, averaged over the channels (gaps filled) and the window lengths."""
    encoded = det.modality_.encode(X)
    filled, _ = step_columns(det.modality_.errors(det.model_, encoded))
    return filled.mean(axis=1)


def figure_timeseries():
    """Reconstruction vs imputation (exact denoiser, and the trained U-Net) on one series."""
    train, test, y = timeseries_data()
    rows = [
        ("exact denoiser, reconstruction (default)", dict(scoring="reconstruction")),
        ("exact denoiser, imputation", dict(scoring="imputation")),
        ("trained U-Net, imputation", dict(scoring="imputation", denoiser="unet")),
    ]
    fig, axes = plt.subplots(len(rows) + 1, 1, figsize=(9, 7), sharex=True)
    steps = np.arange(len(test))
    starts = np.flatnonzero(np.diff(np.r_[0, y]) == 1)
    stops = np.flatnonzero(np.diff(np.r_[y, 0]) == -1) + 1
    for ax in axes:
        for a, b in zip(starts, stops):
            ax.axvspan(a, b, color="tab:red", alpha=0.15, linewidth=0)
    axes[0].plot(steps, test, lw=0.6, color="black")
    axes[0].set_title("test series; labelled anomalies shaded")
    for ax, (title, params) in zip(axes[1:], rows):
        tic = time.perf_counter()
        det = DiffusionTSDetector(random_state=SEED, device="cpu", **params).fit(train)
        scores = det.decision_function(test)
        errors = step_errors(det, test)
        print(f"fitted and scored {title} in {time.perf_counter() - tic:.1f} s")
        ax.plot(steps, errors, lw=0.5, color="tab:gray", label="step error")
        ax.plot(steps, scores, lw=1.0, color="tab:blue", label='score (aggregation="window_mean")')
        ax.axhline(det.threshold_, color="tab:orange", lw=0.8, ls="--", label="threshold_")
        ax.set_yscale("log")
        ax.set_title(title)
    axes[1].legend(loc="upper right", fontsize=7, ncol=3)
    axes[-1].set_xlabel("time step")
    fig.tight_layout()
    save(fig, "timeseries.png")


def main():
    torch.set_num_threads(1)
    OUT.mkdir(exist_ok=True)
    started = time.perf_counter()
    X, inliers, anomalies = toy_data()
    xx, yy, G = grid()
    print("schedules and forward process")
    figure_schedules()
    figure_forward(X)
    detectors, all_scores = {}, {}
    for name, (denoiser, scoring) in PARADIGMS.items():
        tic = time.perf_counter()
        det = TabDiffusionDetector(denoiser=denoiser, scoring=scoring, **SETTINGS).fit(X)
        detectors[name], all_scores[name] = det, det.decision_function(G)
        print(f'fitted denoiser="{denoiser}", scoring="{scoring}" ({det.n_iter_} epochs) '
              f"and scored the grid in {time.perf_counter() - tic:.1f} s")
    figure_nonparametric(detectors["nonparametric"], X, inliers, anomalies, xx, yy,
                         all_scores["nonparametric"])
    figure_reconstruction(detectors["reconstruction"], X, inliers, anomalies, xx, yy,
                          all_scores["reconstruction"])
    figure_density(detectors["density"], X, xx, yy, all_scores["density"])
    figure_score(detectors["score"], X, xx, yy, all_scores["score"])
    figure_time(detectors["time"], X, inliers, anomalies, xx, yy, all_scores["time"])
    figure_all_maps(detectors, X, xx, yy, all_scores)
    print("time series")
    figure_timeseries()
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
