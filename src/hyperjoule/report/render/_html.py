"""HTML building blocks of the report: escaping, number formats, tables, figures, the page.

The page is one self-contained file: inline CSS, figures as ``data:`` URIs, no script and
no remote resource, with print rules so it also reads on paper.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

from hyperjoule.report._numbers import fmt_sig

if TYPE_CHECKING:
    import pandas as pd

    from hyperjoule.report.render._figure_data import Plot

__all__ = [
    "Column",
    "badge",
    "esc",
    "figure",
    "fmt_ci",
    "fmt_duration",
    "fmt_energy",
    "fmt_num",
    "fmt_pct",
    "fmt_value",
    "page",
    "table",
    "warn",
]

Column = tuple[str, str, Callable[[Any], str]]
"""(column name, header text, formatter returning escaped HTML)."""

_CSS = """
:root { --ink:#1d232b; --muted:#5b6470; --line:#d9dde3; --band:#f4f6f8; --est:#b45f06;
        --est-bg:#fff3e0; --ok:#2f7d4a; --bad:#b3261e; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--ink); margin: 0; background: #fff; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 60px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 36px 0 10px; padding-bottom: 4px;
     border-bottom: 2px solid var(--line); }
h3 { font-size: 15px; margin: 22px 0 8px; }
p { margin: 6px 0 10px; }
.muted { color: var(--muted); }
nav { background: var(--band); border: 1px solid var(--line); border-radius: 6px;
      padding: 8px 14px; margin: 14px 0; }
