"""The ``endpoint:NAME`` runner: a service benchbed did not start, called with the cell's inputs
through its protocol adapter (`protocols`), so its answers are compared with the reference's and
its calls timed in any scenario like a local runner. Generation streams where the protocol can
(time to first token, time per token and the gaps between tokens come from the stream)."""

from __future__ import annotations

from typing import Any, ClassVar

from ..runners.base import Runner, RunnerUnavailable
from .client import HTTP_TIMEOUT_S, Connection, RequestFailed, Target
from .protocols import CodecError, get_protocol

__all__ = ["EndpointRunner", "local_server_pids"]


def local_server_pids(host: str, port: int) -> tuple[int, ...]:
    """The processes listening on a loopback `port`, and their descendants (its workers); empty
    for another host or where the socket table cannot be read."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        return ()
    try:
        import psutil

        owners = {c.pid for c in psutil.net_connections(kind="tcp")
                  if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid}
        out = set(owners)
        for pid in owners:
            out |= {c.pid for c in psutil.Process(pid).children(recursive=True)}
        return tuple(sorted(out))
    except Exception:  # no permission to read other processes' sockets: nothing is excused
        return ()


class EndpointRunner(Runner):
    """Calls a service: one request per call when the protocol takes a batch, else one per input."""

    NAME: ClassVar[str] = "endpoint"
    DESCRIPTION: ClassVar[str] = "a running HTTP service (--endpoint NAME=URL), through its protocol adapter"
    TORCH_ALLOCATOR: ClassVar[bool] = False
    #: Its work runs elsewhere: phases, FLOPs and memory of this process say nothing about it.
    LOCAL: ClassVar[bool] = False

    def __init__(self, case: Any, task: Any, bundle: Any, inputs: list[Any], sync: Any, endpoint: Any,
                 timeout_s: float = HTTP_TIMEOUT_S, **kwargs: Any) -> None:
        super().__init__(case, task, bundle, inputs, lambda: None, **kwargs)
        self.endpoint = endpoint
        cls = get_protocol(endpoint.protocol)
        if task.name not in cls.TASKS:
            raise RunnerUnavailable(f"protocol {endpoint.protocol} does not serve {task.name} "
                                    f"(serves: {', '.join(cls.TASKS)})")
        self.protocol = cls(endpoint.url, task, case.model, bundle)
        self.conn = Connection(self.protocol.url, timeout_s)
        #: per streamed call, the gaps between its tokens (inter-token latency)
        self.gaps: list[float] = []
        #: per answer, the completion tokens the service reported (``usage``) and the text pieces
        #: its stream carried (the client's count)
        self.usage_tokens: list[int] = []
        self.client_tokens: list[int] = []

    def state_bytes(self) -> int | None:
        return None

    def reference_inputs(self, inputs: list[Any]) -> list[Any] | None:
        """What the reference must answer for parity with this service (a chat API templates its
        prompt); None: `inputs` themselves."""
        return self.protocol.reference_inputs(inputs)

    def _stream(self) -> bool:
        return self.streamer is not None and self.protocol.STREAMS and getattr(self.task, "streams", False)

    def _one(self, inputs: list[Any]) -> list[Any]:
        if self._stream():
            return [self._streamed(inputs)] if len(inputs) == 1 or not self.protocol.BATCHES else \
                [self._streamed([x]) for x in inputs]
        path, body = self.protocol.request(inputs)
        status, answer, _ = self.conn.request("POST", path, body, (("content-type", "application/json"),))
        self.protocol.usage = None
        try:
            out = self.protocol.parse(status, answer, len(inputs))
        except CodecError as exc:
            raise RequestFailed(f"{self.endpoint.runner}: {exc}") from None
        if self.protocol.usage is not None:
            self.usage_tokens.append(self.protocol.usage[1])
        return out

    def _streamed(self, inputs: list[Any]) -> str:
        path, body = self.protocol.request(inputs, stream=True)
        parts: list[str] = []
        stamps: list[float] = []
        self.streamer.put(None)  # the prompt: the streamer counts tokens after it

        def on_event(data: bytes) -> None:
            text = self.protocol.event(data)
            if text is not None:
                parts.append(text)
                stamps.append(self.clock())
                self.streamer.put(text)

        self.protocol.usage = None
        try:
            self.conn.stream(path, body, (("content-type", "application/json"),), on_event)
        except CodecError as exc:
            self.conn.close()  # the stream was left half read
            raise RequestFailed(f"{self.endpoint.runner}: {exc}") from None
        if not parts:
            raise RequestFailed(f"{self.endpoint.runner}: the stream ended without a token")
        self.gaps.extend(b - a for a, b in zip(stamps, stamps[1:]))
        self.client_tokens.append(len(parts))
        if self.protocol.usage is not None:
            self.usage_tokens.append(self.protocol.usage[1])
        return "".join(parts)

    def service_columns(self) -> dict[str, Any]:
        """The record's columns of what the service itself said: the gaps between streamed tokens
        (inter-token latency), and the completion tokens it reported beside the client's count."""
        import numpy as np

        out: dict[str, Any] = {}
        if self.gaps:
            out.update(itl_median_s=float(np.median(self.gaps)), itl_p99_s=float(np.percentile(self.gaps, 99)))
        if self.usage_tokens:
            out["usage_completion_tokens"] = float(np.median(self.usage_tokens))
        if self.client_tokens:
            out["client_stream_tokens"] = float(np.median(self.client_tokens))
        return out

    def __call__(self) -> list[Any]:
        inputs = list(self.inputs)
        if self.protocol.BATCHES and not self._stream():
            return self._one(inputs)
        out: list[Any] = []
        for x in inputs:
            out += self._one([x])
        return out

    def helpers(self) -> tuple[int, ...]:
        """Where the endpoint is on this machine (loopback), the processes serving it: their CPU
        time is the work measured, not interference."""
        return local_server_pids(self.conn.host, self.conn.port)

    def target(self, example: Any) -> Target:
        """The open-loop client's view of this endpoint (request i carries ``example(i)``)."""
        proto = self.protocol
        stream = proto.STREAMS and getattr(self.task, "streams", False)  # under load, generation streams
        path = proto.request([example(0)], stream=stream)[0]

        def body(i: int) -> bytes:
            return proto.request([example(i)], stream=stream)[1]

        def parse(status: int, answer: bytes, headers: Any) -> Any:
            return proto.parse(status, answer, 1)

        return Target(url=proto.url, path=path, body=body, parse=parse, stream=stream, parse_event=proto.event)

    def close(self) -> None:
        self.conn.close()
