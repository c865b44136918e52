#!/usr/bin/env python3
"""After ``benchbed history --json``: bisect each confirmed change point that coincides with an
environment change, over each package that changed between the two nights, and write the culprit
(or why none was found — never a guess) into the job summary.

    benchbed history history/cpu --json history.json || true
    python scripts/nightly_bisect.py history.json history/cpu --summary "$GITHUB_STEP_SUMMARY" \\
        -- --min-time 1 --max-time 4

Options after ``--`` go to every ``benchbed bisect`` (timing, --find-links, --no-index...). Changes of
hardware or of keys that are not packages (``env_cpu``, ``env_gpu``...) are said and not bisected.
Exit 0 always (the gate is `history`'s exit code; this job explains it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from typing import Any

#: env_* record keys that name no installable package
NOT_PACKAGES = {"env_host", "env_os", "env_cpu", "env_cores", "env_gpu", "env_gpu_driver", "env_cuda", "env_python",
                "env_benchbed", "env_git_sha", "env_git_dirty", "env_ci", "env_tokenizers_parallelism", "env_cpu_id",
                "env_cpu_isa", "env_torch_cpu_capability", "env_physical_cores", "env_memory_gib"}


def package_changes(change: str) -> list[tuple[str, str, str]]:
    """(package, before, after) for each package in an environment-change line of history
    (``env_transformers: 5.23.0 -> 5.24.0; env_cpu: ...``); versions lose a local part (+cpu) and
    anything after the first space (onnxruntime's providers)."""
    out = []
    for part in change.split(";"):
        m = re.match(r"\s*(env_[A-Za-z0-9_]+):\s*(.+?)\s*->\s*(.+?)\s*$", part)
        if not m or m.group(1) in NOT_PACKAGES:
            continue
        name = m.group(1)[4:].replace("_", "-")
        before, after = (v.split()[0].split("+")[0] for v in (m.group(2), m.group(3)))
        out.append((name, before, after))
    return out


def jobs(history: dict[str, Any], limit: int) -> tuple[list[dict[str, Any]], list[str]]:
    """The bisections to run (case, package, good, bad), and lines for points not bisected."""
    todo, notes = [], []
    for p in history.get("change_points", []):
        if not p.get("env_change"):
            continue
        packages = package_changes(p["env_change"])
        if not packages:
            notes.append(f"{p['label']}: {p['kind']} at run {p['run_id']} coincides with {p['env_change']}: "
                         f"not a package change, not bisected")
        for name, good, bad in packages:
            if len(todo) >= limit:
                notes.append(f"{p['label']}: {name} {good} → {bad} not bisected (at most {limit} a night)")
                continue
            todo.append({"case_id": p["case_id"], "label": p["label"], "kind": p["kind"], "package": name,
                         "good": good, "bad": bad})
    return todo, notes


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("history", help="the JSON `benchbed history --json` wrote")
    ap.add_argument("results", help="the history's results folder (the cells are taken from it)")
    ap.add_argument("--summary", help="markdown file to append to (the job summary)")
    ap.add_argument("--max", type=int, default=3, help="bisections per night at most (default 3)")
    ap.add_argument("--bisect-results", default="bisections", help="where bisect records go (default bisections/)")
    args = ap.parse_args(argv)
    with open(args.history) as fh:
        history = json.load(fh)
    todo, notes = jobs(history, args.max)
    lines = ["## Culprits of environment changes", ""]
    if not todo and not notes:
        lines.append("No confirmed change point coincides with an environment change.")
    for job in todo:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "bisect.json")
            cmd = [sys.executable, "-m", "benchbed.cli", "bisect", "--case", job["case_id"], "--from", args.results,
                   "--package", job["package"], "--good", job["good"], "--bad", job["bad"], "--results",
                   args.bisect_results, "--json", out, *extra]
            print("$ " + " ".join(cmd[2:]), flush=True)
            p = subprocess.run(cmd, text=True, capture_output=True)
            sys.stdout.write(p.stdout)
            sys.stderr.write(p.stderr)
            what = f"`{job['label']}` ({job['kind']}): {job['package']} {job['good']} → {job['bad']}"
            if os.path.exists(out):
                with open(out) as fh:
                    res = json.load(fh)
                if res["culprit"]:
                    lines.append(f"- {what}: **culprit {job['package']} {res['culprit']}** ({res['direction']}, "
                                 f"{len(res['steps'])} steps, {res['seconds']:.0f}s)")
                else:
                    lines.append(f"- {what}: no culprit found — {res['reason']}")
            else:
                last = (p.stderr.strip().splitlines() or ["no output"])[-1]
                lines.append(f"- {what}: bisect could not run (exit {p.returncode}): {last}")
    lines += [f"- {n}" for n in notes] + [""]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.summary:
        with open(args.summary, "a") as fh:
            fh.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
