"""``docs/architecture.md`` names every module of the package once, and nothing else."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import hyperjoule

SRC = Path(hyperjoule.__file__).parent
DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"
MODULE = re.compile(r"`([\w/]+\.py)`")


def _listed(text: str) -> list[str]:
    """Module paths (relative to ``src/hyperjoule``) named in the module table."""
    table = text.split("## Modules", 1)[1].split("\n## ", 1)[0]
    out = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`"):
            continue
        first = cells[0].split("`")[1]
        if first.endswith(".py"):
            out.append(first)
            continue
        out += [f"{first}{name}" for name in MODULE.findall(" ".join(cells[1:]))]
    return out


def _modules() -> set[str]:
    return {
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if p.name not in ("__init__.py", "__main__.py")
    }


def test_the_module_table_matches_the_tree() -> None:
    listed = _listed(DOC.read_text(encoding="utf-8"))
    assert sorted(set(listed) - _modules()) == [], "listed, but no such module"
    assert sorted(_modules() - set(listed)) == [], "modules missing from the table"
    assert [name for name, n in Counter(listed).items() if n > 1] == [], "listed twice"


def test_the_check_sees_a_missing_module() -> None:
    text = DOC.read_text(encoding="utf-8").replace("`_query.py`", "query")
    assert "storage/_query.py" not in _listed(text)
