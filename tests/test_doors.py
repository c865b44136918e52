"""What users hand benchbed, and where it writes (issue 20): writes through links and devices,
run folders that are links, files that are not regular files, records written back by pandas and
other tools, numbers beyond any sane size, and the testbed's fingerprint."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import REPO, run_cli

FAST = ["--min-time", "0.02", "--max-time", "0.1"]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("doors") / "res"
    for run_id in ("a", "b"):
        p = run_cli("run", "--quick", "--task", "text-classification", "--batch-size", "1", "--seq-len", "16", *FAST,
                    "--results", str(root), "--run-id", run_id, "-q")
        assert p.returncode == 0, p.stderr[-2000:]
    return root


# ---- writes -----------------------------------------------------------------------------------

def test_a_link_given_as_output_is_written_through_and_stays_a_link(two_runs, tmp_path):
    target = tmp_path / "target.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    md_target = tmp_path / "summary.md"
    md_target.write_text("# before\n")
    md_link = tmp_path / "summary-link.md"
    md_link.symlink_to(md_target)
    p = run_cli("compare", str(two_runs / "a"), str(two_runs / "b"), "--json", str(link), "--markdown", str(md_link))
    assert p.returncode in (0, 1, 3), p.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert '"kind": "compare"' in target.read_text()
    assert md_link.is_symlink() and md_target.read_text().startswith("# before\n")  # appended through the link
    assert [n for n in os.listdir(tmp_path) if n.startswith(".tmp")] == []


def test_dev_stdout_is_written_in_place_and_stays_what_it_was(two_runs, tmp_path):
    before = os.readlink("/dev/stdout") if os.path.islink("/dev/stdout") else None
    # into a pipe
    p = run_cli("compare", str(two_runs / "a"), str(two_runs / "b"), "--json", "/dev/stdout")
    assert p.returncode in (0, 1, 3) and '"kind": "compare"' in p.stdout, p.stderr
    # into a file the shell redirected stdout to: what was printed before the JSON stays
    out = tmp_path / "out.txt"
    cmd = f"{sys.executable} -m benchbed.cli compare {two_runs / 'a'} {two_runs / 'b'} --json /dev/stdout > {out}"
    assert subprocess.run(cmd, shell=True, cwd=REPO).returncode in (0, 1, 3)
    text = out.read_text()
    assert "cases compared" in text and '"kind": "compare"' in text
    after = os.readlink("/dev/stdout") if os.path.islink("/dev/stdout") else None
    assert before == after


@pytest.mark.parametrize("option", ["--json", "--markdown"])
def test_a_folder_as_output_is_refused_and_nothing_is_written(two_runs, tmp_path, option):
    p = run_cli("compare", str(two_runs / "a"), str(two_runs / "b"), option, str(tmp_path))
    assert p.returncode == 2 and "is a folder" in p.stderr and "Traceback" not in p.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option", ["--json", "--markdown"])
def test_an_output_name_too_long_for_the_filesystem_is_refused(two_runs, tmp_path, option):
    """Found by the long fuzz profile: a 300-character --markdown name was an OSError traceback."""
    p = run_cli("compare", str(two_runs / "a"), str(two_runs / "b"), option, str(tmp_path / ("x" * 300)))
    assert p.returncode == 2 and "too long" in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert list(tmp_path.iterdir()) == []


def test_write_atomic_through_a_link_puts_its_temporary_file_beside_the_target(tmp_path):
    from benchbed.atomic import write_text_atomic

    (tmp_path / "real").mkdir()
    (tmp_path / "other").mkdir()
    target = tmp_path / "real" / "x.txt"
    link = tmp_path / "other" / "x.txt"
    link.symlink_to(target)  # dangling until written
    write_text_atomic(link, "one")
    write_text_atomic(link, "two\n", append=True)
    assert target.read_text() == "onetwo\n" and link.is_symlink()
    assert sorted(os.listdir(tmp_path / "other")) == ["x.txt"]


def test_a_run_folder_that_is_a_link_out_of_the_results_root_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "00001-abc-0123abcd.parquet").write_bytes(b"someone else's")
    res = tmp_path / "res"
    res.mkdir()
    (res / "evil").symlink_to(outside)
    p = run_cli("run", "--quick", "--task", "text-classification", "--batch-size", "1", "--seq-len", "16", *FAST,
                "--results", str(res), "--run-id", "evil", "-q")
    assert p.returncode == 2 and "is a link" in p.stderr and "Traceback" not in p.stderr
    assert sorted(os.listdir(outside)) == ["00001-abc-0123abcd.parquet"]
    from benchbed.store import compact_run

    assert compact_run(res / "evil") is None and (outside / "00001-abc-0123abcd.parquet").exists()


def test_files_that_are_not_regular_files_are_skipped_with_a_warning(two_runs, tmp_path):
    res = tmp_path / "res"
    import shutil

    shutil.copytree(two_runs / "a", res / "a")
    os.mkfifo(res / "a" / "fifo.parquet")
    (res / "a" / "broken.parquet").symlink_to(tmp_path / "nowhere")
    (res / "a" / "zero.parquet").symlink_to("/dev/zero")
    p = run_cli("merge", str(res), "-o", str(tmp_path / "m"), timeout=120)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr and p.stderr.count("not a regular file") == 3


# ---- values at the door --------------------------------------------------------------------------

@pytest.mark.parametrize("option", ["--seq-len", "--batch-size", "--new-tokens", "--threads", "--passes", "--warmup",
                                    "--case-timeout", "--min-samples", "--examples", "--requests", "--seed"])
def test_a_thirty_digit_number_is_refused_with_the_options_limit(tmp_path, option):
    p = run_cli("run", "--quick", option, "123456789012345678901234567890", "--results", str(tmp_path / "r"),
                timeout=60)
    assert p.returncode == 2 and "at most" in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


@pytest.mark.parametrize("args", [["--shard", ""], ["--suite", ""], ["--results", ""], ["--reference", ""],
                                  ["--compile-backend", ""], ["--compile-mode", ""], ["--runner", "torch,torch"],
                                  ["--results", "\udcff\udcfe"], ["--results", "x" * 300 + "/r"]])
def test_empty_non_utf8_duplicate_and_overlong_values_are_refused(tmp_path, args):
    p = subprocess.run([sys.executable, "-m", "benchbed.cli", "run", "--quick", *args], capture_output=True,
                       cwd=tmp_path, timeout=60)
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("threshold", ["1.2.3", ".", "p99:.", "a=1.2.3", "1..%"])
@pytest.mark.parametrize("command", ["compare", "history"])
def test_a_malformed_threshold_is_exit_2_not_a_regression(two_runs, threshold, command):
    args = [str(two_runs / "a"), str(two_runs / "b")] if command == "compare" else [str(two_runs)]
    p = run_cli(command, *args, "--threshold", threshold)
    assert p.returncode == 2 and "must look like" in p.stderr and "Traceback" not in p.stderr


def test_escape_sequences_in_an_output_path_do_not_reach_the_terminal(two_runs, tmp_path):
    p = run_cli("report", str(two_runs), "-o", str(tmp_path / "r\x1b]0;title\x07\x1b[31m.html"))
    assert p.returncode == 0, p.stderr
    assert "\x1b" not in p.stdout + p.stderr and "\x07" not in p.stdout + p.stderr


def test_a_signal_while_starting_is_one_line_and_exit_130(tmp_path):
    import signal
    import time

    exe = os.path.join(os.path.dirname(sys.executable), "benchbed")
    if not os.path.exists(exe):
        pytest.skip("the benchbed console script is not installed in this environment")
    p = subprocess.Popen([exe, "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # the promise starts where benchbed's code does: once its early handler is in (Python itself
    # catches SIGINT from its first instruction, never SIGTERM), not inside the interpreter's own
    # start-up, where no program can answer a Ctrl-C but Python
    deadline = time.time() + 30
    while time.time() < deadline and p.poll() is None:
        try:
            with open(f"/proc/{p.pid}/status") as fh:
                caught = int(next(x for x in fh if x.startswith("SigCgt:")).split()[1], 16)
        except (OSError, StopIteration):
            break
        if caught & (1 << (signal.SIGTERM - 1)):
            break
        time.sleep(0.001)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert "Traceback" not in err
    assert p.returncode in (0, 130), err  # 0: it had finished before the signal came


def test_an_isolated_child_dies_with_its_parent(tmp_path):
    """SIGKILL to the parent of an isolated case: the child is gone soon after and writes nothing."""
    import signal
    import time

    import psutil

    res = tmp_path / "r"
    code = ("import benchbed.calibrate, sys\nfrom benchbed.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    script = tmp_path / "run.py"
    script.write_text(code)
    p = subprocess.Popen([sys.executable, str(script), "run", "--task", "memory-calibration", "--model", "bert-tiny",
                          "--runner", "torch", "--batch-size", "1", "--seq-len", "8", "--isolate",
                          "--results", str(res), "--min-time", "0.02", "--max-time", "0.1", "-q"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    deadline = time.time() + 60
    children = []
    while time.time() < deadline and not children:
        children = psutil.Process(p.pid).children(recursive=True)
        time.sleep(0.05)
    if not children:
        p.kill()
        pytest.skip("the isolated child finished before it could be seen")
    p.send_signal(signal.SIGKILL)
    p.wait()
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], [c.pid for c in alive]


# ---- records handed back --------------------------------------------------------------------

def _pandas_round_trip(src, dst):
    df = pd.read_parquet(src)
    df[df.task == "text-classification"].to_parquet(dst)


def test_a_pandas_round_trip_reports_compares_and_merges_like_the_original(two_runs, tmp_path):
    _pandas_round_trip(two_runs / "a", tmp_path / "a.parquet")
    _pandas_round_trip(two_runs / "b", tmp_path / "b.parquet")
    direct = run_cli("compare", str(two_runs / "a"), str(two_runs / "b"), "--json", "-")
    handed = run_cli("compare", str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet"), "--json", "-")
    assert direct.returncode == handed.returncode and "skipping" not in handed.stderr, handed.stderr
    import json

    a, b = json.loads(direct.stdout), json.loads(handed.stdout)
    assert [c["change"] for c in a["cases"]] == [c["change"] for c in b["cases"]]
    assert run_cli("report", str(tmp_path / "a.parquet"), "-o", str(tmp_path / "r.html")).returncode == 0
    m = run_cli("merge", str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet"), "-o", str(tmp_path / "m"))
    original = run_cli("merge", str(two_runs / "a"), str(two_runs / "b"), "-o", str(tmp_path / "o"))
    assert m.returncode == original.returncode == 0, m.stderr
    assert m.stdout.split(" into ")[0] == original.stdout.split(" into ")[0]  # "merged N records from 2 input run(s)"


def test_readers_coerce_what_other_tools_write_back(two_runs, tmp_path):
    from benchbed.store import read_table

    df = pd.read_parquet(two_runs / "a")
    original = read_table(two_runs / "a")
    variants = {
        "gaps": df.assign(new_tokens=[None, 3.0] * (len(df) // 2)),  # nullable int with gaps: float
        "categorical": df.astype({"task": "category", "runner": "category"}),
        "naive-time": df.assign(started_at=df["started_at"].dt.tz_localize(None)),
        "nanoseconds": df.assign(started_at=df["started_at"].astype("datetime64[ns, UTC]")),
        "nullable-int": df.astype({"batch_size": "Int64", "seq_len": "Int32"}),
    }
    for name, frame in variants.items():
        frame.to_parquet(tmp_path / f"{name}.parquet")
        t = read_table(tmp_path / f"{name}.parquet")
        assert t.num_rows == len(df), name
        assert t.column("batch_size").to_pylist() == original.column("batch_size").to_pylist(), name
        assert t.column("started_at").to_pylist() == original.column("started_at").to_pylist(), name
    large = pa.Table.from_pandas(df)
    large = large.cast(pa.schema([pa.field(f.name, pa.large_string() if f.type == pa.string() else
                                           pa.large_list(f.type.value_type) if pa.types.is_list(f.type) else f.type)
                                  for f in large.schema], metadata=large.schema.metadata))
    pq.write_table(large, tmp_path / "large.parquet")
    assert read_table(tmp_path / "large.parquet").num_rows == len(df)
    duckdb = pytest.importorskip("duckdb")
    duckdb.sql(f"COPY (SELECT * FROM read_parquet('{two_runs / 'a'}/*.parquet')) TO '{tmp_path / 'duck.parquet'}'")
    assert read_table(tmp_path / "duck.parquet").num_rows == len(df)


def test_a_column_that_cannot_be_coerced_is_named_with_its_type(two_runs, tmp_path):
    from benchbed.store import read_table

    df = pd.read_parquet(two_runs / "a").assign(batch_size=1.5)
    df.to_parquet(tmp_path / "x.parquet")
    with pytest.warns(UserWarning, match="batch_size.*not whole numbers.*int64"):
        assert read_table(tmp_path / "x.parquet").num_rows == 0


@pytest.mark.parametrize("column", ["batch_size", "run_id", "case_id", "task", "model", "device", "runner"])
def test_a_null_in_a_key_column_is_unjudged_never_a_traceback(two_runs, tmp_path, column):
    df = pd.read_parquet(two_runs / "b")
    df[column] = df[column].astype(object)
    df.loc[df.index[0], column] = None
    df.to_parquet(tmp_path / "b.parquet")
    # against the very records it came from, so no real change can make the answer 1
    p = run_cli("compare", str(two_runs / "b"), str(tmp_path / "b.parquet"))
    assert p.returncode == 3 and f"have no {column}" in p.stderr and "Traceback" not in p.stderr, p.stderr
    r = run_cli("report", str(tmp_path / "b.parquet"), "-o", str(tmp_path / "r.html"))
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr


def test_samples_of_1e308_are_set_aside_not_a_traceback(two_runs, tmp_path):
    df = pd.read_parquet(two_runs / "b")
    df["samples_s"] = [[1e308] * len(s) for s in df["samples_s"]]
    df.to_parquet(tmp_path / "b.parquet")
    for cmd in (["compare", str(two_runs / "a"), str(tmp_path / "b.parquet")],
                ["history", str(two_runs / "a"), str(tmp_path / "b.parquet")]):
        p = run_cli(*cmd)
        assert p.returncode == 3 and "Traceback" not in p.stderr, p.stderr


# ---- the testbed ----------------------------------------------------------------------------

def test_records_name_the_instruction_set_and_the_runtimes(two_runs):
    df = pd.read_parquet(two_runs / "a")
    row = df.iloc[0]
    assert row["schema_version"] >= 8
    assert row["env_cpu_isa"] and row["env_cpu_id"] and row["env_torch_cpu_capability"]
    assert row["env_physical_cores"] >= 1 and row["env_memory_gib"] >= 1
    for dist, col in (("onnxruntime", "env_onnxruntime"), ("accelerate", "env_accelerate"),
                      ("datasets", "env_datasets"), ("ray", "env_ray")):
        try:
            from importlib.metadata import version

            version(dist)
        except Exception:
            continue
        assert row[col], col


def test_hosts_that_differ_in_instruction_set_are_different_testbeds_but_older_records_are_not(two_runs, tmp_path):
    # what is tested is the environment keys: records measured beside a busy neighbour would be
    # unjudged for that reason instead, so both sides are marked quiet here
    df = pd.read_parquet(two_runs / "b").assign(interfered=False)
    pd.read_parquet(two_runs / "a").assign(interfered=False).to_parquet(tmp_path / "a.parquet")
    df.assign(env_cpu_isa="avx2 fma").to_parquet(tmp_path / "other-host.parquet")
    p = run_cli("compare", str(tmp_path / "a.parquet"), str(tmp_path / "other-host.parquet"))
    assert p.returncode == 3 and "env_cpu_isa" in p.stdout + p.stderr, p.stdout + p.stderr
    old = df.assign(env_cpu_isa=None, env_cpu_id=None, env_torch_cpu_capability=None, schema_version=7)
    old.to_parquet(tmp_path / "older.parquet")
    q = run_cli("compare", str(tmp_path / "older.parquet"), str(tmp_path / "a.parquet"))
    assert q.returncode in (0, 1) and "env_cpu_isa" not in q.stdout + q.stderr, q.stdout + q.stderr
