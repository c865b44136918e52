"""Real inputs (``--inputs SOURCE``): where examples come from, read once per run.

SOURCE is one of
- ``corpus:python-docs`` — real English prose shipped offline with every CPython: the sentences of
  the Python documentation's topic texts (``pydoc_data.topics``; PSF licence), cut into sentences
  by a fixed rule, deduplicated, in a fixed order (about 1,200 sentences of 4-200 words);
- a local file, one example per row: ``.jsonl`` / ``.json`` (list of objects or strings),
  ``.csv`` / ``.tsv``, ``.parquet``, or plain text (``.txt``, one per non-empty line); a column is
  chosen with ``FILE#column`` (default: ``text``, or the only column);
- a folder of images (``.jpg .jpeg .png .bmp .gif .webp``), for image tasks, or of ``.wav`` files
  (PCM, any rate and channel count: read with the standard library, mixed to mono, resampled to
  16 kHz), for speech recognition;
- ``hf:NAME[:SPLIT]#column`` — a dataset through the ``datasets`` library: a local dataset folder
  or data file, or a hub dataset when online (``hf:imdb:test#text``).

Every problem (missing, empty, unknown column, wrong kind for the task) is a `SpecError` with one
line naming what would be valid.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any

from ..spec import SpecError

__all__ = ["Examples", "load_examples", "python_docs_corpus", "read_wav", "CORPORA", "IMAGE_EXT", "AUDIO_EXT",
           "REAL_INPUT_TASKS"]

IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
AUDIO_EXT = (".wav",)
#: What a folder holds for each kind of input.
FOLDER_EXT = {"image": IMAGE_EXT, "audio": AUDIO_EXT}
#: Tasks that take real inputs, and the kind each takes. Others are refused with one line: their
#: outputs depend on padding (token embeddings, spans, generated text) in ways parity on varying
#: batch compositions would need more than today's comparison to judge fairly.
REAL_INPUT_TASKS = {"text-classification": "text", "image-classification": "image",
                    "automatic-speech-recognition": "audio"}
TABLE_EXT = (".jsonl", ".json", ".csv", ".tsv", ".parquet", ".txt")


@dataclass(frozen=True)
class Examples:
    """What a source held: its examples (texts, or file paths of images), the source
    and column as given, the kind of example, and a hash of the examples (so a changed corpus is
    visible in the records)."""

    items: tuple[Any, ...]
    source: str
    column: str | None
    kind: str  # "text", "image" or "audio" (file paths for the last two)

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for x in self.items:
            h.update(str(x).encode("utf-8", "replace") + b"\0")
        return h.hexdigest()[:16]


def python_docs_corpus() -> list[str]:
    """The sentences of CPython's documentation topics (``pydoc_data.topics``), in a fixed order:
    prose paragraphs only (indented code and tables left out), split after ``. ! ?`` before a
    capital or a quote, whitespace collapsed, at least 4 words, first occurrence kept."""
    from pydoc_data.topics import topics

    paragraphs = []
    for key in sorted(topics):
        for para in re.split(r"\n\s*\n", topics[key]):
            lines = para.split("\n")
            if any(line.startswith((" ", "\t")) for line in lines):
                continue  # code, tables, indented lists
            text = " ".join(line.strip() for line in lines).strip()
            if len(text.split()) < 5 or text.endswith(":") or any(m in text for m in ("***", "====", "----")):
                continue
            paragraphs.append(text)
    sentences = []
    for para in dict.fromkeys(paragraphs):
        for s in re.split(r'(?<=[.!?])\s+(?=[A-Z"])', para):
            s = re.sub(r"\s+", " ", s).strip()
            if len(s.split()) >= 4:
                sentences.append(s)
    return list(dict.fromkeys(sentences))


#: Built-in corpora, available offline.
CORPORA = {"python-docs": python_docs_corpus}


def _split(source: str) -> tuple[str, str | None]:
    if "#" in source:
        path, column = source.rsplit("#", 1)
        if not column:
            raise SpecError(f"--inputs {source!r}: empty column name after '#'")
        return path, column
    return source, None


def load_examples(source: str, kind: str = "text") -> Examples:
    """Read every example of `source` (see the module docstring) for a task whose inputs are
    `kind` ("text", "image" or "audio")."""
    if not source or not source.strip():
        raise SpecError("--inputs: empty source (valid: corpus:python-docs, a file, a folder, or hf:NAME#column)")
    path, column = _split(source.strip())
    if path.startswith("corpus:"):
        name = path.split(":", 1)[1]
        if name not in CORPORA:
            raise SpecError(f"--inputs: unknown corpus {name!r} (valid: {', '.join('corpus:' + c for c in CORPORA)})")
        if kind != "text":
            raise SpecError(f"--inputs {path}: a text corpus, but this task takes {kind} inputs")
        if column is not None:
            raise SpecError(f"--inputs {source!r}: a corpus has no columns")
        return Examples(tuple(CORPORA[name]()), path, None, "text")
    if path.startswith("hf:"):
        return _from_datasets(path[3:], column, kind, source)
    if not os.path.exists(path):
        raise SpecError(f"--inputs {path!r}: no such file or folder")
    if os.path.isdir(path):
        return _from_folder(path, column, kind)
    items = _from_file(path, column)
    if kind != "text":
        raise SpecError(f"--inputs {path!r}: a table of text, but this task takes {kind} inputs "
                        f"(give a folder of {'.wav files' if kind == 'audio' else 'images'})")
    return Examples(tuple(items), path, column, "text")


def _texts(values: list[Any], where: str) -> list[str]:
    texts = [v for v in values if isinstance(v, str) and v.strip()]
    if not texts:
        raise SpecError(f"--inputs {where}: no non-empty text examples")
    bad = sum(1 for v in values if v is not None and not isinstance(v, str))
    if bad and bad == len(values):
        raise SpecError(f"--inputs {where}: the column holds no text (e.g. {values[0]!r})")
    return texts


def _pick(columns: list[str], column: str | None, where: str) -> str:
    if column is not None:
        if column not in columns:
            raise SpecError(f"--inputs {where}: no column {column!r} (valid: {', '.join(map(str, columns))})")
        return column
    if "text" in columns:
        return "text"
    if len(columns) == 1:
        return columns[0]
    raise SpecError(f"--inputs {where}: several columns and none named 'text'; pick one with "
                    f"{where}#COLUMN (valid: {', '.join(map(str, columns))})")


def _from_file(path: str, column: str | None) -> list[str]:
    ext = os.path.splitext(path)[1].lower()
    if ext not in TABLE_EXT:
        raise SpecError(f"--inputs {path!r}: unknown file kind {ext or '(none)'!r} (valid: {', '.join(TABLE_EXT)}, "
                        f"or a folder of images)")
    try:
        if ext == ".txt":
            if column is not None:
                raise SpecError(f"--inputs {path!r}: a text file has no columns")
            with open(path, encoding="utf-8") as fh:
                return _texts([line.strip() for line in fh], path)
        if ext in (".jsonl", ".json"):
            with open(path, encoding="utf-8") as fh:
                rows = ([json.loads(line) for line in fh if line.strip()] if ext == ".jsonl" else json.load(fh))
            if not isinstance(rows, list) or not rows:
                raise SpecError(f"--inputs {path!r}: no rows")
            if all(isinstance(r, str) for r in rows):
                if column is not None:
                    raise SpecError(f"--inputs {path!r}: rows are plain strings, they have no columns")
                return _texts(rows, path)
            if not all(isinstance(r, dict) for r in rows):
                raise SpecError(f"--inputs {path!r}: rows must be objects or strings")
            col = _pick(list(dict.fromkeys(k for r in rows for k in r)), column, path)
            return _texts([r.get(col) for r in rows], f"{path}#{col}")
        import pandas as pd

        if ext == ".parquet":
            df = pd.read_parquet(path)
        else:
            df = pd.read_csv(path, sep="\t" if ext == ".tsv" else ",", dtype=str, keep_default_na=False)
    except SpecError:
        raise
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise SpecError(f"--inputs {path!r}: cannot be read as {ext} ({str(exc).splitlines()[0][:200]})") from None
    if df.empty:
        raise SpecError(f"--inputs {path!r}: no rows")
    col = _pick([str(c) for c in df.columns], column, path)
    return _texts(df[col].tolist(), f"{path}#{col}")


def _from_folder(path: str, column: str | None, kind: str) -> Examples:
    if column is not None:
        raise SpecError(f"--inputs {path!r}: a folder has no columns")
    want = FOLDER_EXT.get(kind)
    if want is None:
        raise SpecError(f"--inputs {path!r}: a folder, but this task takes text (give a .jsonl, .csv, .parquet "
                        f"or .txt file, or corpus:python-docs)")
    files = sorted(os.path.join(path, f) for f in os.listdir(path) if f.lower().endswith(want))
    if not files:
        raise SpecError(f"--inputs {path!r}: no {'/'.join(want)} files in the folder")
    if kind == "audio":
        import wave

        for f in files:  # a file that is not PCM WAV is one line now, not an error mid-run
            try:
                read_wav(f, max_seconds=0.0)
            except (OSError, EOFError, ValueError, wave.Error) as exc:
                raise SpecError(f"--inputs {f!r}: not a PCM WAV file ({exc})") from None
    return Examples(tuple(files), path, None, kind)


def read_wav(path: str, rate: int = 16_000, max_seconds: float | None = None) -> Any:
    """A PCM WAV file as float32 mono samples in [-1, 1] at `rate` Hz (channels averaged,
    resampled by polyphase filtering), at most `max_seconds` of it. The standard library's `wave`
    reads it: no audio package needed."""
    import wave
    from math import gcd

    import numpy as np

    with wave.open(path, "rb") as w:
        width, channels, src_rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
        frames = w.getnframes() if max_seconds is None else min(w.getnframes(), int(max_seconds * src_rate) + 1)
        raw = w.readframes(frames)
    if width == 1:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width in (2, 4):
        x = np.frombuffer(raw, dtype=f"<i{width}").astype(np.float32) / float(2 ** (8 * width - 1))
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(v >= 2**23, v - 2**24, v)).astype(np.float32) / float(2**23)
    else:
        raise ValueError(f"{width}-byte samples")
    x = x.reshape(-1, channels).mean(axis=1) if channels > 1 else x
    if src_rate != rate and len(x):
        from scipy.signal import resample_poly

        g = gcd(src_rate, rate)
        x = resample_poly(x, rate // g, src_rate // g).astype(np.float32)
    if max_seconds is not None:
        x = x[: int(max_seconds * rate)]
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def _from_datasets(spec: str, column: str | None, kind: str, source: str) -> Examples:
    """``hf:NAME[:SPLIT]``: a local dataset folder (saved with ``save_to_disk``), a data file, or a
    hub dataset (online)."""
    try:
        import datasets
    except ImportError:
        raise SpecError("--inputs hf:...: needs the datasets library (pip install 'benchbed[datasets]')") from None
    name, _, split = spec.partition(":")
    split = split or "train"
    if not name:
        raise SpecError(f"--inputs {source!r}: no dataset name after 'hf:'")
    import logging

    # the hub client logs every retry (five, over about 20 s, when offline): the outcome is one line
    quiet = [logging.getLogger(n) for n in ("huggingface_hub", "datasets")]
    levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.ERROR)
    try:
        return _load_dataset(datasets, name, split, column, kind, source)
    finally:
        for q, level in zip(quiet, levels):
            q.setLevel(level)


def _load_dataset(datasets: Any, name: str, split: str, column: str | None, kind: str, source: str) -> Examples:
    try:
        if os.path.isdir(name) and os.path.exists(os.path.join(name, "dataset_info.json")):
            ds = datasets.load_from_disk(name)
        elif os.path.isfile(name):
            ext = os.path.splitext(name)[1].lower().lstrip(".")
            builder = {"jsonl": "json", "tsv": "csv", "txt": "text"}.get(ext, ext)
            ds = datasets.load_dataset(builder, data_files=name, split=split)
        else:
            ds = datasets.load_dataset(name, split=split)
        if isinstance(ds, datasets.DatasetDict):
            if split not in ds:
                raise SpecError(f"--inputs {source!r}: no split {split!r} (valid: {', '.join(ds)})")
            ds = ds[split]
    except SpecError:
        raise
    except Exception as exc:  # missing dataset, no network, bad split: one line
        raise SpecError(f"--inputs {source!r}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None
    col = _pick(list(ds.column_names), column, source.split("#")[0])
    values = ds[col]
    if kind == "text":
        return Examples(tuple(_texts(list(values), source)), source.split("#")[0], col, "text")
    raise SpecError(f"--inputs {source!r}: datasets sources are supported for text tasks only here; give a folder "
                    f"of {'.wav files' if kind == 'audio' else 'images'}")
