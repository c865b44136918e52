"""text-generation: greedy decoding of a fixed number of new tokens, both ways.

The raw path calls ``model.generate`` with exactly the settings given to the pipeline: greedy
(``do_sample=False``, one beam), ``min_new_tokens == max_new_tokens`` (a random-weight decoder
would otherwise stop at a random end-of-text token), the pad token and left padding for batches.
Parity: the generated texts must be identical (byte-level BPE decodes losslessly, so identical
text means identical token ids).
"""

from __future__ import annotations

from typing import Any

from .base import Parity, TextTask, exact_match

__all__ = ["TextGeneration", "DEFAULT_NEW_TOKENS", "Templated"]

DEFAULT_NEW_TOKENS = 16


class Templated(str):
    """A prompt already put through a chat template: it carries its own special tokens (a BOS the
    template writes), so it is tokenized without adding them again, as a chat server does."""


class TextGeneration(TextTask):
    name = "text-generation"
    pipeline_task = "text-generation"
    head = "causal-lm"
    streams = True
    description = "greedy decoding of new_tokens tokens (default 16); records TTFT and per-token latency"

    def __init__(self, new_tokens: int | None = None) -> None:
        self.new_tokens = new_tokens or DEFAULT_NEW_TOKENS

    def configure(self, case: Any) -> "TextGeneration":
        self.new_tokens = case.new_tokens or DEFAULT_NEW_TOKENS
        return self

    def generate_kwargs(self, tokenizer: Any) -> dict[str, Any]:
        return {"do_sample": False, "num_beams": 1, "max_new_tokens": self.new_tokens,
                "min_new_tokens": self.new_tokens, "pad_token_id": tokenizer.pad_token_id}

    def preprocess(self, bundle: Any, inputs: list[Any], device: Any) -> Any:
        tok = bundle.tokenizer
        tok.padding_side = "left"
        templated = bool(inputs) and all(isinstance(x, Templated) for x in inputs)
        return tok(list(inputs), padding=True, return_tensors="pt", add_special_tokens=not templated).to(device)

    single_forward = False

    def forward(self, bundle: Any, encoded: Any, streamer: Any = None) -> Any:
        return bundle.module.generate(**encoded, **self.generate_kwargs(bundle.tokenizer), streamer=streamer)

    def postprocess(self, bundle: Any, encoded: Any, outputs: Any) -> list[Any]:
        new = outputs[:, encoded["input_ids"].shape[1]:]
        return bundle.tokenizer.batch_decode(new, skip_special_tokens=True)

    def pipeline_kwargs(self, tokenizer: Any = None) -> dict[str, Any]:
        kwargs = {"return_full_text": False, "do_sample": False, "num_beams": 1,
                  "max_new_tokens": self.new_tokens, "min_new_tokens": self.new_tokens}
        if tokenizer is not None:
            kwargs["pad_token_id"] = tokenizer.pad_token_id
        return kwargs

    def normalize_pipeline(self, outputs: Any, n: int) -> list[Any]:
        # one list of candidates per prompt; greedy gives one candidate
        return [item[0]["generated_text"] if isinstance(item, list) else item["generated_text"] for item in outputs]

    def compare(self, raw: list[Any], piped: list[Any], dtype: str) -> Parity:
        verdict = exact_match(raw, piped, "generated text")
        if verdict.ok:
            return Parity(True, f"{len(raw)} generations of {self.new_tokens} tokens identical")
        return verdict
