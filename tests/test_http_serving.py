"""Serving (issue #24): real HTTP servers on 127.0.0.1 that benchbed starts and always stops, the
endpoint runner against a minimal compatible service of each protocol (`tests/protocol_apps.py`),
parity that catches a wrong service, faults (a server killed mid-run, a hung or malformed answer)
that become error records without a hang, and bad input refused before anything runs. Load is
bounded in count and time everywhere."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pandas as pd
import psutil
import pytest

from conftest import REPO, run_cli

pytest.importorskip("uvicorn")
pytest.importorskip("aiohttp")

FAST = ("--warmup", "1", "--min-samples", "3", "--min-time", "0.02", "--max-time", "0.5")
TINY = ("--model", "synthetic:bert-tiny", "--dtype", "fp32", "--batch-size", "1", "--seq-len", "16")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class App:
    """A protocol app (tests/protocol_apps.py) in its own process group, killed at the end."""

    def __init__(self, protocol: str, task: str, model: str, fault: str | None = None) -> None:
        self.port = _free_port()
        cmd = [sys.executable, os.path.join(REPO, "tests", "protocol_apps.py"), "--protocol", protocol, "--task", task,
               "--model", model, "--port", str(self.port)] + (["--fault", fault] if fault else [])
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the {protocol} app exited: {self.proc.stderr.read().decode()[-500:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the {protocol} app did not come up")

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc.stderr.close()


@pytest.fixture
def app():
    apps = []

    def start(*args, **kwargs):
        a = App(*args, **kwargs)
        apps.append(a)
        return a

    yield start
    for a in apps:
        a.stop()


def _servers() -> list[psutil.Process]:
    """benchbed's HTTP server processes of this test session (they carry ``benchbed.serving.server``)."""
    out = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info.get("cmdline") or []
        if any("benchbed.serving.server" in c for c in cmd) or any("benchbed.serving.app" in c for c in cmd):
            out.append(p)
    return out


def _listeners(pids) -> list[str]:
    from benchbed.serving.client import free_of_listeners

    return free_of_listeners(list(pids))


def _healthy(pid: int) -> bool:
    """Whether the server process `pid` listens and answers ``GET /health`` with 200."""
    from benchbed.serving.client import Connection, RequestFailed

    for where in _listeners([pid]):
        conn = Connection(f"http://{where.split(' ')[0]}", timeout_s=2)
        try:
            if conn.request("GET", "/health")[0] == 200:
                return True
        except RequestFailed:
            pass
        finally:
            conn.close()
    return False


def _records(results) -> pd.DataFrame:
    return pd.read_parquet(results)


# -- the codec and the adapters: what crosses HTTP comes back the same, malformed answers are errors --

def test_codec_round_trips_every_output_form():
    import torch

    from benchbed.serving import codec

    value = [{"label": "POSITIVE", "score": 0.75}, torch.arange(6, dtype=torch.float32).reshape(2, 3),
             torch.ones(2, dtype=torch.bfloat16), "text", None, [1, 2]]
    back = codec.loads(codec.dumps(value))
    assert back[0] == value[0] and back[3:] == value[3:]
    assert torch.equal(back[1], value[1]) and back[1].dtype == torch.float32
    assert back[2].dtype == torch.bfloat16 and torch.equal(back[2], value[2])
    with pytest.raises(codec.CodecError, match="malformed response"):
        codec.loads(b"<html>")


@pytest.mark.parametrize("protocol, task, body, expected", [
    ("hf-inference", "text-classification", [[{"label": "A", "score": 0.1}, {"label": "B", "score": 0.9}]],
     [{"label": "B", "score": 0.9}]),
    ("kserve-v2", "text-classification",
     {"outputs": [{"name": "label", "datatype": "BYTES", "shape": [1], "data": ["A"]},
                  {"name": "score", "datatype": "FP32", "shape": [1], "data": [0.5]}]}, [{"label": "A", "score": 0.5}]),
    ("openai", "text-generation", {"choices": [{"index": 0, "text": " hi"}]}, [" hi"]),
    ("tgi", "text-generation", {"generated_text": "x y"}, ["x y"]),
])
def test_each_adapter_reads_its_protocol_and_refuses_another_shape(protocol, task, body, expected):
    from benchbed.serving.protocols import CodecError, get_protocol
    from benchbed.tasks import get_task

    proto = get_protocol(protocol)("http://127.0.0.1:1/x", get_task(task), "synthetic:bert-tiny")
    assert proto.parse(200, json.dumps(body).encode(), 1) == expected
    with pytest.raises(CodecError):
        proto.parse(200, json.dumps({"unexpected": True}).encode(), 1)
    with pytest.raises(CodecError, match="status 503"):
        proto.parse(503, b"busy", 1)


