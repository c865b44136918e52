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
from typing import Any, Callable

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

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
MARK = {True: "PASS", False: "FAIL", None: "SKIP"}

CHECKS: list[dict[str, Any]] = []


def check(name: str, ok: bool | None, detail: str, **figures: Any) -> None:
    """Record one check: ok True (PASS) / False (FAIL), or None (SKIP: could not run here)."""
    CHECKS.append({"check": name, "ok": ok, "detail": detail, **figures})
    print(f"[{MARK[ok]}] {name}: {detail}", flush=True)


# -- the steps (each runs in its own process) ---------------------------------------------------------

def timing_check(ctx: "Ctx") -> None:
    import torch

    from benchbed.measure import StopRule, measure
    from benchbed.measure.gpu import EventTimer

    if not ctx.cuda:
        return check("timing vs CUDA events (matmul)", None, "no CUDA device")
    a = torch.randn(8192, 8192, device=ctx.device, dtype=torch.float16)

    def work() -> None:
        for _ in range(10):
            a @ a  # queued; only the synchronise waits

    events = EventTimer(ctx.device)
    t = measure(work, StopRule(warmup=3, min_samples=30, min_time_s=1, max_time_s=4),
                sync=lambda: torch.cuda.synchronize(ctx.device), events=events)
    wall = sorted(t.samples)[len(t.samples) // 2]
    ev = sorted(events.samples)[len(events.samples) // 2]
    dev = wall / ev - 1
    check("timing vs CUDA events (matmul)", abs(dev) < 0.03,
          f"wall median {wall * 1e3:.3f} ms, event median {ev * 1e3:.3f} ms ({100 * dev:+.2f}%)",
          wall_s=wall, event_s=ev)


def memory_check(ctx: "Ctx") -> None:
    import torch

    from benchbed.measure import CudaPeak
    from benchbed.measure.gpu import NvmlSampler, nvml_handle

    if not ctx.cuda:
        return check("allocator peak vs known 1 GiB", None, "no CUDA device")
    nbytes = 2**30
    torch.cuda.synchronize(ctx.device)
    torch.cuda.empty_cache()
    handle = nvml_handle(ctx.device)
    with NvmlSampler(handle, interval_s=0.01) as idle:
        time.sleep(0.2)
    with CudaPeak(ctx.device) as peak, NvmlSampler(handle, interval_s=0.01) as busy:
        block = torch.ones(nbytes // 4, device=ctx.device)
        torch.cuda.synchronize(ctx.device)
        time.sleep(0.3)
        del block
    got = peak.increase
    check("allocator peak vs known 1 GiB", abs(got / nbytes - 1) < 0.05,
          f"peak allocated increase {got / 2**20:.1f} MiB for 1024 MiB", bytes=got)
    if handle is None:
        check("NVML used vs known 1 GiB", None, "NVML not available")
    elif busy.peak_used_bytes is None or idle.peak_used_bytes is None:
        check("NVML used vs known 1 GiB", None, f"NVML gave no memory samples ({busy.unavailable})")
    else:
        delta = busy.peak_used_bytes - idle.peak_used_bytes
        check("NVML used vs known 1 GiB", abs(delta / nbytes - 1) < 0.05,
              f"NVML used rose {delta / 2**20:.1f} MiB for 1024 MiB"
              + (f"; {busy.unavailable}" if busy.unavailable else ""), bytes=delta)
    torch.cuda.empty_cache()


def cli(ctx: "Ctx", run_id: str, *args: str) -> subprocess.CompletedProcess:
    """`benchbed run` into the check's results folder, logged to OUT/runs.log."""
    cmd = [sys.executable, "-m", "benchbed.cli", "run", "--results", os.path.join(ctx.out, "results"),
           "--run-id", run_id, *args]
    print("$ benchbed run --run-id " + run_id + " " + " ".join(args), flush=True)
    p = subprocess.run(cmd, cwd=REPO, text=True, capture_output=True)
    with open(os.path.join(ctx.out, "runs.log"), "a") as fh:
        fh.write("$ " + " ".join(cmd) + "\n" + p.stdout + p.stderr + f"\n(exit {p.returncode})\n\n")
    tail = p.stdout.strip().splitlines()[-1:] or p.stderr.strip().splitlines()[-1:]
    print(f"   exit {p.returncode}: {tail[0] if tail else ''}", flush=True)
    return p


def records(ctx: "Ctx", run_id: str) -> Any:
    import pandas as pd

    path = os.path.join(ctx.out, "results", run_id)
    return pd.read_parquet(path) if os.path.isdir(path) else pd.DataFrame()


def judge(ctx: "Ctx", name: str, p: subprocess.CompletedProcess, run_id: str,
          must_run: Callable[[Any], Any] | None = None) -> None:
    """The verdict of a step's run: FAIL on exit >= 2, an error/timeout record or a parity mismatch;
    SKIP when no record (or none of `must_run`'s) ran; PASS otherwise. On CUDA the wall-clock median
    of every ok record must also be within 3% of its CUDA-event median."""
    df = records(ctx, run_id)
    if p.returncode >= 2 or df.empty:
        return check(name, False, f"benchbed run exit {p.returncode}, {len(df)} records (see runs.log)")
    bad = df[df["status"].isin(["error", "timeout"]) | (df["parity_ok"] == False)]  # noqa: E712
    if not bad.empty:
        return check(name, False, "; ".join(f"{r.runner} {r.dtype} b{r.batch_size}: {r.status} "
                                            f"{r.parity_detail if r.parity_ok is False else r.message}"
                                            for r in bad.itertuples())[:1500])
    subject = df if must_run is None else df[must_run(df)]
    ran = subject[subject["status"].isin(["ok", "oom"])]
    if ran.empty:
        reasons = sorted({str(m) for m in subject["message"].dropna()})
        return check(name, None, "nothing ran: " + ("; ".join(reasons)[:800] or "no records"))
    detail = f"{len(ran)} of {len(subject)} records ran, parity ok"
    skipped = subject[subject["status"] == "skipped"]
    if not skipped.empty:
        detail += f"; {len(skipped)} skipped ({'; '.join(sorted({str(m) for m in skipped['message']}))[:300]})"
    ok = True
    if ctx.cuda and "cuda_event_median_s" in df:
        timed = df[(df["status"] == "ok") & df["cuda_event_median_s"].notna()]
        if not timed.empty:
            dev = (timed["lat_median_s"] / timed["cuda_event_median_s"] - 1).abs()
            worst = timed.loc[dev.idxmax()]
            ok = bool((dev < 0.03).all())
            detail += (f"; wall vs CUDA events: {int((dev < 0.03).sum())}/{len(dev)} within 3%, worst "
                       f"{100 * dev.max():.2f}% ({worst['runner']} {worst['dtype']} b{worst['batch_size']})")
    ratios = {f"{r.runner} {r.dtype} b{r.batch_size}": float(r.ref_ratio) for r in ran.itertuples()
              if "ref_ratio" in ran and r.ref_ratio == r.ref_ratio and r.ref_ratio is not None}
    check(name, ok, detail, ratios=ratios)


def _common(ctx: "Ctx") -> list[str]:
    timing = ["--min-time", "0.05", "--max-time", "0.3"] if ctx.quick else ["--min-time", "0.3", "--max-time", "1.5"]
    return ["--task", "text-classification", "--model", ctx.model, "--device", ctx.device, "--no-isolate", *timing]


def pair_check(ctx: "Ctx") -> None:
    p = cli(ctx, "pair", *_common(ctx), "--dtype", "fp32,fp16,bf16" if ctx.cuda else "fp32",
            "--batch-size", "1,4" if ctx.quick else "1,16,128", "--seq-len", ctx.seq, "--runner", "torch,pipeline")
    judge(ctx, "torch vs pipeline interleaved", p, "pair")


def onnx_check(ctx: "Ctx") -> None:
    p = cli(ctx, "onnx", *_common(ctx), "--dtype", "fp32,fp16" if ctx.cuda else "fp32",
            "--batch-size", "1,4" if ctx.quick else "1,16,128", "--seq-len", ctx.seq, "--runner", "torch,onnxruntime")
    judge(ctx, "ONNX Runtime beside torch", p, "onnx", must_run=lambda df: df["runner"] == "onnxruntime")


def compile_check(ctx: "Ctx") -> None:
    backend = ["--compile-backend", "aot_eager"] if ctx.quick else []
    p = cli(ctx, "compile", *_common(ctx), "--dtype", "fp16" if ctx.cuda else "fp32", "--compiled", "true",
            "--batch-size", "4" if ctx.quick else "16", "--seq-len", ctx.seq, *backend)
    judge(ctx, "compiled, both paths", p, "compile")


def variants_check(ctx: "Ctx") -> None:
    p = cli(ctx, "attention", *_common(ctx), "--dtype", "fp16" if ctx.cuda else "fp32", "--attn-impl", "sdpa,eager",
            "--batch-size", "4" if ctx.quick else "16", "--seq-len", ctx.seq)
    judge(ctx, "sdpa vs eager attention", p, "attention")
    p = cli(ctx, "int8", *_common(ctx), "--dtype", "int8", "--batch-size", "4" if ctx.quick else "16",
            "--seq-len", ctx.seq)
    judge(ctx, "torchao int8", p, "int8")


def training_check(ctx: "Ctx") -> None:
    """Both training paths; the Trainer's records must have trained like the loop (parity). All
    trainer records skipped is a SKIP with the reasons, never a pass."""
    p = cli(ctx, "training", "--task", "train-causal-lm", "--model",
            "synthetic:llama-tiny" if ctx.quick else "synthetic:gpt2", "--device", ctx.device, "--no-isolate",
            "--dtype", "fp32,bf16,fp16" if ctx.cuda else "fp32", "--batch-size", "4" if ctx.quick else "8",
            "--seq-len", "32" if ctx.quick else "128", "--min-samples", "5", "--max-time", "0.5" if ctx.quick else "3")
    judge(ctx, "training: loop and Trainer train alike", p, "training", must_run=lambda df: df["runner"] == "trainer")


def oom_check(ctx: "Ctx") -> None:
    args = ["--task", "feature-extraction", "--model", ctx.model, "--device", ctx.device, "--no-isolate",
            "--dtype", "fp16" if ctx.cuda else "fp32", "--min-time", "0.2", "--max-time", "1",
            "--batch-size", "1,8,512,2048" if ctx.quick else "32,128,512,2048",
            "--seq-len", "128" if ctx.quick else "256", "--memory-cap", "120" if ctx.quick else "768"]
    p = cli(ctx, "oom", *args)
    lines = [ln for ln in p.stdout.splitlines() if "ran out of memory)" in ln]
    df = records(ctx, "oom")
    fails = df[df["status"].isin(["error", "timeout"])] if not df.empty else df
    check("OOM sweep stops at memory and reports the largest batch", len(lines) == 2 and fails.empty,
          "; ".join(ln.strip() for ln in lines) or f"no out-of-memory case (exit {p.returncode})", lines=lines)


def isolation_check(ctx: "Ctx") -> None:
    import benchbed.calibrate  # noqa: F401 - registers memory-calibration
    from benchbed.engine import EngineConfig, Session
    from benchbed.measure import StopRule
    from benchbed.spec import Case

    rule = StopRule(min_time_s=0.2, max_time_s=1)
    mb = 1024 if ctx.cuda else 64
    for mode in ("always", "never"):
        s = Session(os.path.join(ctx.out, "results"), EngineConfig(rule=rule, isolate=mode, phase_calls=0))
        big, known = s.run([Case("memory-calibration", "bert-tiny", device=ctx.device, options=(("alloc_mb", mb * 3),)),
                            Case("memory-calibration", "bert-tiny", device=ctx.device, options=(("alloc_mb", mb),))])
        s.close()
        rec = known.record
        name = f"known allocation after a bigger case (isolate={mode})"
        if rec["status"] != "ok":
            check(name, False, f"{rec['status']}: {rec['message']}")
            continue
        if ctx.cuda:  # the runner's own peak: the module it holds plus the call's allocation
            expected, got, what = mb + (rec["gpu_alloc_state_mb"] or 0), rec["gpu_alloc_peak_mb"], "GPU own peak"
        else:
            expected, got, what = mb, rec["cpu_rss_peak_delta_mb"], "CPU RSS increase"
        check(name, abs(got / expected - 1) < 0.05,
              f"{what} {got:.1f} MiB for {expected:.1f} MiB; NVML increase {rec.get('gpu_nvml_increase_mb')}",
              got_mb=got, expected_mb=expected)


RUN: dict[str, Callable[["Ctx"], None]] = {
    "timing": timing_check, "memory": memory_check, "pair": pair_check, "onnx": onnx_check,
    "compile": compile_check, "variants": variants_check, "training": training_check, "oom": oom_check,
    "isolation": isolation_check,
}


class Ctx:
    def __init__(self, out: str, device: str, quick: bool) -> None:
        self.out, self.device, self.quick = out, device, quick
        self.cuda = device.startswith("cuda")
        self.model = "bert-tiny" if quick else "synthetic:bert-base-uncased"
        self.seq = "32" if quick else "128"


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
