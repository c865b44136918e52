"""Every HTTP exchange is bounded (issue #30): a total deadline however the server paces its bytes,
a cap on what an answer may hold, and one line for a server that does not speak HTTP. The servers
are real sockets on loopback that misbehave on purpose: a trickle, an endless body, an endless
stream, garbage."""

from __future__ import annotations

import socket
import threading
import time

import psutil
import pytest

from benchbed.endpoints import Endpoint, probe
from benchbed.serving.client import HTTP_MAX_BODY_BYTES, Connection, RequestFailed
from benchbed.spec import SpecError

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"


def _serve(behaviour):
    """A loopback server answering every connection with `behaviour(conn)` until the test ends."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    stop = threading.Event()

    def loop():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            threading.Thread(target=_handle, args=(conn, behaviour, stop), daemon=True).start()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return f"http://127.0.0.1:{srv.getsockname()[1]}", srv, stop, t


def _handle(conn, behaviour, stop):
    try:
        conn.recv(65536)
        behaviour(conn, stop)
    except OSError:
        pass
    finally:
        conn.close()


def trickle(conn, stop):
    conn.sendall(HEAD + b"content-length: 1000\r\n\r\n")
    while not stop.is_set():
        conn.sendall(b"x")
        time.sleep(0.3)


def trickle_headers(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    while not stop.is_set():
        conn.sendall(b"x-slow: 1\r\n")
        time.sleep(0.3)


def endless(conn, stop):
    conn.sendall(HEAD + b"transfer-encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n" % (1 << 16) + b"y" * (1 << 16) + b"\r\n"
    while not stop.is_set():
        conn.sendall(chunk)


def endless_stream(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n")
    while not stop.is_set():
        conn.sendall(b"data: {\"token\": \"a\"}\n\n" * 1000)


def garbage(conn, stop):
    conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")


@pytest.fixture
def server(request):
    url, srv, stop, t = _serve(request.param)
    yield url
    stop.set()
    t.join(timeout=5)
    srv.close()


@pytest.mark.parametrize("server", [trickle, trickle_headers], indirect=True)
def test_a_trickling_server_is_cut_off_at_the_total_deadline(server):
    conn = Connection(server, timeout_s=1.5)
    t0 = time.monotonic()
    with pytest.raises(RequestFailed, match=r"no complete answer within 1\.5s"):
        conn.request("GET", "/")
    assert time.monotonic() - t0 < 1.5 + 1.0
    conn.close()


@pytest.mark.parametrize("server", [endless], indirect=True)
def test_an_endless_body_is_cut_off_at_the_cap_within_the_memory_bound(server):
    rss = psutil.Process().memory_info().rss
    conn = Connection(server, timeout_s=20)
    t0 = time.monotonic()
    with pytest.raises(RequestFailed, match="larger than 64 MiB"):
        conn.request("GET", "/")
    assert time.monotonic() - t0 < 20 + 1
    assert psutil.Process().memory_info().rss - rss < HTTP_MAX_BODY_BYTES + (50 << 20)
    small = Connection(server, timeout_s=20, max_body=1 << 20)
    with pytest.raises(RequestFailed, match="larger than 1 MiB"):
        small.request("GET", "/")


@pytest.mark.parametrize("server", [endless_stream], indirect=True)
def test_an_endless_stream_ends_at_its_deadline_or_cap(server):
    conn = Connection(server, timeout_s=2, max_body=256 << 20)
    events = [0]

    def count(_):
        events[0] += 1

    t0 = time.monotonic()
    with pytest.raises(RequestFailed, match=r"within 2s|larger than"):
        conn.stream("/", b"{}", (), count)
    assert time.monotonic() - t0 < 2 + 1 and events[0] > 0


@pytest.mark.parametrize("server", [garbage], indirect=True)
def test_a_server_that_does_not_speak_http_is_one_line(server):
    with pytest.raises(RequestFailed, match="not an HTTP answer"):
        Connection(server, timeout_s=3).request("GET", "/health")
    with pytest.raises(SpecError, match="unreachable.*not an HTTP answer"):
        probe(Endpoint("x", server, "openai"), timeout_s=3)


def test_a_url_that_is_not_one_is_one_line():
    with pytest.raises(RequestFailed, match="is not a URL"):
        Connection("http://[::1")


def test_a_kept_alive_connection_still_works_after_the_deadline_machinery():
    """The watchdog leaves good exchanges alone: 50 requests on one connection to a real server."""
    def ok(conn, stop):
        while not stop.is_set():
            conn.sendall(HEAD + b"content-length: 2\r\n\r\n{}")
            if not conn.recv(65536):
                return

    url, srv, stop, t = _serve(ok)
    try:
        conn = Connection(url, timeout_s=0.5)
        for _ in range(50):
            status, body, _ = conn.request("GET", "/")
            assert status == 200 and body == b"{}"
        time.sleep(0.7)  # past the deadline of the last one: nothing fires on an idle connection
        assert conn.request("GET", "/")[1] == b"{}"
        conn.close()
    finally:
        stop.set()
        t.join(timeout=5)
        srv.close()


def one_stream_then_close(conn, stop):
    body = b"data: {\"token\": \"a\"}\n\ndata: [DONE]\n\n"
    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d\r\n\r\n" % len(body) + body)


@pytest.mark.parametrize("server", [one_stream_then_close], indirect=True)
def test_a_stream_on_a_kept_alive_connection_the_server_closed_goes_on_a_new_one(server):
    """Servers close idle kept-alive connections (uvicorn after 5 s): the next stream must not fail
    with a broken pipe, as a request does not (found with transformers serve, issue #34)."""
    conn = Connection(server, timeout_s=5)
    for _ in range(3):
        events = []
        assert conn.stream("/", b"{}", (), events.append) == 200
        assert events == [b'{"token": "a"}', b"[DONE]"]
        time.sleep(0.2)  # the server has closed this connection by now
    conn.close()
