"""What benchbed promises when a run meets a fault (docs/reliability.md): a signal saves and
compacts what finished, a full disk is one line and its own exit code, a memory cap gives records
rather than a dead process, and a hung case becomes a timeout record."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from benchbed.spec import Case
from benchbed.store import read_results

from conftest import REPO, run_cli


def _start_run(results, *extra, env=None):
    return subprocess.Popen([sys.executable, "-m", "benchbed.cli", "run", "--quick", "--task", "fill-mask",
                             "--batch-size", "1,4", "--seq-len", "16,64", "--min-time", "0.3", "--results",
                             str(results), *extra], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, **(env or {})))


@pytest.mark.parametrize("sig, code, word", [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")])
def test_sigterm_and_sigint_save_and_compact_what_finished(tmp_path, sig, code, word):
    child = _start_run(tmp_path / "r")
    lines = []
    for line in child.stderr:
        lines.append(line)
        if line.startswith("[2/"):
            break
    child.send_signal(sig)
    out, err = child.communicate(timeout=120)
    assert child.returncode == code, "".join(lines) + err
    assert word in err and "Traceback" not in err
    (run,) = (tmp_path / "r").iterdir()
    files = [f.name for f in run.iterdir()]
    assert len(files) == 1 and files[0].startswith("run-"), files  # compacted
    assert len(read_results(tmp_path / "r")) >= 2


def _tmpfs(path, size="160k"):
    # room for two records' part files (63-70 KB each since schema 12's columns, measured on
    # 2026-12-03; 30-40 KB at schema 6) and not for a whole run of four: the disk fills mid-run,
    # after something finished
    path.mkdir()
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_disk_full_is_one_line_its_own_exit_code_and_no_partial_file(tmp_path):
    disk = tmp_path / "disk"
    mounted = _tmpfs(disk)
    try:
        if mounted:  # a real full disk
            p = run_cli("run", "--quick", "--task", "text-classification", "--batch-size", "1,4", "--seq-len", "16",
                        "--min-time", "0.02", "--results", str(disk / "r"), "-q")
        else:  # else a real write failure from the kernel: the file-size limit
            import resource

            def limit():
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, 10_000))  # less than one record

            p = subprocess.run([sys.executable, "-m", "benchbed.cli", "run", "--quick", "--task",
                                "text-classification", "--batch-size", "1,4", "--seq-len", "16", "--min-time", "0.02",
                                "--results", str(disk / "r"), "-q"], capture_output=True, text=True, cwd=REPO,
                               preexec_fn=limit, env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
        assert p.returncode == 4, p.stderr[-2000:]
        errors = [ln for ln in p.stderr.splitlines() if ln.startswith("benchbed: error:")]
        assert len(errors) == 1 and "cannot write" in errors[0] and "Traceback" not in p.stderr
        leftovers = [f for f in (disk / "r").rglob("*") if f.name.startswith(".tmp")]
        assert leftovers == []
        empty = [d for d in (disk / "r").glob("*") if d.is_dir() and not any(d.iterdir())]
        assert empty == []  # a run whose first record could not be written leaves no empty folder
        if mounted:
            assert len(read_results(disk / "r")) >= 1  # what finished before the disk filled is kept
    finally:
        if mounted:
            subprocess.run(["umount", str(disk)])


@pytest.mark.parametrize("cap", ["1", "64", "100000"])
def test_any_memory_cap_gives_records_not_a_dead_process(tmp_path, cap):
    p = run_cli("run", "--quick", "--task", "fill-mask", "--batch-size", "1", "--seq-len", "16", "--min-time", "0.02",
                "--memory-cap", cap, "--no-isolate", "--results", str(tmp_path / "r"), "-q")
    assert p.returncode in (0, 1), p.stderr[-2000:]
    df = read_results(tmp_path / "r")
    assert len(df) == 2 and set(df["status"]) <= {"ok", "oom"}
    if cap == "100000":
        assert set(df["status"]) == {"ok"}


def test_a_hung_case_is_a_timeout_record_without_asking_for_isolation(tmp_path):
    import benchbed.calibrate  # noqa: F401 - the memory-calibration task, which can sleep
    from benchbed.engine import EngineConfig, Session
    from benchbed.measure import StopRule

    rule = StopRule(warmup=1, min_samples=3, min_time_s=0.05, max_time_s=0.5)
    s = Session(str(tmp_path / "r"), EngineConfig(rule=rule, case_timeout_s=10, phase_calls=0))  # isolate="auto"
    hung = s.run([Case("memory-calibration", "bert-tiny", batch_size=1, seq_len=8,
                       options=(("alloc_mb", 1), ("sleep_s", 60)))])[0]
    assert hung.status == "timeout"
    with pytest.raises(ValueError, match="needs cases in subprocesses"):
        Session(str(tmp_path / "r"), EngineConfig(case_timeout_s=10, isolate="never"))
