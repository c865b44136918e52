"""The small base every task builds on, and the parity verdict type.

A task says what is computed: seeded inputs of a requested length, the raw-PyTorch path split
into preprocess / forward / postprocess, the pipeline task name and call arguments, and a parity
rule comparing the two paths' outputs. It never times anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

__all__ = ["Parity", "Task", "Tolerance", "TOLERANCES", "tolerance", "TextTask", "length_mismatch", "exact_match",
           "compare_items", "relabel"]


@dataclass(frozen=True)
class Parity:
    """Verdict of one parity check: `ok` and a short human detail."""

    ok: bool
    detail: str


@dataclass(frozen=True)
class Tolerance:
    """|a - b| <= atol + rtol * |b|, elementwise."""

    atol: float
    rtol: float

    def close(self, a: float, b: float) -> bool:
        return abs(a - b) <= self.atol + self.rtol * abs(b)


#: Tolerances fitting each dtype. fp16 and bf16 keep 11 and 8 significant bits.
TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(atol=1e-4, rtol=1e-4),
    "fp16": Tolerance(atol=1e-2, rtol=1e-2),
    "bf16": Tolerance(atol=5e-2, rtol=5e-2),
    # Both paths call the same quantised module; only padding and batch composition differ, and
    # activations are quantised per token, so int8 agrees about as closely as bf16.
    "int8": Tolerance(atol=5e-2, rtol=5e-2),
}


def tolerance(dtype: str) -> Tolerance:
    return TOLERANCES[dtype]


def relabel(detail: str, name: str, reference: str) -> str:
    """Tasks word parity details as torch vs pipeline; say which runners were compared."""
    return detail.replace("(pipeline)", f"({name})").replace("(torch)", f"({reference})")


def length_mismatch(raw: list[Any], piped: list[Any]) -> Parity | None:
    """The verdict when the two paths did not return one output per input each, else None."""
    if len(raw) != len(piped):
        return Parity(False, f"{len(raw)} raw outputs vs {len(piped)} pipeline outputs")
    return None


def compare_items(raw: list[Any], piped: list[Any], dtype: str,
                  check: Callable[[int, Any, Any, Tolerance], tuple[str | None, float]],
                  agreed: Callable[[float], str]) -> Parity:
    """The parity rule of every scored task: one output per input on both sides, then for each pair
    `check(i, a, b, tol)` -> (why they differ or None, the largest score difference seen), and when
    every pair agrees, `agreed(largest difference)` as the detail."""
    tol = tolerance(dtype)
    if bad := length_mismatch(raw, piped):
        return bad
    worst = 0.0
    for i, (a, b) in enumerate(zip(raw, piped)):
        problem, diff = check(i, a, b, tol)
        if problem:
            return Parity(False, problem)
        worst = max(worst, diff)
    return Parity(True, agreed(worst))


def exact_match(raw: list[Any], piped: list[Any], what: str) -> Parity:
    """Parity for outputs that must be identical (generated text, transcriptions)."""
    bad = length_mismatch(raw, piped)
    if bad:
        return bad
    for i, (a, b) in enumerate(zip(raw, piped)):
        if a != b:
            return Parity(False, f"item {i}: {what} differs: {a[:40]!r} (torch) vs {b[:40]!r} (pipeline)")
    return Parity(True, f"{len(raw)} {what}s identical")


class Task:
    """Base of every task; subclasses set the ClassVars and implement the methods."""

    name: ClassVar[str]
    pipeline_task: ClassVar[str]
    head: ClassVar[str]
    labels: ClassVar[tuple[str, ...] | None] = None
    description: ClassVar[str] = ""
    #: What the inputs are: "text" (a tokenizer preprocesses) or "image" (an image processor does).
    modality: ClassVar[str] = "text"
    #: True for training tasks (`benchbed.tasks.training`): runners of the training family serve them.
    trains: ClassVar[bool] = False
    #: Samples per second of audio inputs (a real input's length is recorded in milliseconds).
    sampling_rate: ClassVar[int | None] = None

    def recorded_options(self, bundle: Any) -> dict[str, Any]:
        """Settings of the loaded model that change the cost and go into the record's options (the
        image preprocessing backend); none by default."""
        return {}

    def load_dtype(self, dtype: str) -> str:
        """The precision the model is loaded in for a case of `dtype` (training keeps fp32 weights
        and autocasts)."""
        return dtype

    def make_inputs(self, tokenizer: Any, batch_size: int, seq_len: int, seed: int) -> list[Any]:
        raise NotImplementedError

    def preprocess(self, bundle: Any, inputs: list[Any], device: Any) -> Any:
        raise NotImplementedError

    #: True when `forward` is one call of the module on `module_inputs` (so a runner may replace
    #: that call, e.g. with an exported graph); False for generate() loops and the like.
    single_forward: ClassVar[bool] = True

    def module_inputs(self, bundle: Any, encoded: Any) -> dict[str, Any]:
        """The keyword arguments `forward` passes to the module, from what `preprocess` returned."""
        raise NotImplementedError

    def forward(self, bundle: Any, encoded: Any) -> Any:
        """The module call; the runner wraps it in ``torch.inference_mode``."""
        return bundle.module(**self.module_inputs(bundle, encoded))

    def postprocess(self, bundle: Any, encoded: Any, outputs: Any) -> list[Any]:
        raise NotImplementedError

    #: True for tasks whose forward takes a ``streamer`` (generation): the engine then records
    #: time to first token and time per output token from per-step timestamps.
    streams: ClassVar[bool] = False

    def pipeline_available(self) -> bool:
        """Whether the installed transformers has this task's pipeline (question-answering,
        summarization and text2text-generation are gone in 5.x)."""
        from transformers.pipelines import SUPPORTED_TASKS

        return self.pipeline_task in SUPPORTED_TASKS

    def configure(self, case: Any) -> "Task":
        """Take what the task needs from the case (e.g. new_tokens); returns self."""
        return self

    def pipeline_kwargs(self, tokenizer: Any = None) -> dict[str, Any]:
        """Extra arguments of the pipeline call (besides inputs and batch_size)."""
        return {}

    #: Real inputs (``--inputs``) vary in length: texts are truncated to this many tokens on every
    #: path (the case's ``seq_len``); None for synthetic inputs of exactly ``seq_len``.
    truncate_to: int | None = None

    def normalize_pipeline(self, outputs: Any, n: int) -> list[Any]:
        """Pipeline output as a list with one entry per input (pipelines unwrap a single input's
        result dict)."""
        return [outputs] if isinstance(outputs, dict) else list(outputs)

    def compare(self, raw: list[Any], piped: list[Any], dtype: str) -> Parity:
        raise NotImplementedError


class TextTask(Task):
    """A task whose inputs are texts, tokenised in one batched call and moved to the device."""

    mask: ClassVar[bool] = False
    tokenizer_kwargs: ClassVar[dict[str, Any]] = {}

    def make_inputs(self, tokenizer: Any, batch_size: int, seq_len: int, seed: int) -> list[Any]:
        from .text_inputs import make_texts

        return make_texts(tokenizer, batch_size, seq_len, seed=seed, mask=self.mask)

    def preprocess(self, bundle: Any, inputs: list[Any], device: Any) -> Any:
        kwargs = dict(self.tokenizer_kwargs)
        if self.truncate_to:
            kwargs.update(truncation=True, max_length=self.truncate_to)
        enc = bundle.tokenizer(inputs, padding=True, return_tensors="pt", **kwargs)
        return enc.to(device)

    def module_inputs(self, bundle: Any, encoded: Any) -> dict[str, Any]:
        # tasks whose preprocess returns (encoding, extras) call the module on the encoding
        return dict(encoded[0] if isinstance(encoded, tuple) else encoded)
