"""The measurement engine that the CLI, the pytest plugin and the Python API all drive.

A `Session` is one run: an id, an environment fingerprint, a store, and caches of models and
pipelines keyed by what cannot change within a run. `Session.run_case` turns a `Case` into a
record: load (cached) -> inputs -> parity of both paths -> timed loop -> phase pass -> stats ->
store. Failures are data: a case that errors, runs out of memory or cannot run here becomes a
record with its status and message, and the caller goes on.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import secrets
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .measure import CudaPeak, MemoryCap, PeakRSS, StopRule, measure, no_sync, noise_warning, summarize, trim_heap
from .record import empty_record
from .spec import Case, device_index

__all__ = ["EngineConfig", "Session", "CaseResult", "ISOLATE_MODES", "new_run_id", "unavailable_reason"]

#: Values of `EngineConfig.isolate`.
ISOLATE_MODES = ("auto", "always", "never")


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
    #: Interleaved passes over the cases (`Session.run`); each pass of a case is its own record,
    #: so a run carries its own run-to-run spread into `benchbed compare`.
    passes: int = 1
    #: Each case in a fresh subprocess: "always", "never", or "auto" (CUDA cases only: the CUDA
    #: context, caching allocator, cuBLAS workspaces and compiled kernels of earlier cases stay in
    #: a process and show in its device-memory figures; on the CPU the heap is trimmed before each
    #: case instead, which keeps the RSS figure independent of earlier cases; see docs/gpu.md).
    isolate: str = "auto"
    #: Memory a case may add on top of what the process holds when it starts (MiB); past it the
    #: case is an ``oom`` record. None: no cap.
    memory_cap_mb: float | None = None
    #: Wall-clock limit of an isolated case's subprocess (seconds); past it, a ``timeout`` record.
    case_timeout_s: float | None = None
    #: Seconds of calls in the separate NVML pass (memory used, utilisation, energy) on CUDA.
    resource_pass_s: float = 1.0
    #: Allow TF32 matmuls on CUDA (True/False), or leave torch's setting (None); recorded either way.
    tf32: bool | None = None


@dataclass
class CaseResult:
    """A finished case: its record, where it was stored, and the raw samples for callers."""

    case: Case
    record: dict[str, Any]
    path: str | None = None
    samples: tuple[float, ...] = field(default=())

    @property
    def status(self) -> str:
        return self.record["status"]


def new_run_id(now: _dt.datetime | None = None) -> str:
    now = now or _dt.datetime.now(_dt.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _quiet_transformers() -> None:
    import logging

    import transformers

    # torchao (imported by transformers where installed) warns once per CUDA extension a CPU build
    # lacks, and torch's pytree about torchao's enums: noise, not news, in every run.
    for name in ("torchao", "torch.utils._pytree"):
        if logging.getLogger(name).level == logging.NOTSET:
            logging.getLogger(name).setLevel(logging.ERROR)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def _device_sync(device: str) -> Callable[[], None]:
    if device.startswith("cuda"):
        import torch

        return lambda: torch.cuda.synchronize(device)
    if device == "mps":
        import torch

        return torch.mps.synchronize
    return no_sync


#: Packages an attention implementation needs beyond torch and transformers.
_ATTN_PACKAGES = {"flash_attention_2": "flash_attn", "flash_attention_3": "flash_attn_interface"}


def unavailable_reason(case: Case) -> str | None:
    """Why this machine cannot run the case, or None."""
    import importlib.util

    import torch

    from .models.precision import precision_unavailable

    if case.device.startswith("cuda"):
        if not torch.cuda.is_available():
            return "CUDA is not available on this machine"
        index = device_index(case.device)
        if index >= torch.cuda.device_count():
            return f"{case.device} requested but only {torch.cuda.device_count()} CUDA device(s) present"
    if case.device == "mps" and not torch.backends.mps.is_available():
        return "MPS is not available on this machine"
    reason = precision_unavailable(case.dtype, case.device, str(case.option("int8", "dynamic")))
    if reason:
        return reason
    package = _ATTN_PACKAGES.get(case.attn_impl or "")
    if package and importlib.util.find_spec(package) is None:
        return f"attn_impl {case.attn_impl} needs the {package} package, which is not installed"
    if case.attn_impl and case.attn_impl.startswith("flash") and not case.device.startswith("cuda"):
        return f"attn_impl {case.attn_impl} runs only on CUDA"
    return None


def _is_oom(exc: BaseException) -> bool:
    import torch

    text = str(exc).lower()
    return (isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or "out of memory" in text
            or "can't allocate memory" in text or "cannot allocate memory" in text
            or "thread creation failed" in text or "bad_alloc" in text)


def _capped_failure(exc: BaseException) -> bool:
    """Failures that, under a memory cap, mean the cap was hit: oneDNN reports an allocation it
    could not make as a primitive it could not create."""
    return "could not create a primitive" in str(exc).lower()


def _attn_unsupported(exc: BaseException) -> bool:
    """transformers refusing an attention implementation for this architecture."""
    text = str(exc)
    return isinstance(exc, (ValueError, ImportError)) and ("attn_implementation" in text or "attention implementation" in text
                                                           or "does not support" in text and "attention" in text)


def _tf32_enabled() -> bool:
    import torch

    return bool(torch.backends.cuda.matmul.allow_tf32 or torch.get_float32_matmul_precision() != "highest")


class Session:
    """One benchmark run writing records under `results` (see `benchbed.store`)."""

    def __init__(self, results: str = "results", config: EngineConfig = EngineConfig(), run_id: str | None = None,
                 store: Any = None) -> None:
        # CI shards of one nightly run share an id through the environment, so their records join.
        run_id = run_id or os.environ.get("BENCHBED_RUN_ID") or None
        from .env import collect_env
        from .store import open_store

        from .validate import check_run_id

        if config.isolate not in ISOLATE_MODES:
            raise ValueError(f"isolate must be one of {', '.join(ISOLATE_MODES)}, got {config.isolate!r}")
        if config.case_timeout_s is not None and config.isolate == "never":
            # A hung call cannot be stopped inside this process; only a child can be killed.
            raise ValueError("case_timeout_s needs cases in a subprocess; it cannot be combined with isolate='never'")
        if run_id is not None:
            check_run_id(run_id, "run id" if run_id != os.environ.get("BENCHBED_RUN_ID") else "BENCHBED_RUN_ID")
        self.config = config
        self.results_root = str(results)
        self.run_id = run_id or new_run_id()
        self.started_at = _dt.datetime.now(_dt.timezone.utc)
        # Fix the setting for both paths: the pipeline would otherwise set it to "false" for the
        # whole process on first use, changing how fast later raw-path tokenisation runs.
        os.environ["TOKENIZERS_PARALLELISM"] = "true" if config.tokenizers_parallelism else "false"
        import torch

        if config.threads:
            torch.set_num_threads(config.threads)
        if config.tf32 is not None:
            torch.backends.cuda.matmul.allow_tf32 = config.tf32
            torch.backends.cudnn.allow_tf32 = config.tf32
        _quiet_transformers()
        self.env = collect_env()
        self.store = store if store is not None else open_store(results, self.run_id)
        self.in_child = False
        self._bundles: dict[tuple, Any] = {}
        self._pipes: dict[tuple, Any] = {}
        self._parity: dict[str, Any] = {}
        self.results: list[CaseResult] = []

    def with_config(self, **changes: Any) -> "Session":
        """A session of the same run, store and caches with some settings changed (e.g. an injected
        slowdown); the caches stay valid because models and inputs depend only on the seed."""
        from dataclasses import replace

        if "seed" in changes and changes["seed"] != self.config.seed:
            raise ValueError("a derived session must keep the seed: its cached models depend on it")
        other = object.__new__(Session)
        other.__dict__.update(self.__dict__)
        other.config = replace(self.config, **changes)
        other.results = []
        return other

    def close(self) -> str | None:
        """Compact this run's per-case files into one (see `benchbed.store.compact_run`)."""
        from .store import compact_run

        run_dir = getattr(self.store, "run_dir", None)
        if not isinstance(run_dir, os.PathLike) or not os.path.isdir(run_dir):
            return None  # remote stores stay one file per case; `benchbed merge` compacts them
        if os.environ.get("BENCHBED_RUN_ID"):
            return None  # other shards may still be writing into this run
        return compact_run(run_dir)

    # -- caches ---------------------------------------------------------------------------------
    @staticmethod
    def _bundle_key(case: Case, task: Any) -> tuple:
        compile_opts = (case.option("compile_backend", "inductor"), case.option("compile_mode")) if case.compiled else None
        return (case.model, task.head, task.labels, case.dtype, case.device, case.attn_impl,
                case.option("int8", "dynamic") if case.dtype == "int8" else None, compile_opts)

    def bundle(self, case: Case, task: Any) -> Any:
        from .models import load_model

        key = self._bundle_key(case, task)
        if key not in self._bundles:
            if case.device.startswith("cuda"):
                # Another model's weights left on the GPU would count in this case's memory peaks.
                self._bundles.clear()
                self._pipes.clear()
                _release(case.device)
            bundle = load_model(case.model, task.head, task.labels, case.dtype, case.device, seed=self.config.seed,
                                trust_remote_code=self.config.trust_remote_code, attn_impl=case.attn_impl,
                                int8_method=str(case.option("int8", "dynamic")))
            if case.compiled:
                # In place, so the module object both paths call is the compiled one (a wrapper from
                # torch.compile(module) is not a PreTrainedModel, which pipelines require).
                bundle.module.compile(backend=case.option("compile_backend", "inductor"),
                                      mode=case.option("compile_mode"))
            self._bundles[key] = bundle
        return self._bundles[key]

    def pipe(self, case: Case, task: Any, bundle: Any) -> Any:
        from .runners import build_pipeline

        key = (self._bundle_key(case, task), task.name)
        if key not in self._pipes:
            self._pipes[key] = build_pipeline(task, bundle, case.device)
        return self._pipes[key]

    def runner(self, case: Case, task: Any, bundle: Any, inputs: list[Any], runner: str | None = None) -> Any:
        from .runners import PipelineRunner, TorchRunner

        name = runner or case.runner
        args = (task, bundle, inputs, case.device, case.batch_size, _device_sync(case.device))
        if name == "torch":
            return TorchRunner(*args)
        return PipelineRunner(*args, pipe=self.pipe(case, task, bundle))

    # -- one case ---------------------------------------------------------------------------------
    def base_record(self, case: Case) -> dict[str, Any]:
        import torch

        rec = empty_record()
        rec.update({
            "run_id": self.run_id, "case_id": case.case_id, "pair_id": case.pair_id, "started_at": self.started_at,
            "suite": self.config.suite, "task": case.task, "model": case.model, "runner": case.runner,
            "device": case.device, "dtype": case.dtype, "batch_size": case.batch_size, "seq_len": case.seq_len,
            "new_tokens": case.new_tokens, "attn_impl": case.attn_impl, "compiled": case.compiled,
            "compile_backend": case.option("compile_backend", "inductor") if case.compiled else None,
            "threads": torch.get_num_threads(), "tf32": _tf32_enabled(), "isolated": self.in_child,
            "memory_cap_mb": self.config.memory_cap_mb,
            "options": json.dumps({**dict(case.options), **({"inject_slowdown": self.config.inject_slowdown}
                                                             if self.config.inject_slowdown else {})}, sort_keys=True),
        })
        rec.update(self.env)
        return rec

    def parity(self, case: Case, task: Any, bundle: Any, inputs: list[Any]) -> Any:
        """Both paths once on the same inputs; cached per cell so a torch/pipeline pair checks once.
        None when the installed transformers has no pipeline for the task (nothing to compare)."""
        if not task.pipeline_available():
            return None
        if case.pair_id not in self._parity:
            raw = self.runner(case, task, bundle, inputs, "torch")()
            piped = self.runner(case, task, bundle, inputs, "pipeline")()
            self._parity[case.pair_id] = task.compare(raw, piped, case.dtype)
        return self._parity[case.pair_id]

    def isolates(self, case: Case) -> bool:
        """Whether `case` runs in a fresh subprocess under this session's `isolate` setting."""
        if self.in_child:
            return False
        mode = self.config.isolate
        if mode == "auto" and self.config.case_timeout_s is not None:
            return True  # a timeout is enforced by killing the case's process
        return mode == "always" or (mode == "auto" and case.device.startswith("cuda"))

    def run(self, cases: list[Case], progress: Callable[[int, int, CaseResult], None] | None = None) -> list[CaseResult]:
        """All cases, `config.passes` times over, interleaved (pass 1 of every case, then pass 2, ...),
        so a slow drift of the machine's speed spreads over every case instead of hitting a few.

        Batch-size sweeps stop at memory: once a batch size runs out of memory, the larger batch
        sizes of the same path and cell are recorded as skipped rather than tried."""
        total = len(cases) * self.config.passes
        out: list[CaseResult] = []
        oom_at: dict[str, int] = {}
        for p in range(self.config.passes):
            for case in cases:
                sweep = _sweep_key(case)
                if sweep in oom_at and case.batch_size > oom_at[sweep]:
                    result = self.skip_case(case, f"not run: batch size {oom_at[sweep]} already ran out of memory "
                                                  f"on this path", pass_index=p)
                else:
                    result = self.run_one(case, pass_index=p)
                if result.status == "oom":
                    oom_at[sweep] = min(case.batch_size, oom_at.get(sweep, case.batch_size))
                out.append(result)
                if progress is not None:
                    progress(len(out), total, out[-1])
        return out

    def run_one(self, case: Case, pass_index: int = 0) -> CaseResult:
        """One case, in a fresh subprocess or in this one as `isolates` decides (a case this machine
        cannot run is recorded as skipped here: no process is started to find that out)."""
        case = case.canonical()
        if self.isolates(case) and unavailable_reason(case) is None:
            from .isolate import run_isolated

            return run_isolated(self, case, pass_index=pass_index)
        return self.run_case(case, pass_index=pass_index)

    def skip_case(self, case: Case, message: str, pass_index: int = 0, status: str = "skipped",
                  **columns: Any) -> CaseResult:
        """Store a record for a case that was not measured (status, message and any `columns`)."""
        rec = self.base_record(case)
        rec.update(pass_index=pass_index, status=status, message=message, **columns)
        return self._finish(case, rec, ())

    def _finish(self, case: Case, rec: dict[str, Any], samples: tuple[float, ...]) -> CaseResult:
        path = self.store.write(rec)
        result = CaseResult(case=case, record=rec, path=path, samples=samples)
        self.results.append(result)
        return result

    def run_case(self, case: Case, pass_index: int = 0) -> CaseResult:
        """Measure one case in this process and store its record, whatever happens."""
        from .tasks import get_task

        case = case.canonical()
        rec = self.base_record(case)
        rec["pass_index"] = pass_index
        samples: tuple[float, ...] = ()
        try:
            reason = unavailable_reason(case)
            if reason:
                rec.update(status="skipped", message=reason)
            else:
                task = get_task(case.task).configure(case)
                try:
                    bundle = self.bundle(case, task)
                except Exception as exc:
                    if case.attn_impl and _attn_unsupported(exc):
                        raise _Skip(f"attn_impl {case.attn_impl}: {exc}".strip()[:500]) from None
                    raise
                rec.update(model_params=bundle.params, model_config=bundle.config_name, model_weights=bundle.weights,
                           attn_impl=getattr(bundle.module.config, "_attn_implementation", None),
                           quant_method=bundle.extra.get("quant_method"))
                if task.modality == "image":  # the preprocessing backend changes the cost: record it
                    from .tasks.image_classification import preprocessor_backend

                    rec["options"] = json.dumps({**json.loads(rec["options"]),
                                                 "preprocessor": preprocessor_backend(bundle.tokenizer)}, sort_keys=True)
                if bundle.max_positions and case.seq_len > bundle.max_positions:
                    rec.update(status="skipped", message=f"seq_len {case.seq_len} exceeds the model's "
                                                         f"{bundle.max_positions} positions")
                else:
                    try:
                        inputs = task.make_inputs(bundle.tokenizer, case.batch_size, case.seq_len, self.config.seed)
                    except ValueError as exc:
                        rec.update(status="skipped", message=str(exc))
                    else:
                        if case.runner == "pipeline" and not task.pipeline_available():
                            rec.update(status="skipped", message=_no_pipeline(task))
                        else:
                            cap = None if self.config.memory_cap_mb is None else int(self.config.memory_cap_mb * 2**20)
                            with MemoryCap(cap, case.device):
                                samples = self._measure(case, task, bundle, inputs, rec, phases=pass_index == 0)
        except _Skip as skip:
            rec.update(status="skipped", message=str(skip))
        except Exception as exc:  # failures are data
            oom = _is_oom(exc) or (self.config.memory_cap_mb is not None and _capped_failure(exc))
            rec.update(status="oom" if oom else "error",
                       message=f"{exc.__class__.__name__}: {exc}".strip()[:2000])
            if rec["status"] == "error" and os.environ.get("BENCHBED_TRACEBACK"):
                traceback.print_exc(file=sys.stderr)
            if rec["status"] == "oom":
                self._parity.pop(case.pair_id, None)
            _release(case.device)
        return self._finish(case, rec, samples)

    def _measure(self, case: Case, task: Any, bundle: Any, inputs: list[Any], rec: dict[str, Any],
                 phases: bool = True) -> tuple[float, ...]:
        from .measure.flops import count_flops, matmul_peak_tflops
        from .models.precision import base_dtype
        from .measure.gpu import EventTimer, NvmlSampler, nvml_handle

        run = self.runner(case, task, bundle, inputs)
        if case.compiled:
            # Compilation happens in the first calls; they are timed here, apart from the samples.
            rec["compile_s"], rec["compile_graphs"] = _compile_warmup(run)
        parity = self.parity(case, task, bundle, inputs)
        if parity is not None:
            rec.update(parity_ok=parity.ok, parity_detail=parity.detail)
        else:
            rec.update(parity_detail=f"not checked: {_no_pipeline(task)}")
        base = run
        steps: list[tuple[float, float]] = []
        if task.streams:
            run.streamer = _StepTimer()
            run = _with_steps(run, steps)
        call = _slowed(run, self.config.inject_slowdown) if self.config.inject_slowdown else run
        cuda = case.device.startswith("cuda")
        events = EventTimer(case.device) if cuda else None
        graphs_before = _graph_count() if case.compiled else 0
        # What earlier cases freed must not hide this case's own memory: hand it back first.
        _release(case.device)
        trim_heap()
        t0 = time.perf_counter()
        with PeakRSS() as rss, CudaPeak(case.device) as gpu:
            timing = measure(call, self.config.rule, sync=run.sync, events=events)
        measure_s = time.perf_counter() - t0
        stats = summarize(timing.samples, seed=self.config.seed)
        if steps:
            timed = steps[-len(timing.samples):]  # warm-up calls came first
            rec["ttft_s"] = float(np.median([t for t, _ in timed]))
            rec["tpot_s"] = float(np.median([p for _, p in timed]))
        noise = noise_warning(stats)
        if case.compiled and _graph_count() != graphs_before:
            noise = "; ".join(x for x in (noise, "recompiled during timing") if x)
        phase_times = [run.call_with_phases()[1] for _ in range(self.config.phase_calls if phases else 0)]
        rec.update(stats.as_columns())
        rec.update(
            status="ok", samples_s=list(timing.samples), n_samples=stats.n, warmup=timing.warmup,
            stop_reason=timing.stop_reason, measure_s=measure_s, noise=noise or None,
            items_per_s=case.batch_size / stats.median if stats.median > 0 else None,
            tokens_per_s=(case.batch_size * (task.new_tokens if task.streams else case.seq_len) / stats.median
                          if stats.median > 0 else None),
            cpu_rss_peak_delta_mb=rss.delta_bytes / 2**20, cpu_rss_method=rss.method,
            gpu_alloc_peak_mb=None if gpu.allocated is None else gpu.allocated / 2**20,
            gpu_reserved_peak_mb=None if gpu.reserved is None else gpu.reserved / 2**20,
        )
        if events is not None and events.samples:
            rec["event_samples_s"] = list(events.samples)
            rec["cuda_event_median_s"] = float(np.median(events.samples))
        if phase_times:
            for key in ("pre", "fwd", "post"):
                rec[f"{key}_s"] = float(np.median([p[key] for p in phase_times]))
        # Efficiency: FLOPs of one call of this path against the device's measured matmul peak
        # (once per case: later passes of the same case have the same FLOPs).
        flops = count_flops(base) if phases else None
        if flops and stats.median > 0:
            rec["flops_per_call"] = float(flops)
            rec["achieved_tflops"] = flops / stats.median / 1e12
            peak = matmul_peak_tflops(case.device, case.dtype, fallback=base_dtype(case.dtype, case.device))
            if peak:
                rec["peak_tflops"], rec["peak_probe"] = peak
                rec["peak_fraction"] = rec["achieved_tflops"] / peak[0]
        # Device counters in their own pass: a sampler thread is a second workload.
        handle = nvml_handle(case.device) if cuda else None
        if handle is not None:
            calls = 0
            with NvmlSampler(handle) as sampler:
                end = time.perf_counter() + self.config.resource_pass_s
                while calls < 3 or time.perf_counter() < end:
                    base()
                    base.sync()
                    calls += 1
            used = sampler.peak_used_bytes
            powers = [x.power_w for x in sampler.samples if x.power_w is not None]
            rec.update(gpu_nvml_used_peak_mb=None if used is None else used / 2**20,
                       gpu_util_mean_pct=sampler.mean_util_pct,
                       gpu_power_mean_w=float(np.mean(powers)) if powers else None,
                       energy_method=sampler.energy_method,
                       energy_j_per_item=(sampler.energy_j / (calls * case.batch_size)
                                          if sampler.energy_j is not None else None))
        if parity is not None and not parity.ok:
            rec["message"] = f"PARITY MISMATCH: {parity.detail}"
        return timing.samples


