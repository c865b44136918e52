"""How the runners of a cell are driven: the ``scenario`` axis, and real inputs.

- ``latency`` (today's measurement): one call at a time on one batch. With real inputs
  (``--inputs``), calls cycle through `LATENCY_BATCHES` seeded batches of the source, the same
  sequence for every runner, so the j-th call of each runner in a block sees the same examples.
- ``dataset``: every sample is one pass over N examples end to end, each runner the way it is used
  on a dataset (the pipeline over a torch Dataset with its own DataLoader batching, the raw path as a
  loop over the same examples in the same order, ``torch-bucketed`` over length-sorted batches).
  Runners alternate pass by pass (interleaved, one pass per block). Parity: every example.
- ``server``: requests arrive open-loop at the case's rate (`workloads.server`); each runner serves
  the same arrival sequences behind the same loop, in two rounds in a shuffled order; each sample
  is one request's latency.

A driver is made per cell; `cell.py` asks it for the inputs runners are built with, the callable to
time per runner, the outputs parity compares, and the extra record columns.
"""

from __future__ import annotations

import random
import time
from typing import Any, Callable

import numpy as np

from ..spec import AUTO_RATE, Case, SpecError
from .failures import Skip

__all__ = ["Driver", "make_driver", "LATENCY_BATCHES", "check_inputs"]

#: Distinct seeded batches a latency cell with real inputs cycles through.
LATENCY_BATCHES = 8
#: A served load level stops taking arrivals after this many seconds, whatever its request count.
SERVER_MAX_S = 60.0
#: A probe of the knee search stops taking arrivals after this many seconds.
AUTO_PROBE_S = 20.0


def check_inputs(source: str, task_names: list[str]) -> None:
    """Up-front check of ``--inputs`` against the tasks of a run (one line, before anything runs)."""
    from ..workloads.sources import REAL_INPUT_TASKS, load_examples

    bad = [t for t in task_names if t not in REAL_INPUT_TASKS]
    if bad:
        raise SpecError(f"--inputs: task {bad[0]!r} does not take real inputs yet "
                        f"(valid: {', '.join(REAL_INPUT_TASKS)})")
    for kind in sorted({REAL_INPUT_TASKS[t] for t in task_names}):
        load_examples(source, kind)


