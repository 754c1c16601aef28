"""Generated series collections for the time-series benchmark: kinds no default saw.

Two collections that need no data directory, run like the real ones
(``python -m benchmarks.timeseries --collections GENERATED,ECG_LIKE``). Neither was
used to choose any default; they check that a default generalises to kinds of
series it was never tuned on (issue #27). Both are in the evaluation split.

- ``GENERATED`` (12 series): :func:`~skdiffad.datasets.make_timeseries_anomalies`
  machines of 1, 3 and 8 sensors (sine mixtures) over 8000 steps with 8 anomalies;
  the detectors train on the first 3000 steps of the same machine generated without
  anomalies and score the last 5000, as ``make demo`` does (its three series are
  the ``seed0`` ones here). Anomalies are spikes of 1-3 steps and shape changes of
  160-320 steps, labelled over exactly their steps.
- ``ECG_LIKE`` (5 series): a beat every 120, 160, 200, 250 or 300 steps (+-5 %),
  each a P wave, a QRS complex and a T wave, with baseline wander and noise;
  20 000 normal training steps, then 20 000 test steps with 10 abnormal beats (a
  premature wide beat, a dropped beat or a raised ST segment), each labelled over
  its own beat.

Two more collections hold out fresh series of the same two kinds, generated with
seeds and beat periods that no rule was run on before the default of issue #27's
fifth round was chosen (they were added to this module first, then run once):

- ``GENERATED_HOLDOUT`` (12 series): as ``GENERATED``, with the seed groups 40, 50,
  60 and 70.
- ``ECG_LIKE_HOLDOUT`` (5 series): as ``ECG_LIKE``, one beat every 140, 180, 220,
  280 or 340 steps.

A fifth collection is a kind none of the others has (added in issue #27's sixth
round, after every choice, and run once):

- ``SERVER_LIKE`` (8 series): the metrics of an application server under a bursty
  load, 11 channels (requests, CPU, latency, memory, GC pause, threads, errors,
  disk I/O, network in and out, queue length) of one load: a daily cycle plus
  heavy-tailed bursts, which are normal and present in training. Memory saws up
  and drops at each garbage collection; errors and GC pauses are zero most of the
  time. 6000 normal training steps, then 10 000 test steps with 6 anomalies, each
  labelled over its own steps: latency up without load, a memory leak that GC does
  not recover, a runaway CPU, network out frozen, an error storm, requests dropping
  while traffic stays.

A sixth (added in issue #27's tenth round, after every choice, and run once) is the
kind where the issue saw the default lose most, real ECG, drawn closer to it than
``ECG_LIKE`` is:

- ``ECG_RHYTHM`` (6 series): a heart rhythm sampled at 250 or 360 Hz, 60-80 beats a
  minute, whose waves keep their duration while the rate varies (the beat-to-beat
  interval follows breathing and a slow drift, +-5-10 %; only the rest between the
  T wave and the next P wave stretches; the T wave moves with the square root of the
  interval), with breathing's amplitude change, baseline wander and noise. 20 000
  normal training steps, then 20 000 test steps with 12 abnormal beats: premature
  ventricular beats (early, no P wave, a wide QRS, an inverted T, then a full
  compensatory pause) and premature atrial beats (early, normal QRS, an inverted
  P wave), each labelled from 0.2 s before its R peak to 0.4 s after.
- ``ECG_RHYTHM_HOLDOUT`` (6 series): as ``ECG_RHYTHM``, at other rates and a third
  sampling rate (300 Hz); declared after ``ECG_RHYTHM``'s one run and before any rule
  was measured on it, for whatever that run leads to.
"""

from __future__ import annotations

import functools

import numpy as np

#: The collections this module generates.
SYNTHETIC_COLLECTIONS = ("GENERATED", "ECG_LIKE", "GENERATED_HOLDOUT", "ECG_LIKE_HOLDOUT",
                         "SERVER_LIKE", "ECG_RHYTHM", "ECG_RHYTHM_HOLDOUT")