nav ol { margin: 0; padding-left: 20px; columns: 2; }
nav a { color: #1f5f8b; text-decoration: none; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 14px 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 150px; }
.card b { display: block; font-size: 18px; }
.card span { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 12.5px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: right;
         vertical-align: top; }
th { background: var(--band); font-weight: 600; }
th:first-child, td:first-child, td.text, th.text { text-align: left; }
td:first-child { white-space: nowrap; }
.front { color: #d1495b; }
.id { white-space: nowrap; font-size: 11.5px; }
.ci { display: block; white-space: nowrap; font-size: 11px; color: var(--muted); }
tbody tr:nth-child(even) { background: #fafbfc; }
.scroll { overflow-x: auto; max-width: 100%; }
figure { margin: 10px 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 12.5px; margin-top: 4px; }
.badge { display: inline-block; border-radius: 3px; padding: 0 5px; font-size: 11px;
         font-weight: 600; border: 1px solid; white-space: nowrap; }
.m-counter { color: var(--ok); border-color: var(--ok); }
.m-integrated { color: #1f5f8b; border-color: #1f5f8b; }
.m-estimated { color: var(--est); border-color: var(--est); background: var(--est-bg); }
.m-unavailable { color: var(--muted); border-color: var(--line); }
.warn { border-left: 4px solid var(--est); background: var(--est-bg); padding: 6px 10px;
        margin: 8px 0; }
.note { border-left: 4px solid var(--line); padding: 4px 10px; color: var(--muted); }
code { font: 12px ui-monospace, "DejaVu Sans Mono", monospace; background: var(--band);
       padding: 0 3px; border-radius: 3px; }
@media print {
  main { max-width: none; padding: 0; }
  body { font-size: 11px; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  nav { break-after: page; }
  h2 { break-after: avoid; }
  h3 { break-after: avoid; }
  figure, table, .warn, .cards { break-inside: avoid; }
  .scroll { overflow: visible; }
  a { color: inherit; text-decoration: none; }
  @page { size: A4; margin: 14mm 12mm; }
}
"""


def esc(value: Any) -> str:
    """Escape text for HTML; missing values become an empty string."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return ""
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    return escape(str(value))


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN and pandas.NA
    except TypeError:
        return True


def fmt_num(value: Any, digits: int = 4) -> str:
    """A number with ``digits`` significant digits; ``–`` when missing."""
    if _missing(value):
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return esc(value)  # a text or boolean hyperparameter
    if isinstance(value, int):
        return f"{value:,}"
    return fmt_sig(value, digits)


def fmt_energy(joules: Any) -> str:
    """Energy with a readable unit (J, kJ, MJ, GJ); ``–`` when not measured."""
    if _missing(joules):
        return "–"
    x = float(f"{float(joules):.3g}")  # the unit of the rounded value: 999.7 J is 1 kJ
    for factor, unit in ((1e9, "GJ"), (1e6, "MJ"), (1e3, "kJ")):
        if abs(x) >= factor:
            return f"{fmt_sig(x / factor)} {unit}"
    return f"{fmt_sig(x)} J"


def fmt_duration(seconds: Any) -> str:
    """Duration in s, min, h or days."""
    if _missing(seconds):
        return "–"
    x = float(f"{float(seconds):.3g}")
    if abs(x) >= 3 * 86400:
        return f"{fmt_sig(x / 86400)} days"
    if abs(x) >= 7200:
        return f"{fmt_sig(x / 3600)} h"
    if abs(x) >= 120:
        return f"{fmt_sig(x / 60)} min"
    return f"{fmt_sig(x)} s"


def fmt_pct(share: Any) -> str:
    """A share (0..1) as a percentage."""
    return "–" if _missing(share) else f"{float(share) * 100:.0f}%"


def fmt_ci(value: Any, low: Any, high: Any, fmt: Callable[[Any], str] = fmt_num) -> str:
    """``value`` with ``[low, high]`` on a line of its own; no interval when not computable.

    Energies and durations share the value's unit (``12.7 kJ`` over ``[12.6, 12.8]``).
    """
    if _missing(value):
        return "–"
    if _missing(low) or _missing(high):
        return esc(fmt(value))
    shown = fmt(value)
    unit = shown.rpartition(" ")[2] if fmt in (fmt_energy, fmt_duration) else ""
    factor = _UNITS.get(unit)
    if factor is not None:
        bounds = f"{fmt_sig(float(low) / factor)}, {fmt_sig(float(high) / factor)}"
    else:
        bounds = f"{fmt(low)}, {fmt(high)}"
    return f"{esc(shown)}<span class='ci'>[{esc(bounds)}]</span>"


_UNITS = {
    "J": 1.0,
    "kJ": 1e3,
    "MJ": 1e6,
    "GJ": 1e9,
    "s": 1.0,
    "min": 60.0,
    "h": 3600.0,
    "days": 86400.0,
}


def fmt_value(value: Any) -> str:
    """A hyperparameter value: integers as they are (a seed is not a quantity), 4 digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return fmt_num(value)


def badge(method: str) -> str:
    """A coloured label for a measurement method; estimates are unmistakable."""
    label = "ESTIMATE" if method == "estimated" else method
    return f"<span class='badge m-{esc(method)}'>{esc(label)}</span>"


def warn(text: str) -> str:
    """A highlighted caution paragraph (text is escaped)."""
    return f"<p class='warn'>{esc(text)}</p>"


def table(
    frame: pd.DataFrame,
    columns: Sequence[Column],
    *,
    limit: int | None = None,
    caption: str = "",
    css_class: str = "",
) -> str:
    """An HTML table of ``frame``'s rows, formatting each column with its formatter."""
    rows = frame if limit is None else frame.head(limit)
    head = "".join(f"<th>{esc(header)}</th>" for _c, header, _f in columns)
    body: list[str] = []
    values = [rows[c].tolist() for c, _h, _f in columns]
    for i in range(len(rows)):
        cells = "".join(f"<td>{fmt(values[k][i])}</td>" for k, (_c, _h, fmt) in enumerate(columns))
        body.append(f"<tr>{cells}</tr>")
    more = ""
    if limit is not None and len(frame) > limit:
        more = f"<p class='muted'>showing {limit:,} of {len(frame):,} rows</p>"
    cap = f"<caption class='muted'>{esc(caption)}</caption>" if caption else ""
    cls = f" class='{esc(css_class)}'" if css_class else ""
    return (
        f"<div class='scroll'><table{cls}>{cap}<thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>{more}"
    )


def figure(plot: Plot, caption: str, alt: str) -> str:
    """An embedded figure with its caption (caption is HTML; notes are escaped)."""
    notes = "".join(f" {esc(n[0].upper() + n[1:])}." for n in plot.notes)
    return (
        f"<figure><img src='{plot.data_uri}' alt='{esc(alt)}'>"
        f"<figcaption>{caption}{notes}</figcaption></figure>"
    )


def page(title: str, header: str, sections: Iterable[tuple[str, str, str]]) -> str:
    """The whole document: title, header HTML, a contents list and the sections.

    Args:
        title: The document title.
        header: HTML shown above the contents list.
        sections: ``(anchor id, heading, body HTML)`` per section.
    """
    sections = list(sections)
    nav = "".join(f"<li><a href='#{esc(a)}'>{esc(h)}</a></li>" for a, h, _b in sections)
    body = "".join(f"<section id='{esc(a)}'><h2>{esc(h)}</h2>{b}</section>" for a, h, b in sections)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body><main>"
        f"{header}<nav><b>Contents</b><ol>{nav}</ol></nav>{body}</main></body></html>\n"
    )
