"""Memory figures that do not depend on earlier cases, isolation in real subprocesses (including
real SIGKILLs and timeouts), and out-of-memory as data under a real allocation limit."""

from __future__ import annotations

import os
from dataclasses import replace

import pandas as pd
import pytest

from conftest import holds_or_interfered

import benchbed.calibrate  # noqa: F401 - registers the memory-calibration task
from benchbed.engine import EngineConfig, Session
from benchbed.measure import StopRule
from benchbed.spec import Case
from conftest import run_cli

RULE = StopRule(warmup=1, min_samples=3, min_time_s=0.05, max_time_s=0.5)


def _alloc(mb, **extra):
    opts = {"alloc_mb": mb, **extra}
    return Case("memory-calibration", "bert-tiny", runner="torch", batch_size=1, seq_len=8,
                options=tuple(sorted(opts.items())))


@pytest.mark.parametrize("isolate", ["never", "always"])
def test_a_known_allocation_is_reported_whatever_ran_before(tmp_path, isolate):
    s = Session(str(tmp_path / "r"), EngineConfig(rule=RULE, isolate=isolate, phase_calls=0))
    alone, big, after = s.run([_alloc(48), _alloc(300), _alloc(48)])
    for res, mb in ((alone, 48), (big, 300), (after, 48)):
        rec = res.record
        assert res.status == "ok", rec["message"]
        assert rec["isolated"] is (isolate == "always")
        assert rec["cpu_rss_peak_delta_mb"] == pytest.approx(mb, rel=0.05), (mb, rec["cpu_rss_peak_delta_mb"])
    # the same case before and after a bigger one reports the same figure
    assert after.record["cpu_rss_peak_delta_mb"] == pytest.approx(alone.record["cpu_rss_peak_delta_mb"], rel=0.03)


def test_isolated_records_land_in_the_run_and_match_in_process_timing(tmp_path):
    case = Case("text-classification", "bert-tiny", runner="torch", batch_size=4, seq_len=32)
    rule = StopRule(warmup=2, min_samples=20, min_time_s=0.5, max_time_s=2)
    tries = iter(range(2))

    def measure():
        i = next(tries)
        inproc = Session(str(tmp_path / f"a{i}"), EngineConfig(rule=rule, isolate="never")).run([case])[0]
        s = Session(str(tmp_path / f"b{i}"), EngineConfig(rule=rule, isolate="always"))
        iso = s.run([case])[0]
        s.close()
        return (inproc, iso, tmp_path / f"b{i}"), [inproc.record, iso.record]

    def agree(pair):
        # the parent blocks while the child measures, and the child keeps the parent's threads:
        # the two medians agree within this machine's noise (or a record says the machine was busy)
        ratio = pair[1].record["lat_median_s"] / pair[0].record["lat_median_s"]
        return None if 0.7 < ratio < 1.4 else f"isolated / in-process median {ratio:.2f}"

    inproc, iso, stored = holds_or_interfered(measure, agree)
    assert iso.status == inproc.status == "ok"
    assert iso.record["threads"] == inproc.record["threads"]
    df = pd.read_parquet(stored)
    assert list(df["case_id"]) == [case.canonical().case_id] and bool(df["isolated"].iloc[0])
    assert len(df["samples_s"].iloc[0]) == iso.record["n_samples"]


def test_a_killed_or_hanging_isolated_case_becomes_a_record_and_the_matrix_goes_on(tmp_path):
    s = Session(str(tmp_path / "r"), EngineConfig(rule=RULE, isolate="always", case_timeout_s=15, phase_calls=0))
    killed, hung, fine = s.run([_alloc(1, crash="true"), _alloc(1, sleep_s=60), _alloc(16)])
    assert killed.status == "error" and "SIGKILL" in killed.record["message"]
    assert hung.status == "timeout" and "15 s" in hung.record["message"]
    assert fine.status == "ok"
    s.close()
    df = pd.read_parquet(tmp_path / "r")
    assert sorted(df["status"]) == ["error", "ok", "timeout"]
    assert df["isolated"].all()