def test_a_protocol_is_a_plugin_registered_like_any_other():
    from benchbed.serving.protocols import Protocol, get_protocol, protocol_names, register_protocol

    @register_protocol
    class Echo(Protocol):
        NAME = "echo-test"
        TASKS = ("text-generation",)

        def request(self, inputs, stream=False):
            return "/echo", json.dumps(list(inputs)).encode()

        def parse(self, status, body, n):
            return json.loads(body)

    assert "echo-test" in protocol_names() and get_protocol("echo-test") is Echo


# -- the http scenario: a real server per runner, answers checked, nothing left listening --

def test_http_scenario_serves_each_runner_checks_answers_and_leaves_nothing_listening(tmp_path):
    results = tmp_path / "results"
    seen: set[int] = set()
    stop = threading.Event()

    def watch():  # the servers' pids while the run is on
        while not stop.is_set():
            seen.update(p.pid for p in _servers())
            time.sleep(0.2)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    p = run_cli("run", "--task", "text-classification", *TINY, "--runner", "torch,pipeline", "--scenario", "http",
                "--rate", "20", "--requests", "20", "--server-workers", "2", "--results", str(results), timeout=300)
    stop.set()
    t.join()
    assert p.returncode == 0, p.stderr[-2000:]
    df = _records(results)
    assert set(df.runner) == {"torch", "pipeline"} and (df.status == "ok").all()
    assert df.parity_ok.all() and df.parity_detail.str.startswith("served vs torch direct").all()
    assert (df.completed == 20).all() and (df.http_errors == 0).all() and (df.server_workers == 2).all()
    assert (df.service_median_s > 0).all() and (df.serialize_median_s > 0).all()
    assert (df.lat_median_s > df.service_median_s).all()  # a request is more than its service
    assert all(len(str(x).split(",")) >= 3 for x in df.server_pids)  # supervisor and two workers
    assert seen, "no server process was seen during the run"
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in seen)
    assert not _servers()


