"""Placeholders in a target's ``command``, ``args`` and ``env`` values.

``{python}``, ``{run_dir}``, ``{run_id}``, ``{attempt}`` and ``{workdir}`` are replaced
when a run is launched (``--save {run_dir}/model.pt``); ``{{`` and ``}}`` stand for
literal braces. Any other ``{name}``, or a lone brace, is a config error found when the
targets file is loaded, so a typo never reaches a training script as literal text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["PLACEHOLDERS", "expand_placeholders", "placeholder_problem"]

PLACEHOLDERS = ("python", "run_dir", "run_id", "attempt", "workdir")
"""Every placeholder a target may use; all but ``python`` and ``workdir`` are per run."""

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def placeholder_problem(text: str) -> str | None:
    """Return why ``text`` has an invalid placeholder, or None when it is fine."""
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        name = match.group(1)
        if name is None:
            return f"lone '{token}' in {text!r}; write '{token * 2}' for a literal brace"
        if name not in PLACEHOLDERS:
            known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            return (
                f"unknown placeholder '{{{name}}}' in {text!r}; use one of {known} "
                "(or '{{' and '}}' for literal braces)"
            )
    return None


def expand_placeholders(text: str, values: Mapping[str, str]) -> str:
    """Replace the placeholders of ``text`` with ``values`` and unescape doubled braces.

    A placeholder missing from ``values`` stays as written (``{run_dir}`` where no run
    exists yet, e.g. in a plan listing). Text is assumed checked by
    :func:`placeholder_problem` when its file was loaded.
    """

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        name = match.group(1)
        if name is not None and name in values:
            return values[name]
        return token

    return _TOKEN.sub(replace, text)
