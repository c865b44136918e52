"""The ``benchbed`` console script's first code, outside the package on purpose: importing
``benchbed`` takes ~0.3 s (pandas, pyarrow), and a Ctrl-C or SIGTERM in that window would print a
``KeyboardInterrupt`` traceback. Here the handlers are installed before any import, so a signal
then is one line and exit 130/143 with nothing written; `benchbed.cli.main` installs its own next.
"""

from __future__ import annotations

import signal  # first: the handlers go in before anything else is imported
import os
import sys


def _early_exit(signum: int, frame: object) -> None:
    code = 143 if signum == signal.SIGTERM else 130
    os.write(2, b"benchbed: interrupted while starting; nothing was written\n")
    os._exit(code)


def main() -> int:
    # a signal the shell told us to ignore (SIGINT of a background job) stays ignored
    previous = {s: signal.signal(s, _early_exit) for s in (signal.SIGINT, signal.SIGTERM)
                if signal.getsignal(s) is not signal.SIG_IGN}
    from benchbed.cli import clean_excepthook
    from benchbed.cli import main as benchbed_main

    sys.excepthook = clean_excepthook

    for s, handler in previous.items():
        signal.signal(s, handler)
    return benchbed_main()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
