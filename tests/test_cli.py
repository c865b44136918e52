"""The `benchbed` command as users call it: real subprocesses, real exit codes, real files."""

import os

import pandas as pd
import pytest

from benchbed.tasks import task_names

from conftest import run_cli


@pytest.mark.parametrize("args, expected", [
    # the built-in tasks: another test module may have registered memory-calibration in this process
    (["--task", "summarise"],
     f"unknown task 'summarise' (valid: {', '.join(t for t in task_names() if t != 'memory-calibration')})"),
    (["--model", "synthetic:gpt-7"], "unknown model 'synthetic:gpt-7' (valid: synthetic:bert-tiny,"),
    (["--runner", "onnx"], "unknown runner 'onnx' (valid: torch, pipeline, onnxruntime, torch-bucketed, trainer)"),
    (["--dtype", "int4"], "unknown dtype 'int4' (valid: fp32, bf16, fp16, int8)"),
    (["--device", "gpu"], "unknown device 'gpu' (valid: cpu, cuda, cuda:N, mps)"),
    (["--batch-size", "0"], "batch size must be a positive integer, got 0"),
    (["--seq-len", "-1"], "sequence length must be a positive integer, got -1"),
    (["--shard", "3/2"], "shard '3/2' out of range"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, args, expected):
    results = tmp_path / "results"
    p = run_cli("run", "--results", str(results), *args)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], p.stderr
    assert p.stdout == ""
    assert not results.exists()


def test_unwritable_results_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    p = run_cli("run", "--quick", "--results", str(blocker / "results"))
    assert p.returncode == 2 and "is not a folder" in p.stderr and len(p.stderr.splitlines()) == 1


@pytest.mark.parametrize("name, content, expected", [
    ("nomatrix.py", "X = 1\n", "defines no MATRIX"),
    ("broken.py", "def (:\n", "failed to import: SyntaxError"),
    ("bad.toml", "[matrix]\ntask = ['fill-mask']\nmodel = ['bert-tiny']\nbatch = [1]\n", "unknown key(s) batch"),
    ("notoml.toml", "[matrix\n", "is not valid TOML"),
    ("values.toml", "[matrix]\ntask = ['fill-mask']\nmodel = ['bert-tiny']\ndtype = ['fp64']\n",
     "unknown dtype 'fp64'"),
    ("suite.yaml", "task: x\n", "must be a .py suite module or a .toml file"),
])
def test_malformed_suites(tmp_path, name, content, expected):
    suite = tmp_path / name
    suite.write_text(content)
    p = run_cli("run", "--suite", str(suite), "--results", str(tmp_path / "results"))
    assert p.returncode == 2 and expected in p.stderr, p.stderr
    assert not (tmp_path / "results").exists()


def test_list_names_everything_users_can_choose():
    p = run_cli("list")
    assert p.returncode == 0
    for word in ("text-classification", "feature-extraction", "fill-mask", "token-classification",
                 "synthetic:bert-tiny", "synthetic:bert-base-uncased", "synthetic:distilbert-base-uncased",
                 "packaged:all-minilm-l6-v2", "minilm", "hf:<id-or-path>", "torch", "pipeline", "fp32, bf16, fp16"):
        assert word in p.stdout


def test_help_tells_the_truth_about_defaults():
    p = run_cli("run", "--help")
    assert p.returncode == 0
    for flag in ("--task", "--model", "--runner", "--device", "--dtype", "--batch-size", "--seq-len", "--suite",
                 "--results", "--shard", "default: results/"):
        assert flag in p.stdout


def test_toml_suite_runs_end_to_end(tmp_path):
    suite = tmp_path / "mine.toml"
    suite.write_text("[matrix]\ntask = ['fill-mask']\nmodel = ['synthetic:bert-tiny']\nbatch_size = [2]\n"
                     "seq_len = [16]\n")
    results = tmp_path / "results"
    p = run_cli("run", "--suite", str(suite), "--results", str(results), "--min-time", "0.1", "--max-time", "0.5")
    assert p.returncode == 0, p.stderr
    df = pd.read_parquet(results)
    assert sorted(df["runner"]) == ["pipeline", "torch"]
    assert (df["suite"] == str(suite)).all()
    # progress on stderr, the comparison table on stdout
    assert "[1/2] fill-mask synthetic:bert-tiny torch" in p.stderr
    header, rule, row = p.stdout.splitlines()[:3]
    # the parity column ends the row (a busy machine adds its mark after it)
    assert "pipe/torch [95% CI]" in header and "fill-mask" in row and "x [" in row
    assert row.rstrip().endswith("ok") or row.rstrip().endswith("ok  ! interfered")
    assert os.path.isdir(results)


def test_passes_interleave_and_compare_sees_them(tmp_path):
    results = tmp_path / "results"
    common = ["run", "--quick", "--task", "fill-mask", "--batch-size", "1", "--seq-len", "16", "--min-time", "0.05",
              "--max-time", "0.3", "--passes", "3", "--on-interference", "retry", "--results", str(results)]
    p = run_cli(*common)
    assert p.returncode == 0, p.stderr
    order = [line.split("] ", 1)[1].split(": ", 1)[0] for line in p.stderr.splitlines() if line.startswith("[")]
    assert order[:3] == ["fill-mask synthetic:bert-tiny torch cpu fp32 b1 s16",
                         "fill-mask synthetic:bert-tiny pipeline cpu fp32 b1 s16",
                         "fill-mask synthetic:bert-tiny torch cpu fp32 b1 s16 (pass 2)"]
    df = pd.read_parquet(results)
    assert sorted(df["pass_index"]) == [0, 0, 1, 1, 2, 2]
    assert df[df["pass_index"] > 0]["pre_s"].isna().all()  # phases are timed once, in the first pass
    assert len([l for l in p.stdout.splitlines() if l.startswith("fill-mask")]) == 1  # one pooled row
    assert run_cli(*common).returncode == 0
    c = run_cli("compare", str(results), "--json", "-")
    if c.returncode == 3 and "interfered" in c.stdout:
        pytest.skip("the machine stayed busy through the retries; the gate rightly refused to judge")
    assert c.returncode in (0, 1), c.stderr
    import json

    cases = json.loads(c.stdout)["cases"]
    assert len(cases) == 2 and all(r["baseline_runs"] == 3 and r["between_run_sd"] is not None for r in cases)
