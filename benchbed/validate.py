"""Every value a user types, parsed and checked before anything runs or is written.

One layer for all doors (the ``benchbed`` subcommands and the pytest options): each check is a
function that returns the clean value or raises `SpecError` with one line naming the value and
what is valid. ``arg(...)`` wraps a check as an argparse ``type=``, so argparse reports the same
line and the command exits 2 with nothing written. Non-finite numbers, empty values, paths of the
wrong kind and ids that could become a path outside the results folder are refused everywhere.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable

from .display import clip
from .spec import SpecError, limit_of, positive_int_value

__all__ = ["RUN_ID_PATTERN", "arg", "check_run_id", "csv_values", "finite_float", "positive_float",
           "non_negative_float", "positive_int", "output_file", "existing_path", "check_writable"]

#: What a run id may be: it names a folder under the results root, so no separators, no ``..``,
#: no leading dot (dot-prefixed names are temporary files that readers skip), at most 128 characters.
RUN_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_RUN_ID_RE = re.compile(RUN_ID_PATTERN)


def check_run_id(value: Any, what: str = "run id") -> str:
    """`value` if it is a plain run id (letters, digits, ``.``, ``_``, ``-``; no ``..``)."""
    text = str(value) if value is not None else ""
    if not _RUN_ID_RE.fullmatch(text) or ".." in text:
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise SpecError(f"{what} {shown!r} is not a plain id (valid: 1-128 of A-Z a-z 0-9 . _ -, starting with a "
                        f"letter or digit, no '..')")
    return text


def csv_values(text: Any, what: str = "value") -> list[str]:
    """A comma-separated list with no empty items: ``--task ""`` is a mistake (an unset CI
    variable), not a request for the default axis."""
    items = [v.strip() for v in str(text).split(",")]
    if not any(items):
        raise SpecError(f"{what}: empty value (give one or more comma-separated values, or leave the option out)")
    if not all(items):
        raise SpecError(f"{what}: empty item in {str(text)!r} (remove the stray comma)")
    return items


def _number(text: Any, what: str) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        raise SpecError(f"{what} must be a number, got {str(text)!r}") from None
    if not math.isfinite(value):
        raise SpecError(f"{what} must be a finite number, got {str(text)!r}")
    top = limit_of(what)
    if abs(value) > top:
        raise SpecError(f"{what} must be at most {top:g}, got {str(text)!r}")
    return value


def finite_float(text: Any, what: str = "value") -> float:
    return _number(text, what)


def positive_float(text: Any, what: str = "value") -> float:
    value = _number(text, what)
    if value <= 0:
        raise SpecError(f"{what} must be a positive number, got {str(text)!r}")
    return value


def non_negative_float(text: Any, what: str = "value") -> float:
    value = _number(text, what)
    if value < 0:
        raise SpecError(f"{what} must be zero or more, got {str(text)!r}")
    return value


def duration(text: Any, what: str = "value") -> float:
    """Seconds from ``90``, ``90s``, ``2m`` or ``1.5h``: above 0 and at most a week."""
    raw = str(text).strip().lower()
    scale = {"s": 1.0, "m": 60.0, "h": 3600.0}.get(raw[-1:], None)
    number = raw[:-1] if scale is not None else raw
    try:
        value = float(number) * (scale or 1.0)
    except ValueError:
        raise SpecError(f"{what} must be a duration such as 90s, 2m or 1.5h, got {clip(repr(str(text)), 60)}") from None
    if not math.isfinite(value) or not 0 < value <= 7 * 86400:
        raise SpecError(f"{what} must be above 0 and at most a week (604800s), got {clip(repr(str(text)), 60)}")
    return value


def duration_or_off(text: Any, what: str = "value") -> float | str:
    """A `duration`, or ``off`` (none at all, where there would be a default)."""
    if str(text).strip().lower() == "off":
        return "off"
    try:
        return duration(text, what)
    except SpecError as exc:
        raise SpecError(f"{exc} (or off, for none)") from None


def unit_interval(text: Any, what: str = "value") -> float:
    """A number from 0 up to (not including) 1 (SGD's momentum)."""
    value = _number(text, what)
    if not 0 <= value < 1:
        raise SpecError(f"{what} must be from 0 up to (not including) 1, got {str(text)!r}")
    return value


def percent(text: Any, what: str = "value") -> float:
    """A percentage above 0 and below 100 (``2`` or ``2%``), as a fraction (0.02)."""
    raw = str(text).strip()
    value = _number(raw[:-1] if raw.endswith("%") else raw, what)
    if not 0 < value < 100:
        raise SpecError(f"{what} must be a percentage above 0 and below 100 (e.g. 2 or 2%), got {str(text)!r}")
    return value / 100


def positive_int(text: Any, what: str = "value") -> int:
    return positive_int_value(what, str(text))


def check_writable(root: str | os.PathLike[str]) -> str | None:
    """Why `root` cannot hold results (a sentence), or None when it can. Creates nothing."""
    if "://" in str(root):
        return None  # a remote store is checked by its first write
    path = Path(root).absolute()
    too_long = [part for part in path.parts if len(os.fsencode(part)) > 255]
    if too_long or len(os.fsencode(str(path))) > 3800:
        return (f"results folder {str(root)[:80]!r}... has a name too long for the filesystem "
                f"(at most 255 bytes a folder name, 3800 in all)")
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            return f"results folder {str(root)!r} has no existing parent"
        probe = probe.parent
    if not probe.is_dir():
        return f"results folder {str(root)!r} cannot be created: {str(probe)!r} is not a folder"
    try:  # os.access says yes to root everywhere; a real probe that leaves nothing behind does not lie
        os.rmdir(tempfile.mkdtemp(prefix=".benchbed-probe-", dir=probe))
    except OSError as exc:
        return f"results folder {str(root)!r} is not writable ({exc.strerror or exc} in {str(probe)!r})"
    return None


def output_file(text: Any, what: str = "output file") -> str:
    """A file path to write: not empty, not an existing folder, its folder existing or creatable
    and writable (checked without creating anything)."""
    path = str(text)
    if not path.strip():
        raise SpecError(f"{what}: empty path")
    if any(len(os.fsencode(part)) > 255 for part in Path(path).parts) or len(os.fsencode(path)) > 3800:
        raise SpecError(f"{what} {path[:60]!r}...: a name too long for the filesystem (at most 255 bytes a name)")
    if os.path.isdir(path) or path.endswith(("/", os.sep)):
        raise SpecError(f"{what} {path!r} is a folder; give a file name")
    problem = check_writable(os.path.dirname(os.path.abspath(path)))
    if problem:
        raise SpecError(f"{what} {path!r}: " + problem.replace("results folder", "folder"))
    return path


def existing_path(text: Any, what: str = "results") -> str:
    path = str(text)
    if not path.strip():
        raise SpecError(f"{what}: empty path")
    if "://" not in path and not os.path.exists(path):
        raise SpecError(f"{what} {path!r} does not exist")
    return path


def arg(check: Callable[..., Any], what: str) -> Callable[[str], Any]:
    """`check` as an argparse ``type=``: the same one-line message, exit 2."""

    def parse(text: str) -> Any:
        try:
            return check(text, what)
        except SpecError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = getattr(check, "__name__", "value")
    return parse
