"""Run a command with CPU-bound neighbours beside it, the way a shared CI runner or a developer's
busy laptop would: the README's test command must pass like this (a timing test asserts "holds,
or the records say the machine was busy").

    python scripts/busy_neighbour.py -- pytest            # one neighbour: a spinning Python process
    python scripts/busy_neighbour.py --neighbours 2 -- pytest tests/test_engine.py

Prints the command's exit code, its wall time and how much CPU the neighbours took, and exits with
the command's exit code. The neighbours are killed however the command ends.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

SPIN = "import time\nwhile True:\n    sum(i * i for i in range(10_000))\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--neighbours", type=int, default=1, help="CPU-bound processes beside the command (default 1)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command or args.neighbours < 0:
        parser.error("give a command after --, and --neighbours >= 0")
    import psutil

    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(args.neighbours)]
    start = time.perf_counter()
    try:
        code = subprocess.call(command)
    finally:
        cpu = 0.0
        for p in spinners:
            try:
                t = psutil.Process(p.pid).cpu_times()
                cpu += t.user + t.system
            except psutil.Error:
                pass
            p.kill()
            p.wait()
    wall = time.perf_counter() - start
    print(f"busy_neighbour: exit {code} in {wall:.0f} s beside {args.neighbours} neighbour(s) that used "
          f"{cpu / wall if wall else 0:.2f} cores", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
