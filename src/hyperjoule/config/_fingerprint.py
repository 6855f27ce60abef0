"""Fingerprints of a target's definition, so a changed target is noticed before it runs.

Each record keeps the fingerprint of the target it ran; ``plan`` and ``run`` compare it
with the target as it is now and say, per target, what changed (the lab fixed broken
targets and nothing told them which finished runs measured the old one).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyperjoule.config._targets import Target

__all__ = ["TargetFingerprint", "target_fingerprint"]

_SCRIPT_MAX_BYTES = 64 * 1024 * 1024  # hash the scripts a command names, not data files


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TargetFingerprint:
    """What a target was when a run used it.

    Attributes:
        definition: One hash over every part below (``parts``).
        parts: Hash per definition field: command, args, env, workdir, model_flag,
            hyperparameter_flags (placeholders as written, so runs compare equal).
        scripts: sha256 (16 hex digits) of each file in the workdir that ``command`` or
            ``args`` names (``train.py``): the code version of a target outside git.
    """

    definition: str
    parts: dict[str, str] = field(default_factory=dict)
    scripts: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form kept in a record's provenance."""
        return {"definition": self.definition, "parts": self.parts, "scripts": self.scripts}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TargetFingerprint:
        """Rebuild a fingerprint written by :meth:`to_dict`."""
        return cls(
            str(data.get("definition", "")),
            dict(data.get("parts") or {}),
            dict(data.get("scripts") or {}),
        )

    def changes_since(self, earlier: TargetFingerprint) -> list[str]:
        """Name what differs from ``earlier`` (empty when nothing did)."""
        changed = [
            name
            for name in sorted(set(self.parts) | set(earlier.parts))
            if self.parts.get(name) != earlier.parts.get(name)
        ]
        changed += [
            f"script {name}"
            for name in sorted(set(self.scripts) | set(earlier.scripts))
            if self.scripts.get(name) != earlier.scripts.get(name)
        ]
        return changed


def target_fingerprint(target: Target) -> TargetFingerprint:
    """Fingerprint a target's definition and the scripts its command names."""
    parts = {
        "command": _digest(target.command),
        "args": _digest(target.args),
        "env": _digest(target.env),
        "workdir": _digest(str(target.workdir)),
        "model_flag": _digest(target.model_flag),
        "hyperparameter_flags": _digest({n: hp.flag for n, hp in target.hyperparameters.items()}),
    }
    scripts: dict[str, str] = {}
    for part in (*target.command, *target.args):
        if "{" in part or part.startswith("-"):
            continue
        path = Path(part) if Path(part).is_absolute() else target.workdir / part
        try:
            if path.is_file() and path.stat().st_size <= _SCRIPT_MAX_BYTES:
                scripts[part] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        except OSError:
            continue  # unreadable: no script hash, the definition still counts
    return TargetFingerprint(_digest(parts), parts, scripts)
