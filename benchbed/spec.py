"""What is benchmarked: the frozen `Case` and the `Matrix` of axes that expands into cases.

Validation here is pure (no I/O, no imports of torch or transformers), so a bad command line
fails in milliseconds and before anything is written.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

__all__ = [
    "AXES",
    "TRAINING_PREFIX",
    "TRAINING_RUNNERS",
    "is_training_task",
    "Case",
    "Matrix",
    "SpecError",
    "ATTN_IMPLS",
    "DTYPES",
    "TORCH_DTYPES",
    "RUNNERS",
    "MODEL_ALIASES",
    "canonical_model",
    "parse_attn_impl",
    "positive_int_value",
    "parse_bool",
    "parse_shard",
    "device_index",
    "validate_device",
]

#: Precisions accepted on the ``dtype`` axis; ``int8`` is torchao's int8 quantisation of the linear layers.
DTYPES: tuple[str, ...] = ("fp32", "bf16", "fp16", "int8")
#: torch dtype names of the floating precisions (``int8`` quantises on top of one of them).
TORCH_DTYPES: dict[str, str] = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
#: Attention implementations transformers knows; ``None`` on the axis means the model's default.
#: Those that need an extra package (flash-attn, kernels) are `skipped` where it is not installed.
ATTN_IMPLS: tuple[str, ...] = ("sdpa", "eager", "flash_attention_2", "flash_attention_3", "flex_attention")
#: The runner axis of a matrix that names none: the raw module call and ``transformers.pipeline``
#: (every registered runner is valid; see `benchbed.runners`).
RUNNERS: tuple[str, ...] = ("torch", "pipeline")
#: Every training task's name starts with this (``train-text-classification``); training tasks are
#: served by the training runners (`benchbed.runners.TRAINING_RUNNERS`) and expand with the
#: training settings of `Workload` (gradient accumulation, DataLoader workers).
TRAINING_PREFIX = "train-"


#: The runner axis of a training task when the matrix names the default (`RUNNERS`): the hand-written
#: loop (the reference) and ``transformers.Trainer``.
TRAINING_RUNNERS: tuple[str, ...] = ("torch", "trainer")


def is_training_task(name: str) -> bool:
    """Whether task `name` trains (by the naming rule every training task follows)."""
    return str(name).startswith(TRAINING_PREFIX)


#: The server scenario's rate that asks for a search of each runner's knee instead of a fixed rate.
AUTO_RATE = "auto"

#: Short model names users type, mapped to the one canonical name records and case ids carry, so
#: ``bert-tiny`` and ``synthetic:bert-tiny`` are the same case in every run.
MODEL_ALIASES: dict[str, str] = {
    "minilm": "packaged:all-minilm-l6-v2",
    "bert-tiny": "synthetic:bert-tiny",
    "bert-base": "synthetic:bert-base-uncased",
    "distilbert": "synthetic:distilbert-base-uncased",
}


def canonical_model(name: str) -> str:
    """The canonical name of a model (an alias resolved; any other name as it is)."""
    return MODEL_ALIASES.get(name, name)


#: Matrix axes in expansion order; ``runner`` is last so a torch/pipeline pair runs back to back.
AXES: tuple[str, ...] = ("task", "model", "device", "dtype", "attn_impl", "compiled", "batch_size", "seq_len",
                         "runner")
#: Case fields added after the first schema; left out of `Case.params` at their default, so the ids of
#: cases that do not use them stay what they were.
_LATE_FIELDS: dict[str, Any] = {"attn_impl": None, "compiled": False, "scenario": "latency", "inputs": None}
#: How a case drives its runners: one call at a time (``latency``), N examples end to end
#: (``dataset``), or requests arriving open-loop at a rate (``server``).
SCENARIOS: tuple[str, ...] = ("latency", "dataset", "server")
_TRUE = {"true", "yes", "on", "1", "compiled"}
_FALSE = {"false", "no", "off", "0", "eager-mode", "none", ""}

_DEVICE_RE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")

#: Checks a model name, raising `SpecError` for an unknown one (see `benchbed.models.check_model`).
ModelCheck = Callable[[str], None]


class SpecError(ValueError):
    """Bad user input in a case, a matrix or a suite; the CLI turns it into one line and exit 2."""


def device_index(device: str) -> int:
    """The index in ``cuda:N`` (``cuda`` alone is 0)."""
    return int(device.split(":")[1]) if ":" in device else 0


def validate_device(device: str) -> None:
    """Accept ``cpu``, ``mps``, ``cuda`` and ``cuda:N``; availability is checked later, per case."""
    if not isinstance(device, str) or not _DEVICE_RE.match(device):
        raise SpecError(f"unknown device {device!r} (valid: cpu, cuda, cuda:N, mps)")


def positive_int_value(name: str, value: Any) -> int:
    """`value` as a positive integer (an int, or text of one); a `SpecError` naming `name` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = int(str(value).strip())
        except ValueError:
            raise SpecError(f"{name} must be a positive integer, got {value!r}") from None
    if value <= 0:
        raise SpecError(f"{name} must be a positive integer, got {value}")
    return value


