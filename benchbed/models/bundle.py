"""The `ModelBundle` that every model source returns, and what the sources share."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

__all__ = ["ModelBundle", "HEADS", "TORCH_DTYPES", "auto_class", "seeded", "finish"]

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

TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


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


def finish(module: Any, dtype: str, device: str) -> Any:
    """Cast and move a freshly built fp32 module; eval mode, no grad needed."""
    import torch

    module = module.to(device=torch.device(device), dtype=getattr(torch, TORCH_DTYPES[dtype]))
    module.eval()
    module.requires_grad_(False)
    return module


def count_params(module: Any) -> int:
    return int(sum(p.numel() for p in module.parameters()))
