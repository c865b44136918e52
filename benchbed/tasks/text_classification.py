"""text-classification: sequence classifier logits -> softmax -> top label and its score."""

from __future__ import annotations

from typing import Any

from .base import Parity, TextTask, compare_items

__all__ = ["TextClassification"]


class TextClassification(TextTask):
    name = "text-classification"
    pipeline_task = "text-classification"
    head = "sequence-classification"
    labels = ("NEGATIVE", "POSITIVE")
    description = "sentence classification (SST-2 style labels), top-1 label and score"

    def pipeline_kwargs(self, tokenizer: Any = None) -> dict[str, Any]:
        # the pipeline passes these to its tokenizer: the same truncation as `preprocess`
        return {"truncation": True, "max_length": self.truncate_to} if self.truncate_to else {}

    def postprocess(self, bundle: Any, encoded: Any, outputs: Any) -> list[Any]:
        import torch

        logits = outputs.logits.float()
        config = bundle.module.config
        if config.num_labels == 1 or config.problem_type == "multi_label_classification":
            scores = torch.sigmoid(logits)
        elif config.problem_type == "regression":
            scores = logits
        else:
            scores = torch.softmax(logits, dim=-1)
        best, idx = scores.max(dim=-1)
        id2label = config.id2label
        return [{"label": id2label[i], "score": s} for i, s in zip(idx.tolist(), best.tolist())]

    def compare(self, raw: list[Any], piped: list[Any], dtype: str) -> Parity:
        ties: list[int] = []

        def agreed(worst: float) -> str:
            flips = (f" but {len(ties)} near-tie flip(s) (items {', '.join(map(str, ties[:5]))}: two classes within "
                     f"{dtype} tolerance of each other)") if ties else ""
            return f"{len(raw)} labels equal{flips}; max score diff {worst:.2g}"

        return compare_items(raw, piped, dtype, lambda i, a, b, tol: _same_label(i, a, b, tol, ties), agreed)


def _same_label(i: int, a: Any, b: Any, tol: Any, ties: list[int] | None = None) -> tuple[str | None, float]:
    if a["label"] != b["label"]:
        # Path A's top class X (score sa), path B's top class Y (score sb). If the paths' class
        # probabilities agree within tolerance, A gives Y at least sb - atol, so sa + sb <= 1 + atol:
        # both classes were within tolerance of each other (a tie that rounding — a bf16 batch of
        # another composition — may break either way). Beyond that, the answers really differ.
        sa, sb = a["score"], b["score"]
        if ties is not None and sa + sb <= 1 + tol.atol and tol.close(sa, sb):
            ties.append(i)
            return None, abs(sa - sb)
        return f"item {i}: label {a['label']!r} (torch) vs {b['label']!r} (pipeline) (scores {sa:.4g}, {sb:.4g})", 0.0
    diff = abs(a["score"] - b["score"])
    if not tol.close(a["score"], b["score"]):
        return f"item {i}: score {a['score']:.6g} (torch) vs {b['score']:.6g} (pipeline)", diff
    return None, diff