#: ``GENERATED``: first seeds of each group of three machines (1, 3 and 8 sensors).
GENERATED_SEEDS = (0, 10, 20, 30)
GENERATED_CHANNELS = (1, 3, 8)
#: ``GENERATED_HOLDOUT``: the same machines from other seed groups.
HOLDOUT_SEEDS = (40, 50, 60, 70)
#: ``ECG_LIKE``: the beat periods, one series each (the period is also its seed).
ECG_PERIODS = (120, 160, 200, 250, 300)
#: ``ECG_LIKE_HOLDOUT``: other beat periods.
HOLDOUT_PERIODS = (140, 180, 220, 280, 340)
ECG_STEPS = 20_000
ECG_ANOMALIES = 10
#: ``SERVER_LIKE``: one server per seed; its steps and anomalies.
SERVER_SEEDS = tuple(range(8))
SERVER_TRAIN, SERVER_TEST, SERVER_ANOMALIES = 6000, 10_000, 6
SERVER_CHANNELS = ("requests", "cpu", "latency_ms", "memory_mb", "gc_pause_ms", "threads",
                   "errors", "disk_io", "net_in", "net_out", "queue")
SERVER_FAULTS = ("latency", "leak", "runaway", "frozen", "errors", "decoupled")
#: ``ECG_RHYTHM``: (sampling rate in Hz, mean beats a minute) of each series, its steps
#: and abnormal beats (about two ventricular to one atrial).
RHYTHMS = ((250, 60), (250, 72), (250, 80), (360, 62), (360, 70), (360, 78))
#: ``ECG_RHYTHM_HOLDOUT``: other rates, and 300 Hz.
HOLDOUT_RHYTHMS = ((250, 66), (250, 76), (300, 64), (300, 74), (360, 66), (360, 82))
RHYTHM_STEPS, RHYTHM_ANOMALIES = 20_000, 12
#: Steps a fault lasts, drawn from [low, high); faults not named here last 40-150.
SERVER_FAULT_STEPS = {"leak": (300, 601), "frozen": (100, 301)}


def generated_machine(seed, n_channels):
    """One ``GENERATED`` series: the dict :func:`skdiffad.datasets.load_timeseries` gives."""
    from skdiffad.datasets import make_timeseries_anomalies

    X, y = make_timeseries_anomalies(8000, n_channels, n_anomalies=8, random_state=seed)
    normal, _ = make_timeseries_anomalies(8000, n_channels, n_anomalies=0, random_state=seed)
    return {"X_train": normal[:3000], "X_test": X[3000:], "y_test": y[3000:]}


def _beat(length, kind):
    """One heartbeat of ``length`` steps: Gaussian P, Q, R, S and T waves."""
    t = np.arange(length) / length

    def wave(centre, width, height):
        return height * np.exp(-0.5 * ((t - centre) / width) ** 2)

    if kind == "wide":  # premature ventricular: no sharp QRS, a broad swing
        return wave(0.15, 0.03, 0.1) + wave(0.35, 0.06, 1.2) - wave(0.42, 0.05, 0.6) \
            + wave(0.7, 0.06, -0.3)
    x = (wave(0.15, 0.025, 0.15) - wave(0.32, 0.008, 0.15) + wave(0.35, 0.01, 1.0)
         - wave(0.38, 0.01, 0.25) + wave(0.65, 0.05, 0.3))
    if kind == "st":
        x = x + 0.25 * ((t > 0.4) & (t < 0.6))
    return x


def _ecg(n, period, rng, n_anomalies=0):
    """``n`` steps of beats every ``period`` steps (+-5 %), ``n_anomalies`` of them
    abnormal: ``(X (n, 1), y (n,))``."""
    lengths, total = [], 0
    while total < n * 1.2:
        lengths.append(int(period * rng.uniform(0.95, 1.05)))
        total += lengths[-1]
    abnormal = set()
    if n_anomalies:
        abnormal = set(rng.choice(np.arange(5, len(lengths) - 5), n_anomalies, replace=False))
    parts, labels = [], []
    for i, length in enumerate(lengths):
        kind = rng.choice(["wide", "drop", "st"]) if i in abnormal else "normal"
        if kind == "drop":
            beat = np.zeros(length)
        elif kind == "wide":  # premature: it comes after 70 % of a cycle
            beat = _beat(int(length * 0.7), "wide")
        else:
            beat = _beat(length, kind)
        parts.append(beat)
        labels.append(np.full(len(beat), int(i in abnormal)))
    x, y = np.concatenate(parts)[:n], np.concatenate(labels)[:n]
    steps = np.arange(n)
    x = (x + 0.1 * np.sin(2 * np.pi * steps / (period * 7.3) + rng.uniform(0, 6))
         + 0.02 * rng.normal(size=n))
    return x[:, None], y


