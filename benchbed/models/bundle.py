"""The `ModelBundle` that every model source returns, and what the sources share."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from .precision import TORCH_DTYPES, base_dtype

__all__ = ["ModelBundle", "HEADS", "TORCH_DTYPES", "auto_class", "seeded", "finish", "attn_kwargs"]

#: Model heads a task can ask for, mapped to the transformers Auto class that builds them.
HEADS: dict[str, str] = {
    "base": "AutoModel",
    "sequence-classification": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "masked-lm": "AutoModelForMaskedLM",
    "causal-lm": "AutoModelForCausalLM",
    "image-classification": "AutoModelForImageClassification",
    "ctc": "AutoModelForCTC",
    "question-answering": "AutoModelForQuestionAnswering",
    "seq2seq-lm": "AutoModelForSeq2SeqLM",
    "speech-seq2seq": "AutoModelForSpeechSeq2Seq",
}


@dataclass(frozen=True, eq=False)
class ModelBundle:
    """A ready module on its device and dtype, its preprocessor (tokenizer or image processor, in
    `tokenizer`), and facts for the record."""

    module: Any
    tokenizer: Any
    name: str
    params: int
    config_name: str
    weights: str
    max_positions: int | None
    extra: dict[str, Any] = field(default_factory=dict)


def auto_class(head: str) -> Any:
    import transformers

    if head not in HEADS:
        raise ValueError(f"unknown head {head!r} (valid: {', '.join(HEADS)})")
    return getattr(transformers, HEADS[head])


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch for weight initialisation without disturbing the caller's global RNG state."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def finish(module: Any, dtype: str, device: str, int8_method: str = "dynamic") -> tuple[Any, str | None]:
    """Cast and move a freshly built fp32 module, eval mode, no grad; quantise it for ``int8``.
    Returns the module and the quantisation method (None when not quantised)."""
    import torch

    module = module.to(device=torch.device(device), dtype=getattr(torch, TORCH_DTYPES[base_dtype(dtype, device)]))
    module.eval()
    module.requires_grad_(False)
    method = None
    if dtype == "int8":
        from .precision import quantize_int8

        method = quantize_int8(module, device, int8_method)
    return module, method


def attn_kwargs(attn_impl: str | None) -> dict[str, Any]:
    """Keyword arguments asking transformers for an attention implementation (none: its default)."""
    return {} if attn_impl is None else {"attn_implementation": attn_impl}


def count_params(module: Any) -> int:
    return int(sum(p.numel() for p in module.parameters()))
