"""Input checks shared by the metrics: every error names the argument at fault."""

from __future__ import annotations

import numbers

import numpy as np


def as_1d(values, name):
    """``values`` as a non-empty 1-D ndarray, or a ValueError naming ``name``."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got an array of shape {array.shape}.")
    if array.size == 0:
        raise ValueError(f"{name} is empty; it needs at least one value.")
    return array


def check_binary(array, name):
    """Return ``array`` (already 1-D) as booleans, or raise if it is not 0/1."""
    if array.dtype == bool:
        return array
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(
            f"{name} must hold 0/1 or booleans (1 = anomaly); got dtype {array.dtype}."
        )
    bad = ~np.isin(array, (0, 1))
    if bad.any():
        examples = np.unique(array[bad])[:5].tolist()
        raise ValueError(
            f"{name} must hold only 0 and 1 (1 = anomaly); "
            f"{np.count_nonzero(bad)} values are not, e.g. {examples}."
        )
    return array.astype(bool)


def _check_same_length(first, first_name, second, second_name):
    if first.shape != second.shape:
        raise ValueError(
            f"{first_name} and {second_name} must have the same length; "
            f"got shapes {first.shape} and {second.shape}."
        )


def check_labels_and_scores(y_true, scores):
    """``(y, s)``: 0/1 labels as booleans and finite scores as float64, same length."""
    y = as_1d(y_true, "y_true")
    s = as_1d(scores, "scores")
    _check_same_length(y, "y_true", s, "scores")
    y = check_binary(y, "y_true")
    if not (np.issubdtype(s.dtype, np.number) or s.dtype == bool):
        raise ValueError(f"scores must be numeric; got dtype {s.dtype}.")
    s = s.astype(np.float64)
    n_bad = np.count_nonzero(~np.isfinite(s))
    if n_bad:
        raise ValueError(f"scores must be finite; {n_bad} of {s.size} values are NaN or infinite.")
    return y, s


def check_labels_and_predictions(y_true, y_pred):
    """``(y, p)``: 0/1 labels and 0/1 predictions as booleans, same length."""
    y = as_1d(y_true, "y_true")
    p = as_1d(y_pred, "y_pred")
    _check_same_length(y, "y_true", p, "y_pred")
    return check_binary(y, "y_true"), check_binary(p, "y_pred")


def require_anomalies(y, metric):
    """Raise when the boolean labels ``y`` hold no anomaly."""
    if not y.any():
        raise ValueError(f"{metric} is undefined when y_true holds no anomaly (no 1).")


def require_both_classes(y, metric):
    """Raise when the boolean labels ``y`` hold no anomaly, or nothing else."""
    require_anomalies(y, metric)
    if y.all():
        raise ValueError(f"{metric} is undefined when y_true holds only anomalies (no 0).")


def check_int(value, name, minimum):
    """``value`` as an int ``>= minimum`` (bools refused), or a ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def check_option(value, name, options):
    """Raise unless ``value`` is one of ``options``."""
    if value not in options:
        raise ValueError(f"{name} must be one of {options}; got {value!r}.")
