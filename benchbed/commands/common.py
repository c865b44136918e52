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
           "emit", "gate", "non_negative_int"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNJUDGED, EXIT_WRITE = 0, 1, 2, 3, 4
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143


class Parser(argparse.ArgumentParser):
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


def load_table(paths: Sequence[str], what: str) -> Any:
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
    return table


def load(paths: Sequence[str], what: str) -> Any:
    """Records under `paths` as a DataFrame (see `load_table`)."""
    return load_table(paths, what).to_pandas()


def regress_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threshold", action="append", metavar="[METRIC:][PATTERN=]VALUE",
                   help="regression threshold (default 5%%); repeat to override per metric or per case pattern, "
                        "e.g. --threshold 5%% --threshold 'fill-mask*=8%%' --threshold p99:10%%")
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
    return Thresholds.parse(args.threshold)


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


def gate(found: int, unjudged: int, compared: int) -> int:
    """The regression gate's exit code: 1 on a regression; else 3 when anything could not be judged
    or nothing was compared (a gate fails closed); else 0."""
    if found:
        return EXIT_FAILED
    if unjudged or not compared:
        return EXIT_UNJUDGED
    return EXIT_OK


