"""``--serve transformers``: the cell's model behind Hugging Face's own server, ``transformers
serve`` (OpenAI-compatible, continuous batching as an option), measured as the runner
``transformers-serve`` beside benchbed's own server of the cell's other runners.

benchbed saves the module and tokenizer the other runners use to a scratch folder (the same
weights, a synthetic model's included), starts ``transformers serve`` on it on the loopback
address in its own session, waits for ``/health``, and drives it through the ``openai`` protocol
(``openai-chat`` with ``--serve-option chat``). Each request carries the task's generation
settings as ``generation_config`` (greedy, exactly ``new_tokens`` tokens), so the server does the
same work as the reference. The server is stopped with everything it started when the runner is
closed (the cell's end, an error, Ctrl-C); ``PR_SET_PDEATHSIG`` has Linux kill it if benchbed is
killed.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from typing import Any, ClassVar

from ..scratch import child_tmpdir, scratch_dir
from ..spec import HF_SERVE_RUNNER, Endpoint, SpecError
from .client import HTTP_TIMEOUT_S, Connection, RequestFailed
from .endpoint import EndpointRunner
from .server import START_TIMEOUT_S, ServerFailed, stop_tree

__all__ = ["TransformersServe", "TransformersServeRunner", "SERVE_OPTIONS", "parse_serve_options",
           "check_serve_available", "serve_version"]

#: ``--serve-option`` keys: passed to ``transformers serve`` as its flags, except ``chat`` (the
#: chat API instead of completions).
SERVE_OPTIONS = ("continuous-batching", "attn-implementation", "compile", "chat")
_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def parse_serve_options(given: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``--serve-option`` values checked: a `SpecError` naming the valid keys for another."""
    out = []
    for text in given:
        key, sep, value = str(text).partition("=")
        if key not in SERVE_OPTIONS:
            raise SpecError(f"--serve-option: unknown option {key[:40]!r} (valid: continuous-batching, "
                            f"attn-implementation=IMPL, compile, chat)")
        if (key == "attn-implementation") != bool(sep and value):
            raise SpecError(f"--serve-option {key} {'needs =IMPL (e.g. sdpa)' if key == 'attn-implementation' else 'takes no value'}")
        out.append(f"{key}={value}" if sep else key)
    return tuple(dict.fromkeys(out))


def check_serve_available() -> None:
    """A `SpecError` naming the extra to install when ``transformers serve`` cannot start here."""
    try:
        from transformers.utils.import_utils import is_serve_available
    except ImportError:  # an older transformers has no serving stack at all
        raise SpecError("--serve transformers needs transformers with `transformers serve` "
                        "(pip install 'transformers[serving]')") from None
    if not is_serve_available():
        raise SpecError("--serve transformers needs the serving extras of transformers: "
                        "pip install 'transformers[serving]'")


def serve_version() -> str:
    import transformers

    return f"transformers {transformers.__version__}"


