"""The ``dataset`` scenario: every sample is one pass over N examples end to end, each runner the
way it is used on a dataset (the pipeline over a torch Dataset with its own DataLoader batching,
the raw path as a loop over the same examples in the same order, ``torch-bucketed`` over
length-sorted batches). Runners alternate pass by pass (interleaved, one pass per block). Parity:
every example."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from ...scenarios import Scenario, register_scenario
from .base import Driver

__all__ = ["DatasetDriver", "SCENARIO"]


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
    """Every sample is one pass over the examples, each runner the way it is used on a dataset."""

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
        from ...workloads.sampler import padding_waste

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


def _variants(w: Any) -> list[tuple[tuple[str, Any], ...]]:
    return [(("examples", w.examples), ("workers", x)) for x in w.workers]


def _label(opts: Mapping[str, Any]) -> str:
    return f"dataset n{opts.get('examples', '?')} w{opts.get('workers', 0)}"


def _summary(rec: Mapping[str, Any], parity: str) -> str | None:
    from ...display import fmt_ms

    if not rec.get("examples_per_s"):
        return None
    return f"{rec['examples_per_s']:.1f} examples/s, pass {fmt_ms(rec['lat_median_s'])} ms ({parity})"


SCENARIO = register_scenario(Scenario(
    name="dataset", description="N examples end to end, each runner the way it is used on a dataset",
    driver=DatasetDriver, sample="pass", options=("examples", "workers"), variants=_variants, label=_label,
    summary=_summary, section="benchbed.report.sections.dataset:section"))
