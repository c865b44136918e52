"""The HTTP server of one runner: a uvicorn process (``--server-workers N`` worker processes, the
model loaded in each) on the loopback address, owned by the `HttpServer` context manager, which
stops it in every case: the end of a cell, an error, Ctrl-C. Should benchbed itself be killed,
Linux kills the server with it (``PR_SET_PDEATHSIG`` in the server and in each worker), so nothing
keeps listening after a run.

The parent binds nothing: the server process binds ``127.0.0.1:0``, writes the port it got, and
each worker writes a ready file once its runner is built; the parent waits for all of them (or a
failure file, or the process's exit) within a bounded time.
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

from ..scratch import scratch_dir

__all__ = ["HttpServer", "ServerFailed", "START_TIMEOUT_S", "stop_tree"]

#: How long the workers may take to load the model and build the runner.
START_TIMEOUT_S = 300.0


class ServerFailed(RuntimeError):
    """The server did not come up, with its reason (the worker's error, or the log's tail)."""


class HttpServer:
    """``with HttpServer(spec, workers) as server: server.url`` — a running server, always stopped."""

    def __init__(self, spec: dict[str, Any], workers: int = 1, start_timeout_s: float = START_TIMEOUT_S) -> None:
        self.spec, self.workers, self.start_timeout_s = spec, int(workers), start_timeout_s
        #: shown in the process list (``--label RUNNER``), so ``ps`` says what each server serves
        self.label = str(getattr(spec.get("case"), "runner", "runner"))
        self.proc: subprocess.Popen | None = None
        self.url: str | None = None
        self.dir: str | None = None
        self.start_s: float | None = None
        self.worker_pids: list[int] = []

    def __enter__(self) -> "HttpServer":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> str:
        from .host import die_with_parent

        t0 = time.perf_counter()
        self.dir = scratch_dir("serve-")
        spec_path = os.path.join(self.dir, "spec.pkl")
        with open(spec_path, "wb") as f:
            pickle.dump(self.spec, f)
        env = {**os.environ, "BENCHBED_SERVE_SPEC": spec_path, "BENCHBED_SERVE_READY": self.dir}
        self.log = open(os.path.join(self.dir, "server.log"), "wb")
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "benchbed.serving.server", "--workers",
                                          str(self.workers), "--label", self.label], env=env, stdin=subprocess.DEVNULL, stdout=self.log,
                                         stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent)
            self.url = self._wait()
        except BaseException:
            self.stop()
            raise
        self.start_s = time.perf_counter() - t0
        self.worker_pids = self.pids()
        return self.url

    def _wait(self) -> str:
        assert self.proc is not None and self.dir is not None
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            names = os.listdir(self.dir)
            failed = [n for n in names if n.startswith("failed-")]
            if failed:
                with open(os.path.join(self.dir, failed[0])) as f:
                    raise ServerFailed(f"the HTTP server's worker could not build the runner: {f.read().strip()}")
            ready = [n for n in names if n.startswith("ready-")]
            if "port" in names and len(ready) >= self.workers:
                with open(os.path.join(self.dir, "port")) as f:
                    return f"http://127.0.0.1:{int(f.read())}"
            if self.proc.poll() is not None:
                raise ServerFailed(f"the HTTP server exited with code {self.proc.returncode} before it was ready: "
                                   f"{self.log_tail()}")
            if time.monotonic() > deadline:
                raise ServerFailed(f"the HTTP server was not ready after {self.start_timeout_s:.0f}s "
                                   f"({len(ready)} of {self.workers} workers ready): {self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self, n: int = 400) -> str:
        try:
            with open(os.path.join(self.dir or "", "server.log"), "rb") as f:
                text = f.read().decode(errors="replace").strip()
        except OSError:
            return "(no log)"
        return " | ".join(text[-n:].splitlines()) or "(empty log)"

    def pids(self) -> list[int]:
        """The server's processes (its supervisor and workers)."""
        if self.proc is None:
            return []
        import psutil

        try:
            parent = psutil.Process(self.proc.pid)
            return [parent.pid] + [c.pid for c in parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def helper_pids(self) -> list[int]:
        """The server's processes: their CPU time is the measured work, not interference."""
        return self.pids()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """Stop the server and its workers (TERM, then KILL after 10 s), and remove its folder."""
        pids = self.pids()[1:]  # the workers (a worker that left the group still goes)
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_tree(proc, pids)
        log = getattr(self, "log", None)
        if log is not None:
            log.close()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


def stop_tree(proc: subprocess.Popen, pids: list[int]) -> None:
    """Stop a server started in its own session and its `pids` (workers that may have left its
    group): SIGTERM, then SIGKILL after 10 s."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        for pid in pids:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            proc.wait(wait)
            if not any(_exists(p) for p in pids):
                break
        except subprocess.TimeoutExpired:
            continue


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is gone for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def main(argv: list[str] | None = None) -> None:
    """The server process: bind the loopback port, say which, and serve with N workers."""
    import socket

    import uvicorn

    from .host import die_with_parent

    parser = argparse.ArgumentParser(prog="python -m benchbed.serving.server")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--label", default="runner", help="what it serves (for the process list)")
    args = parser.parse_args(argv)
    die_with_parent()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    sock.set_inheritable(True)
    ready_dir = os.environ["BENCHBED_SERVE_READY"]
    with open(os.path.join(ready_dir, "port.tmp"), "w") as f:
        f.write(str(sock.getsockname()[1]))
    os.replace(os.path.join(ready_dir, "port.tmp"), os.path.join(ready_dir, "port"))
    config = uvicorn.Config("benchbed.serving.app:make_app", factory=True, workers=args.workers, lifespan="on",
                            log_level="warning", access_log=False, timeout_graceful_shutdown=5, backlog=2048)
    if args.workers == 1:
        uvicorn.Server(config).run(sockets=[sock])
    else:
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[sock]).run()


if __name__ == "__main__":
    main()
