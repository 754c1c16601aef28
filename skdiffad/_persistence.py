"""Versioned saving: a stamp in every pickle, and ``save``/``load`` without pickle.

Two ways to keep a fitted detector:

* **pickle** (``pickle``, ``joblib``): what scikit-learn and PyOD users expect. Every
  pickle carries the skdiffad version and :data:`STATE_FORMAT`, the version of the
  layout of the fitted state; unpickling a detector whose layout this skdiffad cannot
  read (:data:`READABLE_FORMATS`), or one from before the stamp (skdiffad 0.1), raises an
  :class:`IncompatibleVersionError` that says which versions wrote and reads it,
  instead of failing later on a renamed attribute. Unpickling runs code named in the
  file: load pickles from trusted sources only.
* :func:`save` / :func:`load`: a folder with ``config.json`` (the parameters and
  every fitted value that is not an array, plus the versions) and
  ``weights.safetensors`` (every array and tensor, in the safetensors format). Loading
  instantiates skdiffad's own classes only -- by ``__new__`` and their
  ``__setstate__``, never a constructor or any callable named in the file -- and
  reads tensors with safetensors, which runs no code. A round trip scores bit for bit
  as the saved detector did.

What cannot be saved this way is said at :func:`save`: objects whose class is not
skdiffad's (a PyOD member of a :class:`~skdiffad.FusionDetector`, a user
``feature_extractor`` module, a callable column selection); pickle those. A plug-in
defined outside the package (a subclass of :class:`~skdiffad.modalities.Modality`,
of an encoder's :class:`~skdiffad.modalities.InputRecord` or of the detector shell)
is trusted like skdiffad's own once the module that defines it has been imported:
such classes register themselves when they are defined (:func:`trust`), and
:func:`load` only builds registered classes, never importing a module that a file
names unless it is skdiffad's.
"""

from __future__ import annotations

import datetime
import importlib
import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from ._version import __version__

__all__ = ["READABLE_FORMATS", "STATE_FORMAT", "IncompatibleVersionError", "check_stamp", "load",
           "save", "stamp", "trust"]

#: Version of the layout of a fitted detector's state. It changes when a fitted
#: attribute, a model's state or a saved key is renamed or restructured; a state of
#: another layout is refused with a clear error rather than half-loaded.
STATE_FORMAT = 3
#: State formats this skdiffad reads: 3 pickles the exact models' stored windows as the
#: stretch of series they cover (``ExactModel.stored_compact_``); 2 held them whole.
READABLE_FORMATS = (2, 3)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
_STAMP = "_skdiffad_version"
_FORMAT = "_skdiffad_state_format"


class IncompatibleVersionError(ValueError):
    """A saved detector whose state this version of skdiffad cannot read."""


#: Classes defined outside skdiffad that save() may write and load() may build, by name.
_TRUSTED = {}


def trust(cls):
    """Let :func:`save` write and :func:`load` build objects of ``cls``, a plug-in class
    defined outside skdiffad (the plug-in base classes call this for every subclass)."""
    _TRUSTED[_qualified(cls)] = cls
    return cls


def stamp(state):
    """``state`` (a ``__getstate__`` dict) with the skdiffad version and state format."""
    return dict(state, **{_STAMP: __version__, _FORMAT: STATE_FORMAT})


def _formats():
    return " and ".join(str(f) for f in READABLE_FORMATS)


def check_stamp(state, owner):
    """Pop the stamp from an unpickled ``state``; raise when it is missing or its state
    format is not this skdiffad's."""
    version, layout = state.pop(_STAMP, None), state.pop(_FORMAT, None)
    if version is None:
        raise IncompatibleVersionError(
            f"this {owner} was pickled by skdiffad 0.1 or earlier, whose fitted state carried "
            f"no version; skdiffad {__version__} (state format {STATE_FORMAT}) cannot read it. "
            "Refit the detector, or load it with the skdiffad that wrote it")
    if layout not in READABLE_FORMATS:
        raise IncompatibleVersionError(
            f"this {owner} was pickled by skdiffad {version} (state format {layout}); "
            f"skdiffad {__version__} reads state formats {_formats()}. Refit the detector, "
            f"or load it with skdiffad {version}")
    return state


