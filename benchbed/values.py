"""The vocabulary of a benchmark and how one value is read: dtypes, attention implementations,
devices, model aliases, scenario names, and the parsing of numbers, booleans and shards with their
bounds — each raising `SpecError` with one line that names the value and what is valid.

Pure (no I/O, nothing of ours imported), so every door can check a value in microseconds.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["OPTIMIZERS", "DEFAULT_OPTIMIZER", "SpecError", "DTYPES", "TORCH_DTYPES", "ATTN_IMPLS", "RUNNERS", "DEFAULT_REFERENCE", "TRAINING_PREFIX",
           "TRAINING_RUNNERS", "is_training_task", "AUTO_RATE", "MODEL_ALIASES", "canonical_model", "AXES",
           "device_index", "validate_device", "LIMITS", "DEFAULT_LIMIT", "limit_of",
           "positive_int_value", "parse_bool", "parse_attn_impl", "OPTION_KEYS", "whole_number", "parse_shard"]

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
#: The runner every other runner of a cell is compared with when none is named: the raw module
#: call. Its one home; the Matrix, the engine's config, the pytest door and the readers use it.
DEFAULT_REFERENCE = "torch"
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
_TRUE = {"true", "yes", "on", "1", "compiled"}
_FALSE = {"false", "no", "off", "0", "eager-mode", "none", ""}

_DEVICE_RE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")

class SpecError(ValueError):
    """Bad user input in a case, a matrix or a suite; the CLI turns it into one line and exit 2."""


def device_index(device: str) -> int:
    """The index in ``cuda:N`` (``cuda`` alone is 0)."""
    return int(device.split(":")[1]) if ":" in device else 0


def validate_device(device: str) -> None:
    """Accept ``cpu``, ``mps``, ``cuda`` and ``cuda:N``; availability is checked later, per case."""
    if not isinstance(device, str) or not _DEVICE_RE.match(device):
        raise SpecError(f"unknown device {device!r} (valid: cpu, cuda, cuda:N, mps)")


#: The largest value each counted option takes, keyed by its name with dashes, underscores and a
#: ``--`` prefix made spaces (``--batch-size``, ``batch_size`` and ``batch size`` are one key).
#: Each is far above any real use and far below what would overflow int64 or hang a loop: a
#: batch of 10**29 inputs is a typo, and the message says the limit. Names not listed get
#: `DEFAULT_LIMIT`.
LIMITS: dict[str, float] = {
    "batch size": 65_536, "sequence length": 1_048_576, "seq len": 1_048_576, "new tokens": 65_536,
    "threads": 4_096, "passes": 1_000, "warmup": 1_000_000, "min samples": 1_000_000, "examples": 10_000_000,
    "requests": 10_000_000, "max batch": 65_536, "queue": 10_000_000, "grad accum": 65_536, "workers": 1_024,
    "retries": 100, "seed": 2**32 - 1, "baseline runs": 10_000, "window": 10_000,
    "case timeout": 7 * 86_400.0, "max time": 86_400.0, "min time": 86_400.0, "memory cap": 2.0**30,
    "timeout ms": 86_400_000.0, "slo ms": 86_400_000.0, "max wait ms": 86_400_000.0, "rate": 1e9,
}
DEFAULT_LIMIT = 2**31 - 1


def limit_of(name: str) -> float:
    """The upper bound of option or axis `name` (see `LIMITS`)."""
    key = " ".join(re.sub(r"^-+(benchbed-)?", "", name.strip()).replace("-", " ").replace("_", " ").split())
    return LIMITS.get(key, DEFAULT_LIMIT)


def positive_int_value(name: str, value: Any) -> int:
    """`value` as a positive integer no larger than the limit of `name` (an int, or text of one);
    a `SpecError` naming `name` and, for a value too large, the limit otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        text = str(value).strip()
        if not re.fullmatch(r"[+-]?[0-9]{1,4000}", text):
            raise SpecError(f"{name} must be a positive integer, got {value!r}")
        value = int(text)
    if value <= 0:
        raise SpecError(f"{name} must be a positive integer, got {value}")
    top = limit_of(name)
    if value > top:
        raise SpecError(f"{name} must be at most {int(top):,}, got {value if value < 10**40 else 'a longer number'}")
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


#: The names a case option may have besides those a scenario declares (`benchbed.scenarios`): the
#: engine's own (compilation, int8 method, training target, accumulation, DataLoader workers) and
#: those a task plugin adds with `OPTION_KEYS.add` (the calibration task's). A misspelt option would
#: silently change nothing but the case id, so others are refused.
OPTION_KEYS: set[str] = {"compile_backend", "compile_mode", "int8", "target_loss", "workers", "grad_accum",
                         "optimizer", "learning_rate", "momentum"}
#: The training tasks' optimizers (an axis, `benchbed.runners.optimizers`); the default is kept out
#: of the case options, so that cases measured before the axis keep their ids.
OPTIMIZERS = ("sgd", "adam", "adamw")
DEFAULT_OPTIMIZER = "adamw"


def whole_number(value: Any, low: int, high: float) -> bool:
    """Whether `value` is an integral number (not a bool) from `low` to `high`."""
    return (not isinstance(value, bool) and isinstance(value, (int, float)) and value == value
            and low <= value <= high and int(value) == value)


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``i/n`` (1-based) into ``(i, n)``."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m:
        raise SpecError(f"shard must look like i/n (e.g. 1/4), got {text!r}")
    if len(m.group(1)) > 9 or len(m.group(2)) > 9:
        raise SpecError(f"shard {text!r} out of range: at most 999,999,999 shards")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 1 <= i <= n:
        raise SpecError(f"shard {text!r} out of range: need 1 <= i <= n")
    return i, n
