"""haloy-proxy at the internet edge: each rule of docs/security.md against a live proxy.

Every test names the attack it stops. The backend is a raw recorder: it keeps every byte it
received, so a test can see exactly what the proxy framed and forwarded (parsed with h11, the
strict reference parser), and answers however the test scripts it to (hostile backends).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import h11
import pytest

from tests.fixtures.polling import await_until
from tests.fixtures.proxy import ProxyProcess
from tests.proxy.http_peers import Client, read_response, route, snapshot

Reply = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "RawBackend"], Awaitable[None]]


def parse_requests(data: bytes) -> list[tuple[h11.Request, bytes]]:
    """The requests `data` holds under h11 (the strict reference parser), with their bodies."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    out: list[tuple[h11.Request, bytes]] = []
    req: h11.Request | None = None
    body = b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA or event is h11.PAUSED:
            return out
        if isinstance(event, h11.Request):
            req, body = event, b""
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert req is not None
            out.append((req, body))
            req = None
            # Answer so h11 lets the next pipelined request through.
            conn.send(h11.Response(status_code=200, headers=[("content-length", "0")]))
            conn.send(h11.EndOfMessage())
            conn.start_next_cycle()


def header(req: h11.Request, name: bytes) -> list[bytes]:
    return [v for k, v in req.headers if k == name.lower()]


async def answer_each(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      be: RawBackend) -> None:
    """A correct backend: one 200 per request h11 finds in the stream, body naming it."""
    conn = h11.Connection(h11.SERVER)
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await reader.read(65536)
            if not data:
                return
            conn.receive_data(data)
            continue
        if isinstance(event, h11.Request):
            target = event.target
        elif isinstance(event, h11.EndOfMessage):
            body = b"seen " + target
            writer.write(conn.send(h11.Response(
                status_code=200, headers=[("content-length", str(len(body)))])) or b"")
            writer.write(conn.send(h11.Data(data=body)) or b"")
            writer.write(conn.send(h11.EndOfMessage()) or b"")
            await writer.drain()
            if conn.our_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return


class RawBackend:
    """A loopback server that records the bytes of each connection and replies by script."""

    def __init__(self, reply: Reply = answer_each) -> None:
        self.reply = reply
        self.received: list[bytearray] = []
        self.port = 0
        self.server: asyncio.Server | None = None

    def spec(self) -> dict[str, Any]:
        return {"address": "127.0.0.1", "port": self.port, "deployment_id": "d1",
                "state": "active"}

    @property
    def all_bytes(self) -> bytes:
        return b"".join(bytes(b) for b in self.received)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buf = bytearray()
        self.received.append(buf)
        recording = _Recorder(reader, buf)
        try:
            await self.reply(recording, writer, self)  # type: ignore[arg-type]
        except (ConnectionError, asyncio.IncompleteReadError, h11.RemoteProtocolError):
            pass
        finally:
            writer.close()


class _Recorder:
    """A StreamReader stand-in that records what is read (the real reader does the I/O)."""

    def __init__(self, reader: asyncio.StreamReader, buf: bytearray) -> None:
        self.reader = reader
        self.buf = buf

    async def read(self, n: int = -1) -> bytes:
        data = await self.reader.read(n)
        self.buf += data
        return data

    async def readuntil(self, sep: bytes = b"\n") -> bytes:
        data = await self.reader.readuntil(sep)
        self.buf += data
        return data

    async def readexactly(self, n: int) -> bytes:
        data = await self.reader.readexactly(n)
        self.buf += data
        return data


@contextlib.asynccontextmanager
async def raw_backend(reply: Reply = answer_each) -> AsyncIterator[RawBackend]:
    be = RawBackend(reply)
    be.server = await asyncio.start_server(be._serve, "127.0.0.1", 0)
    be.port = be.server.sockets[0].getsockname()[1]
    try:
        yield be
    finally:
        be.server.close()


async def exchange(port: int, raw: bytes, wait: float = 3.0) -> bytes:
    """Send `raw` on one connection; everything the proxy sends back until it closes or
    goes quiet for `wait` seconds."""
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    w.write(raw)
    await w.drain()
    out = b""
    try:
        while True:
            data = await asyncio.wait_for(r.read(65536), wait)
            if not data:
                break
            out += data
    except (TimeoutError, ConnectionError):
        pass
    w.close()
    return out


