"""The packages' layout: imports point one way and never in a circle; modules and functions stay short.

The import graph is read from the source (every ``import`` anywhere in a file, function-level and ``TYPE_CHECKING``
ones included), so a cycle hidden behind a deferred import is still found. Importing ``a.b.c`` also runs the
``__init__`` of ``a`` and ``a.b``, so those count as imports too (unless the importer lives inside them).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("configuration", "processing", "modeling_vlm", "training")
# What each package must never import: dependencies point training -> modeling_vlm -> processing -> configuration.
FORBIDDEN = {
    "configuration": ("processing", "modeling_vlm", "training"),
    "processing": ("modeling_vlm", "training"),
    "modeling_vlm": ("training",),
}
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 50
# Compiled kernels whose hot loops must stay in one body (see their docstrings for the measurement).
LONG_FUNCTIONS_ALLOWED = {("modeling_vlm/numba_scan.py", "_scan_bwd")}


def module_files(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of `packages` under `root` (``__init__`` is the package)."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module a ``from ... import`` statement in `module` reads from."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imported_modules(module: str, path: Path, known: Mapping[str, Path]) -> set[str]:
    """The modules of `known` that `module` imports, with the packages whose ``__init__`` those imports run."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node, module, is_package)
            submodules = {f"{source}.{alias.name}" for alias in node.names} & set(known)
            targets.update(submodules)
            if len(submodules) < len(node.names):  # a name defined in `source` itself
                targets.add(source)
    own_packages = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1 + is_package)}
    found = set()
    for target in targets:
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            name = ".".join(parts[:i])
            if name in known and name != module and (name == target or name not in own_packages):
                found.add(name)
    return found


def import_graph(root: Path, packages: Iterable[str]) -> dict[str, set[str]]:
    """Module -> the modules it imports, among `packages` under `root`."""
    known = module_files(root, packages)
    return {module: imported_modules(module, path, known) for module, path in known.items()}


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module, or of one module importing itself (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def forbidden_imports(graph: Mapping[str, set[str]]) -> list[tuple[str, str]]:
    """(importer, imported) pairs that point against the dependency direction."""
    bad = []
    for module, targets in graph.items():
        banned = FORBIDDEN.get(module.split(".")[0], ())
        bad.extend((module, t) for t in sorted(targets) if t.split(".")[0] in banned)
    return sorted(bad)


def _write(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


# ------------------------------------------------------------------------------------------------ the checker itself


def test_the_checker_finds_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "modeling_vlm/__init__.py": "",
            "modeling_vlm/model.py": "from .card import build\n",
            "modeling_vlm/card.py": "def build():\n    from .model import Model  # deferred, still a cycle\n",
            "modeling_vlm/other.py": "from modeling_vlm import model\n",
        },
    )
    graph = import_graph(tmp_path, ["modeling_vlm"])
    assert graph["modeling_vlm.other"] == {"modeling_vlm.model"}  # a submodule, not a name of the package
    assert cycles(graph) == [["modeling_vlm.card", "modeling_vlm.model"]]


def test_the_checker_finds_imports_against_the_direction_and_package_init_cycles(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "configuration/__init__.py": "import processing.layout\n",
            "processing/__init__.py": "",
            "processing/layout.py": "import typing\nif typing.TYPE_CHECKING:\n    from training import x\n",
            "training/__init__.py": "",
            "training/a/__init__.py": "from .b import f\n",
            "training/a/b.py": "def f():\n    pass\n",
            "training/c.py": "from .a.b import f\n",  # runs training/a/__init__.py too
            "training/a/d.py": "from ..c import g\n",
        },
    )
    graph = import_graph(tmp_path, ["configuration", "processing", "training"])
    assert graph["training.c"] == {"training.a", "training.a.b"}
    assert graph["training.a.d"] == {"training.c"}  # training.a is its own package: no edge back to it
    assert forbidden_imports(graph) == [
        ("configuration", "processing"),
        ("configuration", "processing.layout"),
        ("processing.layout", "training"),
    ]
    assert cycles(graph) == []
    _write(tmp_path, {"training/a/__init__.py": "from .d import g\n"})
    assert cycles(import_graph(tmp_path, ["training"])) == [["training.a", "training.a.d", "training.c"]]


# --------------------------------------------------------------------------------------------------- the real packages


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(ROOT, PACKAGES)


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    assert len(graph) > 50  # the walker saw the real packages
    assert cycles(graph) == []


def test_imports_point_one_way(graph: dict[str, set[str]]) -> None:
    assert "configuration" in graph["modeling_vlm.modeling_vlm"]  # the walker sees real edges
    assert forbidden_imports(graph) == []


def test_modules_and_functions_stay_short() -> None:
    too_long = []
    for path in module_files(ROOT, PACKAGES).values():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > MAX_MODULE_LINES:
            too_long.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if (
                    lines > MAX_FUNCTION_LINES
                    and (str(path.relative_to(ROOT)), node.name) not in LONG_FUNCTIONS_ALLOWED
                ):
                    too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {lines} lines")
    assert too_long == []
