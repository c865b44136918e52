"""`benchbed envs prune` deletes only what benchbed made (issue #30): folders without our marker,
damaged markers, a cache folder that is a file, live builds and foreign locks are left alone;
dead half-builds and stale locks of our own are removed."""

from __future__ import annotations

import os
import subprocess

import pytest

from benchbed.env_cache import prune_envs
from conftest import run_cli


def _cli_env(root):
    return {"BENCHBED_ENV_DIR": str(root)}


def _tree(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, ds, fs in os.walk(root) for f in fs + ds)


def test_prune_never_touches_folders_benchbed_did_not_make(tmp_path):
    root = tmp_path / "victim"
    (root / "important").mkdir(parents=True)
    (root / "important" / "thesis.tex").write_text("years of work")
    (root / "0123456789abcdef").mkdir()  # named like a cache key, but no marker of ours
    (root / "0123456789abcdef" / "data.bin").write_text("x")
    (root / "fedcba9876543210").mkdir()  # a marker that names another folder
    (root / "fedcba9876543210" / ".benchbed-env-build.json").write_text('{"key": "0000000000000000"}')
    (root / "notes.lock").write_text("")
    (root / "abcdefabcdefabcd.lock").write_text("user data")  # not empty: not one of our locks
    before = _tree(root)
    for args in (["envs", "prune"], ["envs", "prune", "--older-than", "30"]):
        p = run_cli(*args, env=_cli_env(root))
        assert p.returncode == 0, p.stderr
        assert "removed 0 environment(s) and 0 stale lock(s)" in p.stdout
        assert "kept 3 entries benchbed did not make" in p.stdout
    assert _tree(root) == before


@pytest.mark.parametrize("marker", ["{not json", b"\x00\xff\xfe binary", "{}", '[1, 2]',
                                    '{"digest": "d", "tool": "uv", "created": "yesterday"}'])
def test_damaged_markers_are_data_not_tracebacks(tmp_path, marker):
    root = tmp_path / "envs"
    key = root / "00000000000000aa"
    key.mkdir(parents=True)
    (key / ".benchbed-env.json").write_bytes(marker if isinstance(marker, bytes) else marker.encode())
    for args in (["envs", "list"], ["envs", "prune", "--older-than", "1"]):
        p = run_cli(*args, env=_cli_env(root))
        assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    assert key.exists()  # damaged: not provably ours, kept; well formed but of unknown age: not older than a day
    ours = marker.startswith('{"digest"') if isinstance(marker, str) else False
    p = run_cli("envs", "prune", env=_cli_env(root))
    assert p.returncode == 0 and key.exists() != ours, p.stdout


def test_env_dir_that_is_a_file_is_one_line(tmp_path):
    target = tmp_path / "afile"
    target.write_text("x")
    for args in (["envs", "list"], ["envs", "prune"]):
        p = run_cli(*args, env=_cli_env(target))
        assert p.returncode == 2 and "is not a folder" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert target.read_text() == "x"


def test_prune_removes_dead_half_builds_and_stale_locks_and_keeps_live_ones(tmp_path, monkeypatch):
    import json

    import psutil

    root = tmp_path / "envs"
    monkeypatch.setenv("BENCHBED_ENV_DIR", str(root))
    dead, live = root / "00000000000000d1", root / "00000000000000a1"
    for folder in (dead, live):
        folder.mkdir(parents=True)
        (folder / "bin").mkdir()
    child = subprocess.Popen(["true"])
    child.wait()  # a builder that died: its pid no longer runs (or runs as another process)
    (dead / ".benchbed-env-build.json").write_text(json.dumps(
        {"key": dead.name, "pid": child.pid, "pid_started": 1.0}))
    (live / ".benchbed-env-build.json").write_text(json.dumps(
        {"key": live.name, "pid": os.getpid(), "pid_started": psutil.Process().create_time()}))
    (root / "00000000000000f0.lock").write_text("")  # left by a failed build
    pruned = prune_envs(30 * 86400)
    assert pruned.removed == (dead.name,) and pruned.kept_busy == (live.name,)
    assert set(pruned.locks) == {"00000000000000f0.lock", dead.name + ".lock"}
    assert live.exists() and not dead.exists() and sorted(os.listdir(root)) == [live.name]
