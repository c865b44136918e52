"""Protocol adapters: how a request for a task looks, and how its answer becomes the outputs the
task compares, for each kind of service. A plug-in: subclass `Protocol`, give it a `NAME`, and
register it with `register_protocol` (from a suite file, or the ``benchbed.protocols`` entry
point). The built-ins:

- ``benchbed``: benchbed's own server (``--scenario http``, ``benchbed serve``): the outputs of the
  runner it serves, tensors included, unchanged (`codec`).
- ``hf-inference``: a Hugging Face inference endpoint (``{"inputs": ..., "parameters": ...}``, the
  pipeline's answer): text-classification, feature-extraction, text-generation.
- ``openai``: an OpenAI-compatible completions API (vLLM, TGI's ``/v1``...), streaming tokens as
  server-sent events: text-generation. The endpoint URL is the API base (``http://host:8000/v1``);
  the model field is the URL's ``#model=NAME`` or the case's model.
- ``openai-chat``: the same servers' ``/v1/chat/completions``: the prompt is one user message,
  which the server puts through the model's chat template; tokens stream as ``delta.content``.
  Parity gives the reference the prompt through the same template (`reference_inputs`).
- ``tgi``: text-generation-inference's ``/generate`` and ``/generate_stream``: text-generation.
- ``kserve-v2``: the KServe / Triton open inference protocol (``/v2/models/NAME/infer``, BYTES in,
  tensors out): text-classification (``label``/``score`` outputs, or ``logits``) and
  feature-extraction (``last_hidden_state``). The URL is the model's (``.../v2/models/NAME``).

Outputs are the task's own form: a ``{"label", "score"}`` per text, one ``[tokens, hidden]``
tensor per text, one generated string per prompt. A body of another shape raises `CodecError`,
which the runner's record reports as a malformed response.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar, Sequence

from ..plugins import EntryPoints
from .codec import CodecError

__all__ = ["Protocol", "register_protocol", "get_protocol", "protocol_names", "CodecError"]

_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_REGISTRY: dict[str, type["Protocol"]] = {}


class Protocol:
    """One kind of service. `TASKS`: the tasks it serves; `BATCHES`: one request carries a whole
    batch (else one request per input); `STREAMS`: generation can stream tokens; `HEALTH`: the
    path probed before a run (None: a TCP connection is the probe)."""

    NAME: ClassVar[str]
    DESCRIPTION: ClassVar[str] = ""
    TASKS: ClassVar[tuple[str, ...]] = ()
    BATCHES: ClassVar[bool] = True
    STREAMS: ClassVar[bool] = False
    HEALTH: ClassVar[str | None] = None

    def __init__(self, url: str, task: Any, model: str, bundle: Any = None) -> None:
        base, _, fragment = url.partition("#")
        self.url = base.rstrip("/")
        self.fragment = dict(p.partition("=")[::2] for p in fragment.split("&") if p)
        self.task, self.model, self.bundle = task, self.fragment.get("model") or _model_id(model), bundle
        #: fields added to every request's JSON body (a server's own extensions, e.g. the
        #: generation settings `transformers serve` takes as ``generation_config``)
        self.extra: dict[str, Any] = {}
        #: (prompt tokens, completion tokens) of the last answer or stream that reported usage
        self.usage: tuple[int, int] | None = None

    def reference_inputs(self, inputs: Sequence[Any]) -> list[Any] | None:
        """What the reference runner must be given to answer as this service should (None: the
        inputs themselves). A chat API templates its prompt; the reference gets the same text."""
        return None

    def request(self, inputs: Sequence[Any], stream: bool = False) -> tuple[str, bytes]:
        """(path under the URL, JSON body) of one request for `inputs`."""
        raise NotImplementedError

    def parse(self, status: int, body: bytes, n: int) -> list[Any]:
        """The outputs of `n` inputs from an answer; `CodecError` when it is not one."""
        raise NotImplementedError

    def event(self, data: bytes) -> str | None:
        """The text one server-sent event carries (None: an event without a token)."""
        return None

    # helpers
    def _json(self, status: int, body: bytes) -> Any:
        if status != 200:
            raise CodecError(f"status {status}: {body[:200]!r}")
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CodecError(f"malformed response (not JSON: {exc}; body {body[:80]!r})") from None

    def _new_tokens(self) -> int:
        return int(getattr(self.task, "new_tokens", None) or 16)


def _model_id(model: str) -> str:
    return model.split(":", 1)[1] if model.startswith(("hf:", "synthetic:", "packaged:")) else model


def _need(cond: bool, what: str) -> None:
    if not cond:
        raise CodecError(f"malformed response: {what}")


def register_protocol(cls: type[Protocol]) -> type[Protocol]:
    """Register a protocol adapter under its `NAME` (usable as a decorator)."""
    name = getattr(cls, "NAME", None)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"protocol NAME must be 1-32 of a-z 0-9 _ - starting with a letter, got {name!r}")
    _REGISTRY[name] = cls
    return cls


_installed = EntryPoints("benchbed.protocols", register_protocol)


def protocol_names() -> list[str]:
    _installed.load()
    return list(_REGISTRY)


def get_protocol(name: str) -> type[Protocol]:
    """The adapter registered as `name`; a `SpecError` naming the valid ones otherwise."""
    from ..spec import SpecError

    _installed.load()
    if name not in _REGISTRY:
        raise SpecError(f"unknown endpoint protocol {name!r} (valid: {', '.join(protocol_names())})")
    return _REGISTRY[name]


def _label_score(item: Any) -> dict[str, Any]:
    """The top ``{"label", "score"}`` of one text's answer (a dict, or a list of them)."""
    if isinstance(item, list):
        _need(bool(item) and all(isinstance(x, dict) for x in item), "expected a list of {label, score}")
        item = max(item, key=lambda x: x.get("score", float("-inf")))
    _need(isinstance(item, dict) and "label" in item and "score" in item, f"expected {{label, score}}, got {item!r:.80}")
    return {"label": item["label"], "score": float(item["score"])}


