"""The GPU check's steps (`scripts/gpu_check.py` runs each in its own process group): each drives
benchbed's CUDA paths and records PASS, FAIL or SKIP checks with the figures behind them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any, Callable

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

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
