"""One module per ``benchbed`` subcommand, each with ``add_parser(sub)`` (its options) and
``main(args) -> exit code`` (what it does); `benchbed.cli` only parses and dispatches."""

from __future__ import annotations

from . import bisect, compare, envs, explain, history, merge, noise, report, run, serve
from . import list as list_

__all__ = ["COMMANDS"]

#: Subcommands in the order ``benchbed --help`` lists them.
COMMANDS = {"run": run, "explain": explain, "report": report, "compare": compare, "history": history, "noise": noise,
            "merge": merge, "envs": envs, "bisect": bisect, "serve": serve, "list": list_}
