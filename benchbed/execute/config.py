"""Run-wide settings (`EngineConfig`, recorded with every case) and the identity every record of a
run shares (`RunContext`)."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from ..measure import StopRule
from ..spec import DEFAULT_REFERENCE

__all__ = ["EngineConfig", "ISOLATE_MODES", "ON_INTERFERENCE", "PAIRINGS", "RunContext"]

#: Values of `EngineConfig.isolate`.
ISOLATE_MODES = ("auto", "always", "never")
#: Values of `EngineConfig.pairing`: how the runners of a cell share the machine's time.
PAIRINGS = ("interleaved", "sequential")
#: Values of `EngineConfig.on_interference`: what a cell measured on a busy machine gets.
ON_INTERFERENCE = ("warn", "retry", "fail")


@dataclass(frozen=True)
class EngineConfig:
    """Run-wide settings, recorded with every case."""

    rule: StopRule = StopRule()
    seed: int = 0
    threads: int | None = None
    tokenizers_parallelism: bool = False
    phase_calls: int = 5
    trust_remote_code: bool = False
    suite: str = ""
    #: Testing aid for regression checks: real extra work worth this fraction of each call's own
    #: duration, inside the timed call. Recorded in `options`; not part of the case id, so a run
    #: with it compares against a run without it.
    inject_slowdown: float = 0.0
    #: Interleaved passes over the cells; each pass of a case is its own record, so a run carries
    #: its own run-to-run spread into `benchbed compare`.
    passes: int = 1
    #: Each cell in a fresh subprocess: "always", "never", or "auto" (CUDA cells only, and every
    #: cell when `case_timeout_s` is set: a hung call can only be stopped by killing its process).
    isolate: str = "auto"
    #: Memory a case may add on top of what the process holds when it starts (MiB); past it the
    #: case is an ``oom`` record. None: no cap.
    memory_cap_mb: float | None = None
    #: Wall-clock limit of an isolated cell's subprocess (seconds); past it, ``timeout`` records.
    case_timeout_s: float | None = None
    #: Seconds of calls in the separate NVML pass (memory used, utilisation, energy) on CUDA.
    resource_pass_s: float = 1.0
    #: Allow TF32 matmuls on CUDA (True/False), or leave torch's setting (None); recorded either way.
    tf32: bool | None = None
    #: The runner every other runner of a cell is compared with (parity and ratios).
    reference: str = DEFAULT_REFERENCE
    #: "interleaved": the runners of a cell are timed in alternating blocks in the same time window
    #: (the default); "sequential": one runner after the other, each in its own window.
    pairing: str = "interleaved"
    #: Time the host yardstick (`measure.yardstick`) in every block of an interleaved cell, so each
    #: record carries the machine's speed (``host_median_s``) for ``compare --normalize host``.
    yardstick: bool = True
    #: The server scenario's latency objective: a record meets it when its p99 is within it and at
    #: most 1% of its requests were dropped or timed out (``slo_met``).
    slo_ms: float = 100.0
    #: "warn": mark interfered records and go on; "retry": measure the cell again after a pause,
    #: up to `interference_retries` times; "fail": mark them, and the run exits 1.
    on_interference: str = "warn"
    interference_retries: int = 2
    interference_pause_s: float = 3.0

    def __post_init__(self) -> None:
        if self.isolate not in ISOLATE_MODES:
            raise ValueError(f"isolate must be one of {', '.join(ISOLATE_MODES)}, got {self.isolate!r}")
        if self.on_interference not in ON_INTERFERENCE:
            raise ValueError(f"on_interference must be one of {', '.join(ON_INTERFERENCE)}, got {self.on_interference!r}")
        if self.pairing not in PAIRINGS:
            raise ValueError(f"pairing must be one of {', '.join(PAIRINGS)}, got {self.pairing!r}")
        if self.case_timeout_s is not None and self.isolate == "never":
            # A hung call cannot be stopped inside this process; only a child can be killed.
            raise ValueError("case_timeout_s needs cases in a subprocess; it cannot be combined with isolate='never'")


@dataclass(frozen=True)
class RunContext:
    """What every record of one run shares: its id, start time, environment fingerprint, whether
    this process is an isolated child, and where records go."""

    run_id: str
    started_at: _dt.datetime
    env: dict[str, Any] = field(default_factory=dict)
    results: str = "results"
    in_child: bool = False
