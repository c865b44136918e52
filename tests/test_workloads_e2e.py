"""Real inputs and the dataset / server scenarios end to end: the real engine on the tiny preset,
records read back, bad input refused up front."""

import json

import pandas as pd
import pytest

from benchbed.engine import EngineConfig, Session
from benchbed.measure import StopRule
from benchbed.runners import TorchRunner, register_runner
from benchbed.spec import Matrix, Workload

from conftest import interfered, run_cli

FAST = StopRule(warmup=1, min_samples=3, min_time_s=0.05, max_time_s=1.0)


class RecordingTorchRunner(TorchRunner):
    """The raw loop, remembering every batch of examples it was handed (to check what it saw)."""

    NAME = "torch-recording"
    seen: list = []

    def __call__(self):
        RecordingTorchRunner.seen.append(list(self.inputs))
        return super().__call__()


def _run(tmp_path, matrix, **config):
    session = Session(str(tmp_path / "results"), EngineConfig(rule=FAST, phase_calls=0, **config))
    session.run(matrix.cases())
    session.close()
    return pd.read_parquet(tmp_path / "results")


@pytest.fixture
def recording_runner():
    from benchbed.runners import _REGISTRY

    register_runner(RecordingTorchRunner)
    RecordingTorchRunner.seen = []
    yield RecordingTorchRunner
    _REGISTRY[RecordingTorchRunner.FAMILY].pop(RecordingTorchRunner.NAME, None)


def test_dataset_scenario_same_examples_same_order_parity_on_every_example(tmp_path, recording_runner):
    matrix = Matrix(task=("text-classification",), model=("bert-tiny",), batch_size=(8,), seq_len=(64,),
                    runner=("torch", "pipeline", "torch-bucketed", "torch-recording"), scenario=("dataset",),
                    inputs="corpus:python-docs", workload=Workload(examples=40))
    df = _run(tmp_path, matrix)
    assert len(df) == 4 and set(df["status"]) == {"ok"}, df[["runner", "status", "message"]]
    recs = df.set_index("runner")
    for runner in ("pipeline", "torch-bucketed", "torch-recording"):
        assert bool(recs.loc[runner, "parity_ok"]) and "40 labels equal" in recs.loc[runner, "parity_detail"]
    assert (df["scenario"] == "dataset").all() and (df["examples"] == 40).all()
    assert (df["inputs_source"] == "corpus:python-docs").all() and (df["inputs_examples"] >= 1000).all()
    lens = list(recs.loc["torch", "input_lens"])
    assert len(lens) == 40 and max(lens) <= 64 and min(lens) < max(lens)  # real text varies in length
    assert recs.loc["torch", "input_len_max"] == max(lens)
    # the plain loop and the pipeline's DataLoader batch alike; bucketing pads less
    assert recs.loc["torch", "padding_waste"] == pytest.approx(recs.loc["pipeline", "padding_waste"])
    assert recs.loc["torch-bucketed", "padding_waste"] < recs.loc["torch", "padding_waste"]
    for _, r in df.iterrows():
        assert r["examples_per_s"] == pytest.approx(40 / r["lat_median_s"])
        assert r["first_result_s"] > 0 and r["tokens_per_s"] > 0 and r["n_samples"] >= 3
    # every pass of the recording runner saw the same 40 examples in the same order, in batches of 8
    passes = [sum(RecordingTorchRunner.seen[i:i + 5], []) for i in range(0, len(RecordingTorchRunner.seen), 5)]
    full = [p for p in passes if len(p) == 40]
    assert len(full) >= 3 and all(p == full[0] for p in full)
    from benchbed.workloads.sampler import draw
    from benchbed.workloads.sources import python_docs_corpus

    corpus = python_docs_corpus()
    assert full[0] == [corpus[i] for i in draw(len(corpus), 40, seed=0)]


