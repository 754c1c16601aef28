"""The test markers' conventions (pyproject.toml registers them; `make test-fast` leaves
out ``slow``, ``cluster`` and ``benchmark``): every test module of a benchmark script
carries ``benchmark`` for all its tests, so a new one stays out of the quick loop."""

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
BENCHMARK_MODULES = sorted(TESTS.glob("test_benchmarks_*.py")) + [TESTS / "test_demo.py"]


def module_marks(path):
    """The names of the ``pytest.mark.<name>`` in the module's own ``pytestmark``."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
            return {sub.attr for sub in ast.walk(node.value)
                    if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Attribute)
                    and sub.value.attr == "mark"}
    return set()


@pytest.mark.parametrize("path", BENCHMARK_MODULES, ids=lambda p: p.name)
def test_benchmark_test_modules_carry_the_benchmark_marker(path):
    assert "benchmark" in module_marks(path), (
        f"{path.name} tests a benchmark script: give it `pytestmark = pytest.mark.benchmark`")


def test_the_marker_reader_sees_lists_and_single_marks(tmp_path):
    one = tmp_path / "one.py"
    one.write_text("import pytest\npytestmark = pytest.mark.benchmark\n")
    several = tmp_path / "several.py"
    several.write_text("import pytest\npytestmark = [pytest.mark.skipif(True, reason='x'),\n"
                       "              pytest.mark.cluster, pytest.mark.slow]\n")
    none = tmp_path / "none.py"
    none.write_text("import pytest\n\n@pytest.mark.benchmark\ndef test_a():\n    pass\n")
    assert module_marks(one) == {"benchmark"}
    assert module_marks(several) == {"skipif", "cluster", "slow"}
    assert module_marks(none) == set()
