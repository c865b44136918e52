"""question-answering (extractive): start/end logits over the context, the best span of at most
15 tokens scored as p(start) · p(end) (softmax over the context and [CLS]), the best 12 widened to
whole words with the scores of spans that become the same words added up — the
rule of transformers 4.x's question-answering pipeline (removed in 5.x, where the pipeline side is
recorded as skipped)."""

from __future__ import annotations

import random
from typing import Any

from .base import Parity, TextTask, length_mismatch, tolerance

__all__ = ["QuestionAnswering", "MAX_ANSWER_LEN"]

MAX_ANSWER_LEN = 15
#: Token spans considered before widening to words: the pipeline's top_k * 2 + 10 for top_k = 1.
CANDIDATES = 12
QUESTIONS = ("What is the city near the river?", "Who built the station?", "When did the team win?",
             "Where is the old church?", "Which company made the model?")


class QuestionAnswering(TextTask):
    name = "question-answering"
    pipeline_task = "question-answering"
    head = "question-answering"
    description = "extractive QA: best answer span (<= 15 tokens) in a context of seq_len tokens"

    def make_inputs(self, tokenizer: Any, batch_size: int, seq_len: int, seed: int) -> list[Any]:
        contexts = super().make_inputs(tokenizer, batch_size, seq_len, seed)
        rng = random.Random(seed)
        return [{"question": rng.choice(QUESTIONS), "context": c} for c in contexts]

    def preprocess(self, bundle: Any, inputs: list[Any], device: Any) -> Any:
        enc = bundle.tokenizer([x["question"] for x in inputs], [x["context"] for x in inputs], padding=True,
                               truncation="only_second", return_offsets_mapping=True, return_tensors="pt")
        context_mask = [[sid == 1 for sid in enc.sequence_ids(i)] for i in range(len(inputs))]
        offsets = enc.pop("offset_mapping")
        extras = {"offsets": offsets, "context_mask": context_mask, "inputs": inputs, "encoding": enc}
        return enc.to(device), extras

    def postprocess(self, bundle: Any, encoded: Any, outputs: Any) -> list[Any]:
        import torch

        extras = encoded[1]
        mask = torch.tensor(extras["context_mask"])
        mask[:, 0] = True  # the pipeline normalises over the context and [CLS], then zeroes [CLS]
        start = outputs.start_logits.float().cpu().masked_fill(~mask, -10000.0).softmax(-1)
        end = outputs.end_logits.float().cpu().masked_fill(~mask, -10000.0).softmax(-1)
        start[:, 0] = 0.0
        end[:, 0] = 0.0
        # p(start=i) * p(end=j) for j >= i and j - i < MAX_ANSWER_LEN
        scores = start.unsqueeze(2) * end.unsqueeze(1)
        n = scores.shape[-1]
        band = torch.ones(n, n).triu().tril(MAX_ANSWER_LEN - 1).bool()
        scores = scores.masked_fill(~band, 0.0)
        enc = extras["encoding"]
        candidates = scores.flatten(1).topk(min(CANDIDATES, n * n), dim=-1)
        results = []
        for r, (vals, idxs) in enumerate(zip(candidates.values.tolist(), candidates.indices.tolist())):
            context = extras["inputs"][r]["context"]
            answers: dict[tuple[int, int], float] = {}
            for v, idx in zip(vals, idxs):
                i, j = divmod(idx, n)
                if v <= 0 or not (extras["context_mask"][r][i] and extras["context_mask"][r][j]):
                    continue
                # widen to whole words, as the pipeline does by default (align_to_words=True); token
                # spans that widen to the same words are one answer, and their probabilities add up
                span = (enc.word_to_chars(r, enc.token_to_word(r, i), sequence_index=1).start,
                        enc.word_to_chars(r, enc.token_to_word(r, j), sequence_index=1).end)
                answers[span] = answers.get(span, 0.0) + v
            (s_char, e_char), score = max(answers.items(), key=lambda kv: kv[1])
            results.append({"score": score, "start": s_char, "end": e_char, "answer": context[s_char:e_char]})
        return results

    def pipeline_kwargs(self, tokenizer: Any = None) -> dict[str, Any]:
        return {"max_answer_len": MAX_ANSWER_LEN}

    def compare(self, raw: list[Any], piped: list[Any], dtype: str) -> Parity:
        tol = tolerance(dtype)
        if bad := length_mismatch(raw, piped):
            return bad
        for i, (a, b) in enumerate(zip(raw, piped)):
            if (a["start"], a["end"]) != (b["start"], b["end"]):
                return Parity(False, f"item {i}: answer span {a['start']}:{a['end']} (torch) vs "
                                     f"{b['start']}:{b['end']} (pipeline)")
            if not tol.close(a["score"], b["score"]):
                return Parity(False, f"item {i}: score {a['score']:.6g} (torch) vs {b['score']:.6g} (pipeline)")
        return Parity(True, f"{len(raw)} answer spans equal")
