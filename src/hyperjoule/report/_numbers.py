"""The one number format of the report and the analysis commands.

``f"{x:.3g}"`` writes 1000 as ``1e+03`` next to a ``932``; :func:`fmt_sig` rounds to
significant digits but writes plain decimals for every magnitude a reader meets (an
exponent only below 1e-4 or from 1e15 up).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["fmt_sig"]


def fmt_sig(value: Any, digits: int = 3, *, grouping: bool = True) -> str:
    """``value`` rounded to ``digits`` significant digits, in plain decimal notation.

    Integers (and integral floats below a million) are written whole; thousands are
    grouped with commas unless ``grouping`` is False. NaN and missing values give ``–``.

    Examples: 932.4 → ``932``, 999.7 → ``1,000``, 0.012345 → ``0.0123``, 0.5 → ``0.5``,
    12345.6 → ``12,346`` (never fewer digits than the integer part).
    """
    if value is None or isinstance(value, bool):
        return "–" if value is None else str(value)
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(x):
        return "–"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    sep = "," if grouping else ""
    if x == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(x)))
    if magnitude < -4 or magnitude >= 15:
        return f"{x:.{max(digits - 1, 0)}e}"
    if x.is_integer() and abs(x) < 1e6:
        return f"{int(x):{sep}d}"
    decimals = max(digits - 1 - magnitude, 0)
    rounded = round(x, decimals)
    if rounded != 0 and math.floor(math.log10(abs(rounded))) > magnitude and decimals > 0:
        decimals -= 1  # 0.9996 -> 1.00 keeps three significant digits, not four
    text = f"{rounded:{sep}.{decimals}f}"
    # Like %g, no trailing zeros: 0.5 and not 0.5000.
    return text.rstrip("0").rstrip(".") if "." in text else text
