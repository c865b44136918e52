"""text-generation on the tiny decoder presets: parity of greedy generation, a raw path one token
short caught, TTFT/TPOT consistent with end-to-end time, and the locally built BPE tokenizer."""

import pytest

from conftest import on_a_quiet_machine

from benchbed.measure import no_sync
from benchbed.models import load_model
from benchbed.runners import PipelineRunner, TorchRunner, build_pipeline
from benchbed.spec import Case
from benchbed.tasks import get_task

DECODERS = ["synthetic:gpt2-tiny", "synthetic:llama-tiny"]


def _paths(model, batch_size, new_tokens=6, seq_len=12):
    task = get_task("text-generation").configure(Case("text-generation", model, new_tokens=new_tokens))
    bundle = load_model(model, task.head, None, "fp32", "cpu")
    inputs = task.make_inputs(bundle.tokenizer, batch_size, seq_len, seed=0)
    case = Case(task.name, "m", batch_size=batch_size)  # a runner reads its batch and device from its case
    raw = TorchRunner(case, task, bundle, inputs, no_sync)
    pipe = PipelineRunner(case, task, bundle, inputs, no_sync, pipe=build_pipeline(task, bundle, "cpu"))
    return task, bundle, raw, pipe


@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("model", DECODERS)
def test_greedy_generation_is_identical_both_ways(model, batch_size):
    task, bundle, raw, pipe = _paths(model, batch_size)
    a, b = raw(), pipe()
    assert len(a) == batch_size and all(len(bundle.tokenizer(x)["input_ids"]) >= 1 for x in a)
    verdict = task.compare(a, b, "fp32")
    assert verdict.ok, verdict.detail


def test_a_raw_path_one_token_short_is_caught():
    task, bundle, raw, pipe = _paths("synthetic:gpt2-tiny", 2)
    piped = pipe()
    short = get_task("text-generation").configure(Case("text-generation", "synthetic:gpt2-tiny", new_tokens=5))
    a = TorchRunner(Case(short.name, "m", batch_size=2), short, bundle, raw.inputs, no_sync)()
    verdict = task.compare(a, piped, "fp32")
    assert not verdict.ok and "differs" in verdict.detail


@pytest.mark.parametrize("model", DECODERS)
def test_ttft_and_tpot_add_up_to_the_end_to_end_time(tiny_session, model):
    n = 8
    for runner in ("torch", "pipeline"):
        case = Case("text-generation", model, runner=runner, batch_size=2, seq_len=16, new_tokens=n)
        rec = on_a_quiet_machine(lambda: tiny_session.run_case(case).record)
        # torch is the reference (nothing to compare alone); the pipeline is checked against it
        assert rec["status"] == "ok" and (rec["parity_ok"] if runner == "pipeline" else rec["parity_ok"] is None), \
            rec["message"]
        total = rec["ttft_s"] + (n - 1) * rec["tpot_s"]
        assert total == pytest.approx(rec["lat_median_s"], rel=0.10)
        assert 0 < rec["ttft_s"] < rec["lat_median_s"] and rec["tpot_s"] > 0
        assert rec["tokens_per_s"] == pytest.approx(2 * n / rec["lat_median_s"])


def test_gpt2_preset_has_gpt2_small_shapes_and_a_50257_token_bpe():
    b = load_model("synthetic:gpt2", "causal-lm", None, "fp32", "cpu")
    assert b.params == 124_439_808  # GPT-2 small
    tok = b.tokenizer
    assert len(tok) == 50257 and tok.eos_token_id == 50256 and tok.padding_side == "left"
    text = "Tokenization of naïve café menus, 東京 and emoji 🙂 survives."
    assert tok.decode(tok(text)["input_ids"]) == text  # byte-level: lossless
    assert len(tok.tokenize("xylophones")) > 1


def test_llama_preset_is_a_real_llama_layout():
    b = load_model("synthetic:llama-small", "causal-lm", None, "fp32", "cpu")
    cfg = b.module.config
    assert cfg.model_type == "llama" and cfg.num_key_value_heads < cfg.num_attention_heads  # grouped-query
    assert type(b.module.model.norm).__name__ == "LlamaRMSNorm"
    assert len(b.tokenizer) == cfg.vocab_size == 32000


def test_hf_decoder_from_a_local_directory_without_a_pad_token(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    src = load_model("synthetic:gpt2-tiny", "causal-lm", None, "fp32", "cpu")
    src.module.save_pretrained(tmp_path)
    src.tokenizer.pad_token = None  # as gpt2's own tokenizer ships
    src.tokenizer.save_pretrained(tmp_path)
    task, bundle, raw, pipe = _paths(f"hf:{tmp_path}", 2)
    assert bundle.weights == "pretrained" and bundle.tokenizer.pad_token == bundle.tokenizer.eos_token
    verdict = task.compare(raw(), pipe(), "fp32")
    assert verdict.ok, verdict.detail