@register_protocol
class BenchbedProtocol(Protocol):
    NAME = "benchbed"
    DESCRIPTION = "benchbed's own server (--scenario http, benchbed serve): the runner's outputs unchanged"
    TASKS = ("text-classification", "feature-extraction", "fill-mask", "token-classification", "text-generation",
             "zero-shot-classification")
    HEALTH = "/health"

    def request(self, inputs: Sequence[Any], stream: bool = False) -> tuple[str, bytes]:
        from .codec import encode

        return "/v1/run", json.dumps({"inputs": encode(list(inputs))}).encode()

    def parse(self, status: int, body: bytes, n: int) -> list[Any]:
        from .codec import decode

        data = self._json(status, body)
        _need(isinstance(data, dict) and isinstance(data.get("outputs"), list), "no 'outputs' list")
        out = decode(data["outputs"])
        _need(len(out) == n, f"{len(out)} outputs for {n} inputs")
        return out


@register_protocol
class HfInferenceProtocol(Protocol):
    NAME = "hf-inference"
    DESCRIPTION = "a Hugging Face inference endpoint: {inputs, parameters} in, the pipeline's answer out"
    TASKS = ("text-classification", "feature-extraction", "text-generation")

    def request(self, inputs: Sequence[Any], stream: bool = False) -> tuple[str, bytes]:
        params: dict[str, Any] = {}
        if self.task.name == "text-generation":
            params = {"max_new_tokens": self._new_tokens(), "do_sample": False, "return_full_text": False}
        return "", json.dumps({"inputs": list(inputs), "parameters": params}).encode()

    def parse(self, status: int, body: bytes, n: int) -> list[Any]:
        data = self._json(status, body)
        _need(isinstance(data, list) and len(data) == n, f"expected a list of {n} answers, got {str(data)[:80]}")
        name = self.task.name
        if name == "text-classification":
            return [_label_score(x) for x in data]
        if name == "feature-extraction":
            import torch

            out = []
            for x in data:
                t = torch.tensor(x, dtype=torch.float32)
                out.append(t[0] if t.dim() == 3 else t)
            return out
        texts = []
        for x in data:
            x = x[0] if isinstance(x, list) and x else x
            _need(isinstance(x, dict) and isinstance(x.get("generated_text"), str), "expected generated_text")
            texts.append(x["generated_text"])
        return texts


