"""The seed's deployment comparison (issue #34): the ``openai-chat`` protocol against a minimal chat
service (the prompt through the model's chat template, as a real server does), its faults as error
records, and ``--serve transformers``: Hugging Face's real ``transformers serve`` started for the
cell, checked against the reference and always stopped — at the end, on SIGINT, and by Linux when
benchbed is SIGKILLed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import psutil
import pytest

from conftest import REPO, run_cli
from test_http_serving import App, _listeners, _records  # noqa: F401 - the protocol apps' fixture helpers

pytest.importorskip("uvicorn")
pytest.importorskip("aiohttp")

GEN = ("--task", "text-generation", "--model", "synthetic:gpt2-tiny", "--dtype", "fp32", "--batch-size", "1",
       "--seq-len", "16", "--new-tokens", "8")
FAST = ("--warmup", "1", "--min-samples", "3", "--min-time", "0.02", "--max-time", "0.5")


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


def _hf_servers() -> list[psutil.Process]:
    """``transformers serve`` processes benchbed started (``python -m benchbed.serving.hf_serve``)."""
    out = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any("benchbed.serving.hf_serve" in c for c in (p.info.get("cmdline") or [])):
                out.append(p)
        except psutil.Error:
            continue
    return out


def _alive(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


# -- openai-chat: a chat API's prompt is the templated one, and parity knows it --

def test_the_chat_template_changes_the_answer_so_parity_must_template_the_reference():
    """The reference given the raw prompt answers differently from the reference given the chat
    service's templated prompt: a parity that forgot the template could not agree by luck."""
    from benchbed.execute.config import EngineConfig
    from benchbed.serving.host import build_runner
    from benchbed.serving.protocols import get_protocol
    from benchbed.spec import Case
    from benchbed.tasks.text_generation import Templated

    case = Case(task="text-generation", model="synthetic:gpt2-tiny", runner="torch", seq_len=16, new_tokens=8)
    run = build_runner({"case": case, "inputs": ["hello world"], "config": EngineConfig(), "threads": 1})
    proto = get_protocol("openai-chat")("http://127.0.0.1:1/v1", run.task, case.model, run.bundle)
    templated = proto.reference_inputs(["hello world"])
    assert isinstance(templated[0], Templated) and templated[0] != "hello world" and "hello world" in templated[0]
    run.inputs = ["hello world"]
    raw = run()
    run.inputs = templated
    assert run() != raw


