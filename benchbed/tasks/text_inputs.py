"""Seeded English-like text of an exact token length, for any tokenizer.

Words come from a fixed list of common words plus longer, rarer ones that WordPiece and BPE split
into sub-words, so tokenisation does real work. The length is met exactly by construction and
then verified by tokenising the result.
"""

from __future__ import annotations

import random
from typing import Any

__all__ = ["WORDS", "make_texts"]

_COMMON = """the of and to in is was for on that with as by at from his her it an were are which this be
or has had not but also their after first new one two year years people time city world state
school team season film music group company government between during university during game
war history life work family national public house area river north south east west small large
early later second long high local great part three while where other many more most before
under since when both through against over about found became known used made called series
played released built born died based including several well around within following however
morning evening station market street water light power night road country village church
village report record science paper model data system service market travel garden kitchen doctor
teacher student window mountain island bridge forest summer winter spring autumn coffee bread
letter minute hour money price table chair plant animal dog cat horse bird fish tree flower
simple quick quiet happy young old green blue red black white strong short open close better
""".split()
_RARE = """tokenization unbelievable xylophones photosynthesis reconfigurable microcontroller
bioluminescence counterintuitive electroencephalography thermodynamics cryptographically
interoperability hyperparameters misunderstandings overgeneralization decentralisation
benchmarking quantization transformers embeddings parallelizable neurotransmitters
archaeologists kaleidoscopic serendipitously antidisestablishment multithreaded
""".split()
WORDS: tuple[str, ...] = tuple(dict.fromkeys(_COMMON)) + tuple(_RARE)
_FILLERS = ("the", "a", "of", "and", "in", "to", "it", "is")


def _count(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=True)["input_ids"])


def _one(tokenizer: Any, seq_len: int, rng: random.Random, mask: bool) -> str:
    """One text of exactly `seq_len` tokens (special tokens included), `mask` adds one mask token."""
    words: list[str] = []
    base = _count(tokenizer, "")  # special tokens only
    if seq_len < base + 1 + int(mask):
        raise ValueError(f"seq_len {seq_len} leaves no room for text after {base} special token(s)")
    # Grow from an estimate, then trim or pad with one-token fillers until exact.
    est = max(1, int((seq_len - base) * 0.8))
    words = [rng.choice(WORDS) for _ in range(est)]
    mask_at = rng.randrange(len(words) + 1) if mask else -1
    stop = "." if seq_len >= 8 else ""  # a full stop only where it leaves room for words; fixed, so
    # that adding or removing a word never toggles it (which could make the search oscillate)

    def text_of(ws: list[str]) -> str:
        out = list(ws)
        if mask:
            out.insert(min(mask_at, len(out)), tokenizer.mask_token)
        return " ".join(out) + stop

    fill_only = False  # after an overshoot, close the gap with one-token fillers only
    for _ in range(8 * seq_len + 32):
        n = _count(tokenizer, text_of(words))
        if n == seq_len:
            return text_of(words)
        if n > seq_len and words:
            words.pop()
            fill_only = True
        else:
            words.append(rng.choice(_FILLERS) if fill_only or seq_len - n <= 2 else rng.choice(WORDS))
    raise ValueError(f"could not build a text of exactly {seq_len} tokens with this tokenizer")


def make_texts(tokenizer: Any, count: int, seq_len: int, seed: int = 0, mask: bool = False) -> list[str]:
    """`count` different texts, each exactly `seq_len` tokens long; same seed, same texts."""
    return [_one(tokenizer, seq_len, random.Random(f"{seed}:{i}:{seq_len}"), mask) for i in range(count)]