def ecg_like(period):
    """One ``ECG_LIKE`` series (seeded by its period)."""
    rng = np.random.default_rng(period)
    X_train, _ = _ecg(ECG_STEPS, period, rng)
    X_test, y_test = _ecg(ECG_STEPS, period, rng, n_anomalies=ECG_ANOMALIES)
    return {"X_train": X_train, "X_test": X_test, "y_test": y_test}


def _server_load(n, rng):
    """A server's load: a daily cycle (1440 steps) and heavy-tailed bursts."""
    t = np.arange(n)
    load = 0.5 + 0.3 * np.sin(2 * np.pi * t / 1440 + rng.uniform(0, 2 * np.pi))
    bursts = np.zeros(n)
    for start in np.flatnonzero(rng.random(n) < 1 / 250):
        length = 3 + rng.geometric(1 / 20)
        bursts[start:start + length] += 0.6 * rng.lognormal(0.0, 0.7)
    return np.maximum(load + bursts + 0.03 * rng.normal(size=n), 0.02), bursts


def _server(n, rng, n_faults=0):
    """``n`` steps of a server's metrics (:data:`SERVER_CHANNELS`), ``n_faults`` of
    them faulty: ``(X (n, 11), y (n,))``."""
    load, bursts = _server_load(n, rng)
    faults = np.zeros((len(SERVER_FAULTS), n), bool)
    slot = n // max(n_faults, 1)
    for k, fault in enumerate(rng.permutation(len(SERVER_FAULTS))[:n_faults]):
        length = int(rng.integers(*SERVER_FAULT_STEPS.get(SERVER_FAULTS[fault], (40, 151))))
        start = k * slot + int(rng.integers(100, slot - length - 100))
        faults[fault, start:start + length] = True
    latency_up, leak, runaway, frozen, storm, decoupled = faults
    requests = rng.poisson(200 * load).astype(float)
    requests[decoupled] *= 0.2
    cpu = np.clip(20 + 60 * load + 2 * rng.normal(size=n) + 30 * runaway, 0, 100)
    latency = (20 + 15 * load ** 2) * rng.lognormal(0.0, 0.15, n) * np.where(latency_up, 3.0, 1.0)
    memory, gc_pause, level = np.empty(n), np.zeros(n), 2000.0
    leaked = np.cumsum(1.5 * leak)
    for i in range(n):  # memory saws up with the load; a collection frees it
        level += 0.5 * load[i] + rng.normal(0, 0.3)
        if level > 2400:
            gc_pause[i] = 50 + 10 * rng.normal()
            level = 2000 + 20 * rng.normal()
        memory[i] = level + leaked[i]
    threads = np.round(50 + 40 * np.convolve(load, np.ones(10) / 10, "same"))
    errors = rng.poisson(0.02 + 0.1 * np.maximum(load - 1, 0) + 3.0 * storm).astype(float)
    disk = 5 + 50 * bursts + rng.exponential(1.0, n)
    traffic = 200 * load  # what the network sees, whatever the request counter says
    net_in = 2.0 * traffic + rng.normal(0, 5, n)
    net_out = 8.0 * traffic + rng.normal(0, 20, n)
    held = np.flatnonzero(frozen)  # one stretch at most: each fault kind is drawn once
    if len(held):  # it starts 100 steps or more into the series
        net_out[held] = net_out[held[0] - 1]
    queue = np.maximum(np.convolve(load - 0.9, np.ones(5) / 5, "same"), 0) * 30
    X = np.column_stack([requests, cpu, latency, memory, gc_pause, threads, errors, disk,
                         net_in, net_out, queue])
    return X, faults.any(axis=0).astype(int)


def server_like(seed):
    """One ``SERVER_LIKE`` series: a normal training stretch, then a faulty test one."""
    rng = np.random.default_rng(1000 + seed)
    X_train, _ = _server(SERVER_TRAIN, rng)
    X_test, y_test = _server(SERVER_TEST, rng, n_faults=SERVER_ANOMALIES)
    return {"X_train": X_train, "X_test": X_test, "y_test": y_test}


