"""Typing old hyperparameter values, so that equal configurations get equal dedup keys.

The old tool compared ``"7"`` with ``"7.000000"`` and never matched. Values of a
hyperparameter a targets file declares are coerced to its type (``"7.0"`` of an int is
``7``) and the declared defaults fill the names the old tool did not store; for the
others one type is inferred per (target, name) from every value imported at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

from hyperjoule.config import Hyperparameter, Target, canonical_key, coerce_value
from hyperjoule.errors import ConfigError
from hyperjoule.legacy._formats import parse_bool
from hyperjoule.legacy._results import LegacyRun
from hyperjoule.records import HyperValue

__all__ = ["ValueTyper", "coerce_legacy", "infer_kind"]

Kind = Literal["bool", "int", "float", "str"]

_FLOAT_DIGITS = 12  # as config.coerce_value rounds floats, so keys agree with plans


def _number(value: object) -> tuple[float, bool] | None:
    """``(value, written as an integer)``, or None for text that is not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return float(value), True
    if isinstance(value, float):
        return value, False
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(int(text)), True
        except ValueError:
            pass
        try:
            return float(text), False
        except ValueError:
            return None
    return None


def infer_kind(values: Iterable[object]) -> Kind:
    """The type of a hyperparameter from all its old values.

    Integral numbers are ints when at least one of them was written as an integer
    (``7`` next to ``7.000000``); any fraction makes them floats; booleans stay booleans;
    anything else is text.
    """
    values = list(values)
    if values and all(
        isinstance(v, bool) or (isinstance(v, str) and v.strip().lower() in ("true", "false"))
        for v in values
    ):
        return "bool"
    numbers = [_number(v) for v in values]
    if not values or any(n is None for n in numbers):
        return "str"
    present = [n for n in numbers if n is not None]
    if all(x.is_integer() for x, _ in present) and any(as_int for _, as_int in present):
        return "int"
    return "float"


def _cast(kind: Kind, value: object) -> HyperValue:
    if kind == "bool":
        parsed = parse_bool(value)
        return bool(parsed)
    if kind == "int":
        number = _number(value)
        assert number is not None  # inferred from this very value
        return int(number[0])
    if kind == "float":
        number = _number(value)
        assert number is not None
        return float(f"{number[0]:.{_FLOAT_DIGITS}g}")
    return str(value).strip() if isinstance(value, str) else str(value)


def coerce_legacy(hp: Hyperparameter, value: object) -> HyperValue:
    """:func:`~hyperjoule.config.coerce_value`, also matching ``"16.0"`` to a choice of ``16``.

    Raises:
        ValueError: The value cannot be read as the declared type.
    """
    try:
        return coerce_value(hp, value)
    except ValueError:
        if hp.choices is None:
            raise
        number = _number(value)
        if number is not None:
            for choice in hp.choices:
                if not isinstance(choice, (bool, str)) and float(choice) == number[0]:
                    return choice
        raise


class ValueTyper:
    """Types the hyperparameters of a batch of old runs.

    Args:
        runs: Every run of the import (types are inferred from all of them together).
        targets: Declared targets by name (from a targets file), possibly empty.
    """

    def __init__(self, runs: Iterable[LegacyRun], targets: Mapping[str, Target]) -> None:
        self._targets = targets
        raw: dict[tuple[str, str], list[object]] = {}
        self._used: set[str] = set()
        for run in runs:
            blocks = [(run.repository, run.hyperparameters)]
            if run.background is not None:
                blocks.append((run.background.get("repository"), run.background["hyperparameters"]))
            for target, hps in blocks:
                if target is None:
                    continue
                self._used.add(target)
                for name, value in hps.items():
                    raw.setdefault((target, name), []).append(value)
        self._kinds = {key: infer_kind(values) for key, values in raw.items()}

    def declared(self, target: str) -> dict[str, Hyperparameter] | None:
        """The declared hyperparameters of ``target``; None when the targets lack it."""
        found = self._targets.get(target)
        return None if found is None else dict(found.hyperparameters)

    def undeclared_targets(self) -> set[str]:
        """Targets of the imported runs that no targets file declares."""
        return {t for t in self._used if t not in self._targets}

    def default(self, target: str, name: str) -> HyperValue:
        """The typed declared default of a hyperparameter."""
        hp = self._targets[target].hyperparameters[name]
        return coerce_value(hp, hp.default)

    def hyperparameters(
        self, target: str, raw: Mapping[str, object], path: Path, where: str
    ) -> tuple[dict[str, HyperValue], list[str]]:
        """Typed values of one run, and the declared names filled with their defaults.

        Raises:
            ConfigError: A value cannot be read as its declared type.
        """
        declared = self.declared(target) or {}
        typed: dict[str, HyperValue] = {}
        for name, value in raw.items():
            hp = declared.get(name)
            if hp is None:
                typed[name] = _cast(self._kinds.get((target, name), "str"), value)
                continue
            try:
                typed[name] = coerce_legacy(hp, value)
            except ValueError as e:
                raise ConfigError(
                    path, f"{where}.hyperparameters.{name}", f"{e} (declared type {hp.type})"
                ) from None
        # The old tool stored only what it mutated; the rest ran at the declared defaults.
        filled = [name for name in declared if name not in typed]
        ordered = {
            name: typed[name] if name in typed else self.default(target, name) for name in declared
        }
        ordered.update((name, value) for name, value in typed.items() if name not in declared)
        return ordered, filled

    def key(
        self, target: str, model: str | None, mode: str, values: Mapping[str, HyperValue]
    ) -> str:
        """The dedup key, as a plan of the same configuration computes it."""
        return canonical_key(target, model, mode, values, self.declared(target) or {})
