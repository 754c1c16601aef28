"""Measure how many fresh good images the default image detector flags (``doc/image.rst``).

Run from the repository root::

    python doc/image_false_alarms.py

For each one-class MNIST set (``mnist0`` ... ``mnist9``, read from ``$SKDIFFAD_DATA``,
else the ``shared/data`` folder next to the checkout), each training-set size and each
seed, the default :class:`~skdiffad.DiffusionImageDetector` is fitted on that many
randomly drawn normal images, then ``predict`` labels ``N_FRESH`` other normal images
of the set. The share of them labelled 1 is the false alarm rate a user meets on new
good parts. It is measured at the default ``contamination=0.1``, which asks for 10 % of
the training images to be flagged, at ``contamination=0.01``, and with the threshold
set on held-out good images instead: the largest score of ``N_HELD_OUT`` other normal
images (``"held-out max"``; on average 1 / (N_HELD_OUT + 1) of fresh good images
score above it, whatever the training-set size).

Prints one line per run and a summary per threshold rule and training-set size (the
mean, and the least and most over sets and seeds). One CPU thread; about ten minutes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch

from skdiffad import DiffusionImageDetector
from skdiffad.datasets import load_one_class_images

SETS = [f"mnist{k}" for k in range(10)]
N_TRAINS = (20, 50, 90, 450)
SEEDS = (0, 1, 2)
N_FRESH = 1000
N_HELD_OUT = 20
RULES = ("contamination=0.1", "contamination=0.01", f"held-out max of {N_HELD_OUT}")


def data_dir():
    """``$SKDIFFAD_DATA``, else the ``shared/data`` folder next to the checkout."""
    env = os.environ.get("SKDIFFAD_DATA")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def flagged_shares(normal, n_train, seed):
    """The shares of ``N_FRESH`` unseen normal images flagged under each of ``RULES`` by
    detectors fitted on ``n_train`` others."""
    order = np.random.default_rng(seed).permutation(len(normal))
    train = normal[order[:n_train]]
    held_out = normal[order[n_train:n_train + N_HELD_OUT]]
    fresh = normal[order[n_train + N_HELD_OUT:n_train + N_HELD_OUT + N_FRESH]]
    shares = []
    for contamination in (0.1, 0.01):
        det = DiffusionImageDetector(contamination=contamination, random_state=seed,
                                     device="cpu").fit(train)
        shares.append(float(det.predict(fresh).mean()))
    threshold = det.decision_function(held_out).max()
    shares.append(float((det.decision_function(fresh) > threshold).mean()))
    return shares


def main():
    torch.set_num_threads(1)
    root = data_dir()
    shares = {(rule, n): [] for rule in RULES for n in N_TRAINS}
    for name in SETS:
        X, y = load_one_class_images(name, data_dir=root)
        normal = X[y == 0]
        for n_train in N_TRAINS:
            for seed in SEEDS:
                for rule, share in zip(RULES, flagged_shares(normal, n_train, seed)):
                    shares[rule, n_train].append(share)
                    print(f"{name} n_train={n_train} seed={seed} {rule}: {share:.1%} of "
                          "fresh normal images flagged", flush=True)
    print(f"\n{len(SETS)} sets x {len(SEEDS)} seeds, {N_FRESH} fresh normal images each")
    print("| threshold | training images | mean flagged | least | most |")
    print("|---|---:|---:|---:|---:|")
    for (rule, n_train), values in shares.items():
        print(f"| {rule} | {n_train} | {np.mean(values):.1%} | {min(values):.1%} "
              f"| {max(values):.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
