"""Launchers are plugins (issue 21): one interface, and the schedule's policies — resume, the
out-of-memory sweep, interference retry — the same on every launcher."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pandas as pd
import pytest

import benchbed.calibrate  # noqa: F401 - the memory-calibration task
from benchbed.engine import EngineConfig
from benchbed.execute.launchers import get_launcher, launcher_names
from benchbed.execute.schedule import Schedule
from benchbed.measure import StopRule
from benchbed.spec import Case, SpecError

from conftest import REPO, run_cli

PLUGIN = os.path.join(REPO, "tests", "plugins", "suite_twice_launcher.py")
FAST = ["--min-time", "0.02", "--max-time", "0.1"]
RULE = StopRule(warmup=1, min_samples=3, min_time_s=0.02, max_time_s=0.2)


def _ray_env(tmp_path) -> dict[str, str]:
    """A local Ray whose token, sessions and sockets stay out of the home and /tmp/ray (a short
    folder: Ray's socket paths have a length limit), removed after the test."""
    import tempfile

    short = tempfile.mkdtemp(prefix="bbr", dir="/tmp")
    _CLEAN.append(short)
    return {"RAY_ADDRESS": "", "HOME": str(tmp_path), "RAY_TMPDIR": short}


_CLEAN: list[str] = []


@pytest.fixture(autouse=True)
def _remove_ray_folders():
    import shutil

    yield
    while _CLEAN:
        shutil.rmtree(_CLEAN.pop(), ignore_errors=True)


def _alloc(mb: int, batch: int = 1) -> Case:
    return Case("memory-calibration", "bert-tiny", runner="torch", batch_size=batch, seq_len=8,
                options=(("alloc_mb", mb),))


def test_the_builtin_launchers_are_registered_and_an_unknown_one_is_one_line():
    assert {"local", "in-process", "subprocess", "ray"} <= set(launcher_names())
    with pytest.raises(SpecError, match="unknown launcher 'nope' \\(valid: "):
        get_launcher("nope")
    p = run_cli("run", "--quick", "--launcher", "nope", "--results", "/tmp/never-written-benchbed")
    assert p.returncode == 2 and "unknown launcher 'nope'" in p.stderr and "Traceback" not in p.stderr
    assert not os.path.exists("/tmp/never-written-benchbed")


def test_a_launcher_from_a_suite_file_runs_end_to_end_and_the_report_reads_it(tmp_path):
    p = run_cli("run", "--suite", PLUGIN, "--launcher", "twice", *FAST, "--results", str(tmp_path / "r"))
    assert p.returncode == 0, p.stderr[-3000:]
    assert "the twice launcher measures every cell twice" in p.stderr
    df = pd.read_parquet(tmp_path / "r")
    assert len(df) == 4 and (df["status"] == "ok").all()  # 2 cells x 2 runners, each stored once
    assert (df["message"] == "measured 2 times").all()
    r = run_cli("report", str(tmp_path / "r"), "-o", str(tmp_path / "r.html"))
    assert r.returncode == 0 and "Traceback" not in r.stderr


def test_a_launcher_from_a_suite_file_runs_through_the_pytest_door(tmp_path):
    pytest_ = [sys.executable, "-m", "pytest", PLUGIN, "--benchmark", "--benchbed-results", str(tmp_path / "r"),
               "--benchbed-min-time", "0.02", "--benchbed-max-time", "0.1", "-p", "no:cacheprovider", "-q"]
    p = subprocess.run(pytest_ + ["--benchbed-launcher", "twice"], capture_output=True, text=True, cwd=tmp_path,
                       timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    df = pd.read_parquet(tmp_path / "r")
    assert len(df) == 4 and (df["message"] == "measured 2 times").all()
    bad = subprocess.run(pytest_ + ["--benchbed-launcher", "thrice"], capture_output=True, text=True, cwd=tmp_path,
                         timeout=600)
    assert bad.returncode == 4 and "--benchbed-launcher: unknown launcher 'thrice' (valid: " in bad.stderr, bad.stderr
    assert "twice" in bad.stderr and "Traceback" not in bad.stderr


def test_the_schedule_holds_a_larger_batch_until_the_smaller_one_finished():
    from benchbed.execute.config import RunContext

    import datetime as dt

    ctx = RunContext(run_id="x", started_at=dt.datetime.now(dt.timezone.utc), env={}, results="")
    cases = [_alloc(1, b) for b in (4, 1, 2)] + [Case("fill-mask", "bert-tiny", batch_size=8)]
    s = Schedule(cases, EngineConfig(rule=RULE), ctx)
    first = [job.batch_size for job, _ in s.ready()]
    assert sorted(first) == [1, 8]  # batch 2 and 4 of the calibration sweep wait for batch 1
    job = next(j for j in s.running if j.batch_size == 1)
    oom = [(c, {"status": "oom", "interfered": False}, ()) for c in job.cases]
    assert s.finish(job, oom) is False
    nxt = s.ready()
    assert [j.batch_size for j, _ in nxt] == [2] and nxt[0][0].cases == []  # 2 and 4 ran out: skipped, in turn
    assert [rec["status"] for _, rec, _ in nxt[0][1]] == ["skipped"]
    assert [j.batch_size for j, _ in s.ready()] == [4]


def test_interference_retry_measures_a_busy_cell_again_then_says_so():
    from benchbed.execute.config import RunContext

    import datetime as dt

    ctx = RunContext(run_id="x", started_at=dt.datetime.now(dt.timezone.utc), env={}, results="")
    s = Schedule([_alloc(1)], EngineConfig(rule=RULE, on_interference="retry", interference_retries=2), ctx)
    (job, _), = s.ready()
    busy = [(job.cases[0], {"status": "ok", "interfered": True, "interference": "other processes used 1.0 cores"}, ())]
    assert s.finish(job, busy) is True and s.finish(job, busy) is True
    assert s.finish(job, busy) is False and "(still after 2 retries)" in busy[0][1]["interference"]
    assert not s


SWEEP = ["--task", "memory-calibration", "--model", "bert-tiny", "--runner", "torch", "--seq-len", "8",
         "--batch-size", "1,64,512", "--memory-cap", "200", *FAST]
SWEEP_SUITE = """
import benchbed.calibrate
from benchbed import Matrix
MATRIX = Matrix(task=("memory-calibration",), model=("bert-tiny",), runner=("torch",), seq_len=(8,),
                batch_size=(1, 64, 512), options={options})
"""


@pytest.mark.parametrize("where", [["--no-isolate"], ["--isolate"], ["--cluster", "ray"]])
def test_the_oom_sweep_skips_the_same_larger_batches_on_every_launcher(tmp_path, where):
    if "ray" in where:
        pytest.importorskip("ray")
    env = _ray_env(tmp_path) if "ray" in where else {}

    def sweep(mb_per_input: int) -> pd.DataFrame:
        suite = tmp_path / f"sweep_suite_{mb_per_input}.py"
        suite.write_text(SWEEP_SUITE.format(options=f'(("alloc_mb", {mb_per_input}),)'))
        out = tmp_path / f"r{mb_per_input}"
        p = run_cli("run", "--suite", str(suite), "--memory-cap", "200", *FAST, *where, "--results", str(out), env=env)
        assert p.returncode == 0, p.stderr[-3000:]
        return pd.read_parquet(out)

    # 2 MiB per input: batch 1 fits, batch 64 (128 MiB) fits under 200, batch 512 (1 GiB) does not
    status = dict(zip(*[sweep(2)[c] for c in ("batch_size", "status")]))
    assert status == {1: "ok", 64: "ok", 512: "oom"}, status
    # 8 MiB per input: batch 64 (512 MiB) runs out, so batch 512 is skipped, never tried
    df = sweep(8)
    status = dict(zip(df["batch_size"], df["status"]))
    assert status == {1: "ok", 64: "oom", 512: "skipped"}, status
    assert "already ran out of memory" in df[df["batch_size"] == 512]["message"].iloc[0]


COMPETITOR = "import time\nend = time.time() + float(__import__('sys').argv[1])\nwhile time.time() < end:\n    pass\n"


@pytest.mark.parametrize("where", [["--no-isolate"], ["--isolate"], ["--cluster", "ray"]])
def test_interference_retry_retries_on_every_launcher_beside_a_real_competitor(tmp_path, where):
    if "ray" in where:
        pytest.importorskip("ray")
    env = _ray_env(tmp_path) if "ray" in where else {}
    competitor = subprocess.Popen([sys.executable, "-c", COMPETITOR, "600"])
    try:
        time.sleep(0.3)
        p = run_cli("run", "--quick", "--task", "text-classification", "--batch-size", "1", "--seq-len", "16",
                    "--min-time", "1.0", "--max-time", "2.0", "--on-interference", "retry", *where,
                    "--results", str(tmp_path / "r"), env=env)
    finally:
        competitor.kill()
        competitor.wait()
    assert p.returncode == 0, p.stderr[-3000:]
    df = pd.read_parquet(tmp_path / "r")
    assert len(df) == 2  # retried cells are stored once, with their last measurement
    assert df["interfered"].all() and df["interference"].str.contains("still after 2 retries").all(), \
        df[["interfered", "interference"]]