def _no_pipeline(task: Any) -> str:
    import transformers

    return (f"transformers {transformers.__version__} has no {task.pipeline_task!r} pipeline "
            f"(removed in 5.0; transformers 4.x has it)")


class _StepTimer:
    """A generation streamer that timestamps every new token (`generate` hands it the prompt first,
    then each step's tokens, after they reach the host, so device work is finished)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.start = 0.0
        self.times: list[float] = []
        self._prompt = True

    def reset(self) -> None:
        self.start = self.clock()
        self.times = []
        self._prompt = True

    def put(self, value: Any) -> None:
        if self._prompt:
            self._prompt = False
            return
        self.times.append(self.clock())

    def end(self) -> None:
        pass


def _with_steps(run: Any, steps: list[tuple[float, float]]) -> Any:
    """Wrap a runner so each call appends (time to first token, time per later token), measured
    from per-step timestamps rather than by subtraction."""
    timer = run.streamer

    class Stepped:
        def __init__(self) -> None:
            self.sync = run.sync

        def __call__(self) -> Any:
            timer.reset()
            out = run()
            t = timer.times
            if t:
                tpot = (t[-1] - t[0]) / (len(t) - 1) if len(t) > 1 else 0.0
                steps.append((t[0] - timer.start, tpot))
            return out

        def call_with_phases(self) -> Any:
            return run.call_with_phases()

    return Stepped()


def _slowed(fn: Callable[[], Any], fraction: float) -> Callable[[], Any]:
    """`fn` followed by extra tensor work lasting `fraction` of fn's own duration: a real,
    proportional slowdown for checking that regressions are detected (not a number written into a
    record). The work is small torch matmuls, not a Python spin, so torch's worker threads stay as
    busy as in the model call; a spin let them fall asleep and slowed the next call as well, which
    tripled the effective slowdown."""
    import torch

    a = torch.randn(32, 32)

    def call() -> Any:
        t0 = time.perf_counter()
        out = fn()
        end = time.perf_counter() + (time.perf_counter() - t0) * fraction
        while time.perf_counter() < end:
            torch.mm(a, a)
        return out

    return call


def _release(device: str) -> None:
    import gc

    gc.collect()
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


class _Skip(Exception):
    """A case this machine or model cannot run, found while setting it up."""


def _sweep_key(case: Case) -> str:
    """Id of a case's batch-size sweep: the case with its batch size left out."""
    from dataclasses import replace

    return replace(case, batch_size=1).case_id


def _graph_count() -> int:
    try:
        from torch._dynamo.utils import counters

        return int(counters["stats"]["unique_graphs"])
    except Exception:
        return 0


def _compile_warmup(run: Any, max_calls: int = 8) -> tuple[float, int]:
    """Call `run` until a call compiles nothing new; returns (seconds of the calls that compiled,
    graphs compiled). 0 seconds means the graphs were already compiled, by the other path of the
    pair (parity runs both) or an earlier case of the same shapes."""
    seconds, graphs = 0.0, 0
    for _ in range(max_calls):
        before = _graph_count()
        t0 = time.perf_counter()
        run()
        run.sync()
        dt = time.perf_counter() - t0
        new = _graph_count() - before
        if new <= 0:
            break
        seconds += dt
        graphs += new
    return seconds, graphs
