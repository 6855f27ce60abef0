"""Sampling one hyperparameter value from its declared space."""

from __future__ import annotations

import math
import random

from hyperjoule.config import Hyperparameter, coerce_value
from hyperjoule.records import HyperValue

__all__ = ["sample_value", "space_size"]

_FLOAT_SIG_DIGITS = 6


def sample_value(hp: Hyperparameter, rng: random.Random) -> HyperValue:
    """Draw one value of ``hp``.

    ``zero_probability`` gives exactly 0 with that probability (weight decay is often
    off); otherwise ``uniform`` or ``log_uniform`` over ``range`` — ints are rounded and
    clamped so that every integer in the range is equally likely under ``uniform`` — or
    a uniform pick among ``choices``.

    Raises:
        ValueError: ``hp`` has no space to sample from.
    """
    if hp.choices is not None:
        return rng.choice(hp.choices)
    if hp.range is None:
        raise ValueError("hyperparameter has no range or choices to sample from")
    if hp.zero_probability and rng.random() < hp.zero_probability:
        return coerce_value(hp, 0)
    low, high = hp.range
    if hp.type == "int":
        # Widen by half a step so that rounding gives the end points their full share.
        low, high = low - 0.5, high + 0.5
    if hp.distribution == "log_uniform":
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
    else:
        value = rng.uniform(low, high)
    if hp.type == "int":
        value = float(min(max(round(value), hp.range[0]), hp.range[1]))
    else:
        # Six significant digits: readable records and arguments, still a continuous space.
        value = min(max(float(f"{value:.{_FLOAT_SIG_DIGITS}g}"), hp.range[0]), hp.range[1])
    return coerce_value(hp, value)


def space_size(hp: Hyperparameter) -> float:
    """Number of distinct values ``hp`` can take (``math.inf`` for a float range)."""
    if hp.choices is not None:
        return float(len(hp.choices))
    if hp.range is None:
        return 1.0
    if hp.type == "float":
        return math.inf
    low, high = int(hp.range[0]), int(hp.range[1])
    zero_extra = 1 if hp.zero_probability and not low <= 0 <= high else 0
    return float(high - low + 1 + zero_extra)
