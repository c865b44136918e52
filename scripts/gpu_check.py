#!/usr/bin/env python3
"""The GPU check: one command that runs a short GPU matrix and validates the measurements.

    python scripts/gpu_check.py --out gpu-check/

On whatever CUDA device is present it runs, in order:
  1. timing check: a queued matmul workload timed by benchbed's loop and by CUDA events;
  2. memory check: a known 1 GiB allocation against the allocator peak and NVML's device memory;
  3. the matrix: text-classification on bert-base shapes, both paths, fp32/fp16/bf16, eager and
     torch.compile'd, batch 1/16/128, plus sdpa vs eager attention and torchao int8;
  4. an out-of-memory sweep: batch sizes up to an OOM under a memory cap, both paths;
  5. isolation: a known allocation measured in a fresh subprocess after a bigger case, and in
     process, both against the bytes it holds;
then checks every CUDA record's wall-clock median against the CUDA-event median of the same calls
(within 3%). It writes parquet under OUT/results/, the console summary to OUT/summary.txt and
every check to OUT/checks.json, and aims to finish in under 8 minutes on one H200.
``--device cpu --quick`` runs the same script on the CPU with the tiny preset (CI uses it to keep
the script working; the CUDA-only checks are then reported as skipped).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any, Callable

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

CHECKS: list[dict[str, Any]] = []


def check(name: str, ok: bool | None, detail: str, **figures: Any) -> None:
    """Record one check: ok True/False, or None when it could not run here."""
    CHECKS.append({"check": name, "ok": ok, "detail": detail, **figures})
    mark = {True: "PASS", False: "FAIL", None: "SKIP"}[ok]
    print(f"[{mark}] {name}: {detail}", flush=True)


def step(title: str, fn: Callable[[], None]) -> None:
    t0 = time.perf_counter()
    print(f"\n== {title}", flush=True)
    try:
        fn()
    except Exception as exc:  # a broken step is reported and the others still run
        check(title, False, f"step failed: {exc.__class__.__name__}: {exc}")
    print(f"   ({time.perf_counter() - t0:.0f}s)", flush=True)


def timing_check(device: str) -> None:
    import torch

    from benchbed.measure import StopRule, measure
    from benchbed.measure.gpu import EventTimer

    if not device.startswith("cuda"):
        check("timing vs CUDA events (matmul)", None, "no CUDA device")
        return
    a = torch.randn(8192, 8192, device=device, dtype=torch.float16)

    def work() -> None:
        for _ in range(10):
            a @ a  # queued; only the synchronise waits

    events = EventTimer(device)
    t = measure(work, StopRule(warmup=3, min_samples=30, min_time_s=1, max_time_s=4),
                sync=lambda: torch.cuda.synchronize(device), events=events)
    wall = sorted(t.samples)[len(t.samples) // 2]
    ev = sorted(events.samples)[len(events.samples) // 2]
    dev = wall / ev - 1
    check("timing vs CUDA events (matmul)", abs(dev) < 0.03,
          f"wall median {wall * 1e3:.3f} ms, event median {ev * 1e3:.3f} ms ({100 * dev:+.2f}%)",
          wall_s=wall, event_s=ev)


def memory_check(device: str) -> None:
    import torch

    from benchbed.measure import CudaPeak
    from benchbed.measure.gpu import NvmlSampler, nvml_handle

    if not device.startswith("cuda"):
        check("allocator peak vs known 1 GiB", None, "no CUDA device")
        return
    nbytes = 2**30
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated(device)
    handle = nvml_handle(device)
    with NvmlSampler(handle, interval_s=0.01) as idle:
        time.sleep(0.2)
    with CudaPeak(device) as peak, NvmlSampler(handle, interval_s=0.01) as busy:
        block = torch.ones(nbytes // 4, device=device)
        torch.cuda.synchronize(device)
        time.sleep(0.3)
        del block
    got = peak.allocated - base
    check("allocator peak vs known 1 GiB", abs(got / nbytes - 1) < 0.05,
          f"peak allocated increase {got / 2**20:.1f} MiB for 1024 MiB", bytes=got)
    if handle is None:
        check("NVML used vs known 1 GiB", None, "NVML not available")
    else:
        delta = busy.peak_used_bytes - idle.peak_used_bytes
        check("NVML used vs known 1 GiB", abs(delta / nbytes - 1) < 0.05,
              f"NVML used rose {delta / 2**20:.1f} MiB for 1024 MiB", bytes=delta)
    torch.cuda.empty_cache()


def cli(out: str, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "benchbed.cli", "run", "--results", os.path.join(out, "results"), *args]
    print("$ benchbed run " + " ".join(args), flush=True)
    p = subprocess.run(cmd, cwd=REPO, text=True, capture_output=True)
    with open(os.path.join(out, "runs.log"), "a") as fh:
        fh.write("$ " + " ".join(cmd) + "\n" + p.stdout + p.stderr + f"\n(exit {p.returncode})\n\n")
    tail = p.stdout.strip().splitlines()[-1:] or p.stderr.strip().splitlines()[-1:]
    print(f"   exit {p.returncode}: {tail[0] if tail else ''}", flush=True)
    return p


def matrix(out: str, device: str, quick: bool) -> None:
    model = "bert-tiny" if quick else "synthetic:bert-base-uncased"
    timing = ["--min-time", "0.3", "--max-time", "1.5"] if not quick else ["--min-time", "0.05", "--max-time", "0.3"]
    common = ["--task", "text-classification", "--model", model, "--device", device, "--no-isolate", *timing]
    # three runners side by side: ONNX Runtime through its CUDA provider where the installed build
    # has one (else its records are skipped with the reason)
    p1 = cli(out, *common, "--dtype", "fp32,fp16,bf16", "--batch-size", "1,16,128" if not quick else "1,4",
             "--seq-len", "128" if not quick else "32", "--runner", "torch,pipeline,onnxruntime")
    backend = ["--compile-backend", "aot_eager"] if quick else []
    p2 = cli(out, *common, "--dtype", "fp32,fp16,bf16" if not quick else "fp32", "--compiled", "true",
             "--batch-size", "16" if not quick else "4", "--seq-len", "128" if not quick else "32", *backend)
    p3 = cli(out, *common, "--dtype", "fp16" if device.startswith("cuda") else "fp32", "--attn-impl", "sdpa,eager",
             "--batch-size", "16" if not quick else "4", "--seq-len", "128" if not quick else "32")
    p4 = cli(out, *common, "--dtype", "int8", "--batch-size", "16" if not quick else "4",
             "--seq-len", "128" if not quick else "32")
    codes = [p.returncode for p in (p1, p2, p3, p4)]
    check("matrix runs", all(c in (0, 1) for c in codes), f"exit codes {codes} (1: a parity mismatch or error, see "
                                                          "runs.log)")


def oom_sweep(out: str, device: str, quick: bool) -> None:
    model = "bert-tiny" if quick else "synthetic:bert-base-uncased"
    args = ["--task", "feature-extraction", "--model", model, "--device", device, "--no-isolate",
            "--dtype", "fp16" if device.startswith("cuda") else "fp32", "--min-time", "0.2", "--max-time", "1",
            "--batch-size", "32,128,512,2048" if not quick else "1,8,512,2048",
            "--seq-len", "256" if not quick else "128", "--memory-cap", "768" if not quick else "120"]
    p = cli(out, *args)
    lines = [ln for ln in p.stdout.splitlines() if "ran out of memory)" in ln]
    check("OOM sweep stops at memory and reports the largest batch", len(lines) == 2,
          "; ".join(ln.strip() for ln in lines) or "no out-of-memory case", lines=lines)


def training_check(out: str, device: str, quick: bool) -> None:
    """Both training paths on the device: fp32, bf16 autocast, and on CUDA fp16 with a gradient
    scaler; every trainer record must have trained like the loop (parity) or be skipped with a reason."""
    import pandas as pd

    cuda = device.startswith("cuda")
    model = "synthetic:llama-tiny" if quick else "synthetic:gpt2"
    p = cli(out, "--task", "train-causal-lm", "--model", model, "--device", device, "--no-isolate",
            "--dtype", "fp32,bf16,fp16" if cuda else "fp32", "--batch-size", "4" if quick else "8",
            "--seq-len", "32" if quick else "128", "--min-samples", "5", "--max-time", "0.5" if quick else "3",
            "--run-id", "training-check")
    df = pd.read_parquet(os.path.join(out, "results", "training-check"))
    tr = df[df["runner"] == "trainer"]
    bad = tr[(tr["status"] != "skipped") & ((tr["status"] != "ok") | (tr["parity_ok"] != True))]  # noqa: E712
    check("training: loop and Trainer train alike", p.returncode in (0, 1) and len(tr) > 0 and bad.empty,
          f"exit {p.returncode}; " + "; ".join(f"{r.dtype}: {r.status} {r.parity_detail or r.message}"
                                               for r in tr.itertuples())[:1500],
          ratios={r.dtype: r.ref_ratio for r in tr.itertuples()})


def isolation_check(out: str, device: str) -> None:
    import benchbed.calibrate  # noqa: F401 - registers memory-calibration
    from benchbed.engine import EngineConfig, Session
    from benchbed.measure import StopRule
    from benchbed.spec import Case

    rule = StopRule(min_time_s=0.2, max_time_s=1)
    mb = 1024 if device.startswith("cuda") else 64
    for mode in ("always", "never"):
        s = Session(os.path.join(out, "results"), EngineConfig(rule=rule, isolate=mode, phase_calls=0))
        big, known = s.run([Case("memory-calibration", "bert-tiny", device=device, options=(("alloc_mb", mb * 3),)),
                            Case("memory-calibration", "bert-tiny", device=device, options=(("alloc_mb", mb),))])
        s.close()
        rec = known.record
        if rec["status"] != "ok":
            check(f"known allocation after a bigger case (isolate={mode})", False, f"{rec['status']}: {rec['message']}")
            continue
        if device.startswith("cuda"):
            expected = mb + rec["model_params"] * 4 / 2**20
            got = rec["gpu_alloc_peak_mb"]
            what = "GPU allocated peak"
        else:
            expected, got, what = mb, rec["cpu_rss_peak_delta_mb"], "CPU RSS increase"
        check(f"known allocation after a bigger case (isolate={mode})", abs(got / expected - 1) < 0.05,
              f"{what} {got:.1f} MiB for {expected:.1f} MiB; NVML used peak {rec['gpu_nvml_used_peak_mb']}",
              got_mb=got, expected_mb=expected)


def validate_events(out: str) -> None:
    from benchbed.store import read_results

    df = read_results(os.path.join(out, "results"))
    cuda = df[(df["status"] == "ok") & df["cuda_event_median_s"].notna()]
    if cuda.empty:
        check("every CUDA record: wall median vs CUDA-event median within 3%", None, "no CUDA records")
        return
    dev = (cuda["lat_median_s"] / cuda["cuda_event_median_s"] - 1).abs()
    worst = cuda.loc[dev.idxmax()]
    check("every CUDA record: wall median vs CUDA-event median within 3%", bool((dev < 0.03).all()),
          f"{int((dev < 0.03).sum())}/{len(dev)} within 3%; worst {100 * dev.max():.2f}% "
          f"({worst['runner']} {worst['dtype']} b{worst['batch_size']})", worst_pct=float(100 * dev.max()))
    parity = df[df["parity_ok"].notna()]
    check("parity of both paths", bool(parity["parity_ok"].all()),
          f"{int(parity['parity_ok'].sum())}/{len(parity)} records with matching outputs")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output folder (parquet, summary.txt, checks.json)")
    ap.add_argument("--device", default="cuda", help="device to check (default: cuda)")
    ap.add_argument("--quick", action="store_true", help="tiny model and matrix (the CPU smoke run)")
    args = ap.parse_args(argv)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_check: error: no CUDA device here (use --device cpu --quick for the CPU smoke run)",
              file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    from benchbed.env import collect_env

    env = collect_env()
    print(f"gpu_check on {env.get('env_gpu') or env.get('env_cpu')}; torch {env['env_torch']}, "
          f"CUDA {env.get('env_cuda')}, driver {env.get('env_gpu_driver')}", flush=True)
    step("1. timing vs CUDA events", lambda: timing_check(args.device))
    step("2. memory vs a known allocation", lambda: memory_check(args.device))
    step("3. matrix: both paths, precisions, compiled, attention, int8", lambda: matrix(args.out, args.device, args.quick))
    step("4. out-of-memory sweep", lambda: oom_sweep(args.out, args.device, args.quick))
    step("5. isolation", lambda: isolation_check(args.out, args.device))
    step("6. validation of the records", lambda: validate_events(args.out))
    step("7. training: the hand-written loop vs transformers.Trainer", lambda: training_check(args.out, args.device,
                                                                                            args.quick))

    from benchbed.record import pool_records
    from benchbed.store import read_results
    from benchbed.summary import format_table

    df = read_results(os.path.join(args.out, "results"))
    table = format_table(pool_records(df[df["task"] != "memory-calibration"].to_dict("records")))
    elapsed = time.perf_counter() - start
    verdict = [f"[{ {True: 'PASS', False: 'FAIL', None: 'SKIP'}[c['ok']] }] {c['check']}: {c['detail']}" for c in CHECKS]
    text = "\n".join([f"gpu_check: {env.get('env_gpu') or env.get('env_cpu')} in {elapsed:.0f}s", "", *verdict, "",
                      table, ""])
    with open(os.path.join(args.out, "summary.txt"), "w") as fh:
        fh.write(text)
    with open(os.path.join(args.out, "checks.json"), "w") as fh:
        json.dump({"elapsed_s": elapsed, "env": {k: str(v) for k, v in env.items()}, "checks": CHECKS}, fh, indent=1,
                  default=str)
    print("\n" + text)
    return 1 if any(c["ok"] is False for c in CHECKS) else 0


if __name__ == "__main__":
    raise SystemExit(main())
