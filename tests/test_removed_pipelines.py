"""Tasks whose pipelines transformers 5 removed: the raw paths are measured, the pipeline side is a
skipped record that says why, and the raw outputs are checked on their own terms."""

import pytest

from benchbed.measure import no_sync
from benchbed.models import load_model
from benchbed.runners import TorchRunner
from benchbed.spec import Case
from benchbed.tasks import get_task
from benchbed.tasks.question_answering import MAX_ANSWER_LEN


def test_question_answering_raw_path_returns_a_valid_span():
    task = get_task("question-answering")
    b = load_model("synthetic:bert-tiny", task.head, task.labels, "fp32", "cpu")
    inputs = task.make_inputs(b.tokenizer, 3, 48, seed=0)
    out = TorchRunner(Case(task.name, "m", batch_size=3), task, b, inputs, no_sync)()
    for x, ans in zip(inputs, out):
        assert 0 <= ans["start"] < ans["end"] <= len(x["context"])
        assert ans["answer"] == x["context"][ans["start"]:ans["end"]]
        assert len(b.tokenizer(ans["answer"], add_special_tokens=False)["input_ids"]) <= MAX_ANSWER_LEN + 1
        assert 0 < ans["score"] <= 1


@pytest.mark.parametrize("task_name", ["question-answering", "summarization", "text2text-generation"])
def test_pipeline_side_is_skipped_with_the_reason_and_raw_is_measured(tiny_session, task_name):
    task = get_task(task_name)
    if task.pipeline_available():
        pytest.skip(f"this transformers still has the {task_name} pipeline")
    model = "synthetic:bert-tiny" if task_name == "question-answering" else "synthetic:bart-tiny"
    case = Case(task_name, model, runner="torch", batch_size=2, seq_len=24, new_tokens=4)
    raw, pipe = tiny_session.run_cell([case, case.pair("pipeline")])
    assert raw.status == "ok" and raw.record["parity_ok"] is None
    assert raw.record["parity_detail"].startswith("not checked:")
    assert pipe.status == "skipped" and f"no '{task_name}' pipeline" in pipe.record["message"]
    if task_name != "question-answering":
        assert raw.record["ttft_s"] > 0 and raw.record["tpot_s"] > 0