# ------------------------------------------------------------------ encoding
class _Encoder:
    """Turns a state into JSON values and a dict of tensors (arrays go to tensors)."""

    def __init__(self):
        self.tensors = {}

    def tensor(self, value, path):
        key = f"t{len(self.tensors)}:{path}"[:200]
        self.tensors[key] = value.detach().cpu().clone().contiguous()
        return key

    def __call__(self, value, path="root"):
        if isinstance(value, np.generic):
            return {"__scalar__": value.dtype.str, "value": self(value.item(), path)}
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else {"__float__": repr(value)}
        if isinstance(value, torch.Tensor):
            return {"__tensor__": self.tensor(value, path)}
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                return {"__objects__": [self(v, f"{path}[]") for v in value.ravel()],
                        "shape": list(value.shape)}
            return {"__ndarray__": self.tensor(torch.from_numpy(np.ascontiguousarray(value)),
                                               path)}
        if isinstance(value, tuple):
            return {"__tuple__": [self(v, f"{path}[{i}]") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, dict):
            if all(isinstance(k, str) and not k.startswith("__") for k in value):
                return {k: self(v, f"{path}.{k}") for k, v in value.items()}
            return {"__items__": [[self(k, path), self(v, f"{path}[{k!r}]")]
                                  for k, v in value.items()]}
        if isinstance(value, slice):
            return {"__slice__": [value.start, value.stop, value.step]}
        if isinstance(value, torch.device):
            return {"__device__": str(value)}
        if isinstance(value, torch.dtype):
            return {"__torch_dtype__": str(value).replace("torch.", "")}
        if isinstance(value, pd.CategoricalDtype):
            return {"__categorical__": self(list(value.categories), path),
                    "ordered": bool(value.ordered)}
        if isinstance(value, (np.dtype, pd.api.extensions.ExtensionDtype)):
            return {"__dtype__": str(value)}
        if isinstance(value, pd.Timestamp):
            return {"__timestamp__": value.isoformat()}
        if isinstance(value, (datetime.datetime, datetime.date)):
            return {"__timestamp__": pd.Timestamp(value).isoformat()}
        if isinstance(value, np.random.RandomState):
            kind, keys, pos, has_gauss, gauss = value.get_state()
            return {"__random_state__": [kind, self(keys, path), pos, has_gauss, gauss]}
        if isinstance(value, type) and _ours(value):
            return {"__class__": _qualified(value)}
        if isinstance(value, torch.nn.Module) and not _ours(type(value)):
            raise ValueError(
                f"{path} is a user module ({type(value).__name__}); save() stores no code. "
                "Pickle the detector instead (pickle or joblib), or fit it without it")
        if _ours(type(value)):
            state = value.__getstate__() if hasattr(value, "__getstate__") else vars(value)
            if state is None:  # an object without state (no __dict__ entries)
                state = {}
            return {"__object__": _qualified(type(value)),
                    "state": self(state, f"{path}<{type(value).__name__}>")}
        raise ValueError(
            f"{path} holds a {type(value).__module__}.{type(value).__qualname__}, which save() "
            "cannot store without code (only skdiffad's own objects, arrays and plain values "
            "are saved); pickle the detector instead")


def _qualified(cls):
    return f"{cls.__module__}:{cls.__qualname__}"


def _ours(cls):
    """Whether objects of ``cls`` are saved and built: skdiffad's, or trusted plug-ins."""
    return (getattr(cls, "__module__", "").split(".")[0] == "skdiffad"
            or _TRUSTED.get(_qualified(cls)) is cls)


# ------------------------------------------------------------------ decoding
def _class(name):
    """A class of skdiffad, or a trusted plug-in class, named ``module:qualname``; no
    module other than skdiffad's is ever imported."""
    if name in _TRUSTED:
        return _TRUSTED[name]
    module, _, qualname = str(name).partition(":")
    if module.split(".")[0] != "skdiffad" or not qualname:
        raise ValueError(f"the saved state names {name!r}, which is not a class of skdiffad "
                         "nor a plug-in class defined in this session; refusing to load it "
                         "(load() builds those only: import the module that defines a "
                         "plug-in before loading)")
    try:
        value = importlib.import_module(module)
        for part in qualname.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError) as exc:
        raise IncompatibleVersionError(
            f"the saved state names {name!r}, which this skdiffad ({__version__}) does not "
            "have") from exc
    if not isinstance(value, type) or not _ours(value):
        raise ValueError(f"the saved state names {name!r}, which is not a class of skdiffad")
    return value


