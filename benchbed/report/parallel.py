"""Charts rendered in forked worker processes while the page's tables are built: matplotlib is
single-threaded and a report draws dozens of panels, so on two cores this halves the time a user
waits (docs/design-notes.md, "The report in seconds"). Where fork is not available, or a worker
dies or hangs, the chart is drawn here instead: the page is the same either way."""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable

__all__ = ["ChartPool", "WORKER_TIMEOUT_S"]

#: the longest a chart may take in a worker before it is drawn here instead (a bounded wait)
WORKER_TIMEOUT_S = 120.0


class ChartPool:
    """`submit(fn, *args)` starts a chart and returns a callable that gives its result; a context
    manager whose exit stops the workers."""

    def __init__(self, workers: int | None = None) -> None:
        n = workers if workers is not None else min(4, os.cpu_count() or 1)
        fork_ok = sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods()
        self._pool = ProcessPoolExecutor(n, mp_context=mp.get_context("fork")) if n > 1 and fork_ok else None

    def submit(self, fn: Callable[..., Any], *args: Any) -> Callable[[], Any]:
        if self._pool is None:
            return _Later(fn, args, None)
        try:
            return _Later(fn, args, self._pool.submit(fn, *args))
        except (BrokenProcessPool, RuntimeError, OSError):
            return _Later(fn, args, None)

    def __enter__(self) -> "ChartPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


class _Later:
    """A chart's result when asked for: the worker's, or drawn here if the worker failed (not
    the chart: an error of the chart itself is raised, as it would be here)."""

    def __init__(self, fn: Callable[..., Any], args: tuple, future: Any) -> None:
        self._fn, self._args, self._future = fn, args, future

    def __call__(self) -> Any:
        if self._future is not None:
            try:
                return self._future.result(timeout=WORKER_TIMEOUT_S)
            except (BrokenProcessPool, TimeoutError):
                self._future.cancel()
        return self._fn(*self._args)
