"""summarization and text2text-generation on an encoder-decoder (BART shapes): greedy
``generate`` of a fixed number of tokens, decoded. Their pipelines are gone in transformers 5.x,
where the pipeline side is recorded as skipped and the raw path is still measured."""

from __future__ import annotations

from typing import Any

from .text_generation import TextGeneration

__all__ = ["Summarization", "Text2TextGeneration"]


class Summarization(TextGeneration):
    name = "summarization"
    pipeline_task = "summarization"
    head = "seq2seq-lm"
    description = "encoder-decoder greedy generation of new_tokens tokens (default 16) from a text"

    def preprocess(self, bundle: Any, inputs: list[Any], device: Any) -> Any:
        return bundle.tokenizer(inputs, padding=True, return_tensors="pt").to(device)

    def postprocess(self, bundle: Any, encoded: Any, outputs: Any) -> list[Any]:
        return bundle.tokenizer.batch_decode(outputs, skip_special_tokens=True)

    def pipeline_kwargs(self, tokenizer: Any = None) -> dict[str, Any]:
        kwargs = {"do_sample": False, "num_beams": 1, "max_new_tokens": self.new_tokens,
                  "min_new_tokens": self.new_tokens}
        return kwargs

    def normalize_pipeline(self, outputs: Any, n: int) -> list[Any]:
        key = "summary_text" if self.pipeline_task == "summarization" else "generated_text"
        items = [outputs] if isinstance(outputs, dict) else list(outputs)  # TextGeneration's own is different
        return [(item[0] if isinstance(item, list) else item)[key] for item in items]


class Text2TextGeneration(Summarization):
    name = "text2text-generation"
    pipeline_task = "text2text-generation"
    description = "encoder-decoder greedy generation (text2text), fixed length"
