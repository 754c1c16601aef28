"""The whole state of a fitted detector, as plain comparable data (for tests)."""

import pickle

import numpy as np
import torch


def deep_state(obj, _seen=None):
    """Everything ``obj`` holds, recursively: arrays and tensors by value, modules
    by weights and mode, objects by all their attributes (private ones too, such
    as a model's search caches), anything else by its pickle."""
    _seen = set() if _seen is None else _seen
    if isinstance(obj, (str, bytes, int, float, bool, type(None))):
        return obj
    if isinstance(obj, np.ndarray):
        return ("ndarray", obj.dtype.str, obj.shape, obj.tobytes())
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu()
        return ("tensor", str(t.dtype), tuple(t.shape), t.numpy().tobytes() if t.numel() else b"")
    if isinstance(obj, torch.device):
        return ("device", str(obj))
    if isinstance(obj, torch.nn.Module):
        return ("module", type(obj).__name__, obj.training,
                deep_state(dict(obj.state_dict()), _seen))
    if isinstance(obj, dict):
        return ("dict", tuple(sorted((str(k), deep_state(v, _seen)) for k, v in obj.items())))
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, tuple(deep_state(v, _seen) for v in obj))
    if id(obj) in _seen:
        return ("seen", type(obj).__name__)
    _seen.add(id(obj))
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return (type(obj).__name__, deep_state(vars(obj), _seen))
    return ("pickle", type(obj).__name__, pickle.dumps(obj))
