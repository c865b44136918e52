"""Temporary folders (issue #30): one per benchbed process, gone at exit, after SIGTERM and Ctrl-C;
a SIGKILLed process's is swept by the next one, recognised by pid and start time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from benchbed.scratch import sweep_dead

CHILD = """
import sys, time
from benchbed.scratch import scratch_dir
d = scratch_dir("serve-")
open(d + "/f", "w").write("x")
print(d, flush=True)
if sys.argv[1] == "wait":
    time.sleep(60)
"""


def _child(tmp_path, mode):
    env = dict(os.environ, TMPDIR=str(tmp_path))
    # Ctrl-C as a terminal delivers it: a suite started in the background (`cmd &` in a script)
    # hands its children SIGINT ignored, and Python then never raises KeyboardInterrupt (the CLI
    # installs its own handler; this bare child would not)
    return subprocess.Popen([sys.executable, "-c", CHILD, mode], env=env, stdout=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_a_process_removes_its_scratch_folder_at_exit(tmp_path):
    p = _child(tmp_path, "exit")
    folder = p.stdout.readline().strip()
    assert p.wait(timeout=60) == 0
    assert folder.startswith(str(tmp_path)) and not os.listdir(tmp_path)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_or_killed_process_leaves_nothing_once_the_next_one_runs(tmp_path, sig):
    p = _child(tmp_path, "wait")
    folder = p.stdout.readline().strip()
    assert os.path.isdir(folder)
    assert sweep_dead(str(tmp_path)) == [] and os.path.isdir(folder)  # a live owner's folder is never touched
    p.send_signal(sig)
    p.wait(timeout=60)
    if sig == signal.SIGINT:
        assert not os.listdir(tmp_path)  # KeyboardInterrupt ends through atexit
    else:
        assert os.listdir(tmp_path)  # SIGKILL: nothing could run
        nxt = _child(tmp_path, "exit")
        nxt.stdout.readline()
        assert nxt.wait(timeout=60) == 0
        assert not os.listdir(tmp_path)


def test_the_sweep_keys_on_pid_and_start_time_not_the_name(tmp_path):
    own = tmp_path / f"benchbed-{os.getpid()}-1"  # our pid, another start time: a dead owner
    other = tmp_path / "benchbed-serve-keep"  # not a scratch folder's name
    user = tmp_path / "benchbed-12-34-extra"
    for d in (own, other, user):
        d.mkdir()
    removed = sweep_dead(str(tmp_path))
    assert removed == [str(own)] and other.exists() and user.exists()


WORKERS = """
import os, signal, sys
import torch
from torch.utils.data import DataLoader, TensorDataset
if sys.argv[1] == "contain":
    from benchbed.scratch import contain_multiprocessing
    contain_multiprocessing()
batches = iter(DataLoader(TensorDataset(torch.randn(64, 8)), batch_size=8, num_workers=2))
next(batches)  # the workers have passed a tensor: their pymp-* listener folders exist now
os.killpg(0, signal.SIGKILL)  # the run and its workers at once, as a CI timeout or a case timeout kills a tree
"""


@pytest.mark.parametrize("mode", ["plain", "contain"])
def test_dataloader_workers_of_a_killed_run_leave_nothing_once_the_next_one_runs(tmp_path, mode):
    """DataLoader workers (`--workers`) pass tensors through `pymp-*` listener folders that only
    their normal exit removes; benchbed puts them under its scratch folder, so those of a run
    killed with its workers are swept with it. `plain` (torch alone) shows the leak the
    containment exists for."""
    import shutil
    import tempfile

    # a short folder: pytest's tmp_path is too long for the workers' socket paths (108 bytes)
    short = tempfile.mkdtemp(prefix="bbw", dir="/tmp")
    try:
        env = dict(os.environ, TMPDIR=short)
        p = subprocess.run([sys.executable, "-c", WORKERS, mode], env=env, capture_output=True, text=True,
                           timeout=120, start_new_session=True)
        assert p.returncode == -signal.SIGKILL, p.stderr
        leaked = [n for n in os.listdir(short) if n.startswith("pymp-")]
        if mode == "plain":
            assert leaked  # what torch leaves on its own: the test would notice a fix that did nothing
            return
        assert not leaked
        sweep_dead(short)  # what the next benchbed process does first
        assert os.listdir(short) == []
    finally:
        shutil.rmtree(short, ignore_errors=True)


def test_a_scratch_path_too_long_for_a_socket_leaves_multiprocessing_alone(tmp_path):
    """Containing `pymp-*` under a long $TMPDIR would make socket paths DataLoader workers cannot
    bind (they hang): the default is kept there."""
    deep = tmp_path / ("d" * 60)
    deep.mkdir()
    code = ("import multiprocessing.process as p; from benchbed.scratch import contain_multiprocessing as c; "
            "print(c(), p.current_process()._config.get('tempdir'))")
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, TMPDIR=str(deep)),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["None", "None"]
    assert [n for n in os.listdir(deep)] == []  # its scratch folder went at exit



def test_a_child_server_gets_a_tmpdir_under_the_folder_only_where_its_sockets_fit(tmp_path):
    """`transformers serve`, ended by a signal, leaves its ``pymp-*`` folder in its TMPDIR: benchbed
    hands it one inside the server's scratch folder, unless a socket path there would not fit."""
    import shutil
    import tempfile

    from benchbed.scratch import child_tmpdir

    short = tempfile.mkdtemp(prefix="bb-", dir="/tmp")
    try:
        assert child_tmpdir(short)["TMPDIR"] == os.path.join(short, "tmp") and os.path.isdir(os.path.join(short, "tmp"))
    finally:
        shutil.rmtree(short)
    deep = tmp_path / ("d" * 90)
    env = child_tmpdir(str(deep))
    assert env.get("TMPDIR") == os.environ.get("TMPDIR") and not deep.exists()
