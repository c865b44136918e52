"""Endpoints: services benchbed did not start, measured as runners. ``--endpoint NAME=URL`` (with
``--endpoint-protocol``) adds the runner ``endpoint:NAME`` to every cell; ``--reference
endpoint:NAME`` makes one the reference. Checked before anything runs: the URL's scheme (http or
https), the protocol's name, and that something answers there (`probe`)."""

from __future__ import annotations

import re
import urllib.parse
from .display import clip
from .spec import ENDPOINT_PREFIX, Endpoint, SpecError

__all__ = ["Endpoint", "ENDPOINT_PREFIX", "parse_endpoint", "endpoint_name", "probe"]

_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")


def parse_endpoint(text: str, protocol: str) -> Endpoint:
    """``NAME=URL`` checked (one line naming what is wrong)."""
    from .serving.protocols import get_protocol

    name, sep, url = str(text).partition("=")
    name, url = name.strip(), url.strip()
    if not sep or not name or not url:
        raise SpecError(f"--endpoint must be NAME=URL (e.g. prod=http://127.0.0.1:8000), "
                        f"got {clip(repr(str(text)), 200)}")
    if not _NAME.fullmatch(name):
        raise SpecError(f"--endpoint name must be 1-32 of a-z 0-9 _ - starting with a letter, "
                        f"got {clip(repr(name), 80)}")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise SpecError(f"--endpoint {name}: the URL holds a space or a control character: {clip(repr(url), 200)}")
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:
        raise SpecError(f"--endpoint {name}: {clip(repr(url), 200)} is not a URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise SpecError(f"--endpoint {name}: the URL's scheme must be http or https (valid: http, https), "
                        f"got {clip(repr(parts.scheme or 'none'), 40)} in {clip(repr(url), 200)}")
    try:
        port = parts.port
    except ValueError:
        raise SpecError(f"--endpoint {name}: the URL has a bad port: {clip(repr(url), 200)}") from None
    if not parts.hostname:
        raise SpecError(f"--endpoint {name}: the URL has no host: {clip(repr(url), 200)}")
    del port
    get_protocol(protocol)
    return Endpoint(name, url, protocol)


def endpoint_name(runner: str) -> str | None:
    """The endpoint a runner name ``endpoint:NAME`` measures (None for other runners)."""
    return runner[len(ENDPOINT_PREFIX):] if runner.startswith(ENDPOINT_PREFIX) else None


def probe(endpoint: Endpoint, timeout_s: float = 5.0) -> None:
    """A `SpecError` unless the endpoint answers: a TCP connection, then the protocol's health
    path where it has one (any HTTP answer will do: it proves a server speaks HTTP there)."""
    from .serving.client import Connection, RequestFailed
    from .serving.protocols import get_protocol

    health = get_protocol(endpoint.protocol).HEALTH
    conn = Connection(endpoint.url.partition("#")[0], timeout_s=timeout_s)
    try:
        if health is None:
            import socket

            with socket.create_connection((conn.host, conn.port), timeout=timeout_s):
                return
        conn.request("GET", health)
    except RequestFailed as exc:
        raise SpecError(f"--endpoint {endpoint.name}: {endpoint.url} is unreachable ({exc})") from None
    except OSError as exc:
        raise SpecError(f"--endpoint {endpoint.name}: {endpoint.url} is unreachable ({exc})") from None
    finally:
        conn.close()
