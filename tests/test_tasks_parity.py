"""Every text task end to end on the tiny preset: both paths agree, and parity catches a raw path
that is deliberately wrong."""

import pytest

from benchbed.measure import no_sync
from benchbed.models import load_model
from benchbed.runners import PipelineRunner, TorchRunner, build_pipeline
from benchbed.spec import Case
from benchbed.tasks import get_task, task_names

# both paths exist (decoders: test_generation.py; pipelines removed in transformers 5: test_removed_pipelines.py)
TASKS = [t for t in task_names() if t != "text-generation" and get_task(t).pipeline_available()]


TINY = {"image-classification": "synthetic:vit-tiny", "automatic-speech-recognition": "synthetic:wav2vec2-tiny",
        "summarization": "synthetic:bart-tiny", "text2text-generation": "synthetic:bart-tiny"}
SEQ = {"automatic-speech-recognition": 600}  # audio: milliseconds


def _paths(task_name, dtype="fp32", batch_size=3, seq_len=None):
    seq_len = seq_len or SEQ.get(task_name, 20)
    task = get_task(task_name)
    bundle = load_model(TINY.get(task_name, "synthetic:bert-tiny"), task.head, task.labels, dtype, "cpu")
    inputs = task.make_inputs(bundle.tokenizer, batch_size, seq_len, seed=0)
    case = Case(task.name, "m", batch_size=batch_size)  # a runner reads its batch and device from its case
    raw = TorchRunner(case, task, bundle, inputs, no_sync)
    pipe = PipelineRunner(case, task, bundle, inputs, no_sync, pipe=build_pipeline(task, bundle, "cpu"))
    return task, raw, pipe


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize("name", TASKS)
def test_both_paths_give_the_same_answers(name, dtype):
    task, raw, pipe = _paths(name, dtype)
    a, b = raw(), pipe()
    assert len(a) == len(b) == 3
    verdict = task.compare(a, b, dtype)
    assert verdict.ok, verdict.detail


@pytest.mark.parametrize("name", TASKS)
def test_a_pipeline_can_be_the_reference(name):
    """`--reference pipeline`, and two pipelines of two environments (a release pair): the
    reference's answers are the pipeline's, in the first slot (feature-extraction's compare took
    them for a tensor and failed on its nested lists)."""
    task, raw, pipe = _paths(name)
    a, b = raw(), pipe()
    assert task.compare(b, a, "fp32").ok
    assert task.compare(b, pipe(), "fp32").ok


@pytest.mark.parametrize("name", TASKS)
def test_batch_of_one_is_unwrapped_consistently(name):
    task, raw, pipe = _paths(name, batch_size=1)
    assert task.compare(raw(), pipe(), "fp32").ok


def test_parity_catches_a_missing_softmax(monkeypatch):
    task, raw, pipe = _paths("text-classification")
    import torch

    monkeypatch.setattr(torch, "softmax", lambda x, dim: x)  # raw path now reports logits as scores
    verdict = task.compare(raw(), pipe(), "fp32")
    assert not verdict.ok and "score" in verdict.detail


def test_parity_catches_a_dropped_token():
    task, raw, pipe = _paths("feature-extraction")
    a = [t[:-1] for t in raw()]
    verdict = task.compare(a, pipe(), "fp32")
    assert not verdict.ok and "shape" in verdict.detail


def test_parity_catches_a_wrong_fill_mask_candidate():
    task, raw, pipe = _paths("fill-mask")
    a = raw()
    a[1][0] = dict(a[1][0], token=a[1][0]["token"] + 1)
    verdict = task.compare(a, pipe(), "fp32")
    assert not verdict.ok and "item 1" in verdict.detail


def test_parity_catches_a_shifted_entity_span():
    task, raw, pipe = _paths("token-classification")
    a = raw()
    a[0][0] = dict(a[0][0], start=a[0][0]["start"] + 1)
    verdict = task.compare(a, pipe(), "fp32")
    assert not verdict.ok and "entities differ" in verdict.detail


def test_phase_times_cover_the_call():
    task, raw, pipe = _paths("token-classification")
    for runner in (raw, pipe):
        out, phases = runner.call_with_phases()
        assert len(out) == 3
        assert set(phases) == {"pre", "fwd", "post"} and all(v > 0 for v in phases.values())
    assert "preprocess" not in pipe.pipe.__dict__  # the wrappers are gone after the phase pass


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_zero_shot_pairs_and_softmax_match_the_pipeline(dtype):
    task, raw, pipe = _paths("zero-shot-classification", dtype)
    a, b = raw(), pipe()
    assert set(a[0]["labels"]) == {"politics", "sports", "technology", "health", "music"}
    assert sum(a[0]["scores"]) == pytest.approx(1.0, abs=1e-3)
    verdict = task.compare(a, b, dtype)
    assert verdict.ok, verdict.detail