def test_server_scenario_below_and_above_capacity(tmp_path):
    matrix = Matrix(task=("text-classification",), model=("bert-tiny",), batch_size=(1,), seq_len=(32,),
                    scenario=("server",), workload=Workload(rates=(20.0, 5000.0), requests=40, queue=4))
    df = _run(tmp_path, matrix, slo_ms=500.0)
    if interfered(df[df["offered_rate"] == 20.0]):  # below capacity on a quiet machine: measure once more
        df = _run(tmp_path / "again", matrix, slo_ms=500.0)
    assert len(df) == 4 and set(df["status"]) == {"ok"}, df[["runner", "status", "message"]]
    low, high = df[df["offered_rate"] == 20.0], df[df["offered_rate"] == 5000.0]
    busy = interfered(low)  # another process took the cores: the low rate may exceed capacity, and says so
    for _, r in low.iterrows():
        assert r["completed"] + r["dropped"] == 40
        if busy:
            assert r["interference"], r
            continue
        assert r["dropped"] == 0 and r["completed"] == r["n_samples"] == 40 and bool(r["slo_met"])
        assert r["queue_median_s"] >= 0 and r["service_median_s"] > 0 and r["batch_mean"] == 1
        assert r["lat_p99_s"] >= r["lat_median_s"] >= r["service_median_s"] * 0.9
    for _, r in high.iterrows():  # far past capacity: the bounded queue drops, nothing grows without bound
        assert r["dropped"] > 0 and r["completed"] + r["dropped"] == 40 and not bool(r["slo_met"])
        assert r["achieved_rate"] < 5000.0
    assert bool(df[df["runner"] == "pipeline"]["parity_ok"].all())
    from benchbed.summary import format_table, goodput

    rates = {g["runner"]: g["sustainable_rate"] for g in goodput(df.to_dict("records"))}
    if busy:
        return
    assert rates == {"torch": 20.0, "pipeline": 20.0}
    assert "highest offered rate whose p99 met the SLO" in format_table(df.to_dict("records"))
    from benchbed.report import build_report

    page = build_report(df)
    assert "Workloads" in page and "torch sustains 20 req/s; pipeline sustains 20 req/s (1.00× torch's)" in page
    assert "data:image/svg+xml" in page and "meets it at none" not in page


def test_server_rate_auto_finds_each_runners_knee(tmp_path):
    matrix = Matrix(task=("text-classification",), model=("bert-tiny",), batch_size=(1,), seq_len=(32,),
                    scenario=("server",), workload=Workload(rates=("auto",), requests=40, queue=8))
    df = _run(tmp_path, matrix, slo_ms=50.0)
    if interfered(df):
        df = _run(tmp_path / "again", matrix, slo_ms=50.0)
    busy = interfered(df)  # a knee found on a busy machine is a different machine's knee, and says so
    assert len(df) == 2 and set(df["status"]) == {"ok"}, df[["runner", "status", "message"]]
    from benchbed.summary import format_table, goodput

    rates = {g["runner"]: g["sustainable_rate"] for g in goodput(df.to_dict("records"))}
    for _, r in df.iterrows():
        probes = list(zip(r["probe_rates"], r["probe_met"]))
        assert 2 <= len(probes) <= 8 and r["capacity_rate"] > 0 and r["probe_rates"][0] == r["capacity_rate"] / 2
        if busy:
            assert r["interference"], r
            continue
        assert r["sustainable_rate"] == rates[r["runner"]] and bool(r["slo_met"])  # its samples are the knee's
        assert r["offered_rate"] == r["sustainable_rate"] and r["n_samples"] == r["completed"]
        missed = [q for q, ok in probes if not ok]
        # the search stops within its resolution of the knee, or when its probes are spent
        from benchbed.workloads.knee import MAX_PROBES, RESOLUTION

        assert missed and (min(missed) <= r["sustainable_rate"] * RESOLUTION + 1e-9 or len(probes) == MAX_PROBES)
        assert json.loads(r["options"])["rate"] == "auto"
    assert "server auto" in format_table(df.to_dict("records"))
    from benchbed.report import build_report
    from benchbed.report.sections import server as charts

    page = build_report(df)
    assert "torch sustains" in page or (busy and "measured while other processes used the machine" in page)
    svg, _ = charts.server_load(df)
    assert b"torch p99 (search)" in svg and b"pipeline p99 (search)" in svg


def test_server_scenario_serves_generation_with_time_to_first_token_per_request(tmp_path):
    matrix = Matrix(task=("text-generation",), model=("synthetic:gpt2-tiny",), batch_size=(1,), seq_len=(16,),
                    new_tokens=4, scenario=("server",), workload=Workload(rates=(20.0,), requests=16, max_batch=2))
    df = _run(tmp_path, matrix, slo_ms=1000.0)
    assert len(df) == 2 and set(df["status"]) == {"ok"}, df[["runner", "status", "message"]]
    for _, r in df.iterrows():
        # time to first token counts the queue wait, so it lies between the wait and the whole request
        assert r["queue_median_s"] <= r["ttft_s"] <= r["lat_median_s"] and r["ttft_p99_s"] >= r["ttft_s"]
        assert 0 < r["tpot_s"] < r["lat_median_s"] and r["completed"] == 16
    assert bool(df[df["runner"] == "pipeline"]["parity_ok"].all())


