"""How the runners of a training cell are driven: one timed sample is one optimizer step.

Every runner is built on the same seeded examples (batch x accumulation x `steps_per_epoch`, cycled
in order). Parity first takes `TrainSettings.parity_steps` steps on each runner and compares the
losses and weights; timing then goes on from there, the runners alternating in blocks of steps.
After the cell, each runner's loss curve is compared with the reference's over every step both
took, and the time each needed to reach the target loss is taken from its own step times.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ...spec import Case
from .base import Driver

__all__ = ["TrainingDriver", "time_to_loss"]


def time_to_loss(losses: list[float], step_s: list[float], target: float) -> tuple[int | None, float | None]:
    """(steps, seconds) until a loss first reached `target`: the number of steps taken, and the
    sum of their step times (the first steps, with their one-off costs, included); (None, None)
    when it never did. Within 1e-6 of the target counts (a loss scaled back by a normalisation
    factor carries float rounding)."""
    total = 0.0
    for i, (loss, dt) in enumerate(zip(losses, step_s)):
        total += dt
        if loss <= target + 1e-6 * abs(target):
            return i + 1, total
    return None, None


class TrainingDriver(Driver):
    """The latency scenario of training tasks: a sample is one optimizer step."""

    #: FLOPs are counted by a dispatch mode that is per thread, and the Trainer steps in its own.
    flops_pass = False

    def __init__(self, case: Case, task: Any, bundle: Any, config: Any,
                 cache: Callable[[tuple, Callable[[], Any]], Any]) -> None:
        super().__init__(case, task, bundle, config, cache)
        self.grad_accum = int(case.option("grad_accum", 1))
        self.workers = int(case.option("workers", 0))
        self.settings = task.settings
        self.runs: dict[str, Any] = {}

    def prepare(self) -> list[Any]:
        per_step = self.case.batch_size * self.grad_accum
        examples = self.task.make_examples(self.bundle, per_step * self.settings.steps_per_epoch, self.case.seq_len,
                                           self.seed)
        self.columns.update(grad_accum=self.grad_accum, workers=self.workers)
        return examples

    @property
    def items_per_call(self) -> int:
        """One call is an optimizer step: batch × accumulation examples."""
        return self.case.batch_size * self.grad_accum

    def rule(self, rule: Any) -> Any:
        """At least two warm-up steps (the first builds optimizer state and allocator pools)."""
        from dataclasses import replace

        return replace(rule, warmup=max(rule.warmup, 2))

    def call_of(self, run: Any) -> Callable[[], Any]:
        self.runs[run.case.runner] = run
        return run

    def outputs(self, run: Any) -> Any:
        """The parity steps, from the runner's first step (parity runs before timing)."""
        return run.trace(self.settings.parity_steps - len(run.losses))

    def after_parity(self, run: Any) -> None:
        """Training goes on from where parity left it (both paths are at the same step)."""

    def _whole_curve(self, name: str, ref: Any, run: Any, n: int) -> dict[str, Any]:
        """Parity over every step both runners took (the parity steps checked the weights; the
        curves must go on agreeing through the timed steps): a mismatch columns, else nothing."""
        from ...tasks.base import relabel

        def verdict(k: int) -> Any:
            return self.task.compare(ref.curve(k), run.curve(k), self.case.dtype)

        if not verdict(min(n, self.settings.parity_steps)).ok:
            return {}  # parity already failed; its own detail stands
        full = verdict(n)
        if full.ok:
            return {}
        detail = relabel(f"the loss curves part after the parity steps, over {n} steps: {full.detail}", name,
                         self.config.reference)
        return {"parity_ok": False, "parity_detail": detail, "message": f"PARITY MISMATCH: {detail}"}

    def runner_columns(self, name: str, run: Any, stats: Any) -> dict[str, Any]:
        """Throughput per optimizer step, the loss curve and how far it is from the reference's,
        and the time to the target loss (the option ``target_loss``; by default the loss halfway
        from the reference's first loss to the lowest it reached over as many steps as this runner
        took: a level the curves cross while descending, so paths whose losses agree within
        rounding cross it at the same step, which a minimum would not guarantee)."""
        per_step = self.case.batch_size * self.grad_accum
        median = stats.median
        losses = run.loss_values()
        out: dict[str, Any] = {
            "items_per_s": per_step / median if median > 0 else None,
            "tokens_per_s": per_step * self.case.seq_len / median if median > 0 else None,
            "train_steps": len(losses), "loss_curve": losses, "step_times_s": list(run.step_s),
            "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None,
            "optimizer": run.optim.name, "trainer_optimizer": getattr(run, "route", None),
            "optimizer_state_mb": _state_mb(run.optimizer_object()),
        }
        ref = self.runs.get(self.config.reference)
        ref_losses = ref.loss_values() if ref is not None else []
        if ref is not None and ref is not run and ref_losses and losses:
            n = min(len(ref_losses), len(losses))
            out["loss_max_diff"] = float(np.max(np.abs(np.subtract(ref_losses[:n], losses[:n]))))
            out.update(self._whole_curve(name, ref, run, n))
        target = self.case.option("target_loss")
        if target is None and ref_losses and losses:
            seen = ref_losses[:len(losses)]
            target = seen[0] - (seen[0] - min(seen)) / 2  # halfway down: crossed while descending
        if target is not None:
            # a path whose loss is divided differently (a named factor) reaches the target in the
            # reference's units: its own losses are scaled back by that factor first
            scale = 1.0
            if ref is not None and ref is not run:
                from ...tasks.training import normalisation_factor

                scale = normalisation_factor(ref.curve(), run.curve()) or 1.0
            steps, seconds = time_to_loss([x / scale for x in losses], run.step_s, float(target))
            out.update(target_loss=float(target), steps_to_loss=steps, time_to_loss_s=seconds)
        return out


def _state_mb(optimizer: Any) -> float | None:
    """MiB of the optimizer's state tensors (momentum buffers, Adam's two moments)."""
    if optimizer is None:
        return None
    optimizer = getattr(optimizer, "optimizer", optimizer)  # accelerate's wrapper
    total = sum(v.numel() * v.element_size() for st in optimizer.state.values() for v in st.values()
                if hasattr(v, "element_size"))
    return total / 2**20
