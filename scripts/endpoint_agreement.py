"""Does benchbed's endpoint client time a streaming endpoint as a plain loop does? (issue #34)

Round by round, on the same endpoint and one request at a time, this alternates two clients:

- **benchbed**: the code the ``endpoint:NAME`` runner times with (`serving.client.Connection.stream`,
  the protocol adapter's request and `event`, a timestamp per event that carries text);
- **loop**: a plain `http.client` streaming loop written here from the OpenAI API's description
  (``data:`` lines, ``choices[0].text``), on its own kept-alive connection.

Each prints per round its median time to first token (TTFT), inter-token latency (ITL) and
latency, then benchbed ÷ loop with the spread over rounds. It also reports the CPU seconds each
client spent against the server's processes (where the endpoint is on this machine): a client
whose own CPU is a large share of what the machine has competes with the server it measures, and
the script says so. Usage::

    transformers serve --port 8000 &        # or vLLM, TGI's /v1, any OpenAI-compatible server
    python scripts/endpoint_agreement.py --url http://127.0.0.1:8000/v1 --model MODEL \\
        [--protocol openai|openai-chat] [--rounds 3] [--requests 10] [--max-tokens 8] [--prompt TEXT] \\
        [--json out.json]

    # or let it start transformers serve as ``benchbed run --serve transformers`` does (a model
    # folder, or a synthetic preset saved for it), and stop it at the end:
    python scripts/endpoint_agreement.py --serve-transformers synthetic:gpt2-tiny [--serve-option continuous-batching]

``--protocol openai-chat`` times ``/v1/chat/completions`` (``delta.content``) on both sides.

Run it with nothing else on the machine; the figures are the two clients' disagreement.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import time
import urllib.parse
from typing import Any, Callable

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

#: the client's CPU past this share of the machine's cores competes with a server on the same machine
COMPETES = 0.25


def _stats(times: list[tuple[float, list[float], float]]) -> dict[str, float]:
    """Medians over requests of (TTFT, ITL, latency); each request is (start, token stamps, end)."""
    ttft = [s[0] - t0 for t0, s, _ in times if s]
    itl = [b - a for _, s, _ in times for a, b in zip(s, s[1:])]
    lat = [end - t0 for t0, _, end in times]
    return {"ttft_s": statistics.median(ttft) if ttft else float("nan"),
            "itl_s": statistics.median(itl) if itl else float("nan"), "latency_s": statistics.median(lat),
            "tokens": statistics.median([len(s) for _, s, _ in times])}


def benchbed_client(url: str, model: str, prompt: str, max_tokens: int, timeout_s: float,
                    protocol: str = "openai") -> Callable[[], Any]:
    """One streamed request through benchbed's endpoint path: (start, stamps of events with text, end)."""
    from benchbed.serving.client import Connection
    from benchbed.serving.protocols import get_protocol
    from benchbed.tasks.text_generation import TextGeneration

    proto = get_protocol(protocol)(f"{url}#model={model}", TextGeneration(max_tokens), model)
    conn = Connection(proto.url, timeout_s)
    path, body = proto.request([prompt], stream=True)

    def once() -> tuple[float, list[float], float]:
        stamps: list[float] = []

        def on_event(data: bytes) -> None:
            if proto.event(data) is not None:
                stamps.append(time.perf_counter())

        t0 = time.perf_counter()
        conn.stream(path, body, (("content-type", "application/json"),), on_event)
        return t0, stamps, time.perf_counter()

    once.close = conn.close  # type: ignore[attr-defined]
    return once


