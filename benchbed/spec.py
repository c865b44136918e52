"""What is benchmarked: the frozen `Case` and the `Matrix` of axes that expands into cases.

Validation here is pure (no I/O, no imports of torch or transformers), so a bad command line
fails in milliseconds and before anything is written. The vocabulary and the parsing of single
values live in `benchbed.values`, the scenarios' settings in `benchbed.workload`; both are
re-exported here, where callers have always found them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from .values import (
    _LATE_FIELDS,
    ATTN_IMPLS,
    AUTO_RATE,
    AXES,
    DEFAULT_OPTIMIZER,
    DEFAULT_REFERENCE,
    DTYPES,
    LIMITS,
    MODEL_ALIASES,
    OPTION_KEYS,
    RUNNERS,
    TORCH_DTYPES,
    TRAINING_PREFIX,
    TRAINING_RUNNERS,
    SpecError,
    canonical_model,
    device_index,
    is_training_task,
    limit_of,
    parse_attn_impl,
    parse_bool,
    parse_shard,
    positive_int_value,
    validate_device,
)
from .scenarios import get_scenario, options_owned, scenario_names
from .workload import Workload

#: Checks a model name, raising `SpecError` for an unknown one (see `benchbed.models.check_model`).
ModelCheck = Callable[[str], None]

__all__ = [
    "Endpoint", "ENDPOINT_PREFIX", "HF_SERVE_RUNNER", "AXES", "TRAINING_PREFIX", "TRAINING_RUNNERS", "is_training_task", "Case", "Matrix", "SpecError", "ATTN_IMPLS",
    "DTYPES", "TORCH_DTYPES", "RUNNERS", "DEFAULT_REFERENCE", "MODEL_ALIASES", "canonical_model", "parse_attn_impl",
    "positive_int_value", "LIMITS", "OPTION_KEYS", "limit_of", "parse_bool", "parse_shard", "device_index",
    "validate_device", "Workload", "AUTO_RATE", "scenario_names", "check_scenario_options",
]

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
    #: A registered scenario (`benchbed.scenarios`); its settings (examples, workers, rate, ...) are in `options`.
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
        """Check every field; `tasks` and `runners` are the registered names (None: any name),
        `models` checks model names.

        Returns the case with integer fields normalised, so callers may pass strings from a CLI.
        """
        if tasks is not None:
            valid = sorted(tasks)
            if self.task not in valid:
                raise SpecError(f"unknown task {self.task!r} (valid: {', '.join(valid)})")
        if models is not None:
            models(self.model)
        # Without the registry (spec imports nothing of ours) any runner name is taken; the doors
        # pass `benchbed.runners.runner_names()`, so a plugin runner is valid there too.
        if runners is not None and self.runner not in list(runners):
            raise SpecError(f"unknown runner {self.runner!r} (valid: {', '.join(runners)})")
        if not isinstance(self.runner, str) or not self.runner:
            raise SpecError(f"runner must be a name, got {self.runner!r}")
        validate_device(self.device)
        if self.dtype not in DTYPES:
            raise SpecError(f"unknown dtype {self.dtype!r} (valid: {', '.join(DTYPES)})")
        bs = positive_int_value("batch size", self.batch_size)
        sl = positive_int_value("sequence length", self.seq_len)
        nt = None if self.new_tokens is None else positive_int_value("new tokens", self.new_tokens)
        _scenario(self.scenario)
        if self.inputs is not None and not str(self.inputs).strip():
            raise SpecError("inputs: empty source (valid: corpus:python-docs, a file, a folder, or hf:NAME#column)")
        return replace(self, model=canonical_model(self.model), batch_size=bs, seq_len=sl, new_tokens=nt,
                       attn_impl=parse_attn_impl(self.attn_impl), compiled=parse_bool("compiled", self.compiled))


@dataclass(frozen=True)
class Matrix:
    """Axes that expand into cases in a deterministic order (the order of `AXES`, runner innermost).

    Each axis holds a tuple of values. `narrow` replaces an axis with the values a command line
    gives; `shard` splits by cell so a torch/pipeline pair always lands in the same shard.
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
    reference: str = DEFAULT_REFERENCE
    #: Scenarios (an axis, outside the runners): registered names (`benchbed.scenarios`).
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
        for axis in AXES + ("scenario",):
            value = getattr(self, axis)
            if not isinstance(value, (tuple, list)):  # one value: None, a str, a number, or a mistake
                value = (value,)                      # that `validate` names
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
            if not isinstance(kwargs["options"], Mapping):
                raise SpecError(f"{where}: options must be a table of NAME = VALUE, got {kwargs['options']!r:.80}")
            kwargs["options"] = tuple(sorted(dict(kwargs["options"]).items()))
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise SpecError(f"{where}: {exc}") from None

    def cases(self) -> list[Case]:
        """All cases, deterministic order."""
        out = []
        assert AXES[-1] == "runner"
        for task, model, device, dtype, attn, comp, bs, sl in itertools.product(
                *(getattr(self, a) for a in AXES[:-1])):
            training = is_training_task(task)
            runners = TRAINING_RUNNERS if training and self.default_runners else self.runner
            for scenario in self.scenario:
                variants = self.workload.training_variants() if training else _scenario(scenario).expand(self.workload)
                for extra in variants:
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
        self._check_types()
        if runners is not None and self.reference not in runners:
            raise SpecError(f"unknown reference runner {self.reference!r} (valid: {', '.join(runners)})")
        for axis in AXES:
            if not getattr(self, axis):
                raise SpecError(f"axis {axis!r} is empty")
            values = [str(v) for v in getattr(self, axis)]
            twice = sorted({v for v in values if values.count(v) > 1})
            if twice and axis != "model":  # aliases of one model are folded below
                raise SpecError(f"{axis} {', '.join(twice)} named twice: each case would be measured and stored "
                                f"twice; name each value once")
        if self.new_tokens is not None:
            positive_int_value("new tokens", self.new_tokens)
        if not self.scenario:
            raise SpecError("axis 'scenario' is empty")
        for scenario in self.scenario:
            _scenario(scenario)
        check_scenario_options((k for k, _ in self.options), self.scenario, self.task)
        self.workload.check()
        for what, changed in (("gradient accumulation", tuple(self.workload.grad_accum) != (1,)),
                              ("--optimizer", tuple(self.workload.optimizers) != (DEFAULT_OPTIMIZER,)),
                              ("--learning-rate", self.option_given("learning_rate")),
                              ("--momentum", self.option_given("momentum"))):
            if changed and not any(is_training_task(t) for t in self.task):
                raise SpecError(f"{what} applies to training tasks only "
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

    def _check_types(self) -> None:
        """One `SpecError` line for a field of the wrong kind (a suite's ``options = 5``,
        ``scenario = 5``, ``workload = 5``, an option that is not a plain value or an unknown name)."""
        if not isinstance(self.options, tuple) or not all(
                isinstance(o, tuple) and len(o) == 2 and isinstance(o[0], str) for o in self.options):
            raise SpecError(f"options must be NAME = VALUE pairs, got {self.options!r:.80}")
        valid = OPTION_KEYS | set(options_owned())
        for key, value in self.options:
            if key not in valid:
                raise SpecError(f"unknown option {key!r} (valid: {', '.join(sorted(valid))})")
            if isinstance(value, float) and value != value or not isinstance(value, (str, int, float, bool)):
                raise SpecError(f"option {key!r} must be a string, number or true/false, got {value!r:.80}")
        for name in ("scenario", "task", "model", "runner", "device", "dtype"):
            for value in getattr(self, name):
                if not isinstance(value, str) or not value.strip():
                    raise SpecError(f"{name} values must be non-empty names, got {value!r:.80}")
        if not isinstance(self.reference, str):
            raise SpecError(f"reference must be a runner name, got {self.reference!r:.80}")
        if self.inputs is not None and not isinstance(self.inputs, str):
            raise SpecError(f"inputs must be a source name (text), got {self.inputs!r:.80}")
        if not isinstance(self.workload, Workload):
            raise SpecError(f"workload must be a benchbed.Workload, got {self.workload!r:.80}")

    def option_given(self, name: str) -> bool:
        """Whether the matrix's options set `name`."""
        return any(k == name for k, _ in self.options)

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


def _scenario(name: str) -> Any:
    """The registered scenario `name`; a `SpecError` naming the valid ones otherwise."""
    try:
        return get_scenario(name)
    except KeyError as exc:
        raise SpecError(exc.args[0]) from None


def check_scenario_options(options: Iterable[str], scenarios: Iterable[str], tasks: Iterable[str] = ()) -> None:
    """A `SpecError` for an option that belongs to scenarios none of `scenarios` is (``rate`` with
    only the latency scenario would change nothing but the case id). ``workers`` is also a
    training task's setting, so a matrix with a training task takes it in any scenario."""
    scenarios, owned = list(scenarios), options_owned()
    training = any(is_training_task(t) for t in tasks)
    for key in options:
        owners = owned.get(key)
        if not owners or any(s in owners for s in scenarios) or (training and key in OPTION_KEYS):
            continue
        raise SpecError(f"{key} is a setting of the {' and '.join(owners)} scenario{'s' if len(owners) > 1 else ''}; "
                        f"this run's scenario{'s are' if len(scenarios) > 1 else ' is'} {', '.join(scenarios)} "
                        f"(add --scenario {owners[0]}, or leave {key} out)")


#: the runner name of a service benchbed did not start: ``endpoint:NAME``
ENDPOINT_PREFIX = "endpoint:"
#: the runner name of the cell's model behind Hugging Face's server (``--serve transformers``)
HF_SERVE_RUNNER = "transformers-serve"


@dataclass(frozen=True)
class Endpoint:
    """A service to measure: its runner name's suffix, its URL, and the protocol it speaks."""

    name: str
    url: str
    protocol: str

    @property
    def runner(self) -> str:
        return ENDPOINT_PREFIX + self.name
