"""Property tests of the client-side framing code, in memory (fake transports, real parser).

Whatever way the client's bytes are split into reads, the backend receives the same requests
(bodies forwarded as received, trailers kept) and the client gets the responses in order.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import httptools
import pytest
import uvloop
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from haloy.proxy.client import ClientProtocol
from haloy.proxy.service import ProxyService
from haloy.proxy.upstream import UpstreamProtocol
from haloy.wire.snapshot import parse_snapshot


class FakeTransport:
    """Records writes; flow-control calls are accepted and ignored."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        self.data += data

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("192.0.2.7", 40000) if name == "peername" else default

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def can_write_eof(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True

    abort = close


class Parsed:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def on_message_begin(self) -> None:
        self.messages.append({"url": b"", "headers": [], "body": b""})

    def on_url(self, url: bytes) -> None:
        self.messages[-1]["url"] += url

    def on_header(self, n: bytes, v: bytes) -> None:
        self.messages[-1]["headers"].append((n.lower(), v))

    def on_body(self, b: bytes) -> None:
        self.messages[-1]["body"] += b


@pytest.fixture(scope="module")
def loop() -> Iterator[Any]:
    lp = uvloop.new_event_loop()
    yield lp
    lp.close()


def _wire(body: bytes, chunked: bool, trailer: bool, path: str) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: app.test\r\n".encode()
    if not chunked:
        return head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    parts = [body[i : i + 7] for i in range(0, len(body), 7)]
    chunks = b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in parts)
    return head + b"Transfer-Encoding: chunked\r\n\r\n" + chunks + (
        b"0\r\nX-T: 1\r\n\r\n" if trailer else b"0\r\n\r\n"
    )


RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def _service(loop: Any) -> ProxyService:
    """A service routing app.test to one backend."""
    svc = ProxyService(loop)
    svc.put_snapshot(parse_snapshot({"routes": [{"app": "a", "domain": "app.test", "backends": [
        {"address": "127.0.0.1", "port": 1}]}]}))
    return svc


def _connect(
    svc: ProxyService, client_t: FakeTransport
) -> tuple[ClientProtocol, UpstreamProtocol, FakeTransport]:
    """A client connection on `client_t` and one pooled backend connection that records."""
    up = UpstreamProtocol(svc, svc.table.entries[0].active[0])
    up_t = FakeTransport()
    up.connection_made(up_t)  # type: ignore[arg-type]
    up.park()
    client = ClientProtocol(svc, b"http")
    client.connection_made(client_t)  # type: ignore[arg-type]
    return client, up, up_t


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    bodies=st.lists(st.binary(max_size=200), min_size=1, max_size=3),
    chunked=st.lists(st.booleans(), min_size=3, max_size=3),
    trailer=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=8),
)
def test_any_read_split_forwards_the_same_requests(
    loop: Any, bodies: list[bytes], chunked: list[bool], trailer: bool, cuts: list[int]
) -> None:
    svc = _service(loop)
    backend = svc.table.entries[0].active[0]
    cl_t = FakeTransport()
    client, up, up_t = _connect(svc, cl_t)

    wire = b"".join(
        _wire(b, chunked[i], trailer, f"/{i}") for i, b in enumerate(bodies)
    )
    points = sorted({c % (len(wire) + 1) for c in cuts} | {0, len(wire)})
    for a, b in itertools.pairwise(points):
        client.data_received(wire[a:b])
    for _ in bodies:  # the backend answers each request once it has it
        up.data_received(RESPONSE)

    parsed = Parsed()
    httptools.HttpRequestParser(parsed).feed_data(bytes(up_t.data))
    assert [m["url"] for m in parsed.messages] == [f"/{i}".encode() for i in range(len(bodies))]
    assert [m["body"] for m in parsed.messages] == bodies
    for i, m in enumerate(parsed.messages):
        names = [n for n, _ in m["headers"]]
        assert names.count(b"host") == 1
        assert (b"x-forwarded-for", b"192.0.2.7") in m["headers"]
        if chunked[i] and trailer:
            assert m["headers"][-1] == (b"x-t", b"1")
    assert bytes(cl_t.data) == RESPONSE * len(bodies)
    assert not cl_t.closed and backend.inflight == 0 and len(backend.idle) == 1
    for h in list(svc.tasks):
        h.cancel()


class _Peer(FakeTransport):
    def __init__(self, ip: str) -> None:
        super().__init__()
        self.ip = ip

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return (self.ip, 40000) if name == "peername" else default


def _forward(svc: ProxyService, head: bytes, ip: str) -> bytes:
    """What the backend receives for `head` sent on a new connection from `ip`."""
    cl_t = _Peer(ip)
    client, up, up_t = _connect(svc, cl_t)
    client.data_received(head)
    up.data_received(RESPONSE)
    assert bytes(cl_t.data).startswith(b"HTTP/1.1 200")
    client.connection_lost(None)
    return bytes(up_t.data)


@pytest.mark.parametrize(
    "fields",
    [
        b"Host: app.test\r\n",
        b"Host: app.test\r\nConnection: close\r\n",
        b"Host: app.test\r\nAccept: */*\r\nconnection: Keep-Alive\r\nCookie: a=1\r\n",
        b"Host: app.test\r\nContent-Length: 3\r\n",
        b"Host: app.test\r\nConnection: close, x-a\r\nX-A: 1\r\n",  # rebuilt: never cached
        b"Host: app.test\r\nX-Forwarded-For: 10.0.0.1\r\n",  # merged: never cached
    ],
)
def test_a_field_block_verdict_is_shared_across_connections(loop: Any, fields: bytes) -> None:
    """A second connection sending the same fields skips the scan (ProxyService.verdicts) and
    forwards what a scan would have: the same head, with its own X-Forwarded-For."""
    svc = _service(loop)
    body = b"abc" if b"Content-Length" in fields else b""
    head = b"POST /p?q HTTP/1.1\r\n" + fields + b"\r\n" + body
    first = _forward(svc, head, "192.0.2.1")
    cached = len(svc.verdicts) == 1
    second = _forward(svc, head, "198.51.100.2")
    assert second == first.replace(b"192.0.2.1", b"198.51.100.2")
    assert b"onnection" not in first.split(b"\r\n\r\n")[0].lower().replace(b"x-a", b"")
    rebuilt = b"x-a" in fields or b"X-Forwarded-For" in fields
    assert cached == (not rebuilt)
    for h in list(svc.tasks):
        h.cancel()
