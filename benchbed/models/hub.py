"""Models that ``from_pretrained`` loads: a local directory offline, or a hub id where a network exists.

``trust_remote_code`` stays off unless the caller passes it explicitly. A head the checkpoint lacks
(say, a token-classification head on an embedding model) is initialised from a fixed seed and the
record says so.
"""

from __future__ import annotations

import os
from typing import Any

from .bundle import (
    HEADS,
    ModelBundle,
    attn_kwargs,
    auto_class,
    count_params,
    finish,
    seeded,
)

__all__ = ["load_pretrained"]


def _has_head(config: Any, head: str) -> bool:
    """Whether the checkpoint was saved with the class `head` loads (GPT2LMHeadModel for causal-lm)."""
    if head == "base":
        return True
    archs = getattr(config, "architectures", None) or []
    try:
        wanted = auto_class(head)._model_mapping[type(config)].__name__
    except (KeyError, AttributeError):
        wanted = None
    suffix = HEADS[head].replace("AutoModel", "")
    return any(a == wanted or a.endswith(suffix) for a in archs)


def load_pretrained(source: str, name: str, head: str, labels: tuple[str, ...] | None, dtype: str, device: str,
                    seed: int = 0, trust_remote_code: bool = False, attn_impl: str | None = None,
                    int8_method: str = "dynamic") -> ModelBundle:
    """Load `source` (path or hub id) with `head`; `name` is what the record calls it."""
    from transformers import AutoConfig, AutoTokenizer

    local = os.path.isdir(source)
    common = {"trust_remote_code": trust_remote_code}
    if local:
        common["local_files_only"] = True
    config = AutoConfig.from_pretrained(source, **common)
    has_head = _has_head(config, head)
    overrides: dict[str, Any] = {}
    if not has_head and labels:
        overrides = {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
                     "label2id": {n: i for i, n in enumerate(labels)}}
    with seeded(seed):
        module = auto_class(head).from_pretrained(source, dtype="float32", **overrides, **common,
                                                     **attn_kwargs(attn_impl))
    if head == "image-classification":
        from transformers import AutoImageProcessor

        tokenizer: Any = AutoImageProcessor.from_pretrained(source, **common)
    elif head == "ctc":
        from transformers import AutoFeatureExtractor

        tokenizer = (AutoTokenizer.from_pretrained(source, **common),
                     AutoFeatureExtractor.from_pretrained(source, **common))
    else:
        tokenizer = AutoTokenizer.from_pretrained(source, **common)
        if tokenizer.model_max_length is None or tokenizer.model_max_length > 10**6:
            tokenizer.model_max_length = getattr(module.config, "max_position_embeddings", 512)
        if head == "causal-lm":  # batched generation needs a pad token and left padding
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            tokenizer.padding_side = "left"
    module, quant = finish(module, dtype, device, int8_method)
    return ModelBundle(
        module=module, tokenizer=tokenizer, name=name, params=count_params(module),
        config_name=module.config.model_type, weights="pretrained" if has_head else "pretrained, seeded head",
        max_positions=getattr(module.config, "max_position_embeddings", None),
        extra={"source": source, "quant_method": quant},
    )