class Driver:
    """The latency scenario; subclasses drive the runners differently."""

    #: Calls per runner per block in interleaved timing (None: sized by time).
    block_calls: int | None = None
    #: Whether the per-call passes (phases, FLOPs) mean anything for this scenario's samples.
    per_call_passes = True
    #: Whether the runners are timed by `serve` (requests under load) instead of in blocks of calls.
    serves = False
    #: Whether a wide spread of samples is noise to warn about (request latencies spread by design).
    spread_is_noise = True
    #: Whether the FLOPs pass applies (with `per_call_passes`).
    flops_pass = True

    def __init__(self, case: Case, task: Any, bundle: Any, config: Any, cache: Callable[[tuple, Callable[[], Any]], Any]):
        self.case, self.task, self.bundle, self.config, self.seed = case, task, bundle, config, config.seed
        self.columns: dict[str, Any] = {}
        self.lengths: list[int] | None = None  # per example, when text
        self.examples: list[Any] = []
        if case.inputs is not None:
            from ..workloads.sources import REAL_INPUT_TASKS, load_examples

            kind = REAL_INPUT_TASKS.get(task.name)
            if kind is None:
                raise Skip(f"{task.name} does not take real inputs yet (valid: {', '.join(REAL_INPUT_TASKS)})")
            self.source = cache(("inputs", case.inputs, kind), lambda: load_examples(case.inputs, kind))
            if kind == "text":
                task.truncate_to = case.seq_len
            self.columns.update(inputs_source=self.source.source, inputs_column=self.source.column,
                                inputs_examples=len(self.source.items), inputs_digest=self.source.digest)
        else:
            self.source = None

    # -- inputs ----------------------------------------------------------------------------------
    def draw(self, n: int) -> list[Any]:
        """`n` examples: seeded draws from the source, or `n` synthetic inputs of exactly seq_len."""
        if self.source is None:
            try:
                return list(self.task.make_inputs(self.bundle.tokenizer, n, self.case.seq_len, self.seed))
            except ValueError as exc:
                raise Skip(str(exc)) from None
        from ..workloads.sampler import draw, materialize

        picked = [self.source.items[i] for i in draw(len(self.source.items), n, self.seed)]
        return materialize(picked, self.source.kind, self.case.seq_len if self.source.kind == "audio" else None)

    def measure_lengths(self, examples: list[Any]) -> None:
        """Token lengths of the examples as the model sees them (text), and their distribution."""
        from ..workloads.sampler import length_stats, token_lengths

        if self.task.modality == "audio" and examples and self.source is not None:
            from ..tasks.speech_recognition import SAMPLING_RATE

            self.columns.update(length_stats([len(x) * 1000 // SAMPLING_RATE for x in examples]),
                                input_lens=[len(x) * 1000 // SAMPLING_RATE for x in examples])
            return  # milliseconds; padding waste is a text measure
        if self.task.modality != "text" or not examples or not isinstance(examples[0], str):
            return
        limit = self.task.truncate_to or self.case.seq_len
        self.lengths = token_lengths(self.bundle.tokenizer, examples, limit)
        self.columns.update(length_stats(self.lengths), input_lens=list(self.lengths))

    def inputs(self) -> list[Any]:
        """The batch every runner is built with, and is put back on after parity (see `prepare`)."""
        self.batch = self.prepare()
        return self.batch

    def prepare(self) -> list[Any]:
        """Draw what the scenario needs; return the batch runners are built with (and parity
        compares, unless `outputs` says else)."""
        if self.source is None:
            return self.draw(self.case.batch_size)
        bs = self.case.batch_size
        self.examples = self.draw(LATENCY_BATCHES * bs)
        self.batches = [self.examples[k * bs:(k + 1) * bs] for k in range(LATENCY_BATCHES)]
        self.measure_lengths(self.examples)
        if self.lengths is not None:
            from ..workloads.sampler import batches_of, padding_waste

            self.columns["padding_waste"] = padding_waste(self.lengths, batches_of(len(self.examples), bs))
        return self.batches[0]

    def rule(self, rule: Any) -> Any:
        """The stop rule of this scenario's samples (the run's own for per-call latency)."""
        return rule

    # -- runners ---------------------------------------------------------------------------------
    def setup(self, run: Any, case: Case) -> None:
        """Give a built runner what the scenario needs (e.g. DataLoader workers)."""

    def call_of(self, run: Any) -> Callable[[], Any]:
        """What one timed sample of `run` is."""
        if self.source is None:
            return run
        batches, state = self.batches, [0]

        def call() -> Any:
            run.inputs = batches[state[0] % len(batches)]
            state[0] += 1
            return run()

        return call

    def outputs(self, run: Any) -> list[Any]:
        """What parity compares: the outputs of one call on the first batch."""
        return run()

    def after_parity(self, run: Any) -> None:
        """Put the runner back on the batch the per-call passes use (parity may have moved it)."""
        run.inputs = self.batch

    def runner_columns(self, name: str, run: Any, stats: Any) -> dict[str, Any]:
        """Record columns of one runner that depend on the scenario (`stats`: the `Summary` of its
        samples): with real text, tokens/s counts the real tokens of a call (on average over the
        batches it cycles through)."""
        if self.lengths is None or stats.median <= 0:
            return {}
        return {"tokens_per_s": sum(self.lengths) / LATENCY_BATCHES / stats.median}

    def memory_call(self, run: Any) -> Any:
        """The callable (with ``.sync``) the memory pass measures."""
        return run

    def serve(self, calls: dict[str, Any]) -> Any:
        """The timing of drivers that `serves` (a `PairedTiming` of per-request latencies)."""
        raise NotImplementedError


class _Pass:
    """A dataset pass as a callable with the runner's sync (what the memory pass calls)."""

    def __init__(self, run: Any, examples: list[Any]) -> None:
        self.run, self.examples, self.sync = run, examples, run.sync
        self.first: list[float] = []

    def __call__(self) -> list[Any]:
        out = self.run.run_examples(self.examples)
        if self.run.first_result_s is not None:
            self.first.append(self.run.first_result_s)
        return out


class DatasetDriver(Driver):
    block_calls = 1
    per_call_passes = False

    def rule(self, rule: Any) -> Any:
        """A sample is a whole pass: one warm-up pass, then 3 to 5 timed passes per runner (fewer
        than 3 would leave no paired CI; `--max-time` would otherwise cut a long pass short)."""
        from dataclasses import replace

        return replace(rule, warmup=min(rule.warmup, 1), min_samples=3, max_samples=5, min_time_s=0.0,
                       max_time_s=max(rule.max_time_s, 86_400.0))

    def prepare(self) -> list[Any]:
        n = int(self.case.option("examples", 1000))
        self.examples = self.draw(n)
        self.measure_lengths(self.examples)
        self.passes: dict[int, _Pass] = {}
        self.columns.update(examples=n, workers=int(self.case.option("workers", 0)))
        return self.examples[: self.case.batch_size]

    def setup(self, run: Any, case: Case) -> None:
        run.workers = int(case.option("workers", 0))

    def _pass(self, run: Any) -> _Pass:
        if id(run) not in self.passes:
            self.passes[id(run)] = _Pass(run, self.examples)
        return self.passes[id(run)]

    def call_of(self, run: Any) -> Callable[[], Any]:
        return self._pass(run)

    def outputs(self, run: Any) -> list[Any]:
        return run.run_examples(self.examples)  # every example, in order

    def memory_call(self, run: Any) -> Any:
        return self._pass(run)

    def runner_columns(self, name: str, run: Any, stats: Any) -> dict[str, Any]:
        from ..workloads.sampler import padding_waste

        median_s, n_samples = stats.median, stats.n
        n = len(self.examples)
        out: dict[str, Any] = {"examples_per_s": n / median_s if median_s > 0 else None,
                               "items_per_s": n / median_s if median_s > 0 else None, "tokens_per_s": None}
        first = self._pass(run).first[-n_samples:]  # the timed passes (warm-up and parity came first)
        if first:
            out["first_result_s"] = float(np.median(first))
        if self.lengths is not None:
            out["padding_waste"] = padding_waste(self.lengths, run.example_batches(self.examples, self.case.batch_size))
            out["tokens_per_s"] = sum(self.lengths) / median_s if median_s > 0 else None
        return out


class ServerDriver(Driver):
    per_call_passes = False
    serves = True
    spread_is_noise = False  # queueing spreads request latency by design

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from ..workloads.server import ServerSettings

        opt = self.case.option
        #: ``--rate auto``: each runner's knee is searched for (`workloads.knee`) instead of one rate.
        self.auto = opt("rate") == AUTO_RATE
        self.searches: dict[str, Any] = {}
        self.names: dict[int, str] = {}  # id(runner) -> its name
        self.steps: dict[str, list[tuple[float, float]]] = {}  # per runner, per batch served
        self.settings = ServerSettings(rate=1.0 if self.auto else float(opt("rate", 10.0)),
                                       requests=int(opt("requests", 200)),
                                       max_batch=int(opt("max_batch", 1)),
                                       max_wait_s=float(opt("max_wait_ms", 0.0)) / 1000.0,
                                       queue_limit=int(opt("queue", 64)), max_duration_s=SERVER_MAX_S, seed=self.seed,
                                       timeout_s=float(opt("timeout_ms")) / 1000.0 if opt("timeout_ms") else None)
        self.loads: dict[str, Any] = {}

    def prepare(self) -> list[Any]:
        self.examples = self.draw(self.settings.requests)
        self.measure_lengths(self.examples)
        s = self.settings
        self.columns.update(offered_rate=None if self.auto else s.rate, requests=s.requests, max_batch=s.max_batch,
                            max_wait_ms=s.max_wait_s * 1000.0)
        return self.examples[: self.case.batch_size]

    def setup(self, run: Any, case: Case) -> None:
        self.names[id(run)] = case.runner

    def call_of(self, run: Any) -> Callable[[], Any]:
        """The handler of a batch of requests; for generation it streams, and keeps per batch the
        first new token's time from the batch's start and the time per later token."""
        examples = self.examples
        steps = self.steps.setdefault(self.names.get(id(run), str(id(run))), [])
        timer = None
        if self.task.streams:
            from .passes import StepTimer

            timer = run.streamer = StepTimer()

        def handle(batch: list[int]) -> Any:
            run.inputs = [examples[i % len(examples)] for i in batch]
            if timer is not None:
                timer.reset()
            out = run()
            run.sync()
            if timer is not None:
                steps.append(timer.first_and_per_token() or (float("nan"), float("nan")))
            return out

        return handle

    def _serve_one(self, name: str, handle: Callable[[list[int]], Any], settings: Any) -> Any:
        """One load level through `serve`; for generation, each request's time to first token is
        its queue wait plus its batch's first-token time, and its time per token its batch's."""
        from ..workloads.server import serve

        steps = self.steps.setdefault(name, [])
        steps.clear()
        load = serve(handle, settings)
        if self.task.streams and len(steps) == len(load.batch_sizes):
            k = 0
            for (first, tpot), size in zip(steps, load.batch_sizes):
                for wait in load.waits[k:k + size]:
                    load.ttft.append(wait + first)
                    load.tpot.append(tpot)
                k += size
        return load

    def met(self, load: Any) -> bool:
        """Whether a load level met the SLO: p99 within it and at most 1% of the requests dropped
        or timed out."""
        lost = load.dropped + load.timed_out
        if not load.latencies:
            return False
        p99 = float(np.percentile(load.latencies, 99))
        return bool(p99 * 1000.0 <= self.config.slo_ms and lost <= 0.01 * (load.completed + lost))

    def serve(self, calls: dict[str, Any]) -> Any:
        """Every runner's samples: the latencies of its requests, at the case's rate or, with
        ``--rate auto``, at the knee its search found."""
        from ..measure.paired import PairedTiming
        from ..measure.timer import Timing

        warm: dict[str, list[float]] = {}
        for name in calls:  # warm-up: a few full batches, outside any load (timed: the capacity estimate)
            warm[name] = []
            for _ in range(3):
                t0 = time.perf_counter()
                calls[name](list(range(self.settings.max_batch)))
                warm[name].append(time.perf_counter() - t0)
        self.loads = self._auto(calls, warm) if self.auto else self._listed(calls)
        timings = {n: Timing(samples=tuple(self.loads[n].latencies), warmup=3, stop_reason="requests",
                             total_s=self.loads[n].duration_s) for n in calls}
        return PairedTiming(timings, {n: () for n in calls}, "rounds")

    def _auto(self, calls: dict[str, Any], warm: dict[str, list[float]]) -> dict[str, Any]:
        """Each runner's knee search (`workloads.knee`), advanced in lockstep: round k serves every
        runner's k-th probe, in a shuffled order. A probe serves `requests` arrivals (at most
        `AUTO_PROBE_S` seconds of them). Each runner's samples are its load at the knee (at the
        lowest rate probed when none met the SLO)."""
        from dataclasses import replace

        from ..workloads.knee import knee_search

        rng = random.Random(self.seed)
        searches, rates, probes = {}, {}, {n: [] for n in calls}
        for name, times in warm.items():
            capacity = self.settings.max_batch / max(float(np.median(times[1:])), 1e-6)
            searches[name] = knee_search(capacity)
            rates[name] = next(searches[name])
        done: dict[str, Any] = {}
        rnd = 0
        while rates:
            order = list(rates)
            rng.shuffle(order)
            for name in order:
                settings = replace(self.settings, rate=rates[name], seed=self.seed * 7919 + rnd,
                                   max_duration_s=AUTO_PROBE_S)
                load = self._serve_one(name, calls[name], settings)
                probes[name].append((rates[name], load))
                try:
                    rates[name] = searches[name].send(self.met(load))
                except StopIteration as stop:
                    done[name] = stop.value
                    del rates[name]
            rnd += 1
        chosen = {}
        for name, search in done.items():
            knee = search.knee
            at = [load for rate, load in probes[name] if rate == knee] if knee is not None else []
            chosen[name] = at[-1] if at else min(probes[name], key=lambda p: p[0])[1]
            self.searches[name] = (search, probes[name])
        return chosen

    def _listed(self, calls: dict[str, Any]) -> dict[str, Any]:
        """Two rounds; in each, every runner (shuffled order) serves the same arrival sequence."""
        from dataclasses import replace

        from ..workloads.server import ServedLoad

        rng = random.Random(self.seed)
        names = list(calls)
        half = max(1, self.settings.requests // 2)
        loads = {n: ServedLoad() for n in names}
        for rnd in range(2):
            order = names[:]
            rng.shuffle(order)
            settings = replace(self.settings, requests=half, seed=self.seed * 7919 + rnd)
            for name in order:  # round 2 serves the next examples, at its own arrival times
                loads[name].add(self._serve_one(
                    name, lambda batch, call=calls[name], off=rnd * half: call([i + off for i in batch]), settings))
        return loads

    def runner_columns(self, name: str, run: Any, stats: Any) -> dict[str, Any]:
        """Load-level columns, and whether the SLO was met: p99 within it and at most 1% of the
        requests dropped or timed out."""
        load = self.loads[name]
        waits = np.asarray(load.waits or [np.nan])
        out: dict[str, Any] = {}
        if name in self.searches:
            search, probes = self.searches[name]
            out.update(offered_rate=next(r for r, got in probes if got is load), sustainable_rate=search.knee,
                       capacity_rate=search.capacity, probe_rates=[r for r, _ in probes],
                       probe_p99_s=[float(np.percentile(got.latencies, 99)) if got.latencies else None
                                    for _, got in probes],
                       probe_met=[ok for _, ok in search.probes])
        if load.ttft:
            out.update(ttft_s=float(np.median(load.ttft)), ttft_p99_s=float(np.percentile(load.ttft, 99)),
                       tpot_s=float(np.median(load.tpot)))
        return {**out, "slo_ms": self.config.slo_ms, "slo_met": self.met(load),
                "achieved_rate": load.achieved_rate, "completed": load.completed, "dropped": load.dropped,
                "timed_out": load.timed_out, "queue_median_s": float(np.median(waits)),
                "queue_p99_s": float(np.percentile(waits, 99)),
                "service_median_s": float(np.median(load.service)) if load.service else None,
                "batch_mean": float(np.mean(load.batch_sizes)) if load.batch_sizes else None,
                "items_per_s": load.achieved_rate, "tokens_per_s": None}


#: Scenario name -> driver class; ``training`` (the driver of every training task, whatever its
#: scenario) is added by `benchbed.execute.training`, which imports this module, not the reverse.
DRIVERS: dict[str, type[Driver]] = {"latency": Driver, "dataset": DatasetDriver, "server": ServerDriver}


def make_driver(case: Case, task: Any, bundle: Any, config: Any, cache: Any) -> Driver:
    """The driver of `case`'s scenario (training tasks: one optimizer step per sample). Generation
    tasks run in the latency and server scenarios (the server streams them per request), not yet
    in the dataset scenario."""
    if getattr(task, "trains", False):  # registered by `benchbed.execute.training`
        return DRIVERS["training"](case, task, bundle, config, cache)
    if case.scenario == "dataset" and task.streams:
        raise Skip("the dataset scenario does not drive generation tasks yet (time to first result per example "
                   "is not measured there); use --scenario latency or server")
    return DRIVERS[case.scenario](case, task, bundle, config, cache)
