"""Strings from records made safe for where they land: a terminal, a markdown table, a page.

Model names, messages and labels come from users and from exceptions; a run id or a model name is
a string anyone can set. A terminal must not receive escape sequences from them (they can move the
cursor, retitle the window, hide lines), a GitHub summary must not receive raw HTML or a ``|`` that
splits a table row, and nobody wants a 200,000-character model name repeated in every row. The
parquet keeps every string whole; only what is shown is changed.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["MAX_SHOWN", "SafeStream", "clip", "console_safe", "fmt_ms", "json_value", "md_code", "md_text"]

#: Characters of one value shown at most in a table cell or line.
MAX_SHOWN = 160

# ANSI CSI / OSC sequences, then any other C0/C1 control character (newline and tab handled apart).
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clip(value: Any, limit: int = MAX_SHOWN) -> str:
    """`value` as text of at most `limit` characters, an ellipsis saying how much was left out."""
    text = "" if value is None else str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… (+{len(text) - limit} chars)"


def console_safe(text: Any, keep_newlines: bool = True) -> str:
    """Text with terminal escape sequences and control characters removed."""
    out = _CONTROLS.sub("", _ESCAPES.sub("", "" if text is None else str(text)))
    return out if keep_newlines else out.replace("\n", " ").replace("\t", " ")


def md_text(value: Any, limit: int = MAX_SHOWN) -> str:
    """Plain markdown text for a table cell or a list item: no raw HTML, no table breaks, no
    emphasis or link syntax taken from the value."""
    text = console_safe(clip(value, limit), keep_newlines=False)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_\[\]|#~!])", r"\\\1", text)


def md_code(value: Any, limit: int = MAX_SHOWN) -> str:
    """`value` as a markdown code span that survives any content: the fence is one backtick longer
    than the longest run inside, and ``|`` is escaped for GitHub's table parser (which reads it
    before the code span). HTML inside a code span is shown, never rendered."""
    text = console_safe(clip(value, limit), keep_newlines=False).replace("|", "\\|")
    runs = [len(m) for m in re.findall(r"`+", text)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def fmt_ms(seconds: Any, missing: str = "-") -> str:
    """Seconds as milliseconds with three significant digits (whole milliseconds from 100 ms up),
    `missing` for None or NaN: the one spelling of a latency in every table benchbed prints."""
    if seconds is None:
        return missing
    try:
        ms = float(seconds) * 1e3
    except (TypeError, ValueError):
        return missing
    if ms != ms:
        return missing
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def json_value(v: Any) -> Any:
    """A value as strict JSON holds it: numpy scalars as Python ones, NaN and infinities as null."""
    v = v.item() if hasattr(v, "item") else v
    return None if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))) else v


class SafeStream:
    """A text stream that passes what is written through `console_safe` (newline, tab and carriage
    return kept): the ``benchbed`` command wraps stdout and stderr in it, so no path, name or
    third-party warning (matplotlib echoing a model name's control bytes in a font warning) reaches
    the terminal raw."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(_LAYOUT.sub("", _ESCAPES.sub("", text)))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self.stream.flush()

    def fileno(self) -> int:
        return self.stream.fileno()

    def isatty(self) -> bool:
        return self.stream.isatty()

    @property
    def encoding(self) -> str:
        return getattr(self.stream, "encoding", "utf-8")


#: `_CONTROLS` less the carriage return (progress lines rewrite themselves with it).
_LAYOUT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
