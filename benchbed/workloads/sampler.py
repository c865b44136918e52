"""Seeded draws of examples from a source, their lengths, and what padding costs.

Every runner of a cell sees exactly the same examples in the same order: the draws depend only on
the seed and the number of examples, never on the runner.
"""

from __future__ import annotations

import random
from typing import Any, Sequence

import numpy as np

__all__ = ["draw", "batches_of", "sorted_batches", "length_stats", "padding_waste", "materialize", "token_lengths"]


def draw(n_items: int, n: int, seed: int) -> list[int]:
    """`n` indices into a source of `n_items` examples: a seeded permutation, taken in order and
    reshuffled (with the next seed) when exhausted, so no example repeats before all were used."""
    if n_items <= 0:
        raise ValueError("the source holds no examples")
    out: list[int] = []
    round_ = 0
    while len(out) < n:
        perm = list(range(n_items))
        random.Random(seed * 1_000_003 + round_).shuffle(perm)
        out += perm[: n - len(out)]
        round_ += 1
    return out


def batches_of(n: int, batch_size: int) -> list[list[int]]:
    """Positions 0..n-1 cut into consecutive batches (the order a plain loop and a DataLoader use)."""
    return [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Positions grouped into batches of similar length (sorted by length, longest first, stable),
    as a careful raw implementation buckets to save padding."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def length_stats(lengths: Sequence[int]) -> dict[str, float]:
    """min / median / p90 / max of the examples' lengths (tokens for text)."""
    x = np.asarray(lengths, dtype=float)
    return {"input_len_min": float(x.min()), "input_len_median": float(np.median(x)),
            "input_len_p90": float(np.percentile(x, 90)), "input_len_max": float(x.max())}


def padding_waste(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Padded positions ÷ real positions when each batch is padded to its longest example."""
    real = sum(lengths[i] for b in batches for i in b)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches if b)
    return (padded - real) / real if real else 0.0


def token_lengths(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[int]:
    """Tokens of each text as the model sees it (special tokens included, truncated to `max_length`)."""
    enc = tokenizer(list(texts), truncation=True, max_length=max_length)
    return [len(ids) for ids in enc["input_ids"]]


def materialize(items: Sequence[Any], kind: str, max_ms: int | None = None) -> list[Any]:
    """Examples as tasks take them: texts as they are, image files as RGB PIL images, WAV files as
    16 kHz float32 clips of at most `max_ms` milliseconds (the case's ``seq_len`` for audio: every
    runner gets the same truncated clip)."""
    if kind == "text":
        return list(items)
    if kind == "audio":
        from .sources import read_wav

        return [read_wav(p, max_seconds=None if max_ms is None else max_ms / 1000.0) for p in items]
    from PIL import Image

    out = []
    for path in items:
        with Image.open(path) as im:
            out.append(im.convert("RGB"))
    return out
