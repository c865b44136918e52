"""Scenarios are plugins: one defined in a test file (``burst``) runs end to end through the CLI (in
process and isolated), the pytest door and the report, with its option, record columns, console
line and report section; the built-ins are declared the same way. A scenario that does not exist,
or a scenario's setting given without that scenario, is one line and exit 2 with nothing written."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

from conftest import REPO, run_cli

SUITE = os.path.join(REPO, "tests", "plugins", "suite_burst_scenario.py")


def test_the_builtin_scenarios_are_declarations_every_layer_asks():
    from benchbed.scenarios import get_scenario, scenario_names
    from benchbed.spec import Matrix

    assert scenario_names()[:3] == ["latency", "dataset", "server"]
    assert [get_scenario(n).sample for n in ("latency", "dataset", "server")] == ["call", "pass", "request"]
    m = Matrix(task=("fill-mask",), model=("bert-tiny",), runner=("torch",), scenario=("latency", "dataset", "server"))
    options = [dict(c.options) for c in m.cases()]
    assert options[0] == {} and options[1] == {"examples": 1000, "workers": 0}
    assert [o.get("rate") for o in options[2:]] == [5.0, 10.0, 20.0, 40.0]


@pytest.mark.parametrize("isolate", ["--no-isolate", "--isolate"])
def test_a_scenario_from_a_suite_file_runs_through_the_cli_and_the_report(tmp_path, isolate):
    p = run_cli("run", "--suite", SUITE, "--min-time", "0.05", "--max-time", "0.5", isolate,
                "--results", str(tmp_path / "r"))
    assert p.returncode == 0, p.stderr[-3000:]
    df = pd.read_parquet(tmp_path / "r")
    assert sorted(df["runner"]) == ["pipeline", "torch"] and (df["scenario"] == "burst").all()
    assert (df["status"] == "ok").all() and (df["burst_calls"] == 3).all(), df["message"].tolist()
    # the burst's own column agrees with the samples it came from: a sample is 3 calls
    assert ((df["burst_call_s"] * 3 - df["lat_median_s"]).abs() < 1e-9).all()
    assert bool(df[df["runner"] == "pipeline"]["parity_ok"].iloc[0]) and df["ref_ratio"].notna().sum() == 1
    assert "ms per call in bursts of 3" in p.stderr and "burst x3" in p.stdout
    r = run_cli("report", str(tmp_path / "r"), "-o", str(tmp_path / "r.html"), "--suite", SUITE)
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "r.html").read_text()
    assert "<h3>Bursts</h3>" in page and "ms per call in a burst" in page and "pipeline ÷ torch" in page
    # without the plug-in loaded the records still report, with no section of their own
    r = run_cli("report", str(tmp_path / "r"), "-o", str(tmp_path / "plain.html"))
    assert r.returncode == 0 and "<h3>Bursts</h3>" not in (tmp_path / "plain.html").read_text()


def test_a_scenario_from_a_suite_file_runs_through_the_pytest_door(tmp_path):
    p = subprocess.run([sys.executable, "-m", "pytest", SUITE, "--benchmark", "--benchbed-results",
                        str(tmp_path / "r"), "--benchbed-min-time", "0.05", "--benchbed-max-time", "0.5",
                        "-p", "no:cacheprovider", "-q"], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    df = pd.read_parquet(tmp_path / "r")
    assert len(df) == 2 and (df["scenario"] == "burst").all() and (df["burst_calls"] == 3).all()


@pytest.mark.parametrize("args, expected", [
    (["--quick", "--scenario", "burst"], "unknown scenario 'burst' (valid: latency, dataset, server, http)"),
    (["--quick", "--rate", "5"], "rate is a setting of the server and http scenarios; this run's scenario is latency"),
    (["--quick", "--scenario", "dataset", "--requests", "9"], "requests is a setting of the server and http scenarios"),
    (["--quick", "--examples", "50"], "examples is a setting of the dataset scenario"),
    (["--suite", SUITE, "--scenario", "latency"], "burst is a setting of the burst scenario; this run's scenario "
                                                  "is latency"),
])
def test_a_scenario_that_does_not_exist_or_an_option_of_another_is_one_line_exit_2(tmp_path, args, expected):
    p = run_cli("run", "--results", str(tmp_path / "r"), *args)
    assert p.returncode == 2 and expected in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert not (tmp_path / "r").exists()