@register_protocol
class OpenAIProtocol(Protocol):
    NAME = "openai"
    DESCRIPTION = "an OpenAI-compatible completions API (vLLM, TGI /v1); streams tokens"
    TASKS = ("text-generation",)
    STREAMS = True
    HEALTH = "/models"

    def request(self, inputs: Sequence[Any], stream: bool = False) -> tuple[str, bytes]:
        body = {"model": self.model, "prompt": list(inputs) if len(inputs) > 1 else inputs[0],
                "max_tokens": self._new_tokens(), "temperature": 0, "stream": stream, **self.extra}
        return "/completions", json.dumps(body).encode()

    def parse(self, status: int, body: bytes, n: int) -> list[Any]:
        data = self._json(status, body)
        choices = data.get("choices") if isinstance(data, dict) else None
        _need(isinstance(choices, list) and len(choices) == n, f"expected {n} choices")
        choices = sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0)
        _need(all(isinstance(c, dict) and isinstance(c.get(self._TEXT), str) for c in choices),
              f"a choice without {self._TEXT}")
        self._note_usage(data)
        return [c[self._TEXT] for c in choices]

    #: where a choice keeps its text (completions: ``text``)
    _TEXT = "text"

    def event(self, data: bytes) -> str | None:
        if data == b"[DONE]":
            return None
        try:
            obj = json.loads(data)
            if "error" in obj:
                raise CodecError(f"the stream reported an error: {str(obj['error'])[:200]}")
            choices = obj.get("choices")
            if not choices:  # the usage-only chunk that ends a stream
                self._note_usage(obj)
                return None
            self._note_usage(obj)
            return self._event_text(choices[0]) or None
        except (json.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise CodecError(f"malformed stream event ({type(exc).__name__}: {exc}): {data[:80]!r}") from None

    def _event_text(self, choice: dict[str, Any]) -> str | None:
        return choice.get("text")

    def _note_usage(self, obj: Any) -> None:
        usage = obj.get("usage") if isinstance(obj, dict) else None
        if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
            self.usage = (int(usage.get("prompt_tokens") or 0), int(usage["completion_tokens"]))


@register_protocol
class OpenAIChatProtocol(OpenAIProtocol):
    NAME = "openai-chat"
    DESCRIPTION = ("an OpenAI-compatible chat API (/v1/chat/completions: vLLM, TGI, transformers serve); the prompt "
                   "is one user message put through the model's chat template; streams delta.content")
    BATCHES = False  # one conversation a request
    _TEXT = "content"

    def request(self, inputs: Sequence[Any], stream: bool = False) -> tuple[str, bytes]:
        body = {"model": self.model, "messages": [{"role": "user", "content": str(inputs[0])}],
                "max_tokens": self._new_tokens(), "temperature": 0, "stream": stream, **self.extra}
        return "/chat/completions", json.dumps(body).encode()

    def parse(self, status: int, body: bytes, n: int) -> list[Any]:
        data = self._json(status, body)
        choices = data.get("choices") if isinstance(data, dict) else None
        _need(isinstance(choices, list) and len(choices) == n, f"expected {n} choices")
        messages = [c.get("message") if isinstance(c, dict) else None for c in choices]
        _need(all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages),
              "a choice without message.content")
        self._note_usage(data)
        return [m["content"] for m in messages]

    def _event_text(self, choice: dict[str, Any]) -> str | None:
        delta = choice.get("delta")
        if delta is None:
            return None
        if not isinstance(delta, dict):
            raise TypeError(f"delta is {type(delta).__name__}, not an object")
        return delta.get("content")

    def reference_inputs(self, inputs: Sequence[Any]) -> list[Any] | None:
        """Each prompt as the server sees it: one user message through the model's chat template,
        with the assistant's turn opened (`tasks.text_generation.Templated`: already holds its
        special tokens)."""
        from ..tasks.text_generation import Templated

        tok = getattr(self.bundle, "tokenizer", None)
        if tok is None or not getattr(tok, "chat_template", None):
            raise CodecError(f"{self.model} has no chat template, so what the server would be given is unknown")
        return [Templated(tok.apply_chat_template([{"role": "user", "content": str(x)}], tokenize=False,
                                                  add_generation_prompt=True)) for x in inputs]


