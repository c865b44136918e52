"""Minimal services that speak each protocol benchbed's endpoint runner knows — OpenAI-compatible
completions and chat, TGI, KServe v2, HF-inference — answering with a real benchbed runner on a real (tiny)
model, so an endpoint measured against the same model locally agrees. ``--fault`` makes a wrong
one: ``wrong`` answers (parity must catch them), ``hang`` (never answers an inference request),
``malformed`` (a 200 whose body is not the protocol's), ``nochoices`` (a chat answer without
``choices``), ``badstream`` (a chat stream whose second event is not JSON). The chat service puts
the prompt through the model's chat template, as a real one does.

    python tests/protocol_apps.py --protocol openai --task text-generation --model synthetic:gpt2-tiny --port P

Served with uvicorn on 127.0.0.1 only; the tests start and kill it (`tests/test_http_serving.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any


def build(task: str, model: str, seq_len: int, new_tokens: int) -> Any:
    from benchbed.execute.config import EngineConfig
    from benchbed.serving.host import build_runner
    from benchbed.spec import Case

    case = Case(task=task, model=model, runner="torch", seq_len=seq_len,
                new_tokens=new_tokens if task == "text-generation" else None)
    return build_runner({"case": case, "inputs": ["hello world"], "config": EngineConfig(), "threads": 1})


def make_app(protocol: str, run: Any, fault: str | None) -> Any:
    tok = run.bundle.tokenizer

    def infer(texts: list[str]) -> list[Any]:
        run.inputs = list(texts)
        out = run()
        if fault == "wrong":
            if run.task.name == "text-classification":
                labels = list(run.bundle.module.config.id2label.values())
                out = [{"label": next(x for x in labels if x != o["label"]), "score": o["score"]} for o in out]
            elif run.task.name == "feature-extraction":
                out = [o + 1.0 for o in out]
            else:
                out = [o[::-1] + "!" for o in out]
        return out

    def pieces(text: str) -> list[str]:
        """The text as the tokens a server streams (incremental decoding: they join to the text)."""
        ids = tok(text, add_special_tokens=False)["input_ids"]
        out, prev = [], ""
        for k in range(1, len(ids) + 1):
            cur = tok.decode(ids[:k], skip_special_tokens=True)
            out.append(cur[len(prev):])
            prev = cur
        return [p for p in out if p] or [text]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        path, method = scope["path"], scope["method"]

        async def reply(data: Any, status: int = 200, raw: bytes | None = None) -> None:
            payload = raw if raw is not None else json.dumps(data).encode()
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": payload})

        async def events(items: list[Any]) -> None:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream")]})
            for item in items:
                data = item if isinstance(item, bytes) else json.dumps(item).encode()
                await send({"type": "http.response.body", "body": b"data: " + data + b"\n\n", "more_body": True})
                await asyncio.sleep(0.002)
            await send({"type": "http.response.body", "body": b""})

        if method == "GET":  # health of every protocol
            return await reply({"ready": True, "data": [{"id": "test-model"}]})
        if fault == "hang":
            await asyncio.sleep(3600)
        if fault == "malformed":
            return await reply(None, raw=b"<html>upstream error</html>")
        req = json.loads(body)
        if protocol == "openai":
            if path != "/v1/completions":
                return await reply({"error": "no route"}, 404)
            prompts = req["prompt"] if isinstance(req["prompt"], list) else [req["prompt"]]
            texts = infer(prompts)
            if req.get("stream"):
                return await events([{"choices": [{"index": 0, "text": p}]} for p in pieces(texts[0])] + [b"[DONE]"])
            return await reply({"choices": [{"index": i, "text": t} for i, t in enumerate(texts)]})
        if protocol == "openai-chat":
            from benchbed.tasks.text_generation import Templated

            if path != "/v1/chat/completions":
                return await reply({"error": "no route"}, 404)
            prompt = tok.apply_chat_template(req["messages"], tokenize=False, add_generation_prompt=True)
            text = infer([Templated(prompt)])[0]
            usage = {"prompt_tokens": 1, "completion_tokens": run.task.new_tokens, "total_tokens": 1}
            if fault == "nochoices":
                return await reply({"object": "chat.completion", "usage": usage})
            if req.get("stream"):
                head = [{"choices": [{"index": 0, "delta": {"role": "assistant"}}]}]
                body_events = [{"choices": [{"index": 0, "delta": {"content": p}}]} for p in pieces(text)]
                if fault == "badstream":
                    body_events[1:1] = [b"{not json"]
                tail = [{"choices": [], "usage": usage}, b"[DONE]"]
                return await events(head + body_events + tail)
            return await reply({"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
                                "usage": usage})
        if protocol == "tgi":
            text = infer([req["inputs"]])[0]
            if path == "/generate_stream":
                parts = pieces(text)
                return await events([{"token": {"id": i, "text": p, "special": False},
                                      "generated_text": text if i == len(parts) - 1 else None}
                                     for i, p in enumerate(parts)])
            return await reply({"generated_text": text})
        if protocol == "kserve-v2":
            texts = req["inputs"][0]["data"]
            out = infer(texts)
            if run.task.name == "feature-extraction":
                import torch

                hidden = torch.stack(out)
                return await reply({"model_name": "m", "outputs": [
                    {"name": "last_hidden_state", "shape": list(hidden.shape), "datatype": "FP32",
                     "data": hidden.reshape(-1).tolist()}]})
            return await reply({"model_name": "m", "outputs": [
                {"name": "label", "shape": [len(out)], "datatype": "BYTES", "data": [o["label"] for o in out]},
                {"name": "score", "shape": [len(out)], "datatype": "FP32", "data": [o["score"] for o in out]}]})
        if protocol == "hf-inference":
            inputs = req["inputs"] if isinstance(req["inputs"], list) else [req["inputs"]]
            out = infer(inputs)
            if run.task.name == "text-classification":
                return await reply([[o, {"label": "OTHER", "score": 0.0}] for o in out])
            if run.task.name == "feature-extraction":
                return await reply([[o.tolist()] for o in out])
            return await reply([[{"generated_text": t}] for t in out])
        return await reply({"error": "unknown protocol"}, 500)

    return app


def main() -> None:
    import uvicorn

    p = argparse.ArgumentParser()
    p.add_argument("--protocol", required=True)
    p.add_argument("--task", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--seq-len", type=int, default=16)
    p.add_argument("--new-tokens", type=int, default=8)
    p.add_argument("--fault", choices=["wrong", "hang", "malformed", "nochoices", "badstream"])
    args = p.parse_args()
    run = build(args.task, args.model, args.seq_len, args.new_tokens)
    uvicorn.run(make_app(args.protocol, run, args.fault), host="127.0.0.1", port=args.port, log_level="warning",
                lifespan="on")


if __name__ == "__main__":
    main()
