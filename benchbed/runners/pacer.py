"""Paced training: a training loop in a worker thread, one optimizer step per call from the
engine's thread (`Pacer`), and the examples as a map-style dataset for it (`Examples`). Both
training runners train this way (`runners.training`)."""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["Pacer", "Examples", "STEP_TIMEOUT_S"]

#: Seconds the engine waits for one Trainer step before calling the Trainer thread hung.
STEP_TIMEOUT_S = 3600.0


class Examples:
    """The examples as a map-style torch Dataset (a plain class: no torch import at module load)."""

    def __init__(self, examples: list[dict[str, Any]]) -> None:
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.examples[i]


class Pacer:
    """Runs a training loop in a worker thread, one optimizer step per `step()` call.

    Both runners train this way: the Trainer must (its loop is one call), and the raw loop does
    too so that the two paths differ only in the loop — a step on another thread has its own
    allocator arena and OpenMP team, which can change its speed by a few percent on its own. The
    worker calls `wait` between steps (and once when set up); the engine's thread calls `step`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._go, self._done = threading.Event(), threading.Event()
        self._stop = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def start(self, loop: Any) -> None:
        """Start `loop()` in the worker; return once it first calls `wait` (set up, ready)."""
        def run() -> None:
            try:
                loop()
            except BaseException as exc:  # handed to the engine's thread by _await
                self._error = exc
            finally:
                self._done.set()

        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        self._await()

    def wait(self) -> bool:
        """In the worker: say the step is done and wait for the next; True means stop."""
        self._go.clear()
        self._done.set()
        self._go.wait()
        return self._stop

    def _await(self) -> None:
        if not self._done.wait(STEP_TIMEOUT_S):
            raise TimeoutError(f"{self.name} took no step in {STEP_TIMEOUT_S:.0f} s")
        if self._error is not None:
            raise self._error
        if self._thread is None or not self._thread.is_alive():
            raise RuntimeError(f"{self.name}'s loop returned before the steps asked of it")

    def step(self) -> None:
        self._done.clear()
        self._go.set()
        self._await()

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._stop = True
            self._go.set()
            self._thread.join(timeout=60)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
