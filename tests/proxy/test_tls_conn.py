"""The proxy's own TLS layer (tls_conn.py) against real TLS clients: what users rely on."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
import trustme

from tests.certs.tls_peer import place_cert, resumed
from tests.fixtures.proxy import ProxyProcess
from tests.proxy.http_peers import Backend, Client, Req, response_bytes, route, snapshot

BIG = 48 * 1024 * 1024  # far above every socket and transport buffer on the way


def _client_context(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_proxy(
    tmp_path: Path, ca: trustme.CA, proxy_factory: Callable[..., ProxyProcess]
) -> ProxyProcess:
    place_cert(ca, tmp_path / "certs", "app.test")
    return proxy_factory("--no-access-log", "--header-timeout", "1", data_dir=tmp_path)


def _get_until_close(port: int, ctx: ssl.SSLContext) -> bytes:
    """GET with Connection: close; raises SSLEOFError if TCP ends without close_notify."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, ctx.wrap_socket(
        raw, server_hostname="app.test", suppress_ragged_eofs=False
    ) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
        chunks = []
        while chunk := conn.recv(65536):  # b"" only on the peer's close_notify
            chunks.append(chunk)
        return b"".join(chunks)


async def test_close_sends_close_notify(tls_proxy: ProxyProcess, ca: trustme.CA) -> None:
    async with Backend() as be:
        tls_proxy.put_snapshot(snapshot(route("app.test", be.spec(), tls=True)))
        port = tls_proxy.https_port
        assert port is not None
        reply = await asyncio.to_thread(_get_until_close, port, _client_context(ca))
        assert reply.startswith(b"HTTP/1.1 200") and b'"target": "/"' in reply


class _BioClient:
    """A sans-IO TLS client over a plain asyncio stream, to control every byte sent."""

    def __init__(self, ctx: ssl.SSLContext, reader: Any, writer: Any) -> None:
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname="app.test")
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, proxy: ProxyProcess, ca: trustme.CA, byte_by_byte: bool) -> _BioClient:
        """Connect to the proxy's HTTPS port and complete the handshake."""
        assert proxy.https_port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.https_port)
        client = cls(_client_context(ca), reader, writer)
        await client.handshake(byte_by_byte)
        return client

    async def handshake(self, byte_by_byte: bool) -> None:
        while True:
            try:
                self.obj.do_handshake()
                done = True
            except ssl.SSLWantReadError:
                done = False
            data = self.out.read()
            step = 1 if byte_by_byte else max(len(data), 1)
            for i in range(0, len(data), step):
                self.writer.write(data[i : i + step])
                await self.writer.drain()
            if done:
                return
            self.inc.write(await asyncio.wait_for(self.reader.read(65536), 10))

    async def send(self, plain: bytes) -> None:
        self.obj.write(plain)
        self.writer.write(self.out.read())
        await self.writer.drain()

    async def read_until(self, marker: bytes, count: int) -> bytes:
        got = b""
        while got.count(marker) < count:
            try:
                got += self.obj.read(65536)
                continue
            except ssl.SSLWantReadError:
                pass
            data = await asyncio.wait_for(self.reader.read(65536), 10)
            assert data, got
            self.inc.write(data)
        return got


async def test_handshake_split_byte_by_byte_then_pipelined_records(
    tls_proxy: ProxyProcess, ca: trustme.CA
) -> None:
    async with Backend() as be:
        tls_proxy.put_snapshot(snapshot(route("app.test", be.spec(), tls=True)))
        client = await _BioClient.open(tls_proxy, ca, byte_by_byte=True)
        writer = client.writer
        assert client.obj.selected_alpn_protocol() is None  # we offered none
        # Three requests in three TLS records, sent in one TCP write.
        for i in range(3):
            client.obj.write(f"GET /{i} HTTP/1.1\r\nHost: app.test\r\n\r\n".encode())
        writer.write(client.out.read())
        await writer.drain()
        replies = await client.read_until(b"HTTP/1.1 200", 3)
        assert all(f'"target": "/{i}"'.encode() in replies for i in range(3))
        writer.close()


async def test_alpn_is_http11(tls_proxy: ProxyProcess, ca: trustme.CA) -> None:
    ctx = _client_context(ca)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    assert tls_proxy.https_port is not None
    c = await Client.open(tls_proxy.https_port, ssl=ctx, server_hostname="app.test")
    assert c.writer.get_extra_info("ssl_object").selected_alpn_protocol() == "http/1.1"
    c.close()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_session_resumption(
    tls_proxy: ProxyProcess, ca: trustme.CA, tmp_path: Path, version: ssl.TLSVersion
) -> None:
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    assert tls_proxy.https_port is not None
    assert await asyncio.to_thread(
        resumed, tls_proxy.https_port, "app.test", cafile, version, b"app.test", b"HTTP/1.1 "
    )


