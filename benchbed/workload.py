"""The settings the ``dataset``, ``server`` and training scenarios expand with (`Workload`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .values import AUTO_RATE, DEFAULT_OPTIMIZER, OPTIMIZERS, SpecError, limit_of, positive_int_value, whole_number

__all__ = ["Workload", "SERVE_BACKENDS"]

#: What serves a runner in the ``http`` scenario. ``transformers``: the runners on uvicorn, and the
#: cell's model behind `transformers serve` as one more runner (``transformers-serve``).
SERVE_BACKENDS = ("uvicorn", "ray", "transformers")


@dataclass(frozen=True)
class Workload:
    """The settings the ``dataset`` and ``server`` scenarios expand with (each becomes case options,
    so part of the case id): examples per pass and DataLoader workers (an axis) for ``dataset``;
    offered rates (an axis, requests/s), requests per rate, dynamic batching and the queue bound
    for ``server``."""

    examples: int = 1000
    workers: tuple[int, ...] = (0,)
    #: Offered rates (requests/s), or ``("auto",)``: search each runner's knee (``--rate auto``).
    rates: tuple[float | str, ...] = (5.0, 10.0, 20.0, 40.0)
    requests: int = 200
    max_batch: int = 1
    max_wait_ms: float = 0.0
    queue: int = 64
    #: A request that waited longer than this in the queue is dropped as timed out (0: never).
    timeout_ms: float = 0.0
    #: Training tasks: micro-batches per optimizer step (an axis; DataLoader workers are `workers`).
    grad_accum: tuple[int, ...] = (1,)
    #: Training tasks: the optimizer both paths step (an axis: sgd, adam, adamw).
    optimizers: tuple[str, ...] = (DEFAULT_OPTIMIZER,)
    #: ``http`` scenario: uvicorn worker processes per server (an axis), each with its own model.
    server_workers: tuple[int, ...] = (1,)
    #: ``http`` scenario: what serves the runner: ``uvicorn`` (benchbed's server) or ``ray`` (Ray Serve).
    serve: str = "uvicorn"
    #: ``http`` scenario with ``serve="ray"``: Ray Serve replicas (an axis).
    replicas: tuple[int, ...] = (1,)

    def check(self) -> None:
        """One `SpecError` line for the first setting out of range."""
        positive_int_value("examples", self.examples)
        positive_int_value("requests", self.requests)
        positive_int_value("max batch", self.max_batch)
        positive_int_value("queue", self.queue)
        if not self.workers or any(not whole_number(w, 0, limit_of("workers")) for w in self.workers):
            raise SpecError(f"workers must be integers from 0 to {limit_of('workers'):,}, got "
                            f"{', '.join(map(str, self.workers)) or 'none'}")
        if not self.grad_accum or any(not whole_number(g, 1, limit_of("grad accum")) for g in self.grad_accum):
            raise SpecError(f"gradient accumulation steps must be integers from 1 to {limit_of('grad accum'):,}, got "
                            f"{', '.join(map(str, self.grad_accum)) or 'none'}")
        if not self.optimizers or any(o not in OPTIMIZERS for o in self.optimizers):
            bad = next((o for o in self.optimizers if o not in OPTIMIZERS), "none")
            raise SpecError(f"unknown optimizer {str(bad)[:40]!r} (valid: {', '.join(OPTIMIZERS)})")
        if tuple(self.rates) != (AUTO_RATE,) and (
                not self.rates or any(isinstance(r, bool) or not isinstance(r, (int, float))
                                      or not (0 < r <= limit_of("rate")) for r in self.rates)):
            raise SpecError(f"rate must be > 0 and at most {limit_of('rate'):g} requests/s, or auto alone, got "
                            f"{', '.join(map(str, self.rates)) or 'none'}")
        for name, values in (("server workers", self.server_workers), ("replicas", self.replicas)):
            if not values or any(not whole_number(v, 1, 64) for v in values):
                raise SpecError(f"{name} must be integers from 1 to 64, got {', '.join(map(str, values)) or 'none'}")
        if self.serve not in SERVE_BACKENDS:
            raise SpecError(f"serve must be one of {', '.join(SERVE_BACKENDS)}, got {self.serve!r}")
        for name in ("max_wait_ms", "timeout_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= limit_of(name):
                raise SpecError(f"{name.replace('_', ' ')} must be from 0 to {limit_of(name):g}, got {value!r}")

    def training_variants(self) -> list[tuple[tuple[str, Any], ...]]:
        """The option sets of a training task: its accumulation steps, DataLoader workers and
        optimizer (the default's left out: cases of before the axis keep their ids) (the
        scenarios' own come from their declarations, `benchbed.scenarios.Scenario.variants`)."""
        return [(("grad_accum", int(g)), ("workers", int(w)))
                + ((("optimizer", o),) if o != DEFAULT_OPTIMIZER else ())
                for g in self.grad_accum for w in self.workers for o in self.optimizers]
