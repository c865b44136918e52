"""The ``benchbed`` command: the parser and the dispatch; each subcommand lives in
`benchbed.commands` (its options and what it does).

Bad input — an unknown task, model, runner, dtype or device, a malformed suite, an empty or
non-finite value, a run id that is not a plain name, an output path that is a folder, an
unwritable results folder — is one line on stderr naming the valid choices, exit code 2, and
nothing written (every value goes through `benchbed.validate` before anything runs).

Exit codes: 0 ok; 1 a case failed (error, timeout, parity mismatch) or a regression was found;
2 bad input; 3 the regression gate could not judge (a case without finite samples, a case that
did not finish, no case in common, an environment change); 4 a file could not be written (disk
full, file-size limit, I/O error); 130 interrupted (SIGINT); 143 terminated (SIGTERM). On 130 and
143 every finished case is saved and the run is compacted.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any, Sequence

from .atomic import WriteFailed
from .commands import COMMANDS
from .commands.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_UNJUDGED,
    EXIT_USAGE,
    EXIT_WRITE,
    NothingToJudge,
    Parser,
)
from .display import SafeStream, clip, console_safe
from .spec import SpecError

__all__ = ["main", "build_parser", "clean_excepthook", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_UNJUDGED", "EXIT_WRITE",
           "EXIT_INTERRUPTED", "EXIT_TERMINATED"]


class Terminated(KeyboardInterrupt):
    """SIGTERM (a CI cancel, ``kill``): unwinds exactly like Ctrl-C, so finished cases are saved."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="benchbed", description="Raw PyTorch module calls vs Hugging Face pipelines vs the runtime "
                    "you would deploy: latency, throughput, memory and output parity, saved as parquet.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"benchbed {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for command in COMMANDS.values():
        command.add_parser(sub)
    return parser


def clean_excepthook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
    """The process's last words on a bug (ours or a plug-in's): its traceback, with terminal escape
    codes and control bytes cleaned like every other line benchbed prints."""
    import traceback

    sys.stderr.write(console_safe("".join(traceback.format_exception(kind, value, tb))))
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    wrapped = not isinstance(sys.stdout, SafeStream)
    if wrapped:
        sys.stdout, sys.stderr = SafeStream(sys.stdout), SafeStream(sys.stderr)
    try:
        return _main(argv)
    finally:
        if wrapped:
            sys.stdout, sys.stderr = sys.stdout.stream, sys.stderr.stream


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command not in COMMANDS:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    try:
        return COMMANDS[args.command].main(args)
    except SpecError as exc:
        print(console_safe(f"benchbed: error: {clip(exc, 500)}", keep_newlines=False), file=sys.stderr)
        return EXIT_USAGE
    except NothingToJudge as exc:
        print(console_safe(f"benchbed: {clip(exc, 500)}", keep_newlines=False), file=sys.stderr)
        return EXIT_UNJUDGED
    except WriteFailed as exc:
        print(console_safe(f"benchbed: error: {exc}; finished cases before it are saved", keep_newlines=False),
              file=sys.stderr)
        return EXIT_WRITE
    except Terminated:
        print("benchbed: terminated (SIGTERM); finished cases are saved", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("benchbed: interrupted; finished cases are saved", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.excepthook = clean_excepthook
    sys.exit(main())
