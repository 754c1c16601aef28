"""Every public estimator documents exactly the parameters of its signature, in order,
with the defaults of its signature; the shared ones come from one source."""

import inspect
import re

import pytest
from numpydoc.docscrape import NumpyDocString

from skdiffad import (
    AnomalyGenerator,
    DiffusionImageDetector,
    DiffusionTSDetector,
    DiffusionVideoDetector,
    FusionDetector,
    TabDiffusionDetector,
)
from skdiffad._params import MARKER, SHARED

DETECTORS = [TabDiffusionDetector, DiffusionTSDetector, DiffusionImageDetector,
             DiffusionVideoDetector]
ESTIMATORS = DETECTORS + [FusionDetector, AnomalyGenerator]


def _documented(cls):
    names = []
    for param in NumpyDocString(inspect.getdoc(cls))["Parameters"]:
        for name in param.name.split(","):
            names.append((name.strip(), param.type))
    return names


def _shown(value):
    return f'"{value}"' if isinstance(value, str) else repr(value)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_docstring_lists_the_signature_in_order_with_its_defaults(cls):
    signature = inspect.signature(cls).parameters
    documented = _documented(cls)
    assert [name for name, _ in documented] == list(signature)
    for name, kind in documented:
        default = signature[name].default
        if default is inspect.Parameter.empty:
            continue
        found = re.search(r"default=(.*)$", kind)
        assert found, f"{cls.__name__}.{name} documents no default"
        assert found.group(1).strip() == _shown(default), f"{cls.__name__}.{name}"


@pytest.mark.parametrize("cls", DETECTORS, ids=lambda c: c.__name__)
def test_shared_parameters_are_documented_from_one_source(cls):
    """The shared parameters' text is the one in skdiffad._params.SHARED."""
    assert MARKER not in cls.__doc__
    doc = NumpyDocString(inspect.getdoc(cls))
    texts = {p.name: " ".join(p.desc) for p in doc["Parameters"]}
    for name, (kind, text, _) in SHARED.items():
        assert name in texts, f"{cls.__name__} lacks the shared parameter {name}"
        assert " ".join(texts[name].split()).startswith(" ".join(text.split()))
