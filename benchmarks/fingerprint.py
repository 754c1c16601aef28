"""Fingerprints of the diffusion detectors' scores, to show a refactor changes no bit.

Every ``Diffusion-*`` configuration of the tabular, series and image benchmarks
(:data:`benchmarks.tabular.DETECTORS`, :data:`benchmarks.timeseries.DETECTORS`,
:data:`benchmarks.image.DETECTORS`) is fitted with seed 0 on a slice of real data
from ``../shared/data`` and scores held-out data; the SHA-256 of the training
scores, the threshold and the test scores (float64 bytes) is written to a JSON
file. Run it before and after a change and compare the two files
(``--compare``): equal digests are equal bits.

The defaults run at their full settings on several sets each. The learned
configurations run with a short training budget (``max_steps=10``, at most five
DDIM steps), which exercises the same code as the benchmark at a fraction of its
time: a fingerprint checks that code did not change its arithmetic, not quality.

Usage::

    python -m benchmarks.fingerprint --out before.json
    python -m benchmarks.fingerprint --out after.json --compare before.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import warnings

import numpy as np
import torch

from benchmarks._common import resolve_data_dir, set_threads
from skdiffad.datasets import (
    load_adbench,
    load_magnetic_tile,
    load_one_class_images,
    load_timeseries,
    semi_supervised_split,
)

#: Sets each default runs on at full settings.
TABLE_SETS = ("4_breastw", "6_cardio", "18_Ionosphere", "38_thyroid", "45_wine", "32_shuttle")
SERIES_SETS = (("MGAB", None), ("SKAB", None), ("NAB", None), ("SMAP_MSL", None),
               ("UCR_KDD21", None))
IMAGE_SETS = ("mnist0", "fashion1")
#: Training budget of the learned configurations.
SHORT_STEPS = 10


def digest(values) -> str:
    """SHA-256 (first 16 hex digits) of ``values`` as contiguous float64 bytes."""
    array = np.ascontiguousarray(np.asarray(values, dtype=np.float64))
    return hashlib.sha256(array.tobytes()).hexdigest()[:16]


def _shorten(detector):
    """The learned configurations with a short budget (the exact ones unchanged)."""
    params = detector.get_params()
    if params.get("denoiser", "exact") == "exact":  # tables, series and images alike
        return detector, False
    updates = {"max_steps": SHORT_STEPS}
    if params.get("n_inference_steps", 0) > 5:
        updates["n_inference_steps"] = 5
    return detector.set_params(**updates), True


def _record(detector, X_train, X_test):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        detector.fit(X_train)
        scores = detector.decision_function(X_test)
    return {"train": digest(detector.decision_scores_), "threshold": digest([detector.threshold_]),
            "test": digest(scores), "seconds": round(time.perf_counter() - start, 2)}


def _tables(data_dir):
    out = {}
    for name in TABLE_SETS:
        X, y = load_adbench(name, data_dir)
        split = semi_supervised_split(X, y, random_state=0, max_train=2000)
        out[name] = (split[0], split[1])
    return out


def _series(data_dir):
    from skdiffad.datasets import list_timeseries

    out = {}
    for collection, name in SERIES_SETS:
        name = name or list_timeseries(collection, data_dir)[0]
        data = load_timeseries(collection, name, data_dir)
        train, test = data["X_train"][:6000], data["X_test"][:6000]
        out[f"{collection}/{name}"] = (train, test)
    return out


def _images(data_dir):
    out = {}
    for name in IMAGE_SETS:
        X, y = load_one_class_images(name, data_dir)
        normal = X[y == 0]
        out[name] = (normal[:60], np.concatenate([normal[60:80], X[y == 1][:20]]))
    tiles = load_magnetic_tile(data_dir, size=(64, 64))
    images, labels = tiles["X"], tiles["y"]
    good = images[labels == 0]
    out["magnetic_tile"] = (good[:40], np.concatenate([good[40:50], images[labels == 1][:10]]))
    return out


def _extras():
    """Paths the benchmarks' rows do not take: a mixed-type frame with gaps, a series
    with gaps and its channel scores, image maps, ``sample()`` and generated anomalies,
    each as ``(name, thunk)``; the thunk returns the arrays to digest."""
    from skdiffad import (
        AnomalyGenerator,
        DiffusionImageDetector,
        DiffusionTSDetector,
        TabDiffusionDetector,
    )
    from skdiffad.datasets import make_tabular_anomalies, make_timeseries_anomalies

    frame, _ = make_tabular_anomalies(600, 6, random_state=0, return_frame=True)
    frame = frame.mask(np.random.default_rng(1).random(frame.shape) < 0.05)
    series, _ = make_timeseries_anomalies(3000, 3, random_state=0)
    series = np.where(np.random.default_rng(2).random(series.shape) < 0.03, np.nan, series)
    images = np.random.default_rng(3).random((30, 16, 16))
    short = {"max_steps": SHORT_STEPS, "random_state": 0, "device": "cpu"}

    def table(params):
        def run():
            det = TabDiffusionDetector(**params, random_state=0, device="cpu").fit(frame[:400])
            return det.decision_scores_, det.decision_function(frame[400:])
        return run

    def ts(params):
        def run():
            det = DiffusionTSDetector(**params, random_state=0, device="cpu").fit(series[:1500])
            return (det.decision_scores_, det.decision_function(series[1500:]),
                    np.nan_to_num(det.channel_scores(series[1500:]), nan=-1.0))
        return run

    def img(params):
        def run():
            det = DiffusionImageDetector(**params, random_state=0, device="cpu").fit(images[:20])
            return det.decision_scores_, det.anomaly_map(images[20:])
        return run

    def sampled(cls, data, params):
        def run():
            det = cls(**params, **short).fit(data)
            out = det.sample(4, random_state=0, sampler="ddim", n_steps=3)
            return np.asarray(out.select_dtypes("number") if hasattr(out, "select_dtypes")
                              else out, dtype=np.float64)
        return run

    def generated(data, kinds):
        def run():
            gen = AnomalyGenerator(n_steps=3, random_state=0)
            if data == "table":
                gen.set_params(detector=TabDiffusionDetector(
                    denoiser="mlp", scoring="reconstruction", **short))
                gen.fit(frame[:400].select_dtypes("number").fillna(0.0).to_numpy())
            elif data == "series":
                gen.set_params(detector=DiffusionTSDetector(denoiser="unet", window_size=32,
                                                            **short))
                gen.fit(np.nan_to_num(series[:1500]))
            else:
                gen.set_params(detector=DiffusionImageDetector(denoiser="unet", widths=(8,),
                                                               **short))
                gen.fit(images[:20])
            out = []
            for kind in kinds:
                X, y = gen.generate(4, kind=kind)
                out += [np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)]
            return out
        return run

    return [
        ("frame-nonparametric", table({})),
        ("frame-outlier", table({"novelty": False})),
        ("frame-density", table({"denoiser": "mlp", "scoring": "density",
                                 "max_steps": SHORT_STEPS})),
        ("series-default", ts({})),
        ("series-w32-step", ts({"window_size": 32, "aggregation": "step"})),
        ("series-imputation", ts({"scoring": "imputation"})),
        ("series-unet", ts({"denoiser": "unet", "window_size": 32, "max_steps": SHORT_STEPS})),
        ("images-default", img({})),
        ("images-unet", img({"denoiser": "unet", "widths": (8,), "max_steps": SHORT_STEPS})),
        ("sample-table", sampled(TabDiffusionDetector, frame[:400],
                                 {"denoiser": "mlp", "scoring": "density"})),
        ("sample-series", sampled(DiffusionTSDetector, np.nan_to_num(series[:1500]),
                                  {"denoiser": "unet", "window_size": 32})),
        ("sample-images", sampled(DiffusionImageDetector, images[:20],
                                  {"denoiser": "unet", "widths": (8,)})),
        ("generate-table", generated("table", ("local", "global", "dependency", "clustered"))),
        ("generate-series", generated("series", ("spike", "level_shift", "trend", "frequency",
                                                 "flatline"))),
        ("generate-images", generated("images", ("blend", "inpaint"))),
    ]


def fingerprints(data_dir, only=None):
    """``{modality: {configuration: {dataset: record}}}`` for every diffusion detector."""
    from benchmarks import image as image_bench
    from benchmarks import tabular as tabular_bench
    from benchmarks import timeseries as series_bench

    data = {"tabular": _tables(data_dir) if not only or "tabular" in only else {},
            "series": _series(data_dir) if not only or "series" in only else {},
            "image": _images(data_dir) if not only or "image" in only else {}}
    shapes = {"tabular": lambda X: X.shape[1], "series": lambda X: None,
              "image": lambda X: X.shape[1:]}
    registries = {"tabular": tabular_bench.DETECTORS, "series": series_bench.DETECTORS,
                  "image": image_bench.DETECTORS}
    result = {}
    if not only or "extras" in only:
        result["extras"] = {}
        for name, run in _extras():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    arrays = run()
                    record = {"outputs": [digest(a) for a in arrays]}
                except Exception as exc:
                    record = {"error": f"{type(exc).__name__}: {exc}"[:200]}
            result["extras"][name] = {"synthetic": record}
            print("extras", name, record, flush=True)
    for modality, registry in registries.items():
        if only and modality not in only:
            continue
        result[modality] = {}
        for name, make in registry.items():
            if not name.startswith("Diffusion"):
                continue
            result[modality][name] = {}
            for set_name, (X_train, X_test) in data[modality].items():
                try:
                    detector = make(0, shapes[modality](X_train), "cpu")
                except TypeError:
                    detector = make(0, shapes[modality](X_train))
                detector, short = _shorten(detector)
                try:
                    record = _record(detector, X_train, X_test)
                except Exception as exc:  # a configuration that refuses the set is recorded
                    record = {"error": f"{type(exc).__name__}: {exc}"[:200]}
                record["short"] = short
                result[modality][name][set_name] = record
                print(modality, name, set_name, record, flush=True)
                if short:  # a short-budget configuration: one set is enough
                    break
    return result


def compare(before, after):
    """Lines naming every (modality, configuration, set) whose digests differ."""
    lines = []
    for modality, configs in before.items():
        for name, sets in configs.items():
            for set_name, record in sets.items():
                other = after.get(modality, {}).get(name, {}).get(set_name)
                if other is None:
                    lines.append(f"missing: {modality} {name} {set_name}")
                    continue
                for key in ("train", "threshold", "test", "outputs", "error"):
                    if record.get(key) != other.get(key):
                        lines.append(f"differs: {modality} {name} {set_name} {key}: "
                                     f"{record.get(key)} -> {other.get(key)}")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fingerprint",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--compare", default=None, help="an earlier JSON file to compare with")
    parser.add_argument("--only", default=None,
                        help="comma-separated: extras,tabular,series,image")
    args = parser.parse_args(argv)
    set_threads(1)
    torch.manual_seed(0)
    only = None if args.only is None else set(args.only.split(","))
    result = fingerprints(resolve_data_dir(args.data_dir), only)
    with open(args.out, "w") as handle:
        json.dump(result, handle, indent=1, sort_keys=True)
    if args.compare:
        with open(args.compare) as handle:
            before = json.load(handle)
        lines = compare(before, result)
        print("\n".join(lines) if lines else "every digest is equal")
        return 1 if lines else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