def responses(data: bytes, methods: list[bytes]) -> list[tuple[int, list[tuple[bytes, bytes]],
                                                              bytes]]:
    """The responses in a client stream under h11, one per method in `methods` at most;
    raises if bytes remain that are not a response to a request that was sent."""
    conn = h11.Connection(h11.CLIENT)
    out: list[tuple[int, list[tuple[bytes, bytes]], bytes]] = []
    fed = False
    for method in methods:
        conn.send(h11.Request(method=method, target="/", headers=[("host", "app.test")]))
        conn.send(h11.EndOfMessage())
        if not fed:
            conn.receive_data(data)
            conn.receive_data(b"")  # the stream is all there is: then EOF
            fed = True
        status, headers, body = 0, [], b""
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Response):
                status, headers = event.status_code, list(event.headers)
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                out.append((status, headers, body))
                break
            elif isinstance(event, h11.ConnectionClosed) or event is h11.NEED_DATA:
                return out
        if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
            break
        conn.start_next_cycle()
    trailing, _ = conn.trailing_data
    assert not trailing, f"bytes after the last response: {trailing!r}"
    return out


async def _proxy(factory: Callable[..., ProxyProcess], be: RawBackend, *flags: str,
                 **snap: Any) -> ProxyProcess:
    proxy = factory("--no-access-log", *flags, https=False)
    proxy.put_snapshot(snapshot(route("app.test", be.spec()), **snap))
    return proxy


# -- 1. Connection can never nominate a framing field or Host ---------------------------------
SMUGGLED = (b"GET /smuggled HTTP/1.1\r\nHost: app.test\r\nX-Forwarded-For: 6.6.6.6\r\n"
            b"X-Real-IP: 6.6.6.6\r\n\r\n")


@pytest.mark.parametrize("connection", [
    b"Connection: content-length\r\n",
    b"Connection: keep-alive, Content-Length\r\n",
    b"CONNECTION: CONTENT-LENGTH\r\n",
    b"Connection: keep-alive\r\nConnection: content-length\r\n",
    b"Connection: host\r\n",
])
async def test_connection_cannot_strip_content_length(
    proxy_factory: Callable[..., ProxyProcess], connection: bytes
) -> None:
    async with raw_backend() as be:
        proxy = await _proxy(proxy_factory, be)
        raw = (b"POST /front HTTP/1.1\r\nHost: app.test\r\n" + connection
               + b"Content-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED)
        got = await exchange(proxy.http_port, raw, wait=1.5)
        seen = parse_requests(be.all_bytes)
        assert [r.target for r, _ in seen] == [b"/front"], be.all_bytes
        assert seen[0][1] == SMUGGLED
        assert header(seen[0][0], b"host") == [b"app.test"]
        assert responses(got, [b"POST"])[0][0] == 200


async def test_connection_cannot_strip_transfer_encoding(
    proxy_factory: Callable[..., ProxyProcess]
) -> None:
    async with raw_backend() as be:
        proxy = await _proxy(proxy_factory, be)
        body = b"%x\r\n%b\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED)
        raw = (b"POST /front HTTP/1.1\r\nHost: app.test\r\nConnection: transfer-encoding\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n" + body)
        await exchange(proxy.http_port, raw, wait=1.5)
        seen = parse_requests(be.all_bytes)
        assert [r.target for r, _ in seen] == [b"/front"]
        assert seen[0][1] == SMUGGLED


# -- 2. exactly one response per request, whatever the backend sends ------------------------
def _scripted(*answers: bytes, then_close: bool = False) -> Reply:
    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    be: RawBackend) -> None:
        for answer in answers:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
        if then_close:
            return
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass
    return reply


INJECTED = b"HTTP/1.1 200 OK\r\nX-Injected: yes\r\nContent-Length: 4\r\n\r\nEVIL"


