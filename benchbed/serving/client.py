"""The client side of serving: single calls (parity, and latency blocks against an endpoint) on a
kept-alive connection, and an open-loop load over real sockets (aiohttp).

The load is the server scenario's: arrival times drawn before it starts (seeded Poisson at the
offered rate), each request sent at its time whatever the earlier ones are doing, so a slow server
meets the same arrivals as a fast one. A request's latency runs from its scheduled arrival to its
last byte: a client that falls behind its schedule is counted, never hidden. Every request ends
one way: answered, an error (a refused connection, a status other than 200, a malformed answer,
no answer within the hard bound) with the first message kept, or timed out against ``timeout_s``
(the server scenario's request deadline, part of the SLO, not an error). The load stops by itself
after its arrivals, within the hard bound.
"""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..workloads.server import ServedLoad

__all__ = ["Target", "HttpLoad", "RequestFailed", "drive", "Connection", "HTTP_TIMEOUT_S", "HTTP_MAX_BODY_BYTES",
           "free_of_listeners"]

#: The hard bound on one request (``--http-timeout``): a hung server costs at most this. It is a
#: total deadline on the whole exchange (connect, headers, body or stream), not a bound on each
#: read: a server that trickles a byte a second is cut off at it like a silent one.
HTTP_TIMEOUT_S = 30.0
#: The most one answer may hold (an endless body is cut off here, not read into memory).
HTTP_MAX_BODY_BYTES = 64 << 20


class RequestFailed(RuntimeError):
    """A request that got no usable answer (the message says which and why)."""


@dataclass(frozen=True)
class Target:
    """Where requests go and what they look like: `url` (scheme, host, port), `path`, the body of
    request i (`body(i)`: bytes), and how an answer's body becomes outputs (`parse(status, body,
    headers)`, raising on a malformed one). `stream`: the answer is server-sent events, read by
    `parse_event(data) -> token text or None`."""

    url: str
    path: str
    body: Callable[[int], bytes]
    parse: Callable[[int, bytes, Any], Any]
    stream: bool = False
    parse_event: Callable[[bytes], Any] | None = None
    headers: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)


@dataclass
class HttpLoad(ServedLoad):
    """One load level over HTTP: the server scenario's `ServedLoad` (latencies from the scheduled
    arrival, the client's wait for a connection slot as ``waits``, the server's service time from
    the ``x-benchbed-timing`` header where the server is benchbed's), plus the worker's queue, the
    serialisation, the client's decode time, the gaps between streamed tokens, how far the client
    fell behind its schedule, and the requests that got no usable answer."""

    server_queue: list[float] = field(default_factory=list)
    serialize: list[float] = field(default_factory=list)
    client_decode: list[float] = field(default_factory=list)
    itl: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None

    def add(self, other: "HttpLoad") -> None:
        super().add(other)
        for name in ("server_queue", "serialize", "client_decode", "itl", "lags"):
            getattr(self, name).extend(getattr(other, name))
        self.errors += other.errors
        self.first_error = self.first_error or other.first_error


