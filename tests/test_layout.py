"""The package's architecture rules, checked on its source (quick, no marker):

- no module in arraydaemon/ is over 600 lines;
- no import cycle among arraydaemon modules, counting every import (module-level, function-level
  and ``if TYPE_CHECKING:`` ones alike);
- no module imports another module's private name (``from arraydaemon.a import _x``);
- the light modules (the command line, the reasoning subscriber, the wire format, the options and
  the estimator registry) import none of numpy, numba, torch or scipy.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

import arraydaemon

PACKAGE_DIR = Path(arraydaemon.__file__).resolve().parent
MAX_LINES = 600
HEAVY = ("numpy", "numba", "torch", "scipy")
LIGHT_MODULES = ["arraydaemon.cli", "arraydaemon.io.wire", "arraydaemon.core.options", "arraydaemon.localizers.base"]

# Private names imported across modules today, as (importing module, imported module, name). The
# rule is that there are none: a name another module needs is public. Shrink this list as they are
# made public; the test fails on a new one, and on an entry that no longer occurs.
KNOWN_PRIVATE_IMPORTS: set[tuple[str, str, str]] = set()  # none: keep it so


@cache
def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__.py``)."""
    found = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(name: str) -> list[tuple[str, str | None]]:
    """``(module, imported name or None)`` for every arraydaemon import anywhere in module ``name``
    (relative imports resolved). ``from a import b`` where ``a.b`` is a module counts as ``(a.b, None)``."""
    path = modules()[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(alias.name, None) for alias in node.names if alias.name.split(".")[0] == "arraydaemon"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] != "arraydaemon":
                continue
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                out.append((submodule, None) if submodule in modules() else (source, alias.name))
    return out


def import_graph() -> dict[str, set[str]]:
    """Module → the arraydaemon modules it imports. Importing ``a.b`` also runs package ``a``'s
    ``__init__``, but that is not counted as depending on ``a``: a package that imports its own
    submodules would otherwise always be in a cycle with them."""
    graph = {}
    for name in modules():
        targets = {module for module, _ in imports(name)}
        unknown = targets - set(modules())
        assert not unknown, f"{name} imports {sorted(unknown)}, which are not modules of the package"
        graph[name] = targets - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path whose last node is its first, or None."""
    state: dict[str, str] = {}  # "open" while on the DFS stack, then "done"
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_module_is_over_600_lines():
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules().items()}
    assert len(sizes) > 50  # the whole package was found
    too_long = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not too_long, f"modules over {MAX_LINES} lines: {too_long}"


def test_no_import_cycle_among_the_package_modules():
    graph = import_graph()
    assert sum(len(targets) for targets in graph.values()) > 100  # the imports were found
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_check_finds_cycles_and_submodule_imports():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
    # `from arraydaemon.research import simulate` depends on the subpackage simulate, not on research
    assert ("arraydaemon.research.simulate", None) in imports("arraydaemon.research.dataset")
    # a function-level import counts (localizers.base builds each estimator on demand)
    assert ("arraydaemon.localizers.srp_phat", "SrpPhatLocalizer") in imports("arraydaemon.localizers.base")


def test_no_module_imports_another_modules_private_name():
    private = {(name, module, imported) for name in modules() for module, imported in imports(name)
               if imported and imported.startswith("_") and not imported.startswith("__")}
    new = sorted(private - KNOWN_PRIVATE_IMPORTS)
    assert not new, "private names imported from another module (make them public): " + ", ".join(
        f"{name} imports {module}.{imported}" for name, module, imported in new)
    fixed = sorted(KNOWN_PRIVATE_IMPORTS - private)
    assert not fixed, f"no longer imported, remove from KNOWN_PRIVATE_IMPORTS: {fixed}"


@pytest.mark.parametrize("module", LIGHT_MODULES + sorted(m for m in modules() if m.startswith("arraydaemon.reason")))
def test_light_modules_import_no_numeric_library(module):
    # A fresh interpreter: this one has imported everything already.
    code = (f"import json, sys, {module}\n"
            f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [], f"importing {module} imports {done.stdout.strip()}"


def test_every_package_is_installed():
    """A non-editable install ships only the packages pyproject.toml lists: every folder with an
    __init__.py must be there."""
    import tomllib

    root = PACKAGE_DIR.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in PACKAGE_DIR.rglob("__init__.py")}
    assert found - listed == set()
