"""Typed hyperparameter values: coercion from config/CSV text and canonical keys.

The lab workflow compared ``"7"`` with ``"7.000000"`` and never matched; here every
value is coerced to its declared type first, so equal configurations get equal keys.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping

from hyperjoule.config._targets import Hyperparameter
from hyperjoule.records import HyperValue

__all__ = ["as_finite_float", "canonical_key", "coerce_value", "format_value"]

_FLOAT_DIGITS = 12  # beyond this, two floats count as the same configuration


def as_finite_float(value: object) -> float:
    """A finite float from a number or its text; ``ValueError`` (naming it) otherwise.

    Booleans are refused: ``True`` is not the number 1 in a config or a results file.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is a boolean, not a number")
    if isinstance(value, (int, float)):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
    else:
        raise ValueError(f"{value!r} is not a number")
    if not math.isfinite(result):
        raise ValueError(f"{value!r} is not a finite number")
    return result


def coerce_value(hp: Hyperparameter, value: object) -> HyperValue:
    """Return ``value`` as the type ``hp`` declares.

    Raises:
        ValueError: The value cannot be read as that type (message says why).
    """
    if hp.type == "int":
        number = as_finite_float(value)
        if not number.is_integer():
            raise ValueError(f"{value!r} is not an integer")
        return int(number)
    if hp.type == "float":
        return float(f"{as_finite_float(value):.{_FLOAT_DIGITS}g}")
    assert hp.choices is not None  # validated by the schema
    for choice in hp.choices:
        if choice == value and type(choice) is type(value):
            return choice
    for choice in hp.choices:
        if str(choice) == str(value):
            return choice
    raise ValueError(f"{value!r} is not one of {hp.choices}")


def format_value(value: HyperValue) -> str:
    """Format a value as a command-line argument (ints without '.0', floats exactly)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def canonical_key(
    target: str,
    model: str | None,
    mode: str,
    hyperparameters: Mapping[str, HyperValue],
    declared: Mapping[str, Hyperparameter],
) -> str:
    """Return the dedup key of a configuration: same key iff same typed configuration.

    Values are coerced to their declared types first, so ``7``, ``7.0`` and ``"7"`` of an
    int hyperparameter give the same key. The mode is part of the key: a parallel and a
    sequential run of one configuration are different measurements.
    """
    canon: dict[str, object] = {}
    for name in sorted(hyperparameters):
        hp = declared.get(name)
        canon[name] = (
            hyperparameters[name] if hp is None else coerce_value(hp, hyperparameters[name])
        )
    text = json.dumps([target, model, mode, canon], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]
