"""The package's shape: no import cycles, one definition of each column list.

Read with ``ast`` from the source, so these hold for every module, imported or not.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import hyperjoule

SRC = Path(hyperjoule.__file__).parent
DIGITS = SRC / "examples" / "digits"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(tree: ast.Module, package: str, known: set[str]) -> set[str]:
    """Modules of ``known`` imported by a module (TYPE_CHECKING imports count too)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return found & known


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _graph(files: dict[str, Path]) -> dict[str, set[str]]:
    graph = {}
    known = set(files)
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        graph[name] = _imports(ast.parse(path.read_text(encoding="utf-8")), package, known)
        graph[name].discard(name)
    return graph


def test_no_import_cycle_in_the_package() -> None:
    files = {_module_name(p): p for p in SRC.rglob("*.py") if DIGITS not in p.parents}
    assert _cycles(_graph(files)) == []


def test_no_import_cycle_in_the_example_scripts() -> None:
    # The digits scripts import their siblings by bare name (they run as scripts).
    files = {p.stem: p for p in DIGITS.glob("*.py")}
    assert _cycles(_graph(files)) == []


def test_the_cycle_check_finds_a_cycle(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("from b import x\n")
    (tmp_path / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a\n"
    )
    files = {p.stem: p for p in tmp_path.glob("*.py")}
    assert _cycles(_graph(files)) == [["a", "b"]]


def test_each_column_list_is_defined_once() -> None:
    where: dict[str, list[str]] = defaultdict(list)
    for path in SRC.rglob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AnnAssign):
                targets = [node.target]
            for target in targets:
                name = getattr(target, "id", "")
                if name.isupper() and name.endswith(("COLUMNS", "FIELDS", "PREFIX")):
                    where[name].append(str(path.relative_to(SRC)))
    assert {k: v for k, v in where.items() if len(v) > 1} == {}


def test_only_storage_opens_the_database() -> None:
    """``storage/`` is the one database boundary: no other module imports sqlite3."""
    known = {"sqlite3"}
    outside = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if SRC / "storage" not in path.parents
        and _imports(ast.parse(path.read_text(encoding="utf-8")), "", known)
    ]
    assert outside == []