def test_speech_recognition_on_a_folder_of_wav_files(tmp_path):
    """Real clips of different lengths, rates and channel counts: every runner gets the same
    16 kHz clips, cut at --seq-len milliseconds, and transcribes them alike."""
    import numpy as np
    from test_workloads import _write_wav

    clips = tmp_path / "clips"
    clips.mkdir()
    rng = np.random.default_rng(0)
    for i, (rate, seconds, channels) in enumerate([(16_000, 0.4, 1), (8_000, 0.9, 2), (22_050, 0.6, 1)]):
        t = np.arange(int(seconds * rate)) / rate
        wave = 0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t) + rng.normal(0, 0.02, len(t))
        _write_wav(clips / f"{i}.wav", wave, rate, 2, channels)
    # batch 1: a CTC model without an attention mask transcribes a padded clip differently, and the
    # pipeline pads a batch differently from a batched feature-extractor call (docs/workloads.md)
    matrix = Matrix(task=("automatic-speech-recognition",), model=("synthetic:wav2vec2-tiny",), batch_size=(1,),
                    seq_len=(700,), inputs=str(clips))
    df = _run(tmp_path, matrix)
    assert len(df) == 2 and set(df["status"]) == {"ok"}, df[["runner", "status", "message"]]
    assert bool(df[df["runner"] == "pipeline"]["parity_ok"].all()), df["parity_detail"].tolist()
    for _, r in df.iterrows():
        assert r["inputs_examples"] == 3 and r["input_len_max"] <= 700 and r["input_len_min"] >= 390
        assert r["tokens_per_s"] is None or r["tokens_per_s"] != r["tokens_per_s"]  # ms are not tokens


def test_latency_with_real_inputs_through_the_cli(tmp_path):
    results = tmp_path / "results"
    p = run_cli("run", "--quick", "--task", "text-classification", "--batch-size", "4", "--seq-len", "64",
                "--inputs", "corpus:python-docs", "--min-time", "0.05", "--max-time", "1", "--results", str(results))
    assert p.returncode == 0, p.stderr[-2000:]
    df = pd.read_parquet(results)
    assert len(df) == 2 and set(df["status"]) == {"ok"}
    r = df[df["runner"] == "pipeline"].iloc[0]
    assert bool(r["parity_ok"]) and r["inputs_source"] == "corpus:python-docs" and r["scenario"] == "latency"
    assert len(r["input_lens"]) == 32 and r["padding_waste"] > 0 and r["input_len_max"] <= 64
    assert json.loads(r["options"]) == {}


@pytest.mark.parametrize("args, expected", [
    (["--inputs", ""], "--inputs: empty value"),
    (["--inputs", "missing.jsonl"], "no such file or folder"),
    (["--inputs", "{csv}#title"], "no column 'title' (valid: text, label)"),
    (["--inputs", "{dir}"], "a folder, but this task takes text"),
    (["--inputs", "corpus:python-docs", "--task", "fill-mask"],
     "task 'fill-mask' does not take real inputs yet (valid: text-classification, image-classification, "
     "automatic-speech-recognition)"),
    (["--scenario", "server", "--rate", "0"], "--rate must be"),
    (["--scenario", "server", "--rate", "fast"], "--rate"),
    (["--scenario", "server", "--rate", "auto,10"], "--rate auto searches each runner's knee; it takes no other rates"),
    (["--scenario", "server", "--slo-ms", "0"], "--slo-ms must be"),
    (["--scenario", "batch"], "unknown scenario 'batch' (valid: latency, dataset, server, http)"),
    (["--scenario", "dataset", "--workers", "-1"], "--workers"),
])
def test_bad_workload_input_is_one_line_exit_2_nothing_written(tmp_path, args, expected):
    (tmp_path / "in.csv").write_text("text,label\nhello there,1\n")
    results = tmp_path / "results"
    args = [a.replace("{csv}", str(tmp_path / "in.csv")).replace("{dir}", str(tmp_path)) for a in args]
    if "--task" not in args:
        args += ["--task", "text-classification"]
    p = run_cli("run", "--quick", "--results", str(results), *args)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], p.stderr
    assert not results.exists()