@pytest.mark.parametrize("method,answer", [
    (b"HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
    (b"GET", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + INJECTED),
    (b"GET", b"HTTP/1.1 204 No Content\r\n\r\n" + INJECTED),
    (b"GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 4\r\n\r\nEVIL"),
    (b"GET", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokGARBAGE\r\n\r\n"),
    (b"GET", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
     + INJECTED),
    (b"GET", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
     + INJECTED),
])
async def test_backend_excess_never_reaches_the_client(
    proxy_factory: Callable[..., ProxyProcess], method: bytes, answer: bytes
) -> None:
    async with raw_backend(_scripted(answer)) as be:
        proxy = await _proxy(proxy_factory, be)
        # Two pipelined requests: an injected second response would answer the second.
        raw = (method + b" /a HTTP/1.1\r\nHost: app.test\r\n\r\n"
               b"GET /b HTTP/1.1\r\nHost: app.test\r\n\r\n")
        got = await exchange(proxy.http_port, raw, wait=1.5)
        assert b"EVIL" not in got and b"X-Injected" not in got, got
        parsed = responses(got, [method, b"GET"])
        assert parsed, got
        assert parsed[0][0] in (200, 204, 304, 502)
        # The backend connection with excess is never reused for /b.
        for conn in be.received:
            assert len(parse_requests(bytes(conn))) <= 1


# -- 3. no retry of a non-idempotent request ------------------------------------------------
async def test_post_is_not_retried_on_a_stale_pooled_connection(
    proxy_factory: Callable[..., ProxyProcess]
) -> None:
    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    be: RawBackend) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")  # the second request: close without answering

    async with raw_backend(reply) as be:
        proxy = await _proxy(proxy_factory, be)
        c = await Client.open(proxy.http_port)
        assert (await c.request("GET", "/warm")).status == 200
        r = await c.request("POST", "/pay", headers=[("Content-Length", "0")])
        assert r.status == 502
        posts = [q for conn in be.received for q in [bytes(conn)] if b"POST /pay" in q]
        assert len(posts) == 1, be.received


async def test_get_is_retried_on_a_stale_pooled_connection(
    proxy_factory: Callable[..., ProxyProcess]
) -> None:
    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    be: RawBackend) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        if len(be.received) == 1:
            await reader.readuntil(b"\r\n\r\n")  # stale: close without answering

    async with raw_backend(reply) as be:
        proxy = await _proxy(proxy_factory, be)
        c = await Client.open(proxy.http_port)
        assert (await c.request("GET", "/warm")).status == 200
        assert (await c.request("GET", "/again")).status == 200


# -- 4. uploads are timed from their end, not their start ------------------------------------
async def test_trickling_upload_is_not_cut_by_the_response_timeout(
    proxy_factory: Callable[..., ProxyProcess]
) -> None:
    async with raw_backend() as be:
        proxy = await _proxy(proxy_factory, be, "--response-header-timeout", "1",
                             "--body-timeout", "5")
        c = await Client.open(proxy.http_port)
        body = b"x" * 12
        await c.send(b"POST /up HTTP/1.1\r\nHost: app.test\r\nContent-Length: 12\r\n\r\n")
        for i in range(6):  # 6 pieces, 0.4 s apart: 2.4 s in all, past the 1 s timeout
            await c.send(body[i * 2 : i * 2 + 2])
            await asyncio.sleep(0.4)
        r = await c.response()
        assert r.status == 200 and r.body == b"seen /up"


async def test_stalled_upload_gets_408(proxy_factory: Callable[..., ProxyProcess]) -> None:
    async with raw_backend() as be:
        proxy = await _proxy(proxy_factory, be, "--body-timeout", "1")
        got = await exchange(
            proxy.http_port,
            b"POST /up HTTP/1.1\r\nHost: app.test\r\nContent-Length: 10\r\n\r\nabc", wait=5)
        assert got.startswith(b"HTTP/1.1 408"), got


# -- 5. a backend's response head is capped -------------------------------------------------
@pytest.mark.parametrize("client_close", [False, True])
async def test_endless_response_head_is_capped(
    proxy_factory: Callable[..., ProxyProcess], client_close: bool
) -> None:
    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    be: RawBackend) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\n")
        for _ in range(2000):  # 2000 × 1 KiB of header lines, never ending the head
            writer.write(b"X-Pad: " + b"p" * 1015 + b"\r\n")
            await writer.drain()
            if writer.is_closing():
                return

    async with raw_backend(reply) as be:
        proxy = await _proxy(proxy_factory, be)
        conn = b"Connection: close\r\n" if client_close else b""
        got = await exchange(proxy.http_port,
                             b"GET / HTTP/1.1\r\nHost: app.test\r\n" + conn + b"\r\n", wait=5)
        assert got.startswith(b"HTTP/1.1 502"), got[:200]
        assert len(got) < 4096


