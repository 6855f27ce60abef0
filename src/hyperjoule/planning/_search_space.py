"""Declared hyperparameter spaces mapped onto Optuna distributions, both ways.

``uniform``/``log_uniform`` float ranges become ``FloatDistribution(log=...)``, int ranges
``IntDistribution(log=...)``, choices ``CategoricalDistribution``. A declared
``zero_probability`` becomes a conditional parameter: a categorical ``<name>:zero``
(True/False) and, only when it is False, the range itself; so a sampler learns whether
"off" (weight decay 0) is good separately from the value when on.

Optuna is imported lazily (it is an optional extra); the module itself imports without it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from hyperjoule.config import Hyperparameter, Target, coerce_value
from hyperjoule.records import HyperValue

__all__ = ["ZERO_SUFFIX", "SearchSpace"]

ZERO_SUFFIX = ":zero"
"""Suffix of the conditional "exactly zero" parameter of a ``zero_probability`` range."""

_FLOAT_SIG_DIGITS = 6  # like mutation: readable arguments, still a continuous space


class SearchSpace:
    """The searched hyperparameters of one target, as Optuna sees them.

    Args:
        target: The target declaring the hyperparameters.
        names: The searched names (each has a range or choices).
        base: Every hyperparameter's resolved value; the unsearched ones stay fixed.
    """

    def __init__(self, target: Target, names: list[str], base: Mapping[str, HyperValue]) -> None:
        self.target = target
        self.names = list(names)
        self.base = dict(base)

    def _hp(self, name: str) -> Hyperparameter:
        return self.target.hyperparameters[name]

    def distribution(self, name: str) -> Any:
        """The Optuna distribution of ``name``'s value (without its zero switch)."""
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        hp = self._hp(name)
        if hp.choices is not None:
            return CategoricalDistribution(list(hp.choices))
        assert hp.range is not None
        low, high = hp.range
        log = hp.distribution == "log_uniform"
        if hp.type == "int":
            return IntDistribution(int(low), int(high), log=log)
        return FloatDistribution(float(low), float(high), log=log)

    def describe(self) -> dict[str, str]:
        """One line per searched name, for ``plan``."""
        out = {}
        for name in self.names:
            hp = self._hp(name)
            if hp.choices is not None:
                text = "choice of " + ", ".join(str(c) for c in hp.choices)
            else:
                assert hp.range is not None
                scale = "log" if hp.distribution == "log_uniform" else "linear"
                text = f"{hp.type} [{hp.range[0]:g}, {hp.range[1]:g}] {scale}"
                if hp.zero_probability:
                    text += " or 0 (conditional)"
            out[name] = text
        return out

    def suggest(self, trial: Any) -> dict[str, HyperValue]:
        """Ask an Optuna trial for every searched value; return the full configuration."""
        values = dict(self.base)
        for name in self.names:
            hp = self._hp(name)
            if hp.choices is not None:
                values[name] = coerce_value(hp, trial.suggest_categorical(name, list(hp.choices)))
                continue
            if hp.zero_probability and trial.suggest_categorical(name + ZERO_SUFFIX, [True, False]):
                values[name] = coerce_value(hp, 0)
                continue
            assert hp.range is not None
            low, high = hp.range
            log = hp.distribution == "log_uniform"
            if hp.type == "int":
                raw: Any = trial.suggest_int(name, int(low), int(high), log=log)
            else:
                raw = trial.suggest_float(name, float(low), float(high), log=log)
            values[name] = self._typed(hp, raw)
        return values

    @staticmethod
    def _typed(hp: Hyperparameter, raw: Any) -> HyperValue:
        if hp.choices is not None:
            return coerce_value(hp, raw)
        assert hp.range is not None
        if hp.type == "int":
            return coerce_value(hp, int(raw))
        value = float(f"{float(raw):.{_FLOAT_SIG_DIGITS}g}")
        return coerce_value(hp, min(max(value, hp.range[0]), hp.range[1]))

    def to_params(
        self, values: Mapping[str, HyperValue]
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Optuna params and distributions of a recorded configuration.

        Returns None when the configuration is not a point of this search: an unsearched
        hyperparameter differs from the fixed value, or a searched one lies outside its
        declared space (a warm-start run of another range).
        """
        from optuna.distributions import CategoricalDistribution

        for name, fixed in self.base.items():
            if name not in self.names and not _same(values.get(name), fixed):
                return None
        params: dict[str, Any] = {}
        dists: dict[str, Any] = {}
        for name in self.names:
            hp = self._hp(name)
            if name not in values:
                return None
            value = values[name]
            if hp.zero_probability and hp.choices is None:
                switch = CategoricalDistribution([True, False])
                is_zero = isinstance(value, (int, float)) and float(value) == 0.0
                params[name + ZERO_SUFFIX] = is_zero
                dists[name + ZERO_SUFFIX] = switch
                if is_zero:
                    continue
            dist = self.distribution(name)
            if hp.choices is not None:
                if value not in hp.choices:
                    return None
            else:
                assert hp.range is not None
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    return None
                if not hp.range[0] <= float(value) <= hp.range[1]:
                    return None
                value = int(value) if hp.type == "int" else float(value)
            params[name] = value
            dists[name] = dist
        return params, dists


def _same(a: HyperValue | None, b: HyperValue) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0) or a == b
    return a == b
