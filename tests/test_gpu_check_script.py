"""The GPU check script keeps working: its CPU smoke run (tiny preset) passes every check that can
run without CUDA; a step made to hang is cut at its timeout and is a FAIL, with the run ending
within its budget; without a GPU the real run refuses in one line with exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import REPO

SCRIPT = os.path.join(REPO, "scripts", "gpu_check.py")


def test_cpu_smoke_run_passes_and_writes_its_outputs(tmp_path):
    out = tmp_path / "gc"
    p = subprocess.run([sys.executable, SCRIPT, "--device", "cpu", "--quick", "--out", str(out)],
                       capture_output=True, text=True, timeout=600, cwd=REPO)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    result = json.loads((out / "checks.json").read_text())
    assert result["final"] and [s["step"] for s in result["steps"]] == [
        "timing", "memory", "pair", "onnx", "compile", "variants", "training", "oom", "isolation"]
    verdicts = {s["step"]: s["verdict"] for s in result["steps"]}
    # CUDA-only steps say SKIP with the reason; every step that can run on the CPU ran and passed
    assert verdicts["timing"] == verdicts["memory"] == "SKIP", verdicts
    assert all(v == "PASS" for k, v in verdicts.items() if k not in ("timing", "memory")), verdicts
    ran = [c for c in result["checks"] if c["ok"] is not None]
    assert ran and all(c["ok"] for c in ran), ran
    summary = (out / "summary.txt").read_text()
    assert "largest batch that fit in memory:" in summary and "compiled" in summary and "int8" in summary
    assert "== training: PASS" in summary and "(timeout " in summary
    assert list((out / "results").rglob("*.parquet"))


def test_a_hung_step_is_cut_at_its_timeout_as_a_fail_and_the_run_keeps_its_budget(tmp_path):
    out = tmp_path / "gc"
    budget = 16
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, SCRIPT, "--device", "cpu", "--quick", "--out", str(out), "--budget",
                        str(budget), "--steps", "timing,memory,pair", "--hang", "timing"],
                       capture_output=True, text=True, timeout=120, cwd=REPO)
    wall = time.perf_counter() - t0
    assert p.returncode == 1, p.stdout[-2000:] + p.stderr[-2000:]
    steps = {s["step"]: s for s in json.loads((out / "checks.json").read_text())["steps"]}
    assert steps["timing"]["verdict"] == "FAIL" and "cut at its timeout" in steps["timing"]["checks"][-1]["detail"]
    assert steps["timing"]["seconds"] <= budget
    assert steps["pair"]["verdict"] == "SKIP" and "budget spent" in steps["pair"]["checks"][0]["detail"]
    assert wall < budget + 15  # the interpreter's own start-up and the summary on top of the budget
    assert "--hang timing" not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout


@pytest.mark.parametrize("argv, words", [
    (["--steps", "timing,warp"], "unknown step 'warp' (valid: timing, memory"),
    (["--budget", "1"], "--budget must be over"),
])
def test_bad_options_are_one_line_and_exit_2(tmp_path, argv, words):
    p = subprocess.run([sys.executable, SCRIPT, "--out", str(tmp_path / "never"), *argv], capture_output=True,
                       text=True, timeout=120, cwd=REPO)
    assert p.returncode == 2 and words in p.stderr.strip().splitlines()[-1] and not (tmp_path / "never").exists()


def test_without_cuda_the_gpu_run_is_refused_in_one_line():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    p = subprocess.run([sys.executable, SCRIPT, "--out", "/nonexistent/never-written"], capture_output=True,
                       text=True, timeout=120, cwd=REPO)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "no CUDA device" in p.stderr
    assert not os.path.exists("/nonexistent/never-written")
