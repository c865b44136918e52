"""The store under the failures users hit: SIGKILL half-way, concurrent writers, foreign files."""

import glob
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from benchbed.record import SCHEMA_VERSION, empty_record
from benchbed.store import LocalStore, check_writable, read_results

from conftest import REPO


def _record(i, run_id="r1", writer=0):
    rec = empty_record()
    t = 0.001 * (i + 1) + 1e-7 * writer
    rec.update(run_id=run_id, case_id=f"case{i:04d}", task="fill-mask", model="m", runner="torch", status="ok",
               samples_s=[t] * (i + 1), n_samples=i + 1, lat_median_s=t)
    return rec


def test_round_trip_through_pandas(tmp_path):
    store = LocalStore(tmp_path, "run-a")
    for i in range(3):
        store.write(_record(i, "run-a"))
    df = pd.read_parquet(tmp_path)  # plain pandas on the folder, no benchbed needed
    assert sorted(df["case_id"]) == ["case0000", "case0001", "case0002"]
    assert list(df.sort_values("case_id")["samples_s"].map(len)) == [1, 2, 3]
    assert (df["schema_version"] == SCHEMA_VERSION).all()


def _writer(root, run_id, n, writer):
    store = LocalStore(root, run_id)
    for i in range(n):
        store.write(_record(i, run_id, writer))


def test_concurrent_writers_into_one_folder_and_one_run(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), run, 40, k)) for k, run in enumerate(("a", "b", "a"))]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    df = read_results(tmp_path)
    assert len(df) == 120
    assert df.groupby("run_id").size().to_dict() == {"a": 80, "b": 40}


def test_sigkill_mid_run_leaves_every_finished_case_readable(tmp_path):
    results = tmp_path / "results"
    child = subprocess.Popen(
        [sys.executable, "-m", "benchbed.cli", "run", "--quick", "--results", str(results), "--min-time", "0.05",
         "--max-time", "0.3", "-q"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while len(glob.glob(str(results / "*" / "*.parquet"))) < 5:
            assert child.poll() is None, "the run ended before it could be killed"
            assert time.time() < deadline
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    finished = glob.glob(str(results / "*" / "*.parquet"))
    df = pd.read_parquet(results)
    assert len(df) == len(finished) >= 5
    assert (df["status"] == "ok").all()
    assert (df["samples_s"].map(len) == df["n_samples"]).all()
    assert len(df) < 32  # it really died half-way


def test_corrupt_and_foreign_files_are_skipped_with_a_warning(tmp_path):
    LocalStore(tmp_path, "run").write(_record(0, "run"))
    (tmp_path / "run" / "garbage.parquet").write_bytes(b"not parquet at all")
    pd.DataFrame({"x": [1]}).to_parquet(tmp_path / "run" / "foreign.parquet")
    with pytest.warns(UserWarning) as warned:
        df = read_results(tmp_path)
    assert len(df) == 1
    text = " ".join(str(w.message) for w in warned)
    assert "garbage.parquet" in text and "foreign.parquet" in text


def test_older_schema_files_gain_new_columns(tmp_path):
    pd.DataFrame({"schema_version": [0], "case_id": ["old"], "run_id": ["r0"], "lat_median_s": [0.5]}).to_parquet(
        tmp_path / "old.parquet")
    df = read_results(tmp_path)
    assert df.loc[0, "case_id"] == "old" and "items_per_s" in df.columns and pd.isna(df.loc[0, "items_per_s"])


def test_check_writable_creates_nothing(tmp_path):
    target = tmp_path / "a" / "b"
    assert check_writable(target) is None
    assert os.listdir(tmp_path) == []
    f = tmp_path / "file"
    f.write_text("x")
    assert "not a folder" in check_writable(f / "sub")


def test_compaction_keeps_every_record_once_even_if_interrupted(tmp_path):
    from benchbed.store import compact_run

    store = LocalStore(tmp_path, "run")
    for i in range(5):
        store.write(_record(i, "run"))
    parts = sorted((tmp_path / "run").glob("*.parquet"))
    compact_run(tmp_path / "run")
    files = list((tmp_path / "run").glob("*.parquet"))
    assert len(files) == 1 and files[0].name.startswith("run-run-")
    assert len(read_results(tmp_path)) == 5
    # a crash between writing the merged file and deleting the parts leaves both: read once each
    import shutil

    shutil.copy(files[0], parts[0])
    assert len(pd.read_parquet(tmp_path)) == 10 and len(read_results(tmp_path)) == 5
