"""zero-shot-classification on an NLI-shaped encoder: each text paired with a hypothesis per
candidate label ("This example is {label}."), entailment logits softmaxed over the labels, labels
sorted by score — the pipeline's default (single-label) rule, done in torch.

The pipeline runs one forward row per (text, label) pair, so its `batch_size` counts pairs; the
raw path tokenises all pairs of a call at once.
"""

from __future__ import annotations

from typing import Any

from .base import Parity, TextTask, length_mismatch, tolerance

__all__ = ["ZeroShotClassification", "CANDIDATE_LABELS", "NLI_LABELS"]

NLI_LABELS = ("contradiction", "neutral", "entailment")
CANDIDATE_LABELS = ("politics", "sports", "technology", "health", "music")
TEMPLATE = "This example is {}."


class ZeroShotClassification(TextTask):
    name = "zero-shot-classification"
    pipeline_task = "zero-shot-classification"
    head = "sequence-classification"
    labels = NLI_LABELS
    description = f"NLI-style: {len(CANDIDATE_LABELS)} candidate labels per text, scores softmaxed over entailment"

    def _entailment_id(self, bundle: Any) -> int:
        for i, name in bundle.module.config.id2label.items():
            if str(name).lower().startswith("entail"):
                return int(i)
        return -1

    def preprocess(self, bundle: Any, inputs: list[Any], device: Any) -> Any:
        premises = [t for t in inputs for _ in CANDIDATE_LABELS]
        hypotheses = [TEMPLATE.format(label) for _ in inputs for label in CANDIDATE_LABELS]
        enc = bundle.tokenizer(premises, hypotheses, padding=True, truncation="only_first", return_tensors="pt")
        return enc.to(device), inputs

    def postprocess(self, bundle: Any, encoded: Any, outputs: Any) -> list[Any]:
        import torch

        texts = encoded[1]
        logits = outputs.logits.float().view(len(texts), len(CANDIDATE_LABELS), -1)
        scores = torch.softmax(logits[..., self._entailment_id(bundle)], dim=-1)
        values, order = scores.sort(dim=-1, descending=True)
        return [{"sequence": t, "labels": [CANDIDATE_LABELS[i] for i in o], "scores": v}
                for t, o, v in zip(texts, order.tolist(), values.tolist())]

    def pipeline_kwargs(self, tokenizer: Any = None) -> dict[str, Any]:
        return {"candidate_labels": list(CANDIDATE_LABELS), "hypothesis_template": TEMPLATE}

    def compare(self, raw: list[Any], piped: list[Any], dtype: str) -> Parity:
        tol = tolerance(dtype)
        if bad := length_mismatch(raw, piped):
            return bad
        worst, ties = 0.0, 0
        for i, (a, b) in enumerate(zip(raw, piped)):
            sa, sb = dict(zip(a["labels"], a["scores"])), dict(zip(b["labels"], b["scores"]))
            if a["labels"][0] != b["labels"][0]:
                # a near-tie that rounding may flip (the two labels' scores within tolerance) is not a
                # mismatch; the pipeline pads pairs per batch, the raw path per call, so low-precision
                # sums differ in their last bits
                if not tol.close(sb[a["labels"][0]], sb[b["labels"][0]]):
                    return Parity(False, f"item {i}: top label {a['labels'][0]!r} (torch) vs {b['labels'][0]!r} "
                                         f"(pipeline)")
                ties += 1
            for label, score in zip(b["labels"], b["scores"]):
                worst = max(worst, abs(sa[label] - score))
                if not tol.close(sa[label], score):
                    return Parity(False, f"item {i}: score of {label!r} {sa[label]:.6g} (torch) vs {score:.6g} (pipeline)")
        tie_note = f" ({ties} near-tie(s) within tolerance)" if ties else ""
        return Parity(True, f"{len(raw)} top labels equal{tie_note}; max score diff {worst:.2g}")