def test_chat_endpoint_agrees_with_the_local_model_and_reports_usage(tmp_path, app):
    service = app("openai-chat", "text-generation", "synthetic:gpt2-tiny")
    results = tmp_path / "results"
    p = run_cli("run", *GEN, "--runner", "torch", "--endpoint", f"chat={service.url('/v1')}",
                "--endpoint-protocol", "openai-chat", *FAST, "--results", str(results), timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    row = _records(results).set_index("runner").loc["endpoint:chat"]
    assert row.status == "ok" and row.parity_ok, row.parity_detail
    assert row.endpoint_protocol == "openai-chat" and row.ttft_s > 0 and row.itl_median_s > 0
    assert row.usage_completion_tokens == 8 and row.client_stream_tokens >= 1


@pytest.mark.parametrize("fault, expected", [("nochoices", "expected 1 choices"),
                                             ("badstream", "malformed stream event")])
def test_a_malformed_chat_service_is_an_error_record_naming_it(tmp_path, app, fault, expected):
    service = app("openai-chat", "text-generation", "synthetic:gpt2-tiny", fault=fault)
    results = tmp_path / "results"
    p = run_cli("run", *GEN, "--runner", "torch", "--endpoint", f"chat={service.url('/v1')}",
                "--endpoint-protocol", "openai-chat", *FAST, "--results", str(results), timeout=300)
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr[-2000:]
    df = _records(results).set_index("runner")
    assert df.loc["torch", "status"] == "ok"
    assert df.loc["endpoint:chat", "status"] == "error"
    message = df.loc["endpoint:chat", "message"]
    assert "endpoint:chat" in message and expected in message, message


# -- --serve transformers: the real Hugging Face server, started and stopped by benchbed --

@pytest.mark.slow  # a minute: the not-slow part stays within its 15 minutes (issue #31)
def test_serve_transformers_runs_hf_server_beside_benchbed_server_with_parity_and_leaves_nothing(tmp_path):
    pytest.importorskip("fastapi")
    results = tmp_path / "results"
    # a short TMPDIR of the test's own (pytest's tmp paths are too long for the server's sockets):
    # the server's multiprocessing folder (pymp-*) must not be left in it
    tmp = tempfile.mkdtemp(prefix="bb-")
    try:
        p = run_cli("run", *GEN, "--runner", "torch", "--scenario", "latency,http", "--serve", "transformers",
                    "--rate", "4", "--requests", "8", *FAST, "--results", str(results), timeout=500,
                    env={"TMPDIR": tmp})
        left = os.listdir(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert not left, f"left in TMPDIR: {left}"
    assert p.returncode == 0, p.stderr[-2000:]
    df = _records(results)
    served = df[df.runner == "transformers-serve"].set_index("scenario")
    assert set(served.index) == {"latency", "http"}
    assert served.status.eq("ok").all() and served.parity_ok.all(), served.parity_detail.tolist()
    import transformers

    assert served.serve_version.eq(f"transformers {transformers.__version__}").all()
    assert served.endpoint_protocol.eq("openai").all()
    http = df[df.scenario == "http"].set_index("runner")
    assert http.loc["transformers-serve", "serve_backend"] == "transformers"
    assert http.loc["torch", "serve_backend"] == "uvicorn"
    assert http.loc["transformers-serve", "completed"] == 8 and http.loc["transformers-serve", "ttft_s"] > 0
    assert http.loc["transformers-serve", "usage_completion_tokens"] == 8
    assert not _hf_servers()


@pytest.mark.slow
def test_serve_transformers_chat_with_continuous_batching(tmp_path):
    pytest.importorskip("fastapi")
    results = tmp_path / "results"
    p = run_cli("run", *GEN, "--runner", "torch", "--scenario", "http", "--serve", "transformers",
                "--serve-option", "chat", "--serve-option", "continuous-batching", "--rate", "4", "--requests", "8",
                "--results", str(results), timeout=500)
    assert p.returncode == 0, p.stderr[-2000:]
    row = _records(results).set_index("runner").loc["transformers-serve"]
    assert row.status == "ok" and row.parity_ok, row.parity_detail
    assert row.endpoint_protocol == "openai-chat" and row.serve_options == "chat,continuous-batching"
    assert not _hf_servers()


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_serve_transformers_server_goes_when_benchbed_is_interrupted_or_killed(tmp_path, how):
    """SIGINT: benchbed stops the server and exits 130. SIGKILL: benchbed cannot, and Linux does
    (``PR_SET_PDEATHSIG``); the scratch folder it left is swept by the next benchbed process."""
    pytest.importorskip("fastapi")
    from benchbed.scratch import sweep_dead

    results = tmp_path / "results"
    proc = subprocess.Popen([sys.executable, "-m", "benchbed.cli", "run", *GEN, "--runner", "torch", "--scenario",
                             "http", "--serve", "transformers", "--rate", "2", "--requests", "400", "--results",
                             str(results)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 200
        while time.monotonic() < deadline and not pids:
            servers = [s for s in _hf_servers() if _listeners([s.pid])]
            pids = [s.pid for s in servers] + [c.pid for s in servers for c in s.children(recursive=True)]
            time.sleep(0.3)
        assert pids, "no listening transformers serve appeared"
        time.sleep(1.0)
        proc.send_signal(getattr(signal, how))
        code = proc.wait(60)
        assert code == (130 if how == "SIGINT" else -signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    deadline = time.monotonic() + 15
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(pids) and not _listeners(pids)
    if how == "SIGKILL":
        sweep_dead()


# -- bad input: one line, exit 2, nothing written --

@pytest.mark.parametrize("args, env, expected", [
    (["--scenario", "http", "--serve", "transformers", "--serve-option", "turbo"], None,
     "--serve-option: unknown option 'turbo' (valid: continuous-batching, attn-implementation=IMPL, compile, chat)"),
    (["--scenario", "http", "--serve", "transformers", "--serve-option", "attn-implementation"], None,
     "needs =IMPL"),
    (["--scenario", "http", "--serve-option", "chat"], None, "--serve-option applies to --serve transformers"),
    (["--scenario", "http", "--serve", "transformers"], "fastapi",
     "pip install 'transformers[serving]'"),
    (["--serve", "tgi"], None, "invalid choice: 'tgi' (choose from 'uvicorn', 'ray', 'transformers')"),
])
def test_bad_serve_input_is_one_line_exit_2_and_nothing_written(tmp_path, args, env, expected):
    results = tmp_path / "results"
    extra_env = None
    if env:  # the serving extras missing: an import of that package fails, as where it is not installed
        shim = tmp_path / "shim"
        shim.mkdir()
        # a None entry in sys.modules is Python's own mark of a module that cannot be imported
        (shim / "sitecustomize.py").write_text(f"import sys\nsys.modules[{env!r}] = None\n")
        extra_env = {"PYTHONPATH": os.pathsep.join([str(shim), os.environ.get("PYTHONPATH", "")]).strip(os.pathsep)}
    p = run_cli("run", *GEN, *args, "--results", str(results), env=extra_env)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert expected in lines[-1] and (len(lines) == 1 or "usage:" in p.stderr), p.stderr
    assert not results.exists()