def test_a_server_killed_mid_run_gives_error_records_exit_1_and_keeps_the_others(tmp_path):
    """The torch runner's server is SIGKILLed from outside while the load runs: its record is an
    error naming the failed requests, the pipeline's record is kept, the run exits 1, no hang."""
    results = tmp_path / "results"
    killed: list[int] = []

    def killer():
        deadline = time.monotonic() + 200
        while time.monotonic() < deadline and not killed:
            for proc in _servers():
                cmd = proc.info.get("cmdline") or []
                if "--label" in cmd and cmd[cmd.index("--label") + 1] == "torch":
                    if _healthy(proc.pid):  # model loaded, answering
                        time.sleep(6.0)  # parity and warm-up are done; the load is on
                        try:
                            os.killpg(proc.pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                        killed.append(proc.pid)
                        return
            time.sleep(0.1)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    start = time.monotonic()
    p = run_cli("run", "--task", "text-classification", *TINY, "--runner", "torch,pipeline", "--scenario", "http",
                "--rate", "10", "--requests", "200", "--http-timeout", "5", "--results", str(results), timeout=300)
    t.join(5)
    assert killed, "the torch server was never seen listening"
    assert p.returncode == 1, p.stderr[-2000:]
    assert time.monotonic() - start < 200
    df = _records(results).set_index("runner")
    assert df.loc["torch", "status"] == "error"
    assert "requests failed over HTTP" in df.loc["torch", "message"], df.loc["torch", "message"]
    assert df.loc["torch", "http_errors"] > 0 and df.loc["torch", "completed"] > 0  # what finished is kept
    assert df.loc["pipeline", "status"] == "ok"
    assert not _servers()


def test_an_interrupted_run_stops_its_servers(tmp_path):
    """SIGINT while the load runs: the run exits 130 and no server process or listener remains."""
    results = tmp_path / "results"
    proc = subprocess.Popen([sys.executable, "-m", "benchbed.cli", "run", "--task", "text-classification", *TINY,
                             "--runner", "torch", "--scenario", "http", "--rate", "5", "--requests", "400",
                             "--results", str(results)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 150
        servers = []
        while time.monotonic() < deadline and not servers:
            servers = [s for s in _servers() if proc.pid in [a.pid for a in s.parents()] and _listeners([s.pid])]
            time.sleep(0.2)
        assert servers, "no listening server appeared"
        pids = [s.pid for s in servers] + [c.pid for s in servers for c in s.children(recursive=True)]
        time.sleep(2.0)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    time.sleep(0.5)
    assert not _listeners(pids)
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


def test_a_server_that_cannot_build_its_runner_is_an_error_record_not_a_hang(tmp_path):
    """onnxruntime missing a model export is not provoked here; a runner whose build fails in the
    server worker is: fill-mask on a preset without a mask token fails at build in every process."""
    from benchbed.execute.config import EngineConfig
    from benchbed.serving.server import HttpServer, ServerFailed
    from benchbed.spec import Case

    case = Case(task="text-classification", model="synthetic:no-such-preset", runner="torch", seq_len=16)
    with pytest.raises(ServerFailed, match="could not build the runner"):
        with HttpServer({"case": case, "inputs": ["x"], "config": EngineConfig(), "threads": 1}, 1,
                        start_timeout_s=120):
            pass
    assert not _servers()


# -- the endpoint runner against each protocol's minimal service --

@pytest.mark.parametrize("protocol, task, model, path, extra", [
    ("openai", "text-generation", "synthetic:gpt2-tiny", "/v1", ("--new-tokens", "8")),
    ("tgi", "text-generation", "synthetic:gpt2-tiny", "", ("--new-tokens", "8")),
    ("kserve-v2", "feature-extraction", "synthetic:bert-tiny", "/v2/models/m", ()),
    ("hf-inference", "text-classification", "synthetic:bert-tiny", "", ()),
])
def test_endpoint_runner_speaks_each_protocol_and_agrees_with_the_local_model(tmp_path, app, protocol, task, model,
                                                                              path, extra):
    service = app(protocol, task, model)
    results = tmp_path / "results"
    p = run_cli("run", "--task", task, "--model", model, "--dtype", "fp32", "--batch-size", "1", "--seq-len", "16",
                *extra, "--runner", "torch", "--endpoint", f"svc={service.url(path)}", "--endpoint-protocol", protocol,
                *FAST, "--results", str(results), timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    df = _records(results).set_index("runner")
    row = df.loc["endpoint:svc"]
    assert row.status == "ok" and row.parity_ok, row.parity_detail
    assert row.endpoint_protocol == protocol and row.endpoint_url == service.url(path)
    assert row.lat_median_s > 0
    if task == "text-generation":  # streamed: time to first token, per token, and the gaps between tokens
        assert row.ttft_s > 0 and row.tpot_s > 0 and row.itl_median_s > 0


def test_parity_catches_a_service_that_answers_wrongly(tmp_path, app):
    service = app("hf-inference", "text-classification", "synthetic:bert-tiny", fault="wrong")
    results = tmp_path / "results"
    p = run_cli("run", "--task", "text-classification", *TINY, "--runner", "torch", "--endpoint",
                f"bad={service.url()}", "--endpoint-protocol", "hf-inference", *FAST, "--results", str(results),
                timeout=300)
    assert p.returncode == 1
    row = _records(results).set_index("runner").loc["endpoint:bad"]
    assert row.parity_ok is False or row.parity_ok == False  # noqa: E712 - numpy bool
    assert "PARITY MISMATCH" in row.message


@pytest.mark.parametrize("fault, expected", [("hang", "answer within 2s"), ("malformed", "malformed response")])
def test_a_hung_or_malformed_service_is_an_error_record_within_the_bound(tmp_path, app, fault, expected):
    service = app("hf-inference", "text-classification", "synthetic:bert-tiny", fault=fault)
    results = tmp_path / "results"
    start = time.monotonic()
    p = run_cli("run", "--task", "text-classification", *TINY, "--runner", "torch", "--endpoint",
                f"svc={service.url()}", "--endpoint-protocol", "hf-inference", "--http-timeout", "2", *FAST,
                "--results", str(results), timeout=300)
    assert p.returncode == 1 and time.monotonic() - start < 120
    df = _records(results).set_index("runner")
    assert df.loc["torch", "status"] == "ok"  # the local runner's record is kept
    assert df.loc["endpoint:svc", "status"] == "error" and expected in df.loc["endpoint:svc", "message"]


def test_endpoint_as_reference_and_in_the_http_scenario(tmp_path, app):
    """--reference endpoint:NAME; the http scenario drives an endpoint where it runs (no server
    started for it) and benchbed's own server for the local runner."""
    service = app("hf-inference", "text-classification", "synthetic:bert-tiny")
    results = tmp_path / "results"
    p = run_cli("run", "--task", "text-classification", *TINY, "--runner", "torch", "--endpoint",
                f"svc={service.url()}", "--endpoint-protocol", "hf-inference", "--reference", "endpoint:svc",
                "--scenario", "http", "--rate", "20", "--requests", "20", "--results", str(results), timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    df = _records(results).set_index("runner")
    assert df.loc["torch", "parity_ok"] and "endpoint:svc" in df.loc["torch", "parity_detail"]
    assert (df.completed == 20).all() and pd.isna(df.loc["endpoint:svc", "server_start_s"])


# -- bad input: one line, exit 2, nothing written --

@pytest.mark.parametrize("args, expected", [
    (["--endpoint", "x=ftp://127.0.0.1:1", "--endpoint-protocol", "openai"], "scheme must be http or https"),
    (["--endpoint", "x=http://127.0.0.1:9", "--endpoint-protocol", "grpc"], "unknown endpoint protocol 'grpc' (valid:"),
    (["--endpoint", "x=http://127.0.0.1:9", "--endpoint-protocol", "openai"], "is unreachable"),
    (["--endpoint", "x=http://127.0.0.1:9"], "--endpoint needs --endpoint-protocol (valid:"),
    (["--endpoint", "nourl", "--endpoint-protocol", "openai"], "--endpoint must be NAME=URL"),
    (["--scenario", "http", "--task", "train-text-classification"], "--scenario http serves inference tasks"),
    (["--reference", "endpoint:nope"], "names an endpoint that is not defined"),
    (["--replicas", "2"], "--replicas and --serve-address apply to Ray Serve"),
    (["--server-workers", "2"], "server_workers"),
])
def test_bad_serving_input_is_one_line_exit_2_and_nothing_written(tmp_path, args, expected):
    results = tmp_path / "results"
    base = ["--model", "synthetic:bert-tiny"] + ([] if "--task" in args else ["--task", "text-classification"])
    p = run_cli("run", *base, *args, "--results", str(results))
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], p.stderr
    assert not results.exists()


def test_a_streaming_endpoint_under_open_loop_load_records_ttft_tpot_and_itl(tmp_path, app):
    """vLLM's serving benchmark's figures, plus what it lacks: the answers checked locally."""
    service = app("openai", "text-generation", "synthetic:gpt2-tiny")
    results = tmp_path / "results"
    p = run_cli("run", "--task", "text-generation", "--model", "synthetic:gpt2-tiny", "--dtype", "fp32",
                "--batch-size", "1", "--seq-len", "16", "--new-tokens", "8", "--runner", "torch", "--endpoint",
                f"oa={service.url('/v1')}", "--endpoint-protocol", "openai", "--scenario", "http", "--rate", "5",
                "--requests", "10", "--results", str(results), timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    row = _records(results).set_index("runner").loc["endpoint:oa"]
    assert row.status == "ok" and row.parity_ok and row.completed == 10
    assert 0 < row.ttft_s < row.lat_median_s and row.tpot_s > 0 and row.itl_median_s > 0 and row.itl_p99_s > 0