def loop_client(url: str, model: str, prompt: str, max_tokens: int, timeout_s: float,
                protocol: str = "openai") -> Callable[[], Any]:
    """The same request by a plain http.client loop."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout_s)
    chat = protocol == "openai-chat"
    path = parts.path.rstrip("/") + ("/chat/completions" if chat else "/completions")
    request = {"model": model, "max_tokens": max_tokens, "temperature": 0, "stream": True}
    request.update({"messages": [{"role": "user", "content": prompt}]} if chat else {"prompt": prompt})
    body = json.dumps(request).encode()

    def text(line: bytes) -> Any:
        choices = json.loads(line[5:])["choices"]
        if not choices:
            return None
        return (choices[0].get("delta") or {}).get("content") if chat else choices[0].get("text")

    def once() -> tuple[float, list[float], float]:
        stamps: list[float] = []
        t0 = time.perf_counter()
        conn.request("POST", path, body, {"content-type": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            raise SystemExit(f"endpoint_agreement: {url}: status {resp.status}: {resp.read(200)!r}")
        for line in resp:  # to the end of the body, so the connection can be used again
            line = line.strip()
            if line.startswith(b"data:") and line[5:].strip() != b"[DONE]":
                if text(line):
                    stamps.append(time.perf_counter())
        return t0, stamps, time.perf_counter()

    once.close = conn.close  # type: ignore[attr-defined]
    return once


def server_cpu_s(url: str) -> float | None:
    """CPU seconds so far of the processes serving a loopback endpoint (None: not on this machine)."""
    import psutil

    from benchbed.serving.endpoint import local_server_pids

    parts = urllib.parse.urlsplit(url)
    pids = local_server_pids(parts.hostname or "", parts.port or 80)
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total if pids else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="the OpenAI-compatible API base, e.g. http://127.0.0.1:8000/v1")
    where.add_argument("--serve-transformers", metavar="MODEL",
                       help="start transformers serve on MODEL (a model folder, or synthetic:PRESET saved for it) "
                            "for the measurement, as benchbed run --serve transformers does, and stop it after")
    p.add_argument("--serve-option", action="append", default=[], metavar="KEY[=VALUE]",
                   help="with --serve-transformers: continuous-batching, attn-implementation=IMPL, compile")
    p.add_argument("--model", help="the model field of each request (with --url; required there)")
    p.add_argument("--protocol", choices=["openai", "openai-chat"], default="openai",
                   help="the completions API (default) or the chat API")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--requests", type=int, default=10, help="requests per client and round")
    p.add_argument("--max-tokens", type=int, default=8)
    p.add_argument("--prompt", default="The quick brown fox jumps over the lazy dog. Once upon a time")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds a request may take")
    p.add_argument("--json", default=None, help="write the rounds and the verdict here")
    a = p.parse_args(argv)
    if a.rounds < 1 or a.requests < 2 or a.max_tokens < 2:
        p.error("--rounds must be at least 1, --requests and --max-tokens at least 2")
    if a.url and not a.model:
        p.error("--url needs --model (the model field of each request)")
    if a.serve_option and not a.serve_transformers:
        p.error("--serve-option applies to --serve-transformers")
    if a.serve_transformers:
        with started_transformers_serve(a.serve_transformers, a.serve_option) as (url, model):
            a.url, a.model = url, model
            return measure(a)
    return measure(a)


class started_transformers_serve:
    """``with started_transformers_serve(MODEL, options) as (url, model)``: transformers serve on
    MODEL's folder (a synthetic preset saved to benchbed's scratch first), stopped on exit."""

    def __init__(self, model: str, options: list[str]) -> None:
        from benchbed.serving.hf_serve import parse_serve_options

        self.model, self.options = model, tuple(o for o in parse_serve_options(options) if o != "chat")

    def __enter__(self) -> tuple[str, str]:
        from benchbed.scratch import scratch_dir
        from benchbed.serving.hf_serve import TransformersServe, check_serve_available

        check_serve_available()
        folder = self.model
        if self.model.startswith("synthetic:"):
            from benchbed.models import load_model

            bundle = load_model(self.model, "causal-lm", None, "fp32", "cpu")
            folder = scratch_dir("agreement-model-")
            bundle.module.save_pretrained(folder)
            bundle.tokenizer.save_pretrained(folder)
        self.server = TransformersServe(folder, "fp32", "cpu", self.options)
        print(f"starting transformers serve on {folder} {' '.join(self.options)}...", flush=True)
        self.server.start()
        return f"{self.server.url}/v1", folder

    def __exit__(self, *exc: Any) -> None:
        self.server.stop()


def measure(a: argparse.Namespace) -> int:
    """Both clients, alternating round by round, on the endpoint `a.url`."""
    clients = {"benchbed": benchbed_client(a.url, a.model, a.prompt, a.max_tokens, a.timeout, a.protocol),
               "loop": loop_client(a.url, a.model, a.prompt, a.max_tokens, a.timeout, a.protocol)}
    for once in clients.values():  # warm both connections and the server
        once()
    rows = []
    cpu = {name: 0.0 for name in clients}
    server = {name: 0.0 for name in clients}
    wall = {name: 0.0 for name in clients}
    for rnd in range(a.rounds):
        order = list(clients) if rnd % 2 == 0 else list(clients)[::-1]
        for name in order:
            s0, c0, w0 = server_cpu_s(a.url), time.process_time(), time.perf_counter()
            times = [clients[name]() for _ in range(a.requests)]
            cpu[name] += time.process_time() - c0
            wall[name] += time.perf_counter() - w0
            s1 = server_cpu_s(a.url)
            if s0 is not None and s1 is not None:
                server[name] += s1 - s0
            st = _stats(times)
            rows.append({"round": rnd, "client": name, **st})
            print(f"round {rnd} {name:8s}: TTFT {st['ttft_s'] * 1e3:7.2f} ms  ITL {st['itl_s'] * 1e3:7.2f} ms  "
                  f"latency {st['latency_s'] * 1e3:8.2f} ms  ({st['tokens']:g} tokens)", flush=True)
    for once in clients.values():
        once.close()  # type: ignore[attr-defined]
    verdict: dict[str, Any] = {}
    for key in ("ttft_s", "itl_s", "latency_s"):
        ratios = [b[key] / l[key] for b, l in zip((r for r in rows if r["client"] == "benchbed"),
                                                   (r for r in rows if r["client"] == "loop"))]
        verdict[key] = {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}
        print(f"benchbed ÷ loop, {key[:-2]:8s}: {verdict[key]['median']:.3f} "
              f"(rounds {min(ratios):.3f}–{max(ratios):.3f})")
    cores = os.cpu_count() or 1
    for name in clients:
        share = cpu[name] / wall[name] / cores if wall[name] > 0 else 0.0
        line = f"{name}: client CPU {cpu[name]:.2f} s ({share:.0%} of {cores} cores while it ran)"
        if server_cpu_s(a.url) is not None:
            line += f", server CPU {server[name]:.2f} s"
        if share > COMPETES:
            line += f"  — over {COMPETES:.0%}: this client competes with a server on the same machine"
        verdict[f"{name}_cpu_share"] = share
        print(line)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"url": a.url, "model": a.model, "protocol": a.protocol,
                       "serve_transformers": a.serve_transformers, "serve_options": a.serve_option,
                       "max_tokens": a.max_tokens, "requests": a.requests,
                       "rows": rows, "verdict": verdict}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
