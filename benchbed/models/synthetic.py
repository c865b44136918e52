"""Offline models with seeded random weights and exactly the shapes of real checkpoints.

Latency depends on shapes, not on the values of the weights, so a seeded random model of
bert-base-uncased's shapes costs what bert-base-uncased costs, with no download. Outputs are
meaningless, which parity does not mind: both paths get the same module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .bundle import ModelBundle, attn_kwargs, auto_class, count_params, finish, seeded
from .vocab import (
    bert_uncased_tokenizer,
    byte_bpe_tokenizer,
    configure_whisper,
    ctc_char_processor,
    whisper_processor,
)

__all__ = ["PRESETS", "Preset", "load_synthetic"]


@dataclass(frozen=True)
class Preset:
    """A transformers config family and the exact shape parameters of the checkpoint it mirrors."""

    mirrors: str
    config_class: str
    shape: tuple[tuple[str, Any], ...]
    tokenizer: Callable[[], Any]
    description: str
    #: Finishing touches a real checkpoint would ship (e.g. Whisper's generation settings).
    post_build: Callable[[Any, Any], None] | None = None


def _bert_tok() -> Any:
    return bert_uncased_tokenizer(512, token_type_ids=True)


def _distil_tok() -> Any:
    return bert_uncased_tokenizer(512, token_type_ids=False)


def _gpt2_tok() -> Any:
    return byte_bpe_tokenizer(50257, 1024)


def _llama_tok() -> Any:
    return byte_bpe_tokenizer(32000, 2048)


def _bart_tok() -> Any:
    return byte_bpe_tokenizer(50265, 1024)


_BART_IDS = (("bos_token_id", 50264), ("eos_token_id", 50264), ("pad_token_id", 50264),
             ("decoder_start_token_id", 50264), ("forced_eos_token_id", None))


def _vit_processor(size: int) -> Callable[[], Any]:
    def build() -> Any:
        from transformers import ViTImageProcessor

        # google/vit-base-patch16-224's settings: resize to 224, rescale, normalise with mean/std 0.5
        return ViTImageProcessor(do_resize=True, size={"height": size, "width": size}, do_rescale=True,
                                 do_normalize=True, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])

    return build


IMAGENET_LABELS = tuple(f"class_{i}" for i in range(1000))

PRESETS: dict[str, Preset] = {
    "bert-tiny": Preset(
        "google/bert_uncased_L-2_H-128_A-2", "BertConfig",
        (("vocab_size", 30522), ("hidden_size", 128), ("num_hidden_layers", 2), ("num_attention_heads", 2),
         ("intermediate_size", 512), ("max_position_embeddings", 512), ("type_vocab_size", 2)),
        _bert_tok, "2 layers, hidden 128, 2 heads (4.4M params); for tests and quick runs"),
    "bert-base-uncased": Preset(
        "bert-base-uncased", "BertConfig",
        (("vocab_size", 30522), ("hidden_size", 768), ("num_hidden_layers", 12), ("num_attention_heads", 12),
         ("intermediate_size", 3072), ("max_position_embeddings", 512), ("type_vocab_size", 2)),
        _bert_tok, "12 layers, hidden 768, 12 heads (110M params)"),
    "distilbert-base-uncased": Preset(
        "distilbert-base-uncased", "DistilBertConfig",
        (("vocab_size", 30522), ("dim", 768), ("n_layers", 6), ("n_heads", 12), ("hidden_dim", 3072),
         ("max_position_embeddings", 512)),
        _distil_tok, "6 layers, dim 768, 12 heads (66M params)"),
    "gpt2": Preset(
        "gpt2", "GPT2Config",
        (("vocab_size", 50257), ("n_positions", 1024), ("n_embd", 768), ("n_layer", 12), ("n_head", 12),
         ("bos_token_id", 50256), ("eos_token_id", 50256), ("pad_token_id", 50256)),
        _gpt2_tok, "GPT-2 small: 12 layers, hidden 768, 12 heads, 50,257-token byte-level BPE (124M params)"),
    "gpt2-tiny": Preset(
        "gpt2 (2 layers, hidden 128)", "GPT2Config",
        (("vocab_size", 50257), ("n_positions", 1024), ("n_embd", 128), ("n_layer", 2), ("n_head", 2),
         ("bos_token_id", 50256), ("eos_token_id", 50256), ("pad_token_id", 50256)),
        _gpt2_tok, "GPT-2 vocabulary and layout at 2 layers, hidden 128, 2 heads; for tests and quick runs"),
    "llama-small": Preset(
        "a Llama-architecture model (RMSNorm, rotary, grouped-query attention, SwiGLU)", "LlamaConfig",
        (("vocab_size", 32000), ("hidden_size", 512), ("intermediate_size", 1408), ("num_hidden_layers", 4),
         ("num_attention_heads", 8), ("num_key_value_heads", 2), ("max_position_embeddings", 2048),
         ("bos_token_id", 31999), ("eos_token_id", 31999), ("pad_token_id", 31999), ("tie_word_embeddings", False)),
        _llama_tok, "Llama layout sized for a 2-core CPU: 4 layers, hidden 512, 8 query / 2 key-value heads, "
                    "SwiGLU 1408, vocab 32,000 (about 50M params)"),
    "llama-tiny": Preset(
        "a Llama-architecture model, tiny", "LlamaConfig",
        (("vocab_size", 32000), ("hidden_size", 128), ("intermediate_size", 352), ("num_hidden_layers", 2),
         ("num_attention_heads", 4), ("num_key_value_heads", 2), ("max_position_embeddings", 2048),
         ("bos_token_id", 31999), ("eos_token_id", 31999), ("pad_token_id", 31999)),
        _llama_tok, "Llama layout at 2 layers, hidden 128, 4 query / 2 key-value heads; for tests"),
    "bart-base": Preset(
        "facebook/bart-base", "BartConfig",
        (("vocab_size", 50265), ("d_model", 768), ("encoder_layers", 6), ("decoder_layers", 6),
         ("encoder_attention_heads", 12), ("decoder_attention_heads", 12), ("encoder_ffn_dim", 3072),
         ("decoder_ffn_dim", 3072), ("max_position_embeddings", 1024)) + _BART_IDS,
        _bart_tok, "BART-base encoder-decoder (139M params), 50,265-token byte-level BPE; summarization/text2text"),
    "bart-tiny": Preset(
        "BART layout, tiny", "BartConfig",
        (("vocab_size", 50265), ("d_model", 64), ("encoder_layers", 1), ("decoder_layers", 1),
         ("encoder_attention_heads", 2), ("decoder_attention_heads", 2), ("encoder_ffn_dim", 128),
         ("decoder_ffn_dim", 128), ("max_position_embeddings", 1024)) + _BART_IDS,
        _bart_tok, "BART layout at 1+1 layers, d_model 64; for tests"),
    "whisper-base": Preset(
        "openai/whisper-base.en", "WhisperConfig",
        (("vocab_size", 51864), ("d_model", 512), ("encoder_layers", 6), ("decoder_layers", 6),
         ("encoder_attention_heads", 8), ("decoder_attention_heads", 8), ("encoder_ffn_dim", 2048),
         ("decoder_ffn_dim", 2048), ("num_mel_bins", 80), ("max_source_positions", 1500),
         ("max_target_positions", 448)),
        whisper_processor, "Whisper base.en encoder-decoder (72.6M params), 80 mel bins, 30 s windows",
        configure_whisper),
    "whisper-tiny": Preset(
        "Whisper layout, tiny", "WhisperConfig",
        (("vocab_size", 51864), ("d_model", 64), ("encoder_layers", 1), ("decoder_layers", 1),
         ("encoder_attention_heads", 2), ("decoder_attention_heads", 2), ("encoder_ffn_dim", 128),
         ("decoder_ffn_dim", 128), ("num_mel_bins", 80), ("max_source_positions", 1500),
         ("max_target_positions", 448)),
        whisper_processor, "Whisper layout at 1+1 layers, d_model 64; for tests", configure_whisper),
    "vit-base-patch16-224": Preset(
        "google/vit-base-patch16-224", "ViTConfig",
        (("hidden_size", 768), ("num_hidden_layers", 12), ("num_attention_heads", 12), ("intermediate_size", 3072),
         ("image_size", 224), ("patch_size", 16), ("num_channels", 3)),
        _vit_processor(224), "ViT-Base/16 at 224 px, 1000 classes (86.6M params); a local ViTImageProcessor"),
    "wav2vec2-base": Preset(
        "facebook/wav2vec2-base-960h", "Wav2Vec2Config",
        (("vocab_size", 32), ("hidden_size", 768), ("num_hidden_layers", 12), ("num_attention_heads", 12),
         ("intermediate_size", 3072), ("pad_token_id", 0), ("feat_extract_norm", "group"), ("do_stable_layer_norm", False)),
        ctc_char_processor, "wav2vec2 base with a 32-character CTC head (94.4M params); 16 kHz waveform in"),
    "wav2vec2-tiny": Preset(
        "wav2vec2 layout, tiny", "Wav2Vec2Config",
        (("vocab_size", 32), ("hidden_size", 64), ("num_hidden_layers", 2), ("num_attention_heads", 2),
         ("intermediate_size", 128), ("conv_dim", (32,) * 7), ("num_conv_pos_embeddings", 16), ("pad_token_id", 0)),
        ctc_char_processor, "wav2vec2 layout with 32-channel convolutions, 2 layers, hidden 64; for tests"),
    "vit-tiny": Preset(
        "ViT layout, tiny", "ViTConfig",
        (("hidden_size", 64), ("num_hidden_layers", 2), ("num_attention_heads", 2), ("intermediate_size", 256),
         ("image_size", 64), ("patch_size", 16), ("num_channels", 3)),
        _vit_processor(64), "ViT layout at 64 px, 2 layers, hidden 64; for tests"),
}


#: The chat template of a synthetic decoder (a real checkpoint ships its own): each message as its
#: role tag and text, then the assistant's tag, so a chat API's prompt differs from the raw one.
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")


def load_synthetic(preset: str, head: str, labels: tuple[str, ...] | None, dtype: str, device: str,
                   seed: int = 0, attn_impl: str | None = None, int8_method: str = "dynamic") -> ModelBundle:
    """Build preset `preset` with head `head`; `labels` name the classes of a classification head."""
    import transformers

    spec = PRESETS[preset]
    kwargs = dict(spec.shape)
    if labels:
        kwargs["id2label"] = dict(enumerate(labels))
        kwargs["label2id"] = {name: i for i, name in enumerate(labels)}
    config = getattr(transformers, spec.config_class)(**kwargs)
    with seeded(seed):
        module = auto_class(head).from_config(config, **attn_kwargs(attn_impl))
    tokenizer = spec.tokenizer()
    if spec.post_build is not None:
        spec.post_build(module, tokenizer)
    if head == "causal-lm" and hasattr(tokenizer, "chat_template") and not tokenizer.chat_template:
        tokenizer.chat_template = CHAT_TEMPLATE
    module, quant = finish(module, dtype, device, int8_method)
    return ModelBundle(
        module=module, tokenizer=tokenizer, name=f"synthetic:{preset}", params=count_params(module),
        config_name=config.model_type, weights="random",
        max_positions=getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None),
        extra={"mirrors": spec.mirrors, "quant_method": quant},
    )
