"""fill-mask: softmax over the vocabulary at the mask, top 5 tokens with their strings and the
filled-in sequence, as the pipeline returns them."""

from __future__ import annotations

from typing import Any

from .base import Parity, TextTask, compare_items

__all__ = ["FillMask"]

TOP_K = 5


class FillMask(TextTask):
    name = "fill-mask"
    pipeline_task = "fill-mask"
    head = "masked-lm"
    mask = True
    description = "one [MASK] per input; top-5 tokens, scores, token strings and filled sequences"

    def postprocess(self, bundle: Any, encoded: Any, outputs: Any) -> list[Any]:
        import torch

        tok = bundle.tokenizer
        input_ids = encoded["input_ids"]
        rows, cols = torch.nonzero(input_ids == tok.mask_token_id, as_tuple=True)
        # Softmax in the model's dtype, as the pipeline does.
        probs = outputs.logits[rows, cols].softmax(dim=-1)
        values, predictions = probs.topk(TOP_K)
        ids = input_ids.cpu()
        results = []
        for r, c, vals, preds in zip(rows.tolist(), cols.tolist(), values.tolist(), predictions.tolist()):
            row = []
            for v, p in zip(vals, preds):
                tokens = ids[r].clone()
                tokens[c] = p
                tokens = tokens[tokens != tok.pad_token_id]
                row.append({"score": v, "token": p, "token_str": tok.decode([p]),
                            "sequence": tok.decode(tokens, skip_special_tokens=True)})
            results.append(row)
        return results

    def normalize_pipeline(self, outputs: Any, n: int) -> list[Any]:
        return [outputs] if n == 1 else list(outputs)

    def compare(self, raw: list[Any], piped: list[Any], dtype: str) -> Parity:
        return compare_items(raw, piped, dtype, _same_tokens,
                             lambda worst: f"{len(raw)}x top-{TOP_K} tokens equal; max score diff {worst:.2g}")


def _same_tokens(i: int, a: Any, b: Any, tol: Any) -> tuple[str | None, float]:
    ta, tb = [x["token"] for x in a], [x["token"] for x in b]
    if ta != tb:
        return f"item {i}: top tokens {ta} (torch) vs {tb} (pipeline)", 0.0
    worst = 0.0
    for x, y in zip(a, b):
        if x["token_str"] != y["token_str"] or x["sequence"] != y["sequence"]:
            return f"item {i}: strings differ: {x['token_str']!r} vs {y['token_str']!r}", worst
        worst = max(worst, abs(x["score"] - y["score"]))
        if not tol.close(x["score"], y["score"]):
            return f"item {i}: score {x['score']:.6g} (torch) vs {y['score']:.6g} (pipeline)", worst
    return None, worst
