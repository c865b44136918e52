import pytest

from benchbed.models import load_model, resolve
from benchbed.spec import SpecError


def test_synthetic_presets_have_the_real_architectures_shapes():
    tiny = load_model("synthetic:bert-tiny", "base", None, "fp32", "cpu")
    cfg = tiny.module.config
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.vocab_size) == (2, 128, 2, 30522)
    assert tiny.params == 4_385_920  # google/bert_uncased_L-2_H-128_A-2 with pooler
    assert tiny.weights == "random"


def test_weights_are_seeded_and_dtype_is_applied():
    import torch

    a = load_model("synthetic:bert-tiny", "base", None, "fp32", "cpu", seed=5)
    b = load_model("synthetic:bert-tiny", "base", None, "bf16", "cpu", seed=5)
    wa = a.module.embeddings.word_embeddings.weight
    wb = b.module.embeddings.word_embeddings.weight
    assert wb.dtype == torch.bfloat16
    assert torch.allclose(wa.to(torch.bfloat16).float(), wb.float())


def test_packaged_minilm_has_real_weights():
    import torch

    b = load_model("minilm", "base", None, "fp32", "cpu")
    assert b.weights == "pretrained" and b.params == 22_713_216
    enc = b.tokenizer(["a man is eating food.", "a man is eating a meal.", "the stock market fell."],
                      padding=True, return_tensors="pt")
    with torch.inference_mode():
        h = b.module(**enc).last_hidden_state
    m = enc["attention_mask"].unsqueeze(-1)
    e = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)
    # real sentence embeddings: paraphrases close, unrelated far
    assert float(e[0] @ e[1]) > 0.7 > 0.3 > float(e[0] @ e[2])


def test_hf_path_loads_a_local_directory_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    src = load_model("synthetic:bert-tiny", "token-classification", ("O", "B-X"), "fp32", "cpu")
    src.module.save_pretrained(tmp_path)
    src.tokenizer.save_pretrained(tmp_path)
    b = load_model(f"hf:{tmp_path}", "token-classification", ("O", "B-X"), "fp32", "cpu")
    assert b.weights == "pretrained" and b.params == src.params
    assert b.module.config.id2label == {0: "O", 1: "B-X"}
    assert b.tokenizer.tokenize("tokenization") == ["token", "##ization"]


def test_remote_code_stays_off_unless_asked(tmp_path, monkeypatch):
    import transformers

    seen = {}
    real = transformers.AutoConfig.from_pretrained

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    src = load_model("synthetic:bert-tiny", "base", None, "fp32", "cpu")
    src.module.save_pretrained(tmp_path)
    src.tokenizer.save_pretrained(tmp_path)
    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", spy)
    load_model(f"hf:{tmp_path}", "base", None, "fp32", "cpu")
    assert seen["trust_remote_code"] is False


def test_unknown_model_lists_valid_names():
    with pytest.raises(SpecError, match=r"unknown model 'synthetic:gpt9' \(valid: synthetic:bert-tiny"):
        resolve("synthetic:gpt9")
