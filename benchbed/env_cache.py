"""The cache folder of built environments (``BENCHBED_ENV_DIR``): what is there (`list_envs`) and
removing what benchbed built there and nothing else (`prune_envs`). A folder is benchbed's only
when its name is a cache key and it holds benchbed's marker, written before its build started
(`envs.build_env`); markers are data on disk, read without trusting them."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass
from typing import Any

from .envs import BEGUN_MARKER, DONE_MARKER, KEY_PATTERN, env_root, finished_marker, read_marker

__all__ = ["list_envs", "prune_envs", "Pruned"]


def _created(path: str, meta: dict[str, Any]) -> float:
    """When a finished environment was built: its marker's time, else the marker file's mtime."""
    created = meta.get("created")
    if isinstance(created, (int, float)) and not isinstance(created, bool) and created == created:
        return float(created)
    try:
        return os.path.getmtime(os.path.join(path, DONE_MARKER))
    except OSError:
        return time.time()


def _builder_alive(meta: dict[str, Any]) -> bool:
    """Whether the process that began a build still runs: its pid *and* its start time, so that a
    reused pid is not taken for the builder."""
    import psutil

    pid, started = meta.get("pid"), meta.get("pid_started")
    if not isinstance(pid, int) or isinstance(pid, bool) or not isinstance(started, (int, float)):
        return False
    try:
        return abs(psutil.Process(pid).create_time() - float(started)) < 1.0
    except (psutil.Error, ValueError, OverflowError):
        return False


def _size(path: str) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            fp = os.path.join(dirpath, f)
            if not os.path.islink(fp):
                total += os.path.getsize(fp)
    return total


def list_envs() -> list[dict[str, Any]]:
    """The cached environments: key, name, spec, digest, size, when built and how long it took.
    Folders without a well-formed finished marker are not listed (``prune`` says what they are)."""
    root = env_root()
    out: list[dict[str, Any]] = []
    if not os.path.isdir(root):
        return out
    for key in sorted(os.listdir(root)):
        path = os.path.join(root, key)
        meta = finished_marker(path) if KEY_PATTERN.match(key) and os.path.isdir(path) else None
        if meta is None:
            continue
        built_s = meta.get("built_s")
        out.append({**{k: v for k, v in meta.items() if isinstance(k, str)}, "key": key, "path": path,
                    "size_mb": _size(path) / 2**20, "name": str(meta.get("name", "?")),
                    "spec": str(meta.get("spec", "?")),
                    "built_s": float(built_s) if isinstance(built_s, (int, float)) else 0.0,
                    "created": _created(path, meta)})
    return out


@dataclass(frozen=True)
class Pruned:
    """What ``prune_envs`` did: keys removed, stale locks removed, and folders it left alone."""

    removed: tuple[str, ...]
    locks: tuple[str, ...]
    kept_foreign: tuple[str, ...]  # not made by benchbed: never touched
    kept_busy: tuple[str, ...]  # a build in progress, or an environment in use (its lock is held)


def _try_lock(path: str) -> Any:
    """An exclusive lock on `path` if nobody holds it (the open file, to close), else None."""
    import fcntl

    try:
        fh = open(path, "a")
    except OSError:
        return None
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        return None
    return fh


def prune_envs(older_than_s: float | None = None) -> Pruned:
    """Remove what benchbed built under the cache folder and nothing else: finished environments
    (all, or those built more than `older_than_s` ago), builds whose builder died (by pid and start
    time), and the locks they leave. A folder is benchbed's only when its name is a cache key and
    it holds benchbed's marker, written before the build starts; anything else is kept."""
    root = env_root()
    removed: list[str] = []
    locks: list[str] = []
    foreign: list[str] = []
    busy: list[str] = []
    if not os.path.isdir(root):
        return Pruned((), (), (), ())
    now = time.time()
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if name.endswith(".lock") or name.endswith(".tmp"):
            continue
        if not (KEY_PATTERN.match(name) and os.path.isdir(path) and not os.path.islink(path)):
            foreign.append(name)
            continue
        done, begun = finished_marker(path), read_marker(os.path.join(path, BEGUN_MARKER))
        if done is None and (begun is None or begun.get("key") != name):
            foreign.append(name)  # no marker of ours (or one naming another folder): never ours to delete
            continue
        if done is not None and older_than_s is not None and now - _created(path, done) < older_than_s:
            continue
        if done is None and begun is not None and _builder_alive(begun):
            busy.append(name)
            continue
        lock = _try_lock(path + ".lock")
        if lock is None:
            busy.append(name)
            continue
        try:
            shutil.rmtree(path, ignore_errors=True)
        finally:
            lock.close()
        removed.append(name)
    for name in sorted(os.listdir(root)):
        key = name[:-len(".lock")]
        lock_path = os.path.join(root, name)
        if not (name.endswith(".lock") and KEY_PATTERN.match(key)) or os.path.exists(os.path.join(root, key)):
            continue
        if not os.path.isfile(lock_path) or os.path.islink(lock_path) or os.path.getsize(lock_path) != 0:
            continue  # benchbed's locks are empty files
        lock = _try_lock(lock_path)
        if lock is None:
            continue
        try:
            with contextlib.suppress(OSError):
                os.unlink(lock_path)
                locks.append(name)
        finally:
            lock.close()
    return Pruned(tuple(removed), tuple(locks), tuple(foreign), tuple(busy))
