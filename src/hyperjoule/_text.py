"""Showing untrusted text (target output, metric names) without letting it act."""

from __future__ import annotations

__all__ = ["encodable", "safe_text"]


def _escape(ch: str) -> str:
    # repr of one non-printable character is its escape: '\x1b', '\ud800', '\u202e'.
    return repr(ch)[1:-1]


def safe_text(value: object, max_chars: int | None = None) -> str:
    """Return ``value`` as text a terminal, CSV or HTML writer can take as data.

    Control characters (ESC, OSC, CR, BEL, bidi overrides) and lone surrogates are
    written as Python escapes, so they can neither drive a terminal nor break a UTF-8
    encoder. Text longer than ``max_chars`` is cut and ends in ``...``.
    """
    text = value if isinstance(value, str) else str(value)
    if max_chars is not None and len(text) > max_chars:
        text = text[: max(0, max_chars - 3)] + "..."
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def encodable(text: str) -> str:
    """Return ``text`` with lone surrogates escaped, so it always encodes as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
