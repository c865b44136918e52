"""The GPU check script keeps working: its CPU smoke run (tiny preset) passes every check that can
run without CUDA, and without a GPU the real run refuses in one line with exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

SCRIPT = os.path.join(REPO, "scripts", "gpu_check.py")


def test_cpu_smoke_run_passes_and_writes_its_outputs(tmp_path):
    out = tmp_path / "gc"
    p = subprocess.run([sys.executable, SCRIPT, "--device", "cpu", "--quick", "--out", str(out)],
                       capture_output=True, text=True, timeout=600, cwd=REPO)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    checks = json.loads((out / "checks.json").read_text())["checks"]
    ran = [c for c in checks if c["ok"] is not None]
    assert ran and all(c["ok"] for c in ran), ran
    names = {c["check"] for c in ran}
    assert "OOM sweep stops at memory and reports the largest batch" in names
    summary = (out / "summary.txt").read_text()
    assert "largest batch that fit in memory:" in summary and "compiled" in summary and "int8" in summary
    assert list((out / "results").rglob("*.parquet"))


def test_without_cuda_the_gpu_run_is_refused_in_one_line():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    p = subprocess.run([sys.executable, SCRIPT, "--out", "/nonexistent/never-written"], capture_output=True,
                       text=True, timeout=120, cwd=REPO)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "no CUDA device" in p.stderr
    assert not os.path.exists("/nonexistent/never-written")