class _Watchdog:
    """Shuts a socket down when its exchange's deadline passes: one thread per connection, armed
    and disarmed per request (a condition variable, microseconds), so that the total deadline
    holds however the server paces its bytes."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._deadline: float | None = None
        self._sock: socket.socket | None = None
        self._closed = False
        self.fired = False
        self._thread: threading.Thread | None = None

    def arm(self, sock: socket.socket, seconds: float) -> None:
        with self._cv:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="benchbed-http-deadline", daemon=True)
                self._thread.start()
            self._sock, self._deadline, self.fired = sock, time.monotonic() + seconds, False
            self._cv.notify()

    def disarm(self) -> None:
        with self._cv:
            self._sock, self._deadline = None, None

    def close(self) -> None:
        with self._cv:
            self._closed, self._sock, self._deadline = True, None, None
            self._cv.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._closed = False

    def _run(self) -> None:
        with self._cv:
            while not self._closed:
                if self._deadline is None:
                    self._cv.wait()
                    continue
                left = self._deadline - time.monotonic()
                if left > 0:
                    self._cv.wait(left)
                    continue
                self.fired = True
                try:
                    if self._sock is not None:
                        self._sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self._sock, self._deadline = None, None


class Connection:
    """Synchronous calls on one kept-alive connection (reconnecting once when the server closed it),
    each exchange within a total deadline (`timeout_s`) and an answer within `max_body` bytes."""

    def __init__(self, url: str, timeout_s: float = HTTP_TIMEOUT_S, max_body: int = HTTP_MAX_BODY_BYTES) -> None:
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise RequestFailed(f"{url!r} is not a URL ({exc})") from None
        self.https = parts.scheme == "https"
        self.host, self.port = parts.hostname or "127.0.0.1", port or (443 if self.https else 80)
        self.base = parts.path.rstrip("/")
        self.timeout_s = timeout_s
        self.max_body = max_body
        self.conn: http.client.HTTPConnection | None = None
        self._watchdog = _Watchdog()

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=self.timeout_s)

    def _begin(self, method: str, path: str, body: bytes | None, headers: Sequence[tuple[str, str]]) \
            -> http.client.HTTPResponse:
        """Connect if needed, arm the deadline, send, and read the status line and headers."""
        if self.conn is None:
            self.conn = self._connect()
        t0 = time.monotonic()
        if self.conn.sock is None:
            self.conn.connect()
        assert self.conn.sock is not None
        self._watchdog.arm(self.conn.sock, max(0.001, self.timeout_s - (time.monotonic() - t0)))
        self.conn.request(method, self.base + path, body=body, headers=dict(headers))
        return self.conn.getresponse()

    def _read_body(self, resp: http.client.HTTPResponse, what: str) -> bytes:
        chunks, size = [], 0
        while True:
            chunk = resp.read(1 << 16)
            if not chunk:
                if self._watchdog.fired:  # the deadline shut the socket: what came is not the answer
                    raise TimeoutError
                if resp.length:  # the server closed before its content-length
                    raise http.client.IncompleteRead(b"".join(chunks), resp.length)
                return b"".join(chunks)
            size += len(chunk)
            if size > self.max_body:
                raise _TooLarge(f"{what}: the answer is larger than {self.max_body / 2**20:g} MiB (cut off)")
            chunks.append(chunk)

    def _failure(self, what: str, exc: BaseException) -> RequestFailed:
        """The one-line reason an exchange failed; the connection is closed."""
        fired = self._watchdog.fired
        self.close()
        if fired or isinstance(exc, TimeoutError):
            return RequestFailed(f"{what}: no complete answer within {self.timeout_s:g}s (--http-timeout)")
        if isinstance(exc, _TooLarge):
            return RequestFailed(str(exc))
        if isinstance(exc, http.client.HTTPException) and not isinstance(exc, http.client.RemoteDisconnected):
            return RequestFailed(f"{what}: not an HTTP answer ({type(exc).__name__}: {str(exc)[:120]!r})")
        return RequestFailed(f"{what}: {exc}")

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: Sequence[tuple[str, str]] = ()) -> tuple[int, bytes, Any]:
        """(status, body, headers); `RequestFailed` when no usable answer came within the deadline."""
        what = f"{method} {self.base + path}"
        for attempt in (0, 1):
            try:
                resp = self._begin(method, path, body, headers)
                answer = self._read_body(resp, what)
                self._watchdog.disarm()
                return resp.status, answer, resp.headers
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                if self._watchdog.fired or attempt:
                    raise self._failure(what, exc) from None
                self.close()  # a kept-alive connection the server closed: once more on a new one
            except (http.client.HTTPException, OSError, _TooLarge) as exc:
                raise self._failure(what, exc) from None
        raise AssertionError("unreachable")

    def stream(self, path: str, body: bytes, headers: Sequence[tuple[str, str]], on_event: Callable[[bytes], None]) \
            -> int:
        """POST and hand each server-sent event's data to `on_event`; returns the status. The whole
        stream is within the deadline and `max_body` bytes."""
        what = f"POST {self.base + path}"
        try:
            try:
                resp = self._begin("POST", path, body, headers)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                if self._watchdog.fired:
                    raise
                self.close()  # a kept-alive connection the server closed (no event read yet): a new one
                resp = self._begin("POST", path, body, headers)
            if resp.status != 200:
                raise RequestFailed(f"{what}: status {resp.status}: {resp.read(200)!r}")
            size = 0
            while True:
                line = resp.readline(1 << 16)
                if not line:
                    if self._watchdog.fired:
                        raise TimeoutError
                    break
                size += len(line)
                if size > self.max_body:
                    raise _TooLarge(f"{what}: the stream is larger than {self.max_body / 2**20:g} MiB (cut off)")
                line = line.strip()
                if line.startswith(b"data:"):
                    on_event(line[5:].strip())
            self._watchdog.disarm()
            return resp.status
        except RequestFailed:
            self.close()
            raise
        except (http.client.HTTPException, OSError, _TooLarge) as exc:
            raise self._failure(what, exc) from None

    def close(self) -> None:
        self._watchdog.disarm()
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def __del__(self) -> None:
        watchdog = getattr(self, "_watchdog", None)
        if watchdog is not None:
            watchdog.close()


class _TooLarge(Exception):
    """An answer past the body cap."""


def drive(target: Target, arrivals: Sequence[float], hard_timeout_s: float = HTTP_TIMEOUT_S,
          deadline_s: float | None = None, max_in_flight: int = 64) -> HttpLoad:
    """Send request i at ``arrivals[i]`` seconds from the start; return what happened."""
    return asyncio.run(_drive(target, list(arrivals), hard_timeout_s, deadline_s, max_in_flight))


async def _drive(target: Target, arrivals: list[float], hard_timeout_s: float, deadline_s: float | None,
                 max_in_flight: int) -> HttpLoad:
    import aiohttp

    from .host import SERVICE_HEADER, parse_timing

    load = HttpLoad(offered=len(arrivals))
    bodies = [target.body(i) for i in range(len(arrivals))]  # encoded before the clock starts
    url = target.url.rstrip("/") + target.path
    headers = dict(target.headers)
    timeout = aiohttp.ClientTimeout(total=hard_timeout_s)
    limit = asyncio.Semaphore(max(1, max_in_flight))
    done_at: list[float] = []

    async def one(session: Any, i: int, t0: float) -> None:
        due = t0 + arrivals[i]
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        async with limit:
            start = time.perf_counter()
            load.lags.append(start - due)
            try:
                async with session.post(url, data=bodies[i], headers=headers, timeout=timeout) as resp:
                    if target.stream:
                        stamps: list[float] = []
                        if resp.status != 200:
                            raise RequestFailed(f"status {resp.status}: {(await resp.read())[:200]!r}")
                        size = 0
                        async for line in resp.content:
                            size += len(line)
                            if size > HTTP_MAX_BODY_BYTES:
                                raise RequestFailed(f"the stream is larger than {HTTP_MAX_BODY_BYTES >> 20} MiB "
                                                    "(cut off)")
                            line = line.strip()
                            if line.startswith(b"data:") and target.parse_event is not None:
                                if target.parse_event(line[5:].strip()) is not None:
                                    stamps.append(time.perf_counter())
                        end = time.perf_counter()
                        if not stamps:
                            raise RequestFailed("the stream ended without a token")
                        load.ttft.append(stamps[0] - due)
                        gaps = [b - a for a, b in zip(stamps, stamps[1:])]
                        load.itl.extend(gaps)
                        load.tpot.append((stamps[-1] - stamps[0]) / len(gaps) if gaps else 0.0)
                    else:
                        body = await _read_capped(resp)
                        end = time.perf_counter()
                        t1 = time.perf_counter()
                        target.parse(resp.status, body, resp.headers)
                        load.client_decode.append(time.perf_counter() - t1)
                        timing = parse_timing(resp.headers.get(SERVICE_HEADER))
                        if "service" in timing:
                            load.service.append(timing["service"])
                            load.server_queue.append(timing.get("queue", 0.0))
                            load.serialize.append(timing.get("decode", 0.0) + timing.get("encode", 0.0)
                                                  + load.client_decode[-1])
            except asyncio.TimeoutError:
                _error(load, f"request {i}: no answer within {hard_timeout_s:g}s (--http-timeout)")
                return
            except (aiohttp.ClientError, RequestFailed, ValueError, KeyError, TypeError, IndexError) as exc:
                _error(load, f"request {i}: {type(exc).__name__}: {str(exc)[:300]}")
                return
            latency = end - due
            if deadline_s is not None and latency > deadline_s:
                load.timed_out += 1
                return
            load.latencies.append(latency)
            load.waits.append(start - due)
            load.batch_sizes.append(1)
            done_at.append(end - t0)

    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        t0 = time.perf_counter() + 0.05  # every task is scheduled before the first arrival
        await asyncio.gather(*(one(session, i, t0) for i in range(len(arrivals))))
    if arrivals:
        last = max(done_at) if done_at else arrivals[-1]
        load.duration_s = max(last, arrivals[-1]) - arrivals[0]
    return load


async def _read_capped(resp: Any) -> bytes:
    """An answer's body, cut off (`RequestFailed`) past `HTTP_MAX_BODY_BYTES`."""
    chunks, size = [], 0
    async for chunk in resp.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > HTTP_MAX_BODY_BYTES:
            raise RequestFailed(f"the answer is larger than {HTTP_MAX_BODY_BYTES >> 20} MiB (cut off)")
        chunks.append(chunk)
    return b"".join(chunks)


def _error(load: HttpLoad, message: str) -> None:
    load.errors += 1
    if load.first_error is None:
        load.first_error = message


def free_of_listeners(pids: Sequence[int]) -> list[str]:
    """The TCP sockets still listening in any of `pids` (``host:port (pid)``): empty when clean."""
    import psutil

    out = []
    for pid in pids:
        try:
            conns = psutil.Process(pid).net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        out += [f"{c.laddr.ip}:{c.laddr.port} ({pid})" for c in conns if c.status == psutil.CONN_LISTEN]
    return out
