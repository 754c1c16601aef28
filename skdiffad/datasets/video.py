"""A small generator of synthetic surveillance clips with planted anomalies.

:func:`make_walkway` draws a fixed camera's view of a walkway: pedestrians
walking across it at a normal speed, and, in the clips asked for, a cyclist
(too fast) or a cart (too large) crossing for a stretch of frames, with per-frame
labels. It needs no data file; the demo's video part uses it.
"""

from __future__ import annotations

import numpy as np

from ._generators import _generator

__all__ = ["make_walkway"]

#: The kinds of anomalous object :func:`make_walkway` plants.
WALKWAY_KINDS = ("cyclist", "cart")
#: Grey levels of the grass and the walkway, and the sensor noise's standard deviation.
_GRASS, _WALKWAY, _NOISE = 0.2, 0.4, 0.03
#: Pedestrians: speed (px/frame), blob standard deviations across / along the walk.
_WALK_SPEED = (0.5, 1.0)
_PERSON_SIGMA_X, _PERSON_SIGMA_Y = (0.9, 1.3), (1.4, 1.9)
_BRIGHTNESS = (0.3, 0.5)
#: Anomalies: the cyclist's speed (3 to 4 times the pedestrians' mean, 0.75 px/frame)
#: and the cart's half-width and half-height (a box with soft edges).
_CYCLIST_SPEED = (2.25, 3.0)
_CART_HALF_X, _CART_HALF_Y = (3.5, 4.5), (3.5, 4.5)
_CART_SPEED, _CART_BRIGHTNESS = (0.6, 1.0), (0.4, 0.55)
_EDGE = 0.5


def _profile(grid, centre, half, shape):
    """Profiles ``(T, len(grid))`` along one axis: a Gaussian of standard deviation
    ``half`` (``shape="blob"``) or a box of half-width ``half`` with soft edges."""
    offset = grid[None, :] - np.asarray(centre)[:, None]
    if shape == "blob":
        return np.exp(-0.5 * (offset / half) ** 2)
    return 1.0 / (1.0 + np.exp(-(offset + half) / _EDGE)) - 1.0 / (
        1.0 + np.exp(-(offset - half) / _EDGE))


def _render(size, x, y, half_x, half_y, brightness, shape="blob"):
    """Frames ``(T, size, size)`` holding one object centred at ``(y[t], x[t])``."""
    grid = np.arange(size, dtype=np.float64)
    across, down = _profile(grid, x, half_x, shape), _profile(grid, y, half_y, shape)
    return brightness * down[:, :, None] * across[:, None, :]


def _background(size, scene):
    """The static view: grass, a brighter walkway across the middle, a fixed texture."""
    rng = np.random.default_rng(scene)
    rows = np.arange(size) / (size - 1)
    band = 1.0 / (1.0 + np.exp(-(rows - 0.3) * 40)) - 1.0 / (1.0 + np.exp(-(rows - 0.7) * 40))
    view = _GRASS + (_WALKWAY - _GRASS) * band[:, None] * np.ones((1, size))
    return view + rng.normal(0.0, 0.04, size=(size, size))


def _lane(rng, size):
    """A random row on the walkway for an object's centre."""
    return rng.uniform(0.4, 0.6) * (size - 1)


