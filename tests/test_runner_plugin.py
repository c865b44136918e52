"""Runners are plugins: one defined in a test file runs end to end through the CLI (in process and
isolated), the pytest door and the report, compared with the reference like a built-in runner;
an unknown runner name is one line and exit 2, never a fallback to another runner."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

from conftest import REPO, run_cli

SUITE = os.path.join(REPO, "tests", "plugins", "suite_traced_runner.py")


@pytest.mark.parametrize("isolate", ["--no-isolate", "--isolate"])
def test_a_runner_from_a_suite_file_runs_through_the_cli_and_the_report(tmp_path, isolate):
    p = run_cli("run", "--suite", SUITE, "--min-time", "0.05", "--max-time", "0.5", isolate,
                "--results", str(tmp_path / "r"))
    assert p.returncode == 0, p.stderr[-3000:]
    df = pd.read_parquet(tmp_path / "r")
    assert sorted(df["runner"]) == ["torch", "torch", "traced", "traced"]
    traced = df[df["runner"] == "traced"]
    assert (traced["status"] == "ok").all() and traced["parity_ok"].all(), traced["message"].tolist()
    assert (traced["reference"] == "torch").all() and traced["ref_ratio"].notna().all()
    assert "traced ms" in p.stdout and "traced/torch [95% CI]" in p.stdout
    assert bool(df["isolated"].all()) is (isolate == "--isolate")
    r = run_cli("report", str(tmp_path / "r"), "-o", str(tmp_path / "r.html"))
    assert r.returncode == 0
    page = (tmp_path / "r.html").read_text()
    assert "traced ÷ torch [95% CI]" in page and "torch vs traced" in page


def test_a_runner_from_a_suite_file_runs_through_the_pytest_door(tmp_path):
    p = subprocess.run([sys.executable, "-m", "pytest", SUITE, "--benchmark", "--benchbed-results",
                        str(tmp_path / "r"), "--benchbed-min-time", "0.05", "--benchbed-max-time", "0.5",
                        "-p", "no:cacheprovider", "-q"], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    df = pd.read_parquet(tmp_path / "r")
    traced = df[df["runner"] == "traced"]
    assert len(traced) == 2 and traced["parity_ok"].all()  # parity against torch even when run alone


def test_reference_can_be_any_registered_runner(tmp_path):
    p = run_cli("run", "--quick", "--task", "fill-mask", "--batch-size", "1", "--seq-len", "16", "--min-time", "0.05",
                "--max-time", "0.5", "--reference", "pipeline", "--results", str(tmp_path / "r"))
    assert p.returncode == 0, p.stderr[-2000:]
    df = pd.read_parquet(tmp_path / "r")
    assert (df["reference"] == "pipeline").all()
    torch_rec = df[df["runner"] == "torch"].iloc[0]
    assert bool(torch_rec["parity_ok"]) and df[df["runner"] == "pipeline"]["parity_ok"].isna().all()
    assert "torch/pipe [95% CI]" in p.stdout


@pytest.mark.parametrize("args, expected", [
    (["--runner", "trace"], "unknown runner 'trace' (valid: torch, pipeline, onnxruntime, torch-bucketed, trainer)"),
    (["--reference", "nope"], "unknown reference runner 'nope' (valid: torch, pipeline, onnxruntime, torch-bucketed, "
                              "trainer)"),
    (["--runner", "trainer"], "runner 'trainer' serves training tasks only (valid for text-classification: torch, "
                              "pipeline, onnxruntime, torch-bucketed)"),
    (["--task", "train-text-classification", "--runner", "torch,pipeline"],
     "runner 'pipeline' is not a training runner (valid for train-text-classification: torch, trainer)"),
    (["--grad-accum", "2"], "gradient accumulation applies to training tasks only"),
    (["--task", "train-text-classification", "--grad-accum", "0"], "--grad-accum"),
    (["--pairing", "zipped"], "invalid choice: 'zipped'"),
])
def test_unknown_runner_names_are_one_line_exit_2(tmp_path, args, expected):
    p = run_cli("run", "--quick", "--results", str(tmp_path / "r"), *args)
    assert p.returncode == 2 and expected in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert not (tmp_path / "r").exists()