def parse_bool(name: str, value: Any) -> bool:
    """A boolean axis value from Python, TOML or a command line (true/false, yes/no, on/off, 1/0)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise SpecError(f"{name} must be true or false, got {value!r}")


def parse_attn_impl(value: Any) -> str | None:
    """An attention implementation name, or None (``default``) for the model's own choice."""
    if value is None or str(value).strip().lower() in ("", "default", "none"):
        return None
    if value not in ATTN_IMPLS:
        raise SpecError(f"unknown attn_impl {value!r} (valid: default, {', '.join(ATTN_IMPLS)})")
    return str(value)


@dataclass(frozen=True)
class Case:
    """One benchmark cell: a task on a model, invoked one way, at one device, precision and shape.

    Frozen and hashable so it can key caches and group results; `case_id` is a stable hash of the
    parameters, equal across runs, machines and Python versions.
    """

    task: str
    model: str
    runner: str = "torch"
    device: str = "cpu"
    dtype: str = "fp32"
    batch_size: int = 1
    seq_len: int = 128
    new_tokens: int | None = None
    options: tuple[tuple[str, Any], ...] = ()
    #: Attention implementation the module is loaded with; None keeps the model's default.
    attn_impl: str | None = None
    #: Whether the module both paths call is ``torch.compile``d.
    compiled: bool = False
    #: One of `SCENARIOS`; its settings (examples, workers, rate, ...) are in `options`.
    scenario: str = "latency"
    #: Where the examples come from (``--inputs``: a corpus, file, folder or dataset); None:
    #: synthetic inputs of exactly `seq_len` (then `seq_len` is the length, else the truncation limit).
    inputs: str | None = None

    def params(self) -> dict[str, Any]:
        """The case's parameters as plain JSON-able values, in field order (fields added later are
        left out at their default, so older case ids stay valid)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["options"] = dict(self.options)
        for name, default in _LATE_FIELDS.items():
            if out[name] == default:
                del out[name]
        return out

    def option(self, name: str, default: Any = None) -> Any:
        """One entry of `options`."""
        return dict(self.options).get(name, default)

    @property
    def case_id(self) -> str:
        """Stable 16-hex-digit id of all parameters: the key that matches a case across runs."""
        blob = json.dumps(self.params(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def pair_id(self) -> str:
        """Id shared by the torch and pipeline cases of the same cell, for ratios and parity."""
        return replace(self, runner="*").case_id

    def pair(self, runner: str) -> "Case":
        """The same cell through another runner."""
        return replace(self, runner=runner)

    @property
    def label(self) -> str:
        """Short human id, also the pytest parameter id (so ``-k`` selects on it)."""
        parts = [self.task, self.model, self.runner, self.device, self.dtype, f"b{self.batch_size}", f"s{self.seq_len}"]
        if self.new_tokens is not None:
            parts.append(f"n{self.new_tokens}")
        if self.attn_impl is not None:
            parts.append(f"attn={self.attn_impl}")
        if self.compiled:
            parts.append("compiled")
        if self.scenario != "latency":
            parts.append(self.scenario)
        if self.inputs is not None:
            parts.append(f"inputs={self.inputs}")
        parts += [f"{k}={v}" for k, v in self.options]
        return "-".join(parts)

    def __str__(self) -> str:
        return self.label

    def canonical(self) -> "Case":
        """The same case with its model named canonically (aliases resolved before the id is made)."""
        model = canonical_model(self.model)
        return self if model == self.model else replace(self, model=model)

    def validate(self, tasks: Iterable[str] | None = None, models: ModelCheck | None = None,
                 runners: Iterable[str] | None = None) -> "Case":
        """Check every field; `tasks` and `runners` are the registered names, `models` checks model names.

        Returns the case with integer fields normalised, so callers may pass strings from a CLI.
        """
        if tasks is not None:
            valid = sorted(tasks)
            if self.task not in valid:
                raise SpecError(f"unknown task {self.task!r} (valid: {', '.join(valid)})")
        if models is not None:
            models(self.model)
        valid_runners = list(runners) if runners is not None else list(RUNNERS)
        if self.runner not in valid_runners:
            raise SpecError(f"unknown runner {self.runner!r} (valid: {', '.join(valid_runners)})")
        validate_device(self.device)
        if self.dtype not in DTYPES:
            raise SpecError(f"unknown dtype {self.dtype!r} (valid: {', '.join(DTYPES)})")
        bs = positive_int_value("batch size", self.batch_size)
        sl = positive_int_value("sequence length", self.seq_len)
        nt = None if self.new_tokens is None else positive_int_value("new tokens", self.new_tokens)
        if self.scenario not in SCENARIOS:
            raise SpecError(f"unknown scenario {self.scenario!r} (valid: {', '.join(SCENARIOS)})")
        if self.inputs is not None and not str(self.inputs).strip():
            raise SpecError("inputs: empty source (valid: corpus:python-docs, a file, a folder, or hf:NAME#column)")
        return replace(self, model=canonical_model(self.model), batch_size=bs, seq_len=sl, new_tokens=nt,
                       attn_impl=parse_attn_impl(self.attn_impl), compiled=parse_bool("compiled", self.compiled))


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``i/n`` (1-based) into ``(i, n)``."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m:
        raise SpecError(f"shard must look like i/n (e.g. 1/4), got {text!r}")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 1 <= i <= n:
        raise SpecError(f"shard {text!r} out of range: need 1 <= i <= n")
    return i, n


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

    def check(self) -> None:
        """One `SpecError` line for the first setting out of range."""
        positive_int_value("examples", self.examples)
        positive_int_value("requests", self.requests)
        positive_int_value("max batch", self.max_batch)
        positive_int_value("queue", self.queue)
        if not self.workers or any(int(w) != w or w < 0 for w in self.workers):
            raise SpecError(f"workers must be integers >= 0, got {', '.join(map(str, self.workers)) or 'none'}")
        if not self.grad_accum or any(int(g) != g or g < 1 for g in self.grad_accum):
            raise SpecError(f"gradient accumulation steps must be integers >= 1, got "
                            f"{', '.join(map(str, self.grad_accum)) or 'none'}")
        if tuple(self.rates) != (AUTO_RATE,) and (
                not self.rates or any(not isinstance(r, (int, float)) or not (r > 0 and r < float("inf"))
                                      for r in self.rates)):
            raise SpecError(f"rate must be > 0 requests/s, or auto alone, got "
                            f"{', '.join(map(str, self.rates)) or 'none'}")
        for name in ("max_wait_ms", "timeout_ms"):
            value = getattr(self, name)
            if not (value >= 0 and value < float("inf")):
                raise SpecError(f"{name.replace('_', ' ')} must be >= 0, got {value}")

    def variants(self, scenario: str, training: bool = False) -> list[tuple[tuple[str, Any], ...]]:
        """The option sets of one scenario (one per point of its own axes); a training task's are
        its accumulation steps and DataLoader workers."""
        if training:
            return [(("grad_accum", int(g)), ("workers", int(w))) for g in self.grad_accum for w in self.workers]
        if scenario == "dataset":
            return [(("examples", self.examples), ("workers", w)) for w in self.workers]
        if scenario == "server":
            timeout = (("timeout_ms", self.timeout_ms),) if self.timeout_ms else ()
            return [(("max_batch", self.max_batch), ("max_wait_ms", self.max_wait_ms), ("queue", self.queue),
                     ("rate", r), ("requests", self.requests)) + timeout for r in self.rates]
        return [()]


@dataclass(frozen=True)
class Matrix:
    """Axes that expand into cases in a deterministic order (the order of `AXES`, runner innermost).

    Each axis holds a tuple of values. `narrow` keeps the intersection with values from a command
    line; `shard` splits by cell so a torch/pipeline pair always lands in the same shard.
    """

    task: tuple[str, ...]
    model: tuple[str, ...]
    runner: tuple[str, ...] = RUNNERS
    device: tuple[str, ...] = ("cpu",)
    dtype: tuple[str, ...] = ("fp32",)
    attn_impl: tuple[str | None, ...] = (None,)
    compiled: tuple[bool, ...] = (False,)
    batch_size: tuple[int, ...] = (1,)
    seq_len: tuple[int, ...] = (128,)
    new_tokens: int | None = None
    options: tuple[tuple[str, Any], ...] = field(default=())
    #: The runner every other runner of a cell is compared with (parity and ratios).
    reference: str = "torch"
    #: Scenarios (an axis, outside the runners): see `SCENARIOS`.
    scenario: tuple[str, ...] = ("latency",)
    #: Source of real inputs for every case (``--inputs``), or None for synthetic ones.
    inputs: str | None = None
    workload: Workload = field(default_factory=Workload)
    #: Whether `runner` is the default axis, which for training tasks means `TRAINING_RUNNERS`;
    #: None (the default): True unless `runner` was given (a suite, a command line, code).
    default_runners: bool | None = None

    def __post_init__(self) -> None:
        if self.default_runners is None:  # the default tuple object itself, not an equal one given
            object.__setattr__(self, "default_runners", self.runner is RUNNERS)
        if isinstance(self.scenario, str):
            object.__setattr__(self, "scenario", (self.scenario,))
        for axis in AXES:
            value = getattr(self, axis)
            if value is None or isinstance(value, (str, int)):
                value = (value,)
            object.__setattr__(self, axis, tuple(value))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "suite") -> "Matrix":
        """Build from a dict (a TOML table or JSON); unknown keys are a `SpecError`."""
        known = set(AXES) | {"new_tokens", "options", "reference", "scenario", "inputs"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(f"{where}: unknown key(s) {', '.join(unknown)} (valid: {', '.join(sorted(known))})")
        for required in ("task", "model"):
            if required not in data:
                raise SpecError(f"{where}: missing required key {required!r}")
        kwargs = dict(data)
        kwargs["default_runners"] = "runner" not in kwargs
        if "options" in kwargs:
            kwargs["options"] = tuple(sorted(dict(kwargs["options"]).items()))
        return cls(**kwargs)

    def cases(self) -> list[Case]:
        """All cases, deterministic order."""
        out = []
        assert AXES[-1] == "runner"
        for task, model, device, dtype, attn, comp, bs, sl in itertools.product(
                *(getattr(self, a) for a in AXES[:-1])):
            training = is_training_task(task)
            runners = TRAINING_RUNNERS if training and self.default_runners else self.runner
            for scenario in self.scenario:
                for extra in self.workload.variants(scenario, training):
                    options = tuple(sorted(dict(self.options + extra).items()))
                    for runner in runners:
                        out.append(Case(task=task, model=model, runner=runner, device=device, dtype=dtype,
                                        batch_size=bs, seq_len=sl, new_tokens=self.new_tokens, options=options,
                                        attn_impl=attn, compiled=comp, scenario=scenario, inputs=self.inputs))
        return out

    def __iter__(self) -> Iterator[Case]:
        return iter(self.cases())

    def __len__(self) -> int:
        return len(self.cases())

    def validate(self, tasks: Iterable[str] | None = None, models: ModelCheck | None = None,
                 runners: Iterable[str] | None = None) -> "Matrix":
        """Validate every axis value; returns a matrix with integers normalised."""
        tasks = list(tasks) if tasks is not None else None
        runners = list(runners) if runners is not None else None
        if self.reference not in (runners if runners is not None else RUNNERS):
            raise SpecError(f"unknown reference runner {self.reference!r} "
                            f"(valid: {', '.join(runners if runners is not None else RUNNERS)})")
        for axis in AXES:
            if not getattr(self, axis):
                raise SpecError(f"axis {axis!r} is empty")
        if self.new_tokens is not None:
            positive_int_value("new tokens", self.new_tokens)
        if not self.scenario:
            raise SpecError("axis 'scenario' is empty")
        for scenario in self.scenario:
            if scenario not in SCENARIOS:
                raise SpecError(f"unknown scenario {scenario!r} (valid: {', '.join(SCENARIOS)})")
        self.workload.check()
        if tuple(self.workload.grad_accum) != (1,) and not any(is_training_task(t) for t in self.task):
            raise SpecError(f"gradient accumulation applies to training tasks only "
                            f"(tasks starting with {TRAINING_PREFIX!r}), none of: {', '.join(self.task)}")
        # every value of every axis is checked once, through the same rules a single Case obeys
        longest = max(len(getattr(self, a)) for a in AXES)
        for i in range(longest):
            pick = {a: getattr(self, a)[min(i, len(getattr(self, a)) - 1)] for a in AXES}
            Case(**pick, new_tokens=self.new_tokens).validate(tasks, models, runners)
        return replace(
            self,
            model=tuple(dict.fromkeys(canonical_model(m) for m in self.model)),
            batch_size=tuple(positive_int_value("batch size", b) for b in self.batch_size),
            seq_len=tuple(positive_int_value("sequence length", s) for s in self.seq_len),
            attn_impl=tuple(dict.fromkeys(parse_attn_impl(a) for a in self.attn_impl)),
            compiled=tuple(dict.fromkeys(parse_bool("compiled", c) for c in self.compiled)),
        )

    def narrow(self, **axes: Sequence[Any] | None) -> "Matrix":
        """Keep only the given values on each named axis; values not in the matrix are added.

        Narrowing from a command line replaces an axis outright: ``--dtype bf16`` on a suite that
        declares fp32 runs bf16, which is what a user typing it means.
        """
        changes = {}
        for axis, values in axes.items():
            if axis not in AXES:
                raise SpecError(f"unknown axis {axis!r} (valid: {', '.join(AXES)})")
            if values:
                changes[axis] = tuple(values)
        if "runner" in changes:
            changes["default_runners"] = False
        return replace(self, **changes)

    def shard(self, index: int, count: int) -> list[Case]:
        """Cases of shard `index` of `count` (1-based), split by cell (pair_id), deterministic."""
        cells: dict[str, list[Case]] = {}
        for case in self.cases():
            cells.setdefault(case.pair_id, []).append(case)
        chosen = []
        for k, (_, group) in enumerate(cells.items()):
            if k % count == index - 1:
                chosen.extend(group)
        return chosen

