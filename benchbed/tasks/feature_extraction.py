"""feature-extraction: the last hidden state of every token.

The raw path returns one tensor per input, the form a PyTorch user keeps embeddings in; the
pipeline converts them to nested Python lists (``.tolist()``), and that conversion is part of
what the pipeline costs.
"""

from __future__ import annotations

from typing import Any

from .base import Parity, TextTask, compare_items

__all__ = ["FeatureExtraction"]


class FeatureExtraction(TextTask):
    name = "feature-extraction"
    pipeline_task = "feature-extraction"
    head = "base"
    description = "token embeddings (last hidden state), one [seq, hidden] array per input"

    def postprocess(self, bundle: Any, encoded: Any, outputs: Any) -> list[Any]:
        hidden = outputs[0]
        return list(hidden.unbind(0))

    def normalize_pipeline(self, outputs: Any, n: int) -> list[Any]:
        # A list input of n texts gives n items of shape [1, seq, hidden] as nested lists.
        return [item[0] for item in outputs]

    def compare(self, raw: list[Any], piped: list[Any], dtype: str) -> Parity:
        return compare_items(raw, piped, dtype, _same_embedding,
                             lambda worst: f"{len(raw)} embeddings equal within tolerance; max abs diff {worst:.2g}")


def _same_embedding(i: int, a: Any, b: Any, tol: Any) -> tuple[str | None, float]:
    import torch

    # either side may be the pipeline's nested lists (`--reference pipeline`, or two pipelines of
    # two environments) or the raw module's tensor
    a = a.float().cpu() if isinstance(a, torch.Tensor) else torch.as_tensor(a, dtype=torch.float32)
    b = b.float().cpu() if isinstance(b, torch.Tensor) else torch.as_tensor(b, dtype=torch.float32)
    if a.shape != b.shape:
        return f"item {i}: shape {tuple(a.shape)} (torch) vs {tuple(b.shape)} (pipeline)", 0.0
    diff = (a - b).abs()
    bad = diff > tol.atol + tol.rtol * b.abs()
    if bool(bad.any()):
        return f"item {i}: {int(bad.sum())} values differ; max abs diff {float(diff.max()):.3g}", float(diff.max())
    return None, float(diff.max())
