"""The user guide's ``>>>`` examples run as doctests, so a page cannot drift from the code.

Each page is run the way it tells readers to re-run it (``python -m doctest -v
doc/<page>.rst``). Recipes that need a cluster, object storage, Spark or several
processes are written as plain ``.. code-block:: python`` scripts without prompts,
which doctest leaves alone; the tests of those features live in tests/test_dask.py,
tests/test_spark.py and tests/test_ddp.py.
"""

import doctest
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "doc"

#: Pages whose examples take about a second: the quick loop runs them.
QUICK_PAGES = ["scaling.rst", "example.rst"]
#: Pages that fit learned models or several series detectors (seconds each).
SLOW_PAGES = ["generation.rst", "example_timeseries.rst"]


def run_page(name):
    result = doctest.testfile(str(DOC / name), module_relative=False, report=True,
                              verbose=False, raise_on_error=False)
    assert result.attempted > 0, f"doc/{name} has no >>> examples"
    assert result.failed == 0, f"{result.failed} of doc/{name}'s examples failed (see above)"


@pytest.mark.parametrize("name", QUICK_PAGES)
def test_page_examples_run(name):
    if name == "scaling.rst":
        pytest.importorskip("dask.dataframe")
    run_page(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW_PAGES)
def test_slow_page_examples_run(name):
    run_page(name)


def test_every_page_with_examples_is_run():
    with_prompts = {path.name for path in DOC.glob("*.rst") if ">>> " in path.read_text()}
    assert with_prompts == set(QUICK_PAGES) | set(SLOW_PAGES)
