#!/usr/bin/env python3
"""The GPU check: one budgeted command that runs benchbed's CUDA paths and judges what they measured.

    python scripts/gpu_check.py --out "$OUT"            # every step, 8-minute budget
    python scripts/gpu_check.py --out gc --steps timing,memory,pair
    python scripts/gpu_check.py --device cpu --quick --out gc   # the CPU smoke run CI keeps working

Steps, most valuable first (a cut run still has the early ones):
  timing     the loop's wall clock against CUDA events on a queued matmul workload (within 3%)
  memory     allocator peak and NVML device memory against a known 1 GiB allocation (within 5%)
  pair       torch vs pipeline interleaved on the device: fp32/fp16/bf16, batch 1/16/128, parity,
             and every record's wall median against its CUDA-event median
  onnx       ONNX Runtime (CUDA provider, I/O binding) beside torch: ran on CUDA or skipped with why
  compile    torch.compile'd, both paths
  variants   sdpa vs eager attention, torchao int8
  training   the hand-written loop vs transformers.Trainer: fp32, bf16, fp16 with a gradient scaler
  oom        batch sizes up to an out-of-memory under a memory cap, both paths
  isolation  a known allocation measured in a fresh process after a bigger case, and in process

Each step runs in its own process group with its own timeout, inside a total budget; a step
past its timeout is killed (with every process it started) and is a FAIL, a step the budget no
longer fits is a SKIP. A step that could not run says SKIP with the reason; one that ran and
failed, FAIL; a step whose records are all skipped or errored never passes. Every step prints its
duration. ``OUT/summary.txt`` and ``OUT/checks.json`` are rewritten after each step, so they are
readable in the first minute of a run that is cut. Exit 0: no FAIL (SKIPs allowed); 1: a FAIL;
2: bad input (no CUDA device for a CUDA run, an unknown step).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # gpu_steps, beside this file

#: (name, what it checks, timeout in seconds: about 3x its expected time on an H200, see docs/gpu.md)
STEPS: list[tuple[str, str, float]] = [
    ("timing", "timer vs CUDA events", 60),
    ("memory", "allocator and NVML memory vs a known allocation", 60),
    ("pair", "torch vs pipeline interleaved on the device", 180),
    ("onnx", "ONNX Runtime with I/O binding beside torch", 150),
    ("compile", "torch.compile'd, both paths", 180),
    ("variants", "sdpa vs eager attention; torchao int8", 120),
    ("training", "the hand-written loop vs transformers.Trainer", 150),
    ("oom", "out-of-memory sweep under a memory cap", 120),
    ("isolation", "a known allocation, isolated and in process", 120),
]
STEP_NAMES = [s[0] for s in STEPS]
#: seconds kept back from the budget for writing the summary
RESERVE_S = 5.0

from gpu_steps import CHECKS, MARK, RUN, Ctx, check  # noqa: E402 - after the path is set


def run_step(args: argparse.Namespace) -> int:
    """Child mode: run one step, write its checks to OUT/steps/NAME.json."""
    if args.hang == args.run_step:
        print(f"(--hang {args.hang}: this step now waits forever)", flush=True)
        while True:
            time.sleep(3600)
    ctx = Ctx(args.out, args.device, args.quick)
    try:
        RUN[args.run_step](ctx)
    except Exception as exc:  # a broken step is one FAIL; the other steps still run
        check(args.run_step, False, f"step failed: {exc.__class__.__name__}: {exc}")
    path = os.path.join(args.out, "steps", args.run_step + ".json")
    with open(path + ".tmp", "w") as fh:
        json.dump(CHECKS, fh, indent=1, default=str)
    os.replace(path + ".tmp", path)
    return 0


# -- the driver ---------------------------------------------------------------------------------------

def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def drive(name: str, args: argparse.Namespace, timeout: float) -> tuple[list[dict[str, Any]], float]:
    """Run step `name` in its own process group, at most `timeout` seconds; its checks."""
    cmd = [sys.executable, os.path.abspath(__file__), "--out", args.out, "--device", args.device, "--run-step", name]
    cmd += ["--quick"] if args.quick else []
    cmd += ["--hang", args.hang] if args.hang else []
    path = os.path.join(args.out, "steps", name + ".json")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, start_new_session=True)
    try:
        code = proc.wait(timeout=max(timeout, 1.0))
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        spent = time.perf_counter() - t0
        done = _read(path)
        return done + [{"check": name, "ok": False, "detail": f"cut at its timeout after {spent:.0f}s (step timeout "
                        f"{timeout:.0f}s); every process it started was killed"}], spent
    except BaseException:
        _kill_group(proc)
        raise
    spent = time.perf_counter() - t0
    done = _read(path)
    if code != 0 or not done:
        done.append({"check": name, "ok": False, "detail": f"the step's process exited {code} without its checks"})
    return done, spent


def _read(path: str) -> list[dict[str, Any]]:
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return []


def write_outputs(args: argparse.Namespace, env: dict[str, Any], steps: list[dict[str, Any]], elapsed: float,
                  final: bool) -> str:
    """summary.txt and checks.json as they stand (rewritten after every step)."""
    lines = [f"gpu_check: {env.get('env_gpu') or env.get('env_cpu')} — {elapsed:.0f}s of a {args.budget:.0f}s budget"
             + ("" if final else " (running)"), ""]
    for st in steps:
        lines.append(f"== {st['step']}: {st['verdict']} in {st['seconds']:.0f}s (timeout {st['timeout']:.0f}s)")
        lines += [f"  [{MARK[c['ok']]}] {c['check']}: {c['detail']}" for c in st["checks"]]
    if final:
        lines += ["", _table(args.out)]
    text = "\n".join(lines) + "\n"
    for name, body in (("summary.txt", text),
                       ("checks.json", json.dumps({"elapsed_s": elapsed, "budget_s": args.budget, "final": final,
                                                   "env": {k: str(v) for k, v in env.items()}, "steps": steps,
                                                   "checks": [c for st in steps for c in st["checks"]]},
                                                  indent=1, default=str))):
        path = os.path.join(args.out, name)
        with open(path + ".tmp", "w") as fh:
            fh.write(body)
        os.replace(path + ".tmp", path)
    return text


def _table(out: str) -> str:
    try:
        from benchbed.record import pool_records
        from benchbed.store import read_results
        from benchbed.summary import format_table

        df = read_results(os.path.join(out, "results"))
        return format_table(pool_records(df[df["task"] != "memory-calibration"].to_dict("records")))
    except Exception as exc:  # no results (every step skipped or cut): the checks still stand
        return f"(no results table: {exc.__class__.__name__}: {exc})"


def verdict(checks: list[dict[str, Any]]) -> str:
    if any(c["ok"] is False for c in checks):
        return "FAIL"
    return "PASS" if any(c["ok"] for c in checks) else "SKIP"


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="steps: " + ", ".join(STEP_NAMES))
    ap.add_argument("--out", default=os.environ.get("OUT"),
                    help="output folder: parquet, summary.txt, checks.json, runs.log (default: $OUT)")
    ap.add_argument("--device", default="cuda", help="device to check (default: cuda)")
    ap.add_argument("--quick", action="store_true", help="tiny model and matrix (the CPU smoke run)")
    ap.add_argument("--steps", default=",".join(STEP_NAMES), help="comma-separated steps to run, in the order above")
    ap.add_argument("--budget", type=float, default=480.0, metavar="S", help="total seconds (default 480)")
    ap.add_argument("--step-timeout", type=float, default=None, metavar="S",
                    help="one timeout for every step (default: each step's own, 60-180 s)")
    ap.add_argument("--hang", choices=STEP_NAMES, default=None,
                    help="testing the timeouts: make this step wait forever")
    ap.add_argument("--run-step", choices=STEP_NAMES, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if not args.out:
        ap.error("--out is required (or set $OUT)")
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = [s for s in steps if s not in STEP_NAMES]
    if unknown or not steps:
        ap.error(f"--steps: unknown step {unknown[0] if unknown else '(none)'!r} (valid: {', '.join(STEP_NAMES)})")
    if args.budget <= RESERVE_S or (args.step_timeout is not None and args.step_timeout <= 0):
        ap.error(f"--budget must be over {RESERVE_S:.0f} s and --step-timeout positive")
    args.step_list = steps
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.run_step:
        return run_step(args)
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # this driver never opens a CUDA context
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_check: error: no CUDA device here (use --device cpu --quick for the CPU smoke run)",
              file=sys.stderr)
        return 2
    start = time.perf_counter()
    os.makedirs(os.path.join(args.out, "steps"), exist_ok=True)
    from benchbed.env import collect_env

    env = collect_env()
    print(f"gpu_check on {env.get('env_gpu') or env.get('env_cpu')}; torch {env['env_torch']}, "
          f"CUDA {env.get('env_cuda')}, driver {env.get('env_gpu_driver')}; budget {args.budget:.0f}s, "
          f"steps {', '.join(args.step_list)}", flush=True)
    done: list[dict[str, Any]] = []
    write_outputs(args, env, done, 0.0, final=False)
    for k, (name, what, own_timeout) in enumerate([s for s in STEPS if s[0] in args.step_list], 1):
        left = args.budget - RESERVE_S - (time.perf_counter() - start)
        timeout = min(args.step_timeout or own_timeout, left)
        print(f"\n== {k}/{len(args.step_list)} {name}: {what} (timeout {timeout:.0f}s, {left:.0f}s of budget left)",
              flush=True)
        if timeout < 5:
            checks, spent = [{"check": name, "ok": None, "detail": f"budget spent ({args.budget:.0f}s)"}], 0.0
        else:
            checks, spent = drive(name, args, timeout)
        st = {"step": name, "verdict": verdict(checks), "seconds": spent, "timeout": timeout, "checks": checks}
        done.append(st)
        print(f"   {name}: {st['verdict']} in {spent:.0f}s", flush=True)
        write_outputs(args, env, done, time.perf_counter() - start, final=False)
    text = write_outputs(args, env, done, time.perf_counter() - start, final=True)
    print("\n" + text)
    return 1 if any(st["verdict"] == "FAIL" for st in done) else 0


if __name__ == "__main__":
    raise SystemExit(main())