@register_protocol
class TgiProtocol(Protocol):
    NAME = "tgi"
    DESCRIPTION = "text-generation-inference: /generate, /generate_stream"
    TASKS = ("text-generation",)
    BATCHES = False
    STREAMS = True
    HEALTH = "/health"

    def request(self, inputs: Sequence[Any], stream: bool = False) -> tuple[str, bytes]:
        body = {"inputs": inputs[0], "parameters": {"max_new_tokens": self._new_tokens(), "do_sample": False}}
        return ("/generate_stream" if stream else "/generate"), json.dumps(body).encode()

    def parse(self, status: int, body: bytes, n: int) -> list[Any]:
        data = self._json(status, body)
        if isinstance(data, list) and len(data) == 1:
            data = data[0]
        _need(isinstance(data, dict) and isinstance(data.get("generated_text"), str), "expected generated_text")
        return [data["generated_text"]]

    def event(self, data: bytes) -> str | None:
        try:
            token = json.loads(data)["token"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise CodecError(f"malformed stream event ({exc}): {data[:80]!r}") from None
        return None if token.get("special") else token.get("text", "")


@register_protocol
class KServeV2Protocol(Protocol):
    NAME = "kserve-v2"
    DESCRIPTION = "KServe / Triton open inference protocol v2: BYTES in, tensors out"
    TASKS = ("text-classification", "feature-extraction")
    HEALTH = "/ready"

    def request(self, inputs: Sequence[Any], stream: bool = False) -> tuple[str, bytes]:
        body = {"inputs": [{"name": "text", "shape": [len(inputs)], "datatype": "BYTES", "data": list(inputs)}]}
        return "/infer", json.dumps(body).encode()

    def parse(self, status: int, body: bytes, n: int) -> list[Any]:
        import torch

        data = self._json(status, body)
        outputs = data.get("outputs") if isinstance(data, dict) else None
        _need(isinstance(outputs, list) and all(isinstance(o, dict) and "name" in o for o in outputs),
              "no 'outputs' list of named tensors")
        by = {o["name"]: o for o in outputs}

        def tensor(o: dict[str, Any]) -> Any:
            try:
                return torch.tensor(o["data"], dtype=torch.float32).reshape(o["shape"])
            except (KeyError, TypeError, RuntimeError, ValueError) as exc:
                raise CodecError(f"malformed response: output {o.get('name')!r}: {exc}") from None

        if self.task.name == "feature-extraction":
            _need("last_hidden_state" in by, f"no last_hidden_state output (got {', '.join(by)})")
            hidden = tensor(by["last_hidden_state"])
            _need(hidden.dim() == 3 and hidden.shape[0] == n, f"last_hidden_state of shape {list(hidden.shape)}")
            return list(hidden.unbind(0))
        if "label" in by and "score" in by:
            labels, scores = by["label"].get("data"), by["score"].get("data")
            _need(isinstance(labels, list) and isinstance(scores, list) and len(labels) == len(scores) == n,
                  "label and score outputs of another length")
            return [{"label": str(a), "score": float(b)} for a, b in zip(labels, scores)]
        _need("logits" in by, f"no label/score or logits outputs (got {', '.join(by)})")
        logits = tensor(by["logits"])
        _need(logits.dim() == 2 and logits.shape[0] == n, f"logits of shape {list(logits.shape)}")
        config = getattr(getattr(self.bundle, "module", None), "config", None)
        id2label = getattr(config, "id2label", None) or {}
        best, idx = torch.softmax(logits, dim=-1).max(dim=-1)
        return [{"label": id2label.get(i, f"LABEL_{i}"), "score": s} for i, s in zip(idx.tolist(), best.tolist())]
