"""A user's own task, registered without touching benchbed, runs end to end with parity."""

from benchbed.spec import Case
import pytest

from benchbed import tasks
from benchbed.tasks import Parity, TextTask, get_task, register_task, task_names, tolerance


class SentimentTop2(TextTask):
    name = "sentiment-top2-test"
    pipeline_task = "text-classification"
    head = "sequence-classification"
    labels = ("NEGATIVE", "NEUTRAL", "POSITIVE")

    def postprocess(self, bundle, encoded, outputs):
        import torch

        probs = torch.softmax(outputs.logits.float(), dim=-1)
        values, idx = probs.topk(2, dim=-1)
        names = bundle.module.config.id2label
        return [[{"label": names[i], "score": v} for v, i in zip(vs, ids)]
                for vs, ids in zip(values.tolist(), idx.tolist())]

    def pipeline_kwargs(self, tokenizer=None):
        return {"top_k": 2}

    def compare(self, raw, piped, dtype):
        tol = tolerance(dtype)
        for i, (a, b) in enumerate(zip(raw, piped)):
            if [x["label"] for x in a] != [x["label"] for x in b]:
                return Parity(False, f"item {i}: labels differ")
            if not all(tol.close(x["score"], y["score"]) for x, y in zip(a, b)):
                return Parity(False, f"item {i}: scores differ")
        return Parity(True, f"{len(raw)} top-2 lists equal")


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setattr(tasks, "_REGISTRY", dict(tasks._REGISTRY))  # undone after the test
    register_task(SentimentTop2)


def test_registered_task_is_listed_and_runs_both_ways(registered, tiny_session):
    assert "sentiment-top2-test" in task_names()
    assert isinstance(get_task("sentiment-top2-test"), SentimentTop2)
    for runner in ("torch", "pipeline"):
        rec = tiny_session.run_case(Case("sentiment-top2-test", "synthetic:bert-tiny", runner=runner, batch_size=2,
                                         seq_len=16)).record
        assert rec["status"] == "ok", rec["message"]
        if runner == "pipeline":  # checked against the reference runner, torch, on the same inputs
            assert rec["parity_ok"] is True and rec["parity_detail"] == "2 top-2 lists equal"
        else:
            assert rec["parity_ok"] is None and rec["parity_detail"] == "reference runner"