async def test_stalled_handshake_is_closed_and_others_served(
    tls_proxy: ProxyProcess, ca: trustme.CA
) -> None:
    assert tls_proxy.https_port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", tls_proxy.https_port)
    writer.write(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello, then silence
    await writer.drain()
    async with Backend() as be:
        tls_proxy.put_snapshot(snapshot(route("app.test", be.spec(), tls=True)))
        ok = await Client.open(
            tls_proxy.https_port, ssl=_client_context(ca), server_hostname="app.test"
        )
        assert (await ok.request()).status == 200
        ok.close()
    # Closed at the header timeout (1 s here); never answered.
    try:
        assert await asyncio.wait_for(reader.read(100), 20) == b""
    except ConnectionResetError:
        pass
    writer.close()


async def test_large_response_to_a_slow_reader_is_flow_controlled(
    tls_proxy: ProxyProcess, ca: trustme.CA
) -> None:
    body = hashlib.shake_256(b"haloy").digest(1024 * 1024) * (BIG // (1024 * 1024))
    finished = asyncio.Event()

    async def big(req: Req, reader: Any, w: asyncio.StreamWriter) -> None:
        w.write(response_bytes(200, body))
        await w.drain()
        finished.set()

    async with Backend(big) as be:
        tls_proxy.put_snapshot(snapshot(route("app.test", be.spec(), tls=True)))
        assert tls_proxy.https_port is not None
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", tls_proxy.https_port, ssl=_client_context(ca),
            server_hostname="app.test", limit=64 * 1024,
        )
        transport = cast(asyncio.Transport, writer.transport)  # TLS: reads and writes
        transport.pause_reading()  # a client that does not read yet
        writer.write(b"GET /big HTTP/1.1\r\nHost: app.test\r\n\r\n")
        await writer.drain()
        # Without flow control the proxy would swallow the whole body into memory and the
        # backend would finish; with it, the backend stays blocked while nobody reads. (A
        # bounded negative wait: it can only pass wrongly, never fail wrongly.)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(finished.wait()), 1.5)
        transport.resume_reading()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200")
        got = hashlib.sha256()
        left = len(body)
        while left:
            chunk = await asyncio.wait_for(reader.read(min(left, 256 * 1024)), 20)
            assert chunk
            got.update(chunk)
            left -= len(chunk)
        assert got.digest() == hashlib.sha256(body).digest()
        assert finished.is_set() or await asyncio.wait_for(finished.wait(), 10)
        writer.close()


async def test_bad_handshakes_are_refused_and_serving_continues(
    tls_proxy: ProxyProcess, ca: trustme.CA
) -> None:
    from tests.certs.tls_peer import client_hello, raw_exchange

    port = tls_proxy.https_port
    assert port is not None
    assert (await raw_exchange(port, client_hello(b"app.test")))[:1] == b"\x16"  # ServerHello
    for bad in (
        b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n",  # plain HTTP on the TLS port
        client_hello(b"bad name!.test"),  # our SNI callback: unrecognized_name
        client_hello(b"a" * 300),  # OpenSSL refuses an over-long name
        b"\x16\x03\x01\x00\x05" + b"\xff" * 5,  # a record that is no ClientHello
    ):
        reply = await raw_exchange(port, bad)
        assert reply[:1] in (b"", b"\x15"), bad  # nothing, or an alert record; then EOF
    # Each refusal is logged with OpenSSL's reason (plain HTTP on the TLS port, for one).
    logs = tls_proxy.logs()
    assert logs.count("TLS handshake with") >= 3, logs[-2000:]
    assert "HTTP_REQUEST" in logs or "WRONG_VERSION_NUMBER" in logs, logs[-2000:]
    async with Backend() as be:
        tls_proxy.put_snapshot(snapshot(route("app.test", be.spec(), tls=True)))
        ok = await Client.open(port, ssl=_client_context(ca), server_hostname="app.test")
        assert (await ok.request()).status == 200
        ok.close()
    assert tls_proxy.proc.poll() is None


async def test_request_then_close_notify_still_gets_its_response(
    tls_proxy: ProxyProcess, ca: trustme.CA
) -> None:
    async with Backend() as be:
        tls_proxy.put_snapshot(snapshot(route("app.test", be.spec(), tls=True)))
        client = await _BioClient.open(tls_proxy, ca, byte_by_byte=False)
        reader, writer = client.reader, client.writer
        client.obj.write(b"GET /last HTTP/1.1\r\nHost: app.test\r\n\r\n")
        try:
            client.obj.unwrap()  # close_notify right behind the request (TLS 1.3 half-close)
        except ssl.SSLWantReadError:
            pass
        writer.write(client.out.read())
        await writer.drain()
        reply = b""
        while b'"target": "/last"' not in reply:
            data = await asyncio.wait_for(reader.read(65536), 10)
            assert data, reply
            client.inc.write(data)
            try:
                reply += client.obj.read(65536)
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                pass
        writer.close()