# -- 6. a backend that stops mid-body is timed out ------------------------------------------
async def test_stalled_response_body_is_cut_after_the_read_timeout(
    proxy_factory: Callable[..., ProxyProcess]
) -> None:
    async with raw_backend(_scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n1234567")
                           ) as be:
        proxy = await _proxy(proxy_factory, be, "--read-timeout", "1")
        loop = asyncio.get_running_loop()
        start = loop.time()
        got = await exchange(proxy.http_port, b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n",
                             wait=8)
        assert got.endswith(b"1234567")
        assert loop.time() - start < 8  # closed by the proxy, not by our wait


# -- 7. an upgrade request with a body ------------------------------------------------------
@pytest.mark.parametrize("framing", [b"Content-Length: 5\r\n\r\nhello",
                                     b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"])
async def test_upgrade_request_with_a_body_is_refused(
    proxy_factory: Callable[..., ProxyProcess], framing: bytes
) -> None:
    async with raw_backend() as be:
        proxy = await _proxy(proxy_factory, be)
        got = await exchange(proxy.http_port,
                             b"GET /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\n"
                             b"Upgrade: websocket\r\n" + framing, wait=2)
        assert got.startswith(b"HTTP/1.1 400"), got
        assert be.all_bytes == b""


# -- 8. Transfer-Encoding is exactly one final chunked; no underscores in names ---------------
@pytest.mark.parametrize("te,status", [
    (b"Transfer-Encoding: cow, chunked\r\n", 501),
    (b"Transfer-Encoding: identity, chunked\r\n", 501),
    (b"Transfer-Encoding: ,chunked\r\n", 501),
    (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", 400),
    (b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", 400),
])
async def test_transfer_encoding_other_than_chunked_is_refused(
    proxy_factory: Callable[..., ProxyProcess], te: bytes, status: int
) -> None:
    async with raw_backend() as be:
        proxy = await _proxy(proxy_factory, be)
        got = await exchange(proxy.http_port, b"POST / HTTP/1.1\r\nHost: app.test\r\n" + te
                             + b"\r\n5\r\nhello\r\n0\r\n\r\n", wait=2)
        assert got.startswith(b"HTTP/1.1 %d" % status), got
        assert be.all_bytes == b""


async def test_http10_chunked_is_refused(proxy_factory: Callable[..., ProxyProcess]) -> None:
    async with raw_backend() as be:
        proxy = await _proxy(proxy_factory, be)
        raw = b"POST / HTTP/1.0\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        # The same field block on HTTP/1.1 first: the verdict cached for it must not apply.
        ok = await exchange(proxy.http_port, raw.replace(b"HTTP/1.0", b"HTTP/1.1"), wait=1)
        assert ok.startswith(b"HTTP/1.1 200")
        got = await exchange(proxy.http_port, raw, wait=2)
        assert got.startswith(b"HTTP/1.1 400"), got


async def test_header_names_with_underscores_are_dropped(
    proxy_factory: Callable[..., ProxyProcess]
) -> None:
    async with raw_backend() as be:
        proxy = await _proxy(proxy_factory, be)
        got = await exchange(proxy.http_port,
                             b"GET / HTTP/1.1\r\nHost: app.test\r\nX_Real_IP: 6.6.6.6\r\n"
                             b"X_Forwarded_Proto: https\r\nTransfer_Encoding: chunked\r\n"
                             b"Cookie: a_b=c_d\r\n\r\n", wait=1)
        assert got.startswith(b"HTTP/1.1 200")
        (req, _), = parse_requests(be.all_bytes)
        assert b"_" not in b"".join(k for k, _ in req.headers)
        assert header(req, b"cookie") == [b"a_b=c_d"]


# -- 9. absolute-form targets ---------------------------------------------------------------
async def test_absolute_form_is_routed_by_its_authority_and_forwarded_origin_form(
    proxy_factory: Callable[..., ProxyProcess]
) -> None:
    async with raw_backend() as be:
        proxy = await _proxy(proxy_factory, be)
        got = await exchange(proxy.http_port,
                             b"GET http://evil.test/abs HTTP/1.1\r\nHost: app.test\r\n\r\n",
                             wait=1)
        assert got.startswith(b"HTTP/1.1 404"), got
        assert be.all_bytes == b""
        got = await exchange(proxy.http_port,
                             b"GET http://APP.test/abs?q=1 HTTP/1.1\r\nHost: other.test\r\n\r\n",
                             wait=1)
        assert got.startswith(b"HTTP/1.1 200"), got
        (req, _), = parse_requests(be.all_bytes)
        assert req.target == b"/abs?q=1"
        assert header(req, b"host") == [b"APP.test"]


async def test_redirects_from_odd_targets_are_well_formed(
    proxy_factory: Callable[..., ProxyProcess]
) -> None:
    async with raw_backend() as be:
        proxy = proxy_factory("--no-access-log", https=False)
        proxy.put_snapshot(snapshot(route("app.test", be.spec(), aliases=["www.app.test"])))
        got = await exchange(proxy.http_port,
                             b"GET http://www.app.test/p HTTP/1.1\r\nHost: www.app.test\r\n\r\n",
                             wait=1)
        assert b"\r\nLocation: http://app.test/p\r\n" in got, got
        got = await exchange(proxy.http_port,
                             b"OPTIONS * HTTP/1.1\r\nHost: www.app.test\r\n\r\n", wait=1)
        assert b"\r\nLocation: http://app.test/\r\n" in got, got
        got = await exchange(proxy.http_port,
                             b"GET /p HTTP/1.1\r\nHost: www.app.test:99999\r\n\r\n", wait=1)
        assert b"\r\nLocation: http://app.test/p\r\n" in got, got
        got = await exchange(proxy.http_port, b"GET p HTTP/1.1\r\nHost: app.test\r\n\r\n",
                             wait=1)
        assert got.startswith(b"HTTP/1.1 400"), got


# -- 10. forwarding headers are set by the proxy, not by clients ----------------------------
SPOOF = (b"X-Forwarded-For: 6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\n"
         b"X-Forwarded-Ssl: on\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.test\r\n"
         b"X-Forwarded-Port: 1\r\n")


async def test_forwarding_headers_from_clients_are_replaced(
    proxy_factory: Callable[..., ProxyProcess]
) -> None:
    async with raw_backend() as be:
        proxy = await _proxy(proxy_factory, be)
        await exchange(proxy.http_port, b"GET / HTTP/1.1\r\nHost: app.test\r\n" + SPOOF
                       + b"\r\n", wait=1)
        (req, _), = parse_requests(be.all_bytes)
        assert header(req, b"x-forwarded-for") == [b"127.0.0.1"]
        assert header(req, b"x-real-ip") == [b"127.0.0.1"]
        assert header(req, b"x-forwarded-proto") == [b"http"]
        assert header(req, b"x-forwarded-host") == [b"app.test"]
        for gone in (b"forwarded", b"x-forwarded-ssl", b"x-forwarded-port"):
            assert header(req, gone) == [], gone


async def test_trusted_proxies_keep_and_append(
    proxy_factory: Callable[..., ProxyProcess]
) -> None:
    async with raw_backend() as be:
        proxy = await _proxy(proxy_factory, be, trusted_proxies=["127.0.0.0/8"])
        await exchange(proxy.http_port, b"GET / HTTP/1.1\r\nHost: app.test\r\n" + SPOOF
                       + b"\r\n", wait=1)
        (req, _), = parse_requests(be.all_bytes)
        assert header(req, b"x-forwarded-for") == [b"6.6.6.6, 127.0.0.1"]
        assert header(req, b"x-real-ip") == [b"6.6.6.6"]
        assert header(req, b"x-forwarded-proto") == [b"https"]
        assert header(req, b"forwarded") == [b"for=6.6.6.6"]


# -- the API domain belongs to haloyd --------------------------------------------------------
async def test_an_app_route_cannot_take_the_api_domain(
    proxy_factory: Callable[..., ProxyProcess]
) -> None:
    async with raw_backend() as app, raw_backend() as api:
        proxy = proxy_factory("--no-access-log", https=False)
        proxy.put_snapshot(snapshot(
            route("api.example.test", app.spec()),
            api={"domain": "api.example.test", "backend": {"address": "127.0.0.1",
                                                           "port": api.port}}))
        await exchange(proxy.http_port, b"GET /v1 HTTP/1.1\r\nHost: api.example.test\r\n"
                       b"Authorization: Bearer secret\r\n\r\n", wait=1)
        assert app.all_bytes == b""
        assert b"Bearer secret" in api.all_bytes


# -- cosmetic: HTTP/1.0 keep-alive, Expect on an unknown host -------------------------------
async def test_http10_keep_alive_client_is_told_the_connection_closes(
    proxy_factory: Callable[..., ProxyProcess]
) -> None:
    async with raw_backend() as be:
        proxy = await _proxy(proxy_factory, be)
        got = await exchange(proxy.http_port, b"GET / HTTP/1.0\r\nHost: app.test\r\n"
                             b"Connection: keep-alive\r\n\r\n", wait=3)
        head = got.split(b"\r\n\r\n")[0].lower()
        # Either the connection stays open and says keep-alive, or it says close and closes.
        assert b"connection: close" in head or b"connection: keep-alive" in head, got


async def test_expect_continue_to_an_unknown_host_is_answered_at_once(
    proxy_factory: Callable[..., ProxyProcess]
) -> None:
    async with raw_backend() as be:
        proxy = await _proxy(proxy_factory, be)
        c = await Client.open(proxy.http_port)
        await c.send(b"POST / HTTP/1.1\r\nHost: nobody.test\r\nExpect: 100-continue\r\n"
                     b"Content-Length: 5\r\n\r\n")
        r = await asyncio.wait_for(read_response(c.reader), 2)
        assert r.status == 404


async def test_smuggling_through_connection_never_reaches_a_uvicorn_app(
    proxy_factory: Callable[..., ProxyProcess]
) -> None:
    """The same attack against uvicorn, the server haloyd's API runs on: before the fix the
    smuggled request reached the app with the attacker's X-Forwarded-For."""
    import uvicorn

    seen: list[tuple[str, str]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = dict(scope["headers"])
        seen.append((scope["path"], headers.get(b"x-forwarded-for", b"").decode()))
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await await_until("uvicorn to start", lambda: server.started, interval=0.01)
        proxy = proxy_factory("--no-access-log", https=False)
        proxy.put_snapshot(snapshot(route("app.test", {
            "address": "127.0.0.1", "port": sock.getsockname()[1], "deployment_id": "d1",
            "state": "active"})))
        for connection in (b"content-length", b"keep-alive, Content-Length"):
            raw = (b"POST /front HTTP/1.1\r\nHost: app.test\r\nConnection: " + connection
                   + b"\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED)
            got = await exchange(proxy.http_port, raw, wait=1)
            assert responses(got, [b"POST"])[0][0] == 200
        assert [path for path, _ in seen] == ["/front", "/front"]
        assert all(xff == "127.0.0.1" for _, xff in seen)
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.mark.parametrize("cuts", [(), (5,), (2, 9)])
async def test_a_refused_head_gets_no_body(
    proxy_factory: Callable[..., ProxyProcess], cuts: tuple[int, ...]
) -> None:
    """RFC 9110 §9.3.2, however the refused head was split into reads."""
    async with raw_backend() as be:
        proxy = await _proxy(proxy_factory, be)
        raw = (b"\nHEAD / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 1\r\n"
               b"Content-Length: 2\r\n\r\n")
        r, w = await asyncio.open_connection("127.0.0.1", proxy.http_port)
        w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for a, b in zip((0, *cuts), (*cuts, len(raw)), strict=True):
            w.write(raw[a:b])
            await w.drain()
            await asyncio.sleep(0.05)  # separate reads on the proxy's side
        got = await asyncio.wait_for(r.read(), 5)
        w.close()
        assert got.startswith(b"HTTP/1.1 400") and got.endswith(b"\r\n\r\n"), got