def test_out_of_memory_is_data_and_a_sweep_reports_the_largest_batch_that_fit(tmp_path):
    results = tmp_path / "r"
    p = run_cli("run", "--task", "feature-extraction", "--model", "bert-tiny", "--batch-size", "1,8,512,2048",
                "--seq-len", "128", "--dtype", "fp32", "--memory-cap", "120", "--results", str(results), "--min-time", "0.05",
                "--max-time", "0.5")
    assert p.returncode == 0, p.stderr[-2000:]
    df = pd.read_parquet(results)
    status = {(r.runner, r.batch_size): r.status for r in df.itertuples()}
    for runner in ("torch", "pipeline"):
        assert status[(runner, 1)] == status[(runner, 8)] == "ok"
        assert status[(runner, 512)] == "oom"
        assert status[(runner, 2048)] == "skipped"
    oom = df[df["status"] == "oom"].iloc[0]
    assert "can't allocate memory" in oom["message"] and oom["memory_cap_mb"] == 120
    assert "largest batch that fit in memory:" in p.stdout
    assert "feature-extraction synthetic:bert-tiny torch cpu fp32 s128: batch 8 (batch 512 ran out of memory)" in p.stdout


def test_memory_is_released_after_an_oom_in_process(tmp_path):
    s = Session(str(tmp_path / "r"), EngineConfig(rule=RULE, isolate="never", memory_cap_mb=100, phase_calls=0))
    too_big, small = s.run([_alloc(400), _alloc(32)])
    assert too_big.status == "oom" and small.status == "ok"
    assert small.record["cpu_rss_peak_delta_mb"] == pytest.approx(32, rel=0.05)
    # the cap is lifted after each case: this process can allocate freely again
    import torch

    block = torch.ones(200 * 2**20 // 4)
    assert block.numel() > 0


def test_largest_fit_logic():
    from benchbed.summary import largest_fit

    def rec(b, status, runner="torch"):
        return {"task": "t", "model": "m", "device": "cuda", "dtype": "fp16", "seq_len": 128, "runner": runner,
                "batch_size": b, "status": status, "attn_impl": None, "compiled": False}

    fits = largest_fit([rec(1, "ok"), rec(8, "ok"), rec(64, "oom"), rec(512, "skipped"),
                        rec(1, "oom", "pipeline"), rec(8, "ok", "other")])
    got = {(r["runner"], fit, oom) for r, fit, oom in fits}
    assert got == {("torch", 8, 64), ("pipeline", None, 1)}


@pytest.mark.skipif(os.environ.get("CUDA_VISIBLE_DEVICES") == "", reason="CUDA hidden")
def test_auto_isolation_applies_to_cuda_cases_only(tmp_path):
    from benchbed.execute.launchers.local import isolates

    config = EngineConfig(rule=RULE)
    assert isolates(config, Case("fill-mask", "bert-tiny", device="cuda"))
    assert not isolates(config, Case("fill-mask", "bert-tiny", device="cpu"))
    assert not isolates(replace(config, isolate="never"), Case("fill-mask", "bert-tiny", device="cuda"))
    assert isolates(replace(config, isolate="always"), Case("fill-mask", "bert-tiny", device="cpu"))


def test_a_case_this_machine_cannot_run_is_skipped_without_a_subprocess(tmp_path):
    import time

    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    s = Session(str(tmp_path / "r"), EngineConfig(rule=RULE, isolate="always"))
    t0 = time.perf_counter()
    res = s.run([Case("fill-mask", "bert-tiny", device="cuda")])[0]
    assert res.status == "skipped" and "CUDA is not available" in res.record["message"]
    assert res.record["isolated"] is False and time.perf_counter() - t0 < 2
