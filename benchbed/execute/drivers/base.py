"""The driver every scenario builds on: inputs (synthetic, or drawn from a real source with
``--inputs``), their token lengths, and the latency behaviour (one call at a time on one batch;
with real inputs, calls cycle through `LATENCY_BATCHES` seeded batches, the same sequence for every
runner, so the j-th call of each runner in a block sees the same examples).

A driver is made per cell; `execute.cell` asks it for the inputs runners are built with, the
callable to time per runner, the outputs parity compares, and the extra record columns. Scenarios
subclass it (`dataset`, `server`, `training` here; plugins anywhere) and declare themselves with a
`benchbed.scenarios.Scenario`.
"""

from __future__ import annotations

from typing import Any, Callable


from ...spec import Case, SpecError
from ...runners.failures import Skip

__all__ = ["Driver", "LATENCY_BATCHES", "check_inputs"]

#: Distinct seeded batches a latency cell with real inputs cycles through.
LATENCY_BATCHES = 8


def check_inputs(source: str, task_names: list[str]) -> None:
    """Up-front check of ``--inputs`` against the tasks of a run (one line, before anything runs)."""
    from ...workloads.sources import REAL_INPUT_TASKS, load_examples

    bad = [t for t in task_names if t not in REAL_INPUT_TASKS]
    if bad:
        raise SpecError(f"--inputs: task {bad[0]!r} does not take real inputs yet "
                        f"(valid: {', '.join(REAL_INPUT_TASKS)})")
    for kind in sorted({REAL_INPUT_TASKS[t] for t in task_names}):
        load_examples(source, kind)


class Driver:
    """The latency behaviour; scenarios subclass it to drive the runners differently."""

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
    #: Whether parity also checks the reference runner as this scenario drives it against its
    #: `reference_outputs` (the http scenario: its server's answers against its direct outputs).
    checks_reference = False
    #: Whether the runner's own passes (memory, device counters) measure this process's work; not
    #: when a server elsewhere does the work.
    local_passes = True

    def __init__(self, case: Case, task: Any, bundle: Any, config: Any, cache: Callable[[tuple, Callable[[], Any]], Any]):
        self.case, self.task, self.bundle, self.config, self.seed = case, task, bundle, config, config.seed
        self.columns: dict[str, Any] = {}
        self.lengths: list[int] | None = None  # per example, when text
        self.examples: list[Any] = []
        if case.inputs is not None:
            from ...workloads.sources import REAL_INPUT_TASKS, load_examples

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
        from ...workloads.sampler import draw, materialize

        picked = [self.source.items[i] for i in draw(len(self.source.items), n, self.seed)]
        return materialize(picked, self.source.kind, self.case.seq_len if self.source.kind == "audio" else None)

    def measure_lengths(self, examples: list[Any]) -> None:
        """Token lengths of the examples as the model sees them (text), and their distribution."""
        from ...workloads.sampler import length_stats, token_lengths

        rate = getattr(self.task, "sampling_rate", None)
        if self.task.modality == "audio" and rate and examples and self.source is not None:
            lens = [len(x) * 1000 // rate for x in examples]
            self.columns.update(length_stats(lens), input_lens=lens)
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
            from ...workloads.sampler import batches_of, padding_waste

            self.columns["padding_waste"] = padding_waste(self.lengths, batches_of(len(self.examples), bs))
        return self.batches[0]

    def rule(self, rule: Any) -> Any:
        """The stop rule of this scenario's samples (the run's own for per-call latency)."""
        return rule

    # -- runners ---------------------------------------------------------------------------------
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

    def reference_outputs(self, run: Any, view: Any = None) -> list[Any]:
        """What every runner's outputs are compared with: the reference's `outputs`; with `view`,
        its outputs for ``view(inputs)`` (what a runner's service makes of the inputs)."""
        if view is None:
            return self.outputs(run)
        saved = run.inputs
        run.inputs = view(list(saved))
        try:
            return run()
        finally:
            run.inputs = saved

    def failure(self, name: str) -> str | None:
        """Why a runner that was timed still failed (its record becomes an ``error`` with this
        message, its measured columns kept); None when it did not."""
        return None

    def helpers(self) -> tuple[int, ...]:
        """Processes that do this cell's work beside this one (servers the driver started): their
        CPU time is the measurement's own, not interference."""
        return ()

    def close(self) -> None:
        """Release what the driver started for the cell (servers); called once, always."""

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

    @property
    def items_per_call(self) -> int:
        """Items one timed call processes (energy per item divides by it)."""
        return self.case.batch_size

    def memory_call(self, run: Any) -> Any:
        """The callable (with ``.sync``) the memory pass measures."""
        return run

    def serve(self, calls: dict[str, Any]) -> Any:
        """The timing of drivers that `serves` (a `PairedTiming` of per-request latencies)."""
        raise NotImplementedError