def make_walkway(
    n_clips=6,
    n_frames=60,
    size=32,
    n_anomalous=0,
    anomaly_kinds=WALKWAY_KINDS,
    scene=0,
    random_state=None,
):
    """Generate grey-level clips of a walkway seen by a fixed camera, with anomalies.

    Every clip shows the same static view (grass above and below a brighter
    walkway across the middle of the frame, with a fixed texture; drawn from
    ``scene`` alone) plus Gaussian sensor noise of standard deviation 0.03 in
    every frame. One to three pedestrians, soft bright Gaussian blobs taller
    than wide (standard deviations about 1 by 1.6 pixels), walk along the
    walkway at 0.5 to 1 pixel per frame, each in a random direction; a
    pedestrian who leaves the frame comes back in on the other side, out of
    sight of the edge, so traffic goes on. Sizes and speeds are in pixels
    whatever ``size`` is.

    ``n_anomalous`` clips, chosen at random, also hold one anomalous object
    crossing the walkway, of a kind taken in turn from ``anomaly_kinds`` (the
    ``k``-th anomalous clip, in clip order, gets ``anomaly_kinds[k % len]``):

    - ``"cyclist"``: a pedestrian-like blob moving at 2.25 to 3 pixels per
      frame, 3 to 4 times the pedestrians' mean speed (0.75); it crosses a
      32-pixel frame in about 15 frames;
    - ``"cart"``: a box of 7 to 9 pixels a side with soft edges, a little
      brighter than a pedestrian, moving at 0.6 to 1 pixel per frame (it
      usually stays to the clip's end).

    The object enters from a random side; its label stretch starts at a random
    frame between ``n_frames // 6`` and ``n_frames // 3``. A frame is labelled
    1 when the object's centre lies in the frame or less than its half-width
    (a blob's horizontal standard deviation) outside, so every anomalous clip
    has labelled frames. The normal content is drawn before the anomalies, so
    the same seed with ``n_anomalous=0`` gives the clips without their
    anomalous objects.

    Parameters
    ----------
    n_clips : int, default=6
        Number of clips (at least 1).
    n_frames : int, default=60
        Frames per clip (at least 30).
    size : int, default=32
        Side of the square frames, in pixels (at least 16).
    n_anomalous : int, default=0
        Clips holding an anomalous object (0 to ``n_clips``).
    anomaly_kinds : tuple of str, default=("cyclist", "cart")
        Kinds to plant, a non-empty selection of the two above (a single string
        is one kind).
    scene : int, default=0
        Seed of the static view alone: clips of any ``random_state`` with the
        same ``scene`` share it, as clips of one fixed camera do (train on one
        seed, test on another).
    random_state : int, numpy Generator, RandomState or None, default=None
        Seed of the pedestrians, the noise and the anomalies; the same seed
        gives the same clips.

    Returns
    -------
    clips : ndarray of shape (n_clips, n_frames, size, size), float64
        Grey levels in [0, 1]. A video detector takes clips as a list:
        ``list(clips)``.
    labels : ndarray of shape (n_clips, n_frames), int
        1 on the frames that show an anomalous object, 0 elsewhere.

    Raises
    ------
    ValueError
        When a parameter is out of range or a kind is unknown.

    Examples
    --------
    >>> from skdiffad.datasets import make_walkway
    >>> clips, labels = make_walkway(n_clips=4, n_anomalous=2, random_state=0)
    >>> clips.shape, labels.shape
    ((4, 60, 32, 32), (4, 60))
    >>> int(labels.any(axis=1).sum())            # two clips hold an anomaly stretch
    2
    >>> normal, _ = make_walkway(n_clips=4, random_state=0)   # the same clips, no anomaly
    >>> quiet = ~labels.any(axis=1)
    >>> bool((normal[quiet] == clips[quiet]).all()), bool(0 <= clips.min() <= clips.max() <= 1)
    (True, True)
    """
    for name, value, least in (("n_clips", n_clips, 1), ("n_frames", n_frames, 30),
                               ("size", size, 16), ("n_anomalous", n_anomalous, 0)):
        if isinstance(value, bool) or int(value) != value or value < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    if n_anomalous > n_clips:
        raise ValueError(f"n_anomalous must be at most n_clips={n_clips}, got {n_anomalous}")
    kinds = (anomaly_kinds,) if isinstance(anomaly_kinds, str) else tuple(anomaly_kinds)
    if not kinds or any(k not in WALKWAY_KINDS for k in kinds):
        raise ValueError(f"anomaly_kinds must be a non-empty selection of {WALKWAY_KINDS}, "
                         f"got {anomaly_kinds!r}")
    n_clips, n_frames, size = int(n_clips), int(n_frames), int(size)
    n_anomalous = int(n_anomalous)
    rng = _generator(random_state)
    view = _background(size, scene)
    t = np.arange(n_frames, dtype=np.float64)

    clips = np.empty((n_clips, n_frames, size, size))
    for c in range(n_clips):
        frames = view + rng.normal(0.0, _NOISE, size=(n_frames, size, size))
        for _ in range(rng.integers(1, 4)):
            sigma_x = rng.uniform(*_PERSON_SIGMA_X)
            margin = 4.0 * sigma_x  # wrap out of sight: no blob pops in or out
            period = size + 2.0 * margin
            velocity = rng.choice([-1.0, 1.0]) * rng.uniform(*_WALK_SPEED)
            x = np.mod(rng.uniform(0.0, period) + velocity * t, period) - margin
            y = np.full(n_frames, _lane(rng, size))
            frames += _render(size, x, y, sigma_x, rng.uniform(*_PERSON_SIGMA_Y),
                             rng.uniform(*_BRIGHTNESS))
        clips[c] = frames
    labels = np.zeros((n_clips, n_frames), dtype=int)

    anomalous = np.sort(rng.permutation(n_clips)[:n_anomalous])
    for k, c in enumerate(anomalous):
        if kinds[k % len(kinds)] == "cyclist":
            speed, brightness = rng.uniform(*_CYCLIST_SPEED), rng.uniform(*_BRIGHTNESS)
            half_x, half_y = rng.uniform(*_PERSON_SIGMA_X), rng.uniform(*_PERSON_SIGMA_Y)
            shape = "blob"
        else:
            speed, brightness = rng.uniform(*_CART_SPEED), rng.uniform(*_CART_BRIGHTNESS)
            half_x, half_y = rng.uniform(*_CART_HALF_X), rng.uniform(*_CART_HALF_Y)
            shape = "box"
        start = rng.integers(n_frames // 6, n_frames // 3 + 1)
        x = -half_x + speed * (t - start)  # one half-width outside the edge at `start`
        if rng.random() < 0.5:
            x = size - 1 - x  # enters from the right
        y = np.full(n_frames, _lane(rng, size))
        clips[c] += _render(size, x, y, half_x, half_y, brightness, shape)
        labels[c] = (x >= -half_x) & (x <= size - 1 + half_x)
    np.clip(clips, 0.0, 1.0, out=clips)
    return clips, labels
