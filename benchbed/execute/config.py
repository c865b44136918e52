"""Run-wide settings (`EngineConfig`, recorded with every case), the identity every record of a
run shares (`RunContext`, made by `start_run`), and what a finished case hands back (`CaseResult`)."""

from __future__ import annotations

import datetime as _dt
import os
import secrets
from dataclasses import dataclass, field
from typing import Any

from ..measure import StopRule
from ..spec import DEFAULT_REFERENCE

__all__ = ["EngineConfig", "ISOLATE_MODES", "ON_INTERFERENCE", "PAIRINGS", "RunContext", "CaseResult", "new_run_id",
           "start_run"]

#: Values of `EngineConfig.isolate`.
ISOLATE_MODES = ("auto", "always", "never")
#: Values of `EngineConfig.pairing`: how the runners of a cell share the machine's time.
PAIRINGS = ("interleaved", "sequential")
#: Values of `EngineConfig.on_interference`: what a cell measured on a busy machine gets.
ON_INTERFERENCE = ("warn", "retry", "fail")


#: the longest budget a run may be given (a week)
MAX_BUDGET_S = 7 * 86400.0


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
    #: The one runner `inject_slowdown` slows (a ratio regression); None: every runner.
    inject_runner: str | None = None
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
    #: Built environments (`benchbed.envs.BuiltEnv`) that ``RUNNER@ENV`` runners run in.
    envs: tuple = ()
    #: Services measured as ``endpoint:NAME`` runners (`benchbed.endpoints.Endpoint`).
    endpoints: tuple = ()
    #: The hard bound on one HTTP request (``--http-timeout``): a hung server costs at most this.
    http_timeout_s: float = 30.0
    #: ``--serve ray``: the Ray cluster the runners are deployed on (None: a local one, or RAY_ADDRESS).
    serve_address: str | None = None
    #: ``--serve-option``: what `transformers serve` is started with for ``--serve transformers``
    #: (``continuous-batching``, ``attn-implementation=IMPL``, ``compile``, ``chat``: the chat API).
    serve_options: tuple[str, ...] = ()
    #: ``--budget``: the run's wall-clock seconds (None: no budget). Every cell gets a first pass,
    #: then further passes go to the ratios short of their target that the time left can bring
    #: there, the cheapest first (`schedule.Schedule`, `budget`); cells the budget could not reach
    #: are skipped records that say so.
    budget_s: float | None = None
    #: ``--explain``: after timing, profile the runners of the cells whose ratio CI excludes 1
    #: ("gap"), of every cell ("all"), or none ("off"); `benchbed.execute.explain_pass`.
    explain: str = "off"

    def endpoint(self, name: str) -> Any:
        """The endpoint ``endpoint:NAME`` measures."""
        for e in self.endpoints:
            if e.name == name:
                return e
        raise KeyError(f"endpoint {name!r} is not defined (defined: {', '.join(e.name for e in self.endpoints) or 'none'})")

    def __post_init__(self) -> None:
        if self.isolate not in ISOLATE_MODES:
            raise ValueError(f"isolate must be one of {', '.join(ISOLATE_MODES)}, got {self.isolate!r}")
        if self.on_interference not in ON_INTERFERENCE:
            raise ValueError(f"on_interference must be one of {', '.join(ON_INTERFERENCE)}, got {self.on_interference!r}")
        if self.explain not in ("off", "gap", "all"):
            raise ValueError(f"explain must be one of off, gap, all, got {self.explain!r}")
        if self.pairing not in PAIRINGS:
            raise ValueError(f"pairing must be one of {', '.join(PAIRINGS)}, got {self.pairing!r}")
        if self.case_timeout_s is not None and self.isolate == "never":
            # A hung call cannot be stopped inside this process; only a child can be killed.
            raise ValueError("--case-timeout needs cases in subprocesses (a hung call cannot be stopped in-process); "
                             "drop --no-isolate (case_timeout_s with isolate='never')")
        if self.budget_s is not None and not 0 < self.budget_s <= MAX_BUDGET_S:
            raise ValueError(f"--budget must be above 0 s and at most a week, got {self.budget_s!r}")
        if not 0 <= self.inject_slowdown < 10:
            raise ValueError(f"--inject-slowdown must be a fraction between 0 and 10, got {self.inject_slowdown}")


@dataclass(frozen=True)
class RunContext:
    """What every record of one run shares: its id, start time, environment fingerprint, whether
    this process is an isolated child, and where records go."""

    run_id: str
    started_at: _dt.datetime
    env: dict[str, Any] = field(default_factory=dict)
    results: str = "results"
    in_child: bool = False


def new_run_id(now: _dt.datetime | None = None) -> str:
    """A new run id: the UTC start time and six random hex digits."""
    now = now or _dt.datetime.now(_dt.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def start_run(results: str, run_id: str | None = None) -> RunContext:
    """The context of a new run writing under `results`: `run_id`, else ``BENCHBED_RUN_ID`` (CI
    shards of one nightly run share an id through the environment, so their records join), else a
    new id; the environment fingerprint taken now."""
    from ..env import collect_env
    from ..validate import check_run_id

    from_env = os.environ.get("BENCHBED_RUN_ID") or None
    run_id = run_id or from_env
    if run_id is not None:
        check_run_id(run_id, "BENCHBED_RUN_ID" if run_id == from_env else "run id")
    return RunContext(run_id=run_id or new_run_id(), started_at=_dt.datetime.now(_dt.timezone.utc),
                      env=collect_env(), results=str(results))


@dataclass
class CaseResult:
    """A finished case: its record, where it was stored, and the raw samples for callers."""

    case: Any
    record: dict[str, Any]
    path: str | None = None
    samples: tuple[float, ...] = field(default=())

    @property
    def status(self) -> str:
        return self.record["status"]
