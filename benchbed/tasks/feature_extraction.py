"""feature-extraction: the last hidden state of every token.

The raw path returns one tensor per input, the form a PyTorch user keeps embeddings in; the
pipeline converts them to nested Python lists (``.tolist()``), and that conversion is part of
what the pipeline costs.
"""

from __future__ import annotations

from typing import Any

from .base import Parity, TextTask, length_mismatch, tolerance

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
        import torch

        tol = tolerance(dtype)
        if bad := length_mismatch(raw, piped):
            return bad
        worst = 0.0
        for i, (a, b) in enumerate(zip(raw, piped)):
            a = a.float().cpu()
            b = torch.as_tensor(b, dtype=torch.float32)
            if a.shape != b.shape:
                return Parity(False, f"item {i}: shape {tuple(a.shape)} (torch) vs {tuple(b.shape)} (pipeline)")
            diff = (a - b).abs()
            worst = max(worst, float(diff.max()))
            bad = diff > tol.atol + tol.rtol * b.abs()
            if bool(bad.any()):
                return Parity(False, f"item {i}: {int(bad.sum())} values differ; max abs diff {float(diff.max()):.3g}")
        return Parity(True, f"{len(raw)} embeddings equal within tolerance; max abs diff {worst:.2g}")
