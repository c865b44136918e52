"""token-classification (NER): per-token softmax and argmax, entities other than ``O`` with their
word, character span and score — the pipeline's default (no aggregation)."""

from __future__ import annotations

from typing import Any

from .base import Parity, TextTask, compare_items

__all__ = ["TokenClassification"]

CONLL_LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")


class TokenClassification(TextTask):
    name = "token-classification"
    pipeline_task = "token-classification"
    head = "token-classification"
    labels = CONLL_LABELS
    tokenizer_kwargs = {"return_offsets_mapping": True, "return_special_tokens_mask": True, "truncation": True}
    description = "named entities (CoNLL-2003 labels), one dict per non-O token"

    def preprocess(self, bundle: Any, inputs: list[Any], device: Any) -> Any:
        enc = bundle.tokenizer(inputs, padding=True, return_tensors="pt", **self.tokenizer_kwargs)
        extras = {"offsets": enc.pop("offset_mapping"), "special": enc.pop("special_tokens_mask"),
                  "texts": inputs, "input_ids": enc["input_ids"]}
        return enc.to(device), extras

    def postprocess(self, bundle: Any, encoded: Any, outputs: Any) -> list[Any]:
        import torch

        _, extras = encoded
        tok = bundle.tokenizer
        id2label = bundle.module.config.id2label
        scores = torch.softmax(outputs.logits.float(), dim=-1).cpu()
        best, idx = scores.max(dim=-1)
        keep = (extras["special"] == 0) & (extras["input_ids"] != tok.pad_token_id)
        results = []
        for r, text in enumerate(extras["texts"]):
            ids, offs = extras["input_ids"][r].tolist(), extras["offsets"][r].tolist()
            labels, confs, kept = idx[r].tolist(), best[r].tolist(), keep[r].tolist()
            ents = []
            for j, (k, lab) in enumerate(zip(kept, labels)):
                if not k or id2label[lab] == "O":
                    continue
                start, end = offs[j]
                word = text[start:end] if ids[j] == tok.unk_token_id else tok.convert_ids_to_tokens(ids[j])
                ents.append({"entity": id2label[lab], "score": confs[j], "index": j, "word": word,
                             "start": start, "end": end})
            results.append(ents)
        return results

    def normalize_pipeline(self, outputs: Any, n: int) -> list[Any]:
        return [outputs] if n == 1 and (not outputs or isinstance(outputs[0], dict)) else list(outputs)

    def compare(self, raw: list[Any], piped: list[Any], dtype: str) -> Parity:
        count = sum(len(a) for a in raw)
        return compare_items(raw, piped, dtype, _same_entities,
                             lambda worst: f"{count} entity spans equal; max score diff {worst:.2g}")


def _same_entities(i: int, a: Any, b: Any, tol: Any) -> tuple[str | None, float]:
    sa = [(e["index"], e["entity"], e["word"], e["start"], e["end"]) for e in a]
    sb = [(int(e["index"]), e["entity"], e["word"], int(e["start"]), int(e["end"])) for e in b]
    if sa != sb:
        diff = next(((x, y) for x, y in zip(sa, sb) if x != y), (len(sa), len(sb)))
        return f"item {i}: entities differ, first {diff[0]} (torch) vs {diff[1]} (pipeline)", 0.0
    worst = 0.0
    for x, y in zip(a, b):
        worst = max(worst, abs(x["score"] - float(y["score"])))
        if not tol.close(x["score"], float(y["score"])):
            return f"item {i}: score {x['score']:.6g} vs {float(y['score']):.6g}", worst
    return None, worst