def test_zero_shot_parity_catches_a_missing_softmax(monkeypatch):
    task, raw, pipe = _paths("zero-shot-classification")
    import torch

    monkeypatch.setattr(torch, "softmax", lambda x, dim: x)  # raw entailment logits reported as scores
    verdict = task.compare(raw(), pipe(), "fp32")
    assert not verdict.ok and "score" in verdict.detail


def test_image_parity_catches_a_missing_softmax(monkeypatch):
    task, raw, pipe = _paths("image-classification")
    import torch

    monkeypatch.setattr(torch, "softmax", lambda x, dim: x)
    verdict = task.compare(raw(), pipe(), "fp32")
    assert not verdict.ok and "score" in verdict.detail


def test_image_inputs_are_seeded_images_of_the_requested_side():
    from benchbed.tasks.image_classification import make_images

    a, b = make_images(2, 96, seed=1), make_images(2, 96, seed=1)
    assert [im.size for im in a] == [(96, 96), (96, 96)] and a[0].tobytes() == b[0].tobytes()
    assert a[0].tobytes() != a[1].tobytes()


def test_image_record_names_the_preprocessing_backend(tiny_session):
    import json

    from benchbed.spec import Case

    rec = tiny_session.run_case(Case("image-classification", "synthetic:vit-tiny", runner="pipeline", batch_size=2,
                                     seq_len=80)).record
    assert rec["status"] == "ok" and rec["parity_ok"], rec["message"]
    backend = json.loads(rec["options"])["preprocessor"]
    assert backend.startswith("ViTImageProcessor") and backend.endswith("(PIL/numpy)")  # no torchvision here


def test_speech_parity_catches_a_raw_path_without_ctc_grouping():
    task, raw, pipe = _paths("automatic-speech-recognition")
    piped = pipe()
    tok, fe = raw.bundle.tokenizer
    import torch

    with torch.inference_mode():
        enc = task.preprocess(raw.bundle, raw.inputs, "cpu")
        ids = task.forward(raw.bundle, enc).logits.argmax(-1)
    ungrouped = tok.batch_decode(ids, group_tokens=False)  # the classic CTC mistake
    assert task.compare(raw(), piped, "fp32").ok
    verdict = task.compare(ungrouped, piped, "fp32")
    assert not verdict.ok and "transcription" in verdict.detail


def test_wav2vec2_base_has_the_real_shapes():
    b = load_model("synthetic:wav2vec2-base", "ctc", None, "fp32", "cpu")
    assert b.params == 94_396_320  # facebook/wav2vec2-base-960h
    assert len(b.tokenizer[0]) == 32 and b.tokenizer[1].sampling_rate == 16000


@pytest.mark.parametrize("batch_size", [1, 2])
def test_whisper_generate_matches_the_asr_pipeline(batch_size):
    from benchbed.spec import Case

    task = get_task("automatic-speech-recognition").configure(
        Case("automatic-speech-recognition", "synthetic:whisper-tiny", new_tokens=5))
    assert task.seq2seq and task.head == "speech-seq2seq"
    bundle = load_model("synthetic:whisper-tiny", task.head, None, "fp32", "cpu")
    inputs = task.make_inputs(bundle.tokenizer, batch_size, 800, seed=0)
    case = Case(task.name, "m", batch_size=batch_size)  # a runner reads its batch and device from its case
    raw = TorchRunner(case, task, bundle, inputs, no_sync)
    pipe = PipelineRunner(case, task, bundle, inputs, no_sync, pipe=build_pipeline(task, bundle, "cpu"))
    a, b = raw(), pipe()
    assert all(len(x) > 0 for x in a)  # special tokens suppressed: real text tokens come out
    verdict = task.compare(a, b, "fp32")
    assert verdict.ok, verdict.detail


def test_whisper_base_has_base_en_layout():
    b = load_model("synthetic:whisper-base", "speech-seq2seq", None, "fp32", "cpu")
    cfg = b.module.config
    assert (cfg.d_model, cfg.encoder_layers, cfg.decoder_layers, cfg.num_mel_bins, cfg.vocab_size) == (
        512, 6, 6, 80, 51864)
    assert len(b.tokenizer[0]) == 51864 and b.tokenizer[1].feature_size == 80
