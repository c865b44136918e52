"""Temporary folders, with one discipline: every one benchbed makes lives under a single folder of
this process (``$TMPDIR/benchbed-<pid>-<start time>``), removed at exit (a Ctrl-C and SIGTERM end
through ``atexit`` too); one left by a SIGKILLed process is removed by the next benchbed process,
which recognises it by pid *and* start time, never by its name alone (a reused pid is not the
owner, and a folder of a live process is never touched).
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
import threading

__all__ = ["scratch_dir", "scratch_root", "sweep_dead", "owner_alive", "contain_multiprocessing", "child_tmpdir",
           "sockets_fit"]

_PATTERN = re.compile(r"^benchbed-(\d+)-(\d+)$")
_lock = threading.Lock()
_root: str | None = None
_root_pid: int | None = None


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22): with the
    pid, an identity no other process has had since boot."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            text = fh.read().decode("ascii", "replace")
        return int(text[text.rindex(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def owner_alive(name: str) -> bool:
    """Whether `name` is a scratch folder's name whose process still runs (a folder in use, not
    a leftover)."""
    m = _PATTERN.match(name)
    return bool(m) and _start_ticks(int(m.group(1))) == int(m.group(2))


def sweep_dead(base: str | None = None) -> list[str]:
    """Remove the scratch folders of benchbed processes that no longer run; the paths removed."""
    base = base or tempfile.gettempdir()
    removed = []
    try:
        names = os.listdir(base)
    except OSError:
        return removed
    for name in names:
        m = _PATTERN.match(name)
        if not m:
            continue
        pid, ticks = int(m.group(1)), int(m.group(2))
        if _start_ticks(pid) == ticks:
            continue  # its owner still runs
        path = os.path.join(base, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _remove_root() -> None:
    global _root
    if _root is not None and _root_pid == os.getpid():
        shutil.rmtree(_root, ignore_errors=True)
        _root = None


def scratch_root() -> str:
    """This process's scratch folder, made on first use (after a sweep of dead processes' ones)."""
    global _root, _root_pid
    with _lock:
        if _root is None or _root_pid != os.getpid():  # a forked child gets its own
            sweep_dead()
            pid = os.getpid()
            path = os.path.join(tempfile.gettempdir(), f"benchbed-{pid}-{_start_ticks(pid) or 0}")
            os.makedirs(path, exist_ok=True)
            _root, _root_pid = path, pid
            atexit.register(_remove_root)
        return _root


def scratch_dir(prefix: str) -> str:
    """A new folder under this process's scratch folder (removed at exit with it at the latest)."""
    return tempfile.mkdtemp(prefix=prefix, dir=scratch_root())


def contain_multiprocessing() -> str | None:
    """Point multiprocessing's temporary folder at one under this process's scratch folder, and
    return it. DataLoader workers pass tensors through listener sockets in a ``pymp-*`` folder
    that only a normal exit removes: a SIGKILLed run left them in ``$TMPDIR``; here they go with
    the scratch folder (at exit, or swept by the next benchbed process). Forked workers inherit
    the setting. Call before starting workers. Where the scratch folder's path is too long for a
    socket path under it, the default is left (a leftover is better than a hung DataLoader)."""
    import multiprocessing.process as mp_process

    config = mp_process.current_process()._config  # where multiprocessing.util.get_temp_dir keeps it
    mine = config.get("tempdir")
    root = scratch_root()
    if isinstance(mine, str) and mine.startswith(root + os.sep):
        return mine
    if not sockets_fit(root):
        return mine  # a socket path past the limit fails to bind and hangs the DataLoader: leave the default
    config["tempdir"] = scratch_dir("pymp-")
    return config["tempdir"]


def sockets_fit(folder: str) -> bool:
    """Whether multiprocessing's listener sockets (``pymp-*/listener-*``) fit a socket path under
    `folder`: one past the limit fails to bind, and a DataLoader waiting on it hangs."""
    return len(folder) + len(os.sep + "pymp-12345678" + os.sep + "listener-12345678") <= _UNIX_PATH_MAX


def child_tmpdir(folder: str) -> dict[str, str]:
    """An environment for a child process whose temporary files must go with `folder` (a folder
    under the scratch folder): ``TMPDIR`` set to a folder in it, where the socket paths fit; the
    environment unchanged otherwise. A server ended by a signal never runs the finalizers that
    remove its ``pymp-*`` folder; here the folder goes with benchbed's."""
    env = dict(os.environ)
    tmp = os.path.join(folder, "tmp")
    if sockets_fit(tmp):
        os.makedirs(tmp, exist_ok=True)
        env["TMPDIR"] = tmp
    return env


#: the longest AF_UNIX socket path Linux binds (sun_path is 108 bytes, one for the NUL)
_UNIX_PATH_MAX = 107

