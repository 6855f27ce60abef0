"""``hyperjoule init``: copy the bundled targets, scripts and a study to start from."""

from __future__ import annotations

import shutil
from pathlib import Path

from hyperjoule.errors import HyperjouleError

__all__ = ["EXAMPLES_DIR", "scaffold"]

EXAMPLES_DIR = Path(__file__).parent.parent / "examples"


def scaffold(directory: Path) -> list[Path]:
    """Write ``targets.yaml``, ``study.yaml`` and the bundled scripts into ``directory``.

    Raises:
        HyperjouleError: A file to write exists already (nothing is overwritten).
    """
    targets = directory / "targets.yaml"
    study = directory / "study.yaml"
    scripts = directory / "digits"
    existing = [p for p in (targets, study, scripts) if p.exists()]
    if existing:
        raise HyperjouleError(
            f"{existing[0]} exists already; choose an empty directory (nothing was written)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    # Only the scripts: never results, caches or anything else a run left beside them.
    shutil.copytree(
        EXAMPLES_DIR / "digits",
        scripts,
        ignore=lambda _, names: [n for n in names if not n.endswith(".py")],
    )
    shutil.copyfile(EXAMPLES_DIR / "targets.yaml", targets)
    text = (EXAMPLES_DIR / "quickstart" / "study.yaml").read_text(encoding="utf-8")
    study.write_text(
        text.replace("targets: ../targets.yaml", "targets: targets.yaml"), encoding="utf-8"
    )
    return [targets, study, scripts]