class _Decoder:
    def __init__(self, tensors):
        self.tensors = tensors

    def __call__(self, value):
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "__float__" in value:
            return float(value["__float__"])
        if "__scalar__" in value:
            return np.dtype(value["__scalar__"]).type(self(value["value"]))
        if "__tensor__" in value:
            return self.tensors[value["__tensor__"]]
        if "__ndarray__" in value:
            return self.tensors[value["__ndarray__"]].numpy()
        if "__objects__" in value:
            items = [self(v) for v in value["__objects__"]]
            out = np.empty(len(items), dtype=object)
            out[:] = items
            return out.reshape(value["shape"])
        if "__tuple__" in value:
            return tuple(self(v) for v in value["__tuple__"])
        if "__items__" in value:
            return {self(k): self(v) for k, v in value["__items__"]}
        if "__slice__" in value:
            return slice(*value["__slice__"])
        if "__device__" in value:
            return torch.device(value["__device__"])
        if "__torch_dtype__" in value:
            return getattr(torch, value["__torch_dtype__"])
        if "__categorical__" in value:
            return pd.CategoricalDtype(self(value["__categorical__"]), ordered=value["ordered"])
        if "__dtype__" in value:
            return pd.api.types.pandas_dtype(value["__dtype__"])
        if "__timestamp__" in value:
            return pd.Timestamp(value["__timestamp__"])
        if "__random_state__" in value:
            kind, keys, pos, has_gauss, gauss = value["__random_state__"]
            state = np.random.RandomState()
            state.set_state((kind, self(keys), pos, has_gauss, gauss))
            return state
        if "__class__" in value:
            return _class(value["__class__"])
        if "__object__" in value:
            cls = _class(value["__object__"])
            obj = cls.__new__(cls)
            state = self(value["state"])
            if hasattr(obj, "__setstate__"):
                obj.__setstate__(state)
            else:
                obj.__dict__.update(state)
            return obj
        return {k: self(v) for k, v in value.items()}


# ------------------------------------------------------------------ files
def save(estimator, path):
    """Write a fitted (or unfitted) skdiffad estimator to the folder ``path``.

    Returns the folder's path. See the module docstring for what is written and what
    cannot be saved.
    """
    encoder = _Encoder()
    state = estimator.__getstate__()
    config = {
        "skdiffad_version": __version__,
        "state_format": STATE_FORMAT,
        "class": _qualified(type(estimator)),
        "state": encoder(state, type(estimator).__name__),
    }
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    with open(path / CONFIG_FILE, "w", encoding="utf-8") as handle:
        json.dump(config, handle, indent=1, allow_nan=False)
    save_file(encoder.tensors, str(path / WEIGHTS_FILE),
              metadata={"skdiffad_version": __version__, "state_format": str(STATE_FORMAT)})
    return path


def load(path, cls=None):
    """The estimator saved in the folder ``path`` by :func:`save` (of class ``cls``, when
    given: another class raises a ``TypeError``)."""
    path = Path(path)
    config_file = path / CONFIG_FILE
    if not config_file.is_file():
        raise FileNotFoundError(f"{os.fspath(path)} holds no {CONFIG_FILE}: it is not a "
                                "folder written by save()")
    with open(config_file, encoding="utf-8") as handle:
        config = json.load(handle)
    version, layout = config.get("skdiffad_version"), config.get("state_format")
    if layout not in READABLE_FORMATS:
        raise IncompatibleVersionError(
            f"{os.fspath(path)} was saved by skdiffad {version} (state format {layout}); "
            f"skdiffad {__version__} reads state formats {_formats()}. Load it with skdiffad "
            f"{version}, or refit")
    found = _class(config["class"])
    if cls is not None and not issubclass(found, cls):
        raise TypeError(f"{os.fspath(path)} holds a {found.__name__}, not a {cls.__name__}")
    decoder = _Decoder(load_file(str(path / WEIGHTS_FILE)))
    estimator = found.__new__(found)
    state = decoder(config["state"])
    estimator.__setstate__(state)
    return estimator
