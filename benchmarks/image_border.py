"""Where the default image detector's maps peak (issue #29): on the image's border or not.

Run from the repository root::

    python -m benchmarks.image_border                       # every MNIST/Fashion set, tiles
    python -m benchmarks.image_border --sets mnist0,mnist1 --seeds 0
    python -m benchmarks.image_border --sets mnist0 \
        --detectors Diffusion-default,Diffusion-position-free-centred

For every one-class MNIST and Fashion-MNIST set (seed 0) and the magnetic tiles
(seeds 0, 1, 2, at 128x128), with the split of :mod:`benchmarks.image`
(:func:`benchmarks.image.prepare`: half the normal images for training, capped at 2000,
the test images capped at 2000), ``DiffusionImageDetector(random_state=seed)`` as a user
gets it (or each map detector of :data:`benchmarks.image.DETECTORS` named in
``--detectors``, such as the variants of issue #29) maps every test image. Per set it
reports the share of test maps whose maximum lies in the outer two pixels of the image
(normal images, normal images whose map has a positive maximum, anomalous images), the
image AUROC, and on the tiles the
pixel AUROC, AUPRO up to FPR 0.3 and best Dice of :func:`benchmarks.image.pixel_metrics`.

A normal image restored better than the training images at every pixel has a map
that is nowhere positive (above :data:`POSITIVE`); its maximum is then the untouched
background's zero, which says nothing about where anything is, so it is counted apart.
The outer two pixels are 27% of a 28x28 image and 6% of a 128x128 one.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

from benchmarks._common import markdown_table, resolve_data_dir, set_threads
from benchmarks.image import (
    DEFAULT_DETECTOR,
    TILE,
    image_metrics,
    image_sets,
    pixel_metrics,
    prepare,
    select_detectors,
)

#: Width of the border band, in pixels.
BAND = 2
TILE_SEEDS = (0, 1, 2)
#: A map's maximum above this is positive (below: zero but for rounding).
POSITIVE = 1e-9


def on_border(maps, band=BAND):
    """Whether each map's maximum (its first, on ties) lies within ``band`` pixels of the
    image's edge."""
    n, h, w = maps.shape
    rows, cols = np.divmod(maps.reshape(n, -1).argmax(axis=1), w)
    return (rows < band) | (rows >= h - band) | (cols < band) | (cols >= w - band)


def measure(run, seed, make_detector):
    """Border shares, image AUROC and (with masks) pixel metrics of the detector that
    ``make_detector`` builds (a factory of :data:`benchmarks.image.DETECTORS`)."""
    detector = make_detector(seed, run["X_train"].shape[1:], "cpu").fit(run["X_train"])
    maps = detector.anomaly_map(run["X_test"])
    y = run["y_test"]
    top = maps.reshape(len(maps), -1).max(axis=1)
    border = on_border(maps)
    positive = (y == 0) & (top > POSITIVE)
    row = {"border normal": border[y == 0].mean(),
           "border normal (max > 0)": border[positive].mean() if positive.any() else np.nan,
           "border anomalous": border[y == 1].mean(),
           "normal max <= 0": np.mean(top[y == 0] <= POSITIVE),
           "auroc": image_metrics(y, top)["auroc"]}
    if run["masks_test"] is not None:
        row.update(pixel_metrics(run["masks_test"], maps))
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.image_border",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--sets", default=None,
                        help="comma list of set names (default: every MNIST and Fashion set, "
                             "and the tiles)")
    parser.add_argument("--seeds", default=None, help="comma list (default: 0; tiles 0,1,2)")
    parser.add_argument("--detectors", default=DEFAULT_DETECTOR,
                        help="comma list of map detectors of benchmarks.image "
                             f"(default: {DEFAULT_DETECTOR})")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    data_dir = resolve_data_dir(args.data_dir)
    loaders = {}
    for collection in ("mnist", "fashion_mnist", TILE):
        loaders.update(image_sets(collection, data_dir))
    names = args.sets.split(",") if args.sets else list(loaders)
    detectors = select_detectors(args.detectors.split(","))
    rows, labels = {}, {}
    for name in names:
        seeds = ([int(s) for s in args.seeds.split(",")] if args.seeds
                 else TILE_SEEDS if name == TILE else (0,))
        data = loaders[name]()
        for seed in seeds:
            run = prepare(data, seed, name)
            for label, make_detector in detectors.items():
                key = f"{name} seed {seed}" + (f" {label}" if len(detectors) > 1 else "")
                rows[key] = row = measure(run, seed, make_detector)
                labels[key] = label
                print(key, {k: round(float(v), 4) for k, v in row.items()}, flush=True)
    table = pd.DataFrame.from_dict(rows, orient="index")
    groups = {f"{collection} {label}" if len(detectors) > 1 else collection: [
        r for r in rows if r.startswith(prefix) and labels[r] == label]
        for collection, prefix in (("MNIST", "mnist"), ("Fashion", "fashion"), ("tiles", TILE))
        for label in detectors}
    for label, members in groups.items():
        if members:
            table.loc[f"mean {label}"] = table.loc[members].mean()
    print(markdown_table(table, "set", floatfmt=".4f"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