def _free_port() -> int:
    """A loopback port free now (the server binds it itself a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TransformersServe:
    """``transformers serve`` on a saved model folder, always stopped (`stop`)."""

    def __init__(self, model_dir: str, dtype: str, device: str, options: tuple[str, ...] = (),
                 start_timeout_s: float = START_TIMEOUT_S) -> None:
        self.model_dir, self.dtype, self.device, self.options = model_dir, dtype, device, options
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen | None = None
        self.dir: str | None = None
        self.url: str | None = None
        self.start_s: float | None = None

    def command(self, port: int) -> list[str]:
        flags = ["--host", "127.0.0.1", "--port", str(port), "--dtype", _DTYPES.get(self.dtype, "auto"),
                 "--device", "cuda:0" if self.device.startswith("cuda") else self.device, "--log-level", "warning",
                 "--no-enable-cors"]
        for opt in self.options:
            key, _, value = opt.partition("=")
            if key in ("continuous-batching", "compile"):
                flags.append(f"--{key}")
            elif key == "attn-implementation":
                flags += ["--attn-implementation", value]
        return [sys.executable, "-m", "benchbed.serving.hf_serve", self.model_dir, *flags]

    def start(self) -> str:
        from .host import die_with_parent

        t0 = time.perf_counter()
        self.dir = scratch_dir("hf-serve-")
        self.log = open(os.path.join(self.dir, "server.log"), "wb")
        try:
            for attempt in range(3):  # another process may take the free port first
                port = _free_port()
                self.proc = subprocess.Popen(self.command(port), stdin=subprocess.DEVNULL, stdout=self.log,
                                             stderr=subprocess.STDOUT, start_new_session=True,
                                             preexec_fn=die_with_parent, env=child_tmpdir(self.dir))
                if self._wait(port):
                    break
                stop_tree(self.proc, [])
                self.proc = None
            else:
                raise ServerFailed(f"transformers serve could not bind a loopback port: {self.log_tail()}")
        except BaseException:
            self.stop()
            raise
        self.url = f"http://127.0.0.1:{port}"
        self.start_s = time.perf_counter() - t0
        return self.url

    def _wait(self, port: int) -> bool:
        """True once ``/health`` answers 200; False when the port was taken; `ServerFailed` else."""
        assert self.proc is not None
        deadline = time.monotonic() + self.start_timeout_s
        conn = Connection(f"http://127.0.0.1:{port}", timeout_s=5.0)
        try:
            while True:
                if self.proc.poll() is not None:
                    if "address already in use" in self.log_tail(4000).lower():
                        return False
                    raise ServerFailed(f"transformers serve exited with code {self.proc.returncode} before it "
                                       f"was ready: {self.log_tail()}")
                try:
                    status, _, _ = conn.request("GET", "/health")
                    if status == 200:
                        return True
                except RequestFailed:
                    conn.close()
                if time.monotonic() > deadline:
                    raise ServerFailed(f"transformers serve was not ready after {self.start_timeout_s:.0f}s: "
                                       f"{self.log_tail()}")
                time.sleep(0.1)
        finally:
            conn.close()

    def log_tail(self, n: int = 400) -> str:
        try:
            with open(os.path.join(self.dir or "", "server.log"), "rb") as f:
                text = f.read().decode(errors="replace").strip()
        except OSError:
            return "(no log)"
        return " | ".join(text[-n:].splitlines()) or "(empty log)"

    def pids(self) -> list[int]:
        if self.proc is None:
            return []
        import psutil

        try:
            parent = psutil.Process(self.proc.pid)
            return [parent.pid] + [c.pid for c in parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """Stop the server and what it started (TERM, then KILL), and remove its folder."""
        pids = self.pids()[1:]
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_tree(proc, pids)
        log = getattr(self, "log", None)
        if log is not None:
            log.close()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


class TransformersServeRunner(EndpointRunner):
    """The cell's model behind ``transformers serve``, started for the runner and stopped with it."""

    NAME: ClassVar[str] = HF_SERVE_RUNNER
    DESCRIPTION: ClassVar[str] = "the cell's model behind Hugging Face's server (--serve transformers)"
    SERVE_BACKEND: ClassVar[str] = "transformers"

    def __init__(self, case: Any, task: Any, bundle: Any, inputs: list[Any], options: tuple[str, ...] = (),
                 timeout_s: float = HTTP_TIMEOUT_S, **kwargs: Any) -> None:
        from ..runners.base import RunnerUnavailable

        if task.name != "text-generation":
            raise RunnerUnavailable(f"--serve transformers serves text-generation here; {task.name} has no "
                                    f"OpenAI-compatible form")
        if case.dtype not in _DTYPES:
            raise RunnerUnavailable(f"transformers serve loads saved weights; {case.dtype} weights are not saved "
                                    f"(valid: {', '.join(_DTYPES)})")
        self.options = options
        self.server: TransformersServe | None = None
        self.folder = scratch_dir("hf-serve-model-")
        try:
            bundle.module.save_pretrained(self.folder)
            bundle.tokenizer.save_pretrained(self.folder)
            self.server = TransformersServe(self.folder, case.dtype, case.device, options)
            self.server.start()
            protocol = "openai-chat" if "chat" in options else "openai"
            endpoint = Endpoint(HF_SERVE_RUNNER, f"{self.server.url}/v1#model={self.folder}", protocol)
            super().__init__(case, task, bundle, inputs, None, endpoint, timeout_s, **kwargs)
        except BaseException:
            self.close()
            raise
        gen = bundle.module.generation_config
        self.protocol.extra = {"generation_config": json.dumps({
            "do_sample": False, "num_beams": 1, "max_new_tokens": task.new_tokens, "min_new_tokens": task.new_tokens,
            "pad_token_id": bundle.tokenizer.pad_token_id, "eos_token_id": gen.eos_token_id,
            "bos_token_id": gen.bos_token_id})}
        try:
            self._first_request(inputs[:1] or ["hello"])
        except BaseException:
            self.close()
            raise

    def _first_request(self, inputs: list[Any]) -> None:
        """One request before any is timed or checked, within the start's bound: the server's
        one-off work (continuous batching sets up its paged cache on the first request, 30-40 s
        on this 2-core VM) is not a request's, as benchbed's own server makes one call first."""
        assert self.server is not None
        t0 = time.perf_counter()
        conn = Connection(self.protocol.url, timeout_s=self.server.start_timeout_s)
        try:
            path, body = self.protocol.request(inputs)
            status, answer, _ = conn.request("POST", path, body, (("content-type", "application/json"),))
        except RequestFailed as exc:
            raise ServerFailed(f"transformers serve did not answer its first request: {exc}; {self.server.log_tail()}") \
                from None
        finally:
            conn.close()
        if status != 200:
            raise ServerFailed(f"transformers serve answered its first request with status {status}: {answer[:200]!r}")
        self.server.start_s = (self.server.start_s or 0.0) + time.perf_counter() - t0

    @property
    def start_s(self) -> float | None:
        return self.server.start_s if self.server is not None else None

    def service_columns(self) -> dict[str, Any]:
        return {**super().service_columns(), "serve_version": serve_version(),
                "serve_options": ",".join(self.options) or None}

    def close(self) -> None:
        conn = getattr(self, "conn", None)
        if conn is not None:
            conn.close()
        server, self.server = self.server, None
        if server is not None:
            server.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """The server process: die with benchbed, then run ``transformers serve`` with `argv`."""
    from transformers.cli.transformers import main as transformers_main

    from .host import die_with_parent

    die_with_parent()
    sys.argv = ["transformers", "serve", *(sys.argv[1:] if argv is None else argv)]
    return transformers_main() or 0


if __name__ == "__main__":
    sys.exit(main())
