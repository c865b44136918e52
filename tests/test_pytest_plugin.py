"""``pytest suites --benchmark`` end to end on the tiny preset, its parquet read back field by field,
and pytest-benchmark's JSON holding the same numbers."""

import json
import os
import platform
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from benchbed.record import SCHEMA_VERSION
from benchbed.spec import Case
from conftest import REPO

SELECT = "text-classification and b4 and s16"


def _pytest(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "pytest", "suites/test_text.py", "-p", "no:cacheprovider", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=600)


def test_without_benchmark_flag_suites_are_skipped_fast():
    p = _pytest("-q", "-m", "quick")
    assert p.returncode == 0, p.stdout[-2000:]
    assert "32 skipped" in p.stdout


def test_suite_run_writes_parquet_that_matches_pytest_benchmark(tmp_path):
    results, js = tmp_path / "results", tmp_path / "bench.json"
    p = _pytest("--benchmark", "-m", "quick", "-k", SELECT, "--benchbed-results", str(results),
                "--benchbed-min-time", "0.2", "--benchmark-json", str(js))
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "2 passed" in p.stdout
    assert "benchbed: every runner of a cell against the reference" in p.stdout and "pipe/torch [95% CI]" in p.stdout

    df = pd.read_parquet(results)
    assert len(df) == 2 and df["run_id"].nunique() == 1
    import torch
    import transformers

    for _, rec in df.iterrows():
        case = Case("text-classification", "synthetic:bert-tiny", runner=rec["runner"], batch_size=4, seq_len=16)
        x = np.asarray(rec["samples_s"])
        assert rec["schema_version"] == SCHEMA_VERSION and rec["pass_index"] == 0
        assert rec["case_id"] == case.case_id and rec["pair_id"] == case.pair_id
        assert (rec["task"], rec["model"], rec["device"], rec["dtype"]) == (
            "text-classification", "synthetic:bert-tiny", "cpu", "fp32")
        assert (rec["batch_size"], rec["seq_len"]) == (4, 16)
        assert rec["status"] == "ok" and pd.isna(rec["message"])
        if rec["runner"] == "pipeline":  # against the reference runner, torch
            assert bool(rec["parity_ok"]) and "labels equal" in rec["parity_detail"]
        else:
            assert pd.isna(rec["parity_ok"]) and rec["parity_detail"].startswith("reference runner")
        # the default two warm-up calls: parity's, then one in the timing step
        assert rec["n_samples"] == len(x) >= 5 and rec["warmup"] == 1
        assert rec["lat_median_s"] == pytest.approx(np.median(x))
        assert rec["lat_p90_s"] == pytest.approx(np.percentile(x, 90))
        assert rec["lat_mean_s"] == pytest.approx(x.mean())
        assert rec["items_per_s"] == pytest.approx(4 / np.median(x))
        assert rec["model_params"] == 4_386_178 and rec["model_weights"] == "random"
        assert rec["pre_s"] > 0 and rec["fwd_s"] > 0 and rec["post_s"] > 0
        assert rec["env_python"] == platform.python_version()
        assert rec["env_torch"] == torch.__version__ and rec["env_transformers"] == transformers.__version__
        assert rec["env_cores"] == os.cpu_count() and rec["env_cpu"]
        assert rec["env_tokenizers_parallelism"] == "false"
        assert str(rec["started_at"].tz) == "UTC"
        assert rec["suite"] == "pytest" and rec["threads"] >= 1

    bench = {b["param"]: b for b in json.loads(js.read_text())["benchmarks"]}
    assert len(bench) == 2
    for _, rec in df.iterrows():
        label = Case("text-classification", "synthetic:bert-tiny", runner=rec["runner"], batch_size=4,
                     seq_len=16).label
        stats = bench[label]["stats"]
        assert stats["rounds"] == rec["n_samples"]
        assert stats["median"] == pytest.approx(rec["lat_median_s"], rel=1e-12)
        assert stats["min"] == pytest.approx(rec["lat_min_s"], rel=1e-12)
        assert stats["max"] == pytest.approx(rec["lat_max_s"], rel=1e-12)
        assert bench[label]["extra_info"]["case_id"] == rec["case_id"]
        assert bench[label]["group"] == "text-classification synthetic:bert-tiny cpu fp32 b4 s16"
        assert stats["data"] == pytest.approx(list(rec["samples_s"]), rel=1e-12)
        assert bench[label]["extra_info"]["interfered"] in (True, False)

    # pytest-benchmark's own tool reads the file benchbed wrote (its published format)
    cli = os.path.join(os.path.dirname(sys.executable), "pytest-benchmark")
    cmp = subprocess.run([cli, "compare", str(js), "--columns", "min,median,rounds"], capture_output=True,
                         text=True, timeout=120)
    assert cmp.returncode == 0, cmp.stderr[-2000:]
    assert "text-classification-synthetic:bert-tiny-pipeline" in cmp.stdout.replace("\n", "")


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 17, 40])
def test_benchmark_json_stats_equal_pytest_benchmarks_own(n):
    """Every statistic in the JSON equals what pytest-benchmark computes from the same samples, for
    odd and even counts (its quartiles switch method with the parity of n)."""
    from pytest_benchmark.stats import Stats

    from benchbed.benchmark_json import benchmark_stats

    rng = np.random.default_rng(n)
    data = list(rng.lognormal(-4, 0.3, size=n))
    ref = Stats()
    for v in data:
        ref.update(v)
    ours = benchmark_stats(data)
    for field in Stats.fields:
        want = getattr(ref, field)
        assert ours[field] == (want if isinstance(want, str) else pytest.approx(want, rel=1e-12)), field