def _rhythm(n, fs, bpm, rng, n_anomalies=0):
    """``n`` steps of an ECG at ``fs`` Hz around ``bpm`` beats a minute, ``n_anomalies``
    beats premature (ventricular or atrial): ``(X (n, 1), y (n,))``."""
    rr_mean = 60.0 / bpm  # seconds
    breath = rng.uniform(3.0, 5.0)  # seconds per breath
    phase, drift, t, peaks, kinds = rng.uniform(0, 2 * np.pi), 0.0, 0.5, [], []
    while t < n / fs + 2:
        drift = 0.98 * drift + rng.normal(0, 0.01)  # slow change of the rate
        peaks.append(t)
        kinds.append("normal")
        t += rr_mean * (1 + 0.05 * np.sin(2 * np.pi * t / breath + phase) + drift)
    peaks = np.array(peaks)
    if n_anomalies:
        inside = np.flatnonzero((peaks > 3) & (peaks < n / fs - 3))
        for i in rng.choice(inside[::3], n_anomalies, replace=False):  # never adjacent
            kind = "pvc" if rng.random() < 2 / 3 else "apc"
            rr = peaks[i] - peaks[i - 1]
            early = rr * (0.62 if kind == "pvc" else 0.72)
            shift = rr - early
            peaks[i] -= shift  # the beat comes early
            if kind == "apc":  # the sinus node resets: the rhythm goes on from it
                peaks[i + 1:] -= shift
            kinds[i] = kind  # a ventricular beat's pause is compensatory (the next stays)
    steps = np.arange(n) / fs
    x = np.zeros(n)
    y = np.zeros(n, dtype=int)
    amplitude = 1 + 0.05 * np.sin(2 * np.pi * steps / breath + phase + 1.0)

    def wave(centre, width, height):
        near = np.abs(steps - centre) < 5 * width
        x[near] += height * np.exp(-0.5 * ((steps[near] - centre) / width) ** 2)

    for i, (r, kind) in enumerate(zip(peaks, kinds)):
        rr = peaks[i] - peaks[i - 1] if i else rr_mean
        qt = 0.28 * np.sqrt(max(rr, 0.3) / 1.0)  # Bazett: the T wave follows the rate
        if kind == "pvc":  # no P wave, a wide QRS and a T wave of opposite sign
            wave(r, 0.035, 1.3)
            wave(r + 0.07, 0.04, -0.5)
            wave(r + qt + 0.04, 0.07, -0.35)
        else:
            wave(r - 0.16, 0.025, -0.12 if kind == "apc" else 0.12)
            wave(r - 0.03, 0.008, -0.12)
            wave(r, 0.010, 1.0)
            wave(r + 0.03, 0.010, -0.25)
            wave(r + qt, 0.05, 0.3)
        if kind != "normal":
            y[(steps >= r - 0.2) & (steps <= r + 0.4)] = 1
    wander = 0.1 * np.sin(2 * np.pi * steps / rng.uniform(6, 10) + rng.uniform(0, 6))
    x = x * amplitude + wander + 0.02 * rng.normal(size=n)
    return x[:, None], y


def ecg_rhythm(fs, bpm):
    """One ``ECG_RHYTHM`` series (seeded by its sampling rate and rate)."""
    rng = np.random.default_rng(fs * 1000 + bpm)
    X_train, _ = _rhythm(RHYTHM_STEPS, fs, bpm, rng)
    X_test, y_test = _rhythm(RHYTHM_STEPS, fs, bpm, rng, n_anomalies=RHYTHM_ANOMALIES)
    return {"X_train": X_train, "X_test": X_test, "y_test": y_test}


def synthetic_collection(collection):
    """Name -> zero-argument loader of every series of a generated collection."""
    if collection in ("GENERATED", "GENERATED_HOLDOUT"):
        seeds = GENERATED_SEEDS if collection == "GENERATED" else HOLDOUT_SEEDS
        return {f"machine_{channels}ch_seed{first + k}":
                functools.partial(generated_machine, first + k, channels)
                for first in seeds
                for k, channels in enumerate(GENERATED_CHANNELS)}
    if collection in ("ECG_LIKE", "ECG_LIKE_HOLDOUT"):
        periods = ECG_PERIODS if collection == "ECG_LIKE" else HOLDOUT_PERIODS
        return {f"period_{period}": functools.partial(ecg_like, period)
                for period in periods}
    if collection == "SERVER_LIKE":
        return {f"server_{seed}": functools.partial(server_like, seed) for seed in SERVER_SEEDS}
    if collection in ("ECG_RHYTHM", "ECG_RHYTHM_HOLDOUT"):
        rhythms = RHYTHMS if collection == "ECG_RHYTHM" else HOLDOUT_RHYTHMS
        return {f"ecg_{fs}hz_{bpm}bpm": functools.partial(ecg_rhythm, fs, bpm)
                for fs, bpm in rhythms}
    raise ValueError(f"unknown generated collection {collection!r}; choose from "
                     f"{list(SYNTHETIC_COLLECTIONS)}")
