"""The house rules of the package, checked on its source (issue #25).

* no import cycle between skdiffad's modules, and no skdiffad import placed inside a
  function (the usual way to dodge one);
* the services (``_dask``, ``generation``) reach into no detector, encoder or modality
  through an underscore-prefixed name: they use the modality plug-in's public methods;
* ``timeseries.py`` stays a small module (the series logic lives in its modality);
* ``_core`` knows tensors, not estimators: it never imports scikit-learn or pandas.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "skdiffad"


def _module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules():
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(module, node):
    """The skdiffad module an ``import``/``from`` node names (``None``: outside)."""
    if isinstance(node, ast.ImportFrom):
        if node.level:
            package = module.split(".")
            is_package = _modules()[module].name == "__init__.py"
            base = package if is_package else package[:-1]
            base = base[: len(base) - (node.level - 1)]
            name = ".".join(base + ([node.module] if node.module else []))
        else:
            name = node.module or ""
        names = [name] + [f"{name}.{alias.name}" for alias in node.names]
    else:
        names = [alias.name for alias in node.names]
    modules = _modules()
    return [n for n in names if n in modules and n.startswith("skdiffad")]


def _imports(module, path, top_level_only):
    """The modules ``module`` imports, with the packages Python imports on the way: a
    submodule's parent packages, unless they are the importer's own (already imported)."""
    tree = ast.parse(path.read_text())
    found = []
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found += _resolve(module, node)
    parents = set()
    for name in found:
        parts = name.split(".")
        for i in range(2, len(parts)):
            package = ".".join(parts[:i])
            if not (module == package or module.startswith(package + ".")):
                parents.add(package)
    return found + sorted(parents)


def test_no_import_cycle_between_modules():
    graph = {m: set(_imports(m, p, top_level_only=True)) - {m} for m, p in _modules().items()}
    # a package's __init__ importing its own submodules is not a cycle of the code
    for m in graph:
        graph[m] = {d for d in graph[m] if not (m.startswith(d + ".") and
                                                 _modules()[d].name == "__init__.py")}
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == "open":
                cycle = stack[stack.index(d):] + [d]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_no_package_import_inside_a_function():
    inner = []
    for module, path in _modules().items():
        tree = ast.parse(path.read_text())
        for func in ast.walk(tree):
            if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(func):
                    if isinstance(node, (ast.Import, ast.ImportFrom)) and (
                            _resolve(module, node) or getattr(node, "level", 0)):
                        inner.append(f"{module}:{node.lineno}")
    assert inner == []


@pytest.mark.parametrize("service", ["_dask.py", "generation.py"])
def test_services_use_no_private_name_of_another_object(service):
    """Every ``x._name`` in a service is on ``self`` (its own state), never on a
    detector, an encoder, a modality or a model."""
    tree = ast.parse((PACKAGE / service).read_text())
    private = [
        f"{service}:{node.lineno} {ast.unparse(node)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
    ]
    assert private == []


def test_timeseries_module_stays_small():
    assert len((PACKAGE / "timeseries.py").read_text().splitlines()) < 500


def test_core_never_imports_scikit_learn_or_pandas():
    for path in (PACKAGE / "_core").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            assert not any(n.split(".")[0] in ("sklearn", "pandas") for n in names), path
