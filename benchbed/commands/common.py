"""What the subcommands share: exit codes, the parser class, safe console output, loading
records as a usage-checked step, and the regression options and outputs of compare and history."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

from ..atomic import write_text_atomic
from ..display import clip, console_safe
from ..spec import SpecError
from ..validate import (
    arg,
    csv_values,
    existing_path,
    finite_float,
    output_file,
    positive_int,
)

__all__ = ["EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_UNJUDGED", "EXIT_WRITE", "EXIT_INTERRUPTED",
           "EXIT_TERMINATED", "Parser", "csv_option", "out", "load", "load_table", "regress_options", "thresholds",
           "emit", "gate", "non_negative_int", "set_aside", "set_aside_unusable", "KEY_COLUMNS", "NothingToJudge"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNJUDGED, EXIT_WRITE = 0, 1, 2, 3, 4
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143


class Parser(argparse.ArgumentParser):
    """argparse with benchbed's usage errors: one line, exit 2, and two refusals for every option of
    every subcommand — an empty value (an unset CI variable is a mistake, not a request for the
    default) and text that is not UTF-8 (a path or a name a record could not hold)."""

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        ns, rest = super().parse_known_args(args, namespace)
        for action in self._actions:
            value = getattr(ns, action.dest, None) if action.dest != argparse.SUPPRESS else None
            if value is action.default:
                continue
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str):
                    name = "/".join(action.option_strings) or action.metavar or action.dest
                    if not item.strip():
                        self.error(f"{name}: empty value (give a value, or leave the option out)")
                    if "\x00" in item:
                        self.error(f"{name}: {console_safe(ascii(item))} holds a NUL character")
                    try:
                        item.encode("utf-8")
                    except UnicodeEncodeError:
                        self.error(f"{name}: {console_safe(ascii(item))} is not UTF-8 text")
        return ns, rest

    def error(self, message: str) -> None:  # one line, exit 2, like argparse but without the usage dump
        import re

        m = re.match(r"argument ([^:]+): (.*)$", message, re.S)
        if m and any(m.group(2).startswith(o) for o in m.group(1).split("/")):
            message = m.group(2)  # our checks name the option themselves
        self.exit(EXIT_USAGE, console_safe(f"{self.prog}: error: {clip(message, 500)}", keep_newlines=False) + "\n")


def csv_option(option: str) -> Any:
    return arg(csv_values, option)


def out(text: str) -> None:
    """Print to the console with terminal escape sequences removed (strings come from records)."""
    print(console_safe(text))


def non_negative_int(text: Any, what: str) -> int:
    return 0 if str(text).strip() == "0" else positive_int(text, what)


def json_target(text: Any, what: str) -> str:
    return "-" if str(text) == "-" else output_file(text, what)


class NothingToJudge(Exception):
    """Records were read, and every one was set aside as unusable: the gate cannot judge (exit 3)."""


def load_table(paths: Sequence[str], what: str, gate: bool = False) -> Any:
    """Records under `paths` as an Arrow table, read once; a skipped file is a warning on stderr,
    a missing path or no records at all a usage error."""
    import warnings

    from ..store import read_table

    for p in paths:
        existing_path(p, what)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = read_table(*paths)
    for w in caught:
        print(console_safe(f"benchbed: warning: {w.message}", keep_newlines=False), file=sys.stderr)
    if table.num_rows == 0:
        raise SpecError(f"no benchbed records in {', '.join(repr(p) for p in paths)}")
    before = table.num_rows
    table, aside = set_aside_unusable(table)
    for line in aside:
        print(console_safe(f"benchbed: warning: {what}: {line}", keep_newlines=False), file=sys.stderr)
    if table.num_rows == 0:
        message = f"no usable benchbed records in {', '.join(repr(p) for p in paths)} ({'; '.join(aside)})"
        raise NothingToJudge(message) if gate else SpecError(message)
    return table.replace_schema_metadata({**(table.schema.metadata or {}),
                                          b"benchbed_set_aside": str(before - table.num_rows).encode()})


def set_aside(frame_or_table: Any) -> int:
    """How many records `load`/`load_table` set aside as unusable (each counts as unjudged)."""
    if hasattr(frame_or_table, "attrs"):
        return int(frame_or_table.attrs.get("benchbed_set_aside", 0))
    meta = frame_or_table.schema.metadata or {}
    return int(meta.get(b"benchbed_set_aside", b"0"))


#: Columns every record must hold to be placed in a case at all: a record with a null here (written
#: back by hand, or by a tool that dropped values) is set aside with a warning, and the gate counts
#: it as unjudged (exit 3), never a traceback.
KEY_COLUMNS = ("run_id", "case_id", "task", "model", "runner", "device", "dtype", "batch_size", "seq_len", "status")


def set_aside_unusable(table: Any) -> tuple[Any, list[str]]:
    """(`table` less the records no reader can place in a case, one line per reason): a null in a
    key column. Samples that cannot be judged (NaN, infinite, over a year) stay: compare, history
    and the report name them case by case (`regress.compare.sample_problem`)."""
    import numpy as np
    import pyarrow as pa

    bad = np.zeros(table.num_rows, dtype=bool)
    lines = []
    for col in KEY_COLUMNS:
        nulls = table.column(col).is_null().to_numpy(zero_copy_only=False)
        if nulls.any():
            lines.append(f"{int(nulls.sum())} record(s) have no {col}: set aside, not judged")
            bad |= nulls
    if not bad.any():
        return table, []
    return table.filter(pa.array(~bad)), lines


def load(paths: Sequence[str], what: str, gate: bool = False) -> Any:
    """Records under `paths` as a DataFrame (see `load_table`); ``attrs`` counts those set aside."""
    table = load_table(paths, what, gate)
    frame = table.to_pandas()
    frame.attrs["benchbed_set_aside"] = set_aside(table)
    return frame


def regress_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metric", default="median", choices=["median", "mean", "p90", "p95", "p99", "ratio"],
                   help="what is judged: a latency statistic (default: median), or ratio: each runner's per-block "
                        "ratio to its cell's reference, timed in the same blocks (needs records of schema 9 measured "
                        "interleaved; older ones are not judged)")
    p.add_argument("--threshold", action="append", metavar="[METRIC:][PATTERN=]VALUE",
                   help="regression threshold (default 5%%, 3%% for --metric ratio); repeat to override per metric or "
                        "per case pattern, e.g. --threshold 5%% --threshold 'fill-mask*=8%%' --threshold ratio:2%%")
    p.add_argument("--thresholds", action="append", metavar="FILE",
                   help="threshold rules from a file, one per line (what `benchbed noise` writes); --threshold "
                        "rules given here override them; repeatable")
    p.add_argument("--alpha", type=arg(finite_float, "--alpha"), default=0.05, help="significance level (default: 0.05)")
    p.add_argument("--normalize", choices=["none", "host"], default="none",
                   help="judge raw latency (none, the default) or latency divided by each record's host yardstick, "
                        "timed in the same blocks (host: cancels a machine that ran slower as a whole; needs records "
                        "of schema 6 measured interleaved)")
    p.add_argument("--markdown", metavar="FILE", type=arg(output_file, "--markdown"), help="also write GitHub markdown (e.g. $GITHUB_STEP_SUMMARY; "
                                                       "appended to)")
    p.add_argument("--json", metavar="FILE", type=arg(json_target, "--json"), help="also write JSON ('-' for stdout instead of the table)")


def thresholds(args: argparse.Namespace) -> Any:
    from ..regress import Thresholds

    if not 0 < args.alpha < 1:
        raise SpecError(f"--alpha must be between 0 and 1, got {args.alpha}")
    if args.metric == "ratio" and args.normalize != "none":
        raise SpecError("--normalize host does not apply to --metric ratio: a ratio is already relative to its "
                        "reference, timed in the same blocks")
    from ..regress.thresholds import RATIO, RATIO_THRESHOLD

    return Thresholds.parse(args.threshold, default=RATIO_THRESHOLD if args.metric == RATIO else 0.05,
                            files=args.thresholds)


def emit(args: argparse.Namespace, data: dict[str, Any], console: str, markdown: str) -> None:
    from ..regress.output import to_json

    if args.json == "-":
        print(to_json(data))
    else:
        out(console)
        if args.json:
            write_text_atomic(args.json, to_json(data))
    if args.markdown:
        write_text_atomic(args.markdown, markdown, append=True)


def gate(found: int, unjudged: int, compared: int, underpowered: int = 0) -> int:
    """The regression gate's exit code: 1 on a regression; else 3 when anything could not be judged,
    nothing was compared (a gate fails closed), or — counted only under ``--require-power`` — a
    case was underpowered; else 0."""
    if found:
        return EXIT_FAILED
    if unjudged or not compared or underpowered:
        return EXIT_UNJUDGED
    return EXIT_OK