def test_axis_filters_deselect(tmp_path):
    p = _pytest("--benchmark", "-m", "quick", "--benchbed-task", "fill-mask", "--benchbed-runner", "torch",
                "--benchbed-batch-size", "1", "--benchbed-seq-len", "16", "--collect-only", "-q")
    assert p.returncode == 0, p.stdout[-2000:]
    assert "1/" in p.stdout and "fill-mask-synthetic:bert-tiny-torch-cpu-fp32-b1-s16" in p.stdout


def test_isolated_suite_cases_write_the_same_records(tmp_path):
    results = tmp_path / "results"
    p = _pytest("--benchmark", "-m", "quick", "-k", SELECT + " and torch", "--benchbed-results", str(results),
                "--benchbed-min-time", "0.1", "--benchbed-isolate", "always", "--benchbed-compiled", "false",
                "--benchbed-attn-impl", "default")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "1 passed" in p.stdout
    df = pd.read_parquet(results)
    assert len(df) == 1 and bool(df["isolated"].iloc[0]) and df["status"].iloc[0] == "ok"
    assert df["schema_version"].iloc[0] == SCHEMA_VERSION


def test_a_session_budget_caps_each_runners_timing(tmp_path):
    """--benchbed-budget 2s over the cell's two tests: each runner's timing is capped at its share of
    40% of it (0.4 s), as benchbed run --budget does, and every selected test still runs."""
    results = tmp_path / "results"
    p = _pytest("--benchmark", "-m", "quick", "-k", SELECT, "--benchbed-results", str(results),
                "--benchbed-budget", "2s")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    df = pd.read_parquet(results)
    assert len(df) == 2 and (df["status"] == "ok").all()
    # measure_s is the cell's window (both runners): the cap is per runner, a block may run past it
    assert (df["measure_s"] <= 2 * 0.4 + 0.3).all(), df[["measure_s", "stop_reason"]]
    assert set(df["stop_reason"]) <= {"max_time", "precise"}


@pytest.mark.parametrize("value", ["0", "-5s", "nan", "2w", ""])
def test_a_bad_session_budget_is_a_usage_error_and_nothing_written(tmp_path, value):
    results = tmp_path / "results"
    p = _pytest("--benchmark", "-m", "quick", "-k", SELECT, "--benchbed-results", str(results),
                "--benchbed-budget", value)
    assert p.returncode == 4 and "--benchbed-budget" in p.stderr and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert not results.exists()
