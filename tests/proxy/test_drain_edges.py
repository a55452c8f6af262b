"""Drain edges: half-closed WebSocket tunnels, pipelined requests, connections with no request.

A drain is either a backend turning `draining` (its tunnels close after the grace) or the
worker stopping (SIGTERM: it stops accepting, answers what it read, then closes).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from typing import Any

from haloy.proxy.wsframes import close_frame
from tests.fixtures.polling import await_until
from tests.fixtures.proxy import ProxyProcess
from tests.proxy.http_peers import Backend, Client, Req, response_bytes, route, snapshot

UPGRADE = (b"GET /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
           b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")


class WsBackend:
    """Answers 101; echoes a close frame and closes on any frame; holds on EOF (half-close)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.port = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> WsBackend:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release.set()
        assert self.server is not None
        self.server.close()

    def spec(self, state: str = "active") -> dict[str, Any]:
        return {"address": "127.0.0.1", "port": self.port, "deployment_id": "ws", "state": state}

    async def _serve(self, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        w.write(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                b"Upgrade: websocket\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            if await reader.read(2):  # a (close) frame: answer it, then close
                w.write(close_frame(masked=False))
                await w.drain()
            else:
                await self.release.wait()  # half-closed by the client; keep our side open
        w.close()


async def _tunnel(port: int) -> Client:
    c = await Client.open(port)
    await c.send(UPGRADE)
    assert (await c.response()).status == 101
    return c


async def _server_frame_then_eof(c: Client) -> bytes:
    return await asyncio.wait_for(c.reader.read(), 10)


async def test_draining_backend_closes_half_closed_and_open_websockets(
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory("--no-access-log", https=False)
    async with WsBackend() as be:
        proxy.put_snapshot(snapshot(route("app.test", be.spec(), drain_grace=0.2)))
        half = await _tunnel(proxy.http_port)
        half.writer.write_eof()  # the proxy half-closes the backend side too
        whole = await _tunnel(proxy.http_port)
        await asyncio.to_thread(proxy.put_snapshot, snapshot(
            route("app.test", be.spec("draining"), drain_grace=0.2), generation=2))
        # The half-closed tunnel cannot take a close frame: it is closed instead.
        assert await asyncio.wait_for(half.reader.read(), 10) == b""
        assert await _server_frame_then_eof(whole) == close_frame(masked=False)
    assert "Cannot call write()" not in proxy.logs()
    assert proxy.stop() == 0


async def test_shutdown_with_a_half_closed_websocket_closes_every_tunnel(
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory("--no-access-log", "--shutdown-timeout", "0.2", https=False)
    async with WsBackend() as be:
        proxy.put_snapshot(snapshot(route("app.test", be.spec())))
        half = await _tunnel(proxy.http_port)
        half.writer.write_eof()
        whole = await _tunnel(proxy.http_port)
        proxy.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(half.reader.read(), 10) == b""
        assert await _server_frame_then_eof(whole) == close_frame(masked=False)
        assert await asyncio.to_thread(proxy.proc.wait, 15) == 0, proxy.logs()


async def _until_refused(port: int) -> None:
    """The listener is closed: the worker has begun draining (both happen in one step)."""
    async def refused() -> bool:
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
        except ConnectionError:  # refused, or reset from the closed listener's backlog
            return True
        w.close()
        return False

    await await_until("the listener to close", refused, timeout=15, interval=0.02)


async def test_pipelined_requests_read_before_the_drain_are_all_answered(
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    release, arrived = asyncio.Event(), asyncio.Event()

    async def slow(req: Req, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        if req.target == "/slow":
            arrived.set()
            await release.wait()
        w.write(response_bytes(200, req.target.encode()))

    proxy = proxy_factory("--no-access-log", https=False)
    async with Backend(slow) as be:
        proxy.put_snapshot(snapshot(route("app.test", be.spec())))
        c = await Client.open(proxy.http_port)
        await c.send(b"GET /slow HTTP/1.1\r\nHost: app.test\r\n\r\n"
                     b"GET /next HTTP/1.1\r\nHost: app.test\r\n\r\n")
        await asyncio.wait_for(arrived.wait(), 10)
        proxy.proc.send_signal(signal.SIGTERM)
        await _until_refused(proxy.http_port)
        release.set()
        first, second = await c.response(), await c.response()
        assert (first.status, first.body) == (200, b"/slow")
        assert first.header("connection") != "close"
        assert (second.status, second.body) == (200, b"/next")
        assert second.header("connection") == "close"  # the last one read closes
        assert await c.closed()
    assert await asyncio.to_thread(proxy.proc.wait, 15) == 0


async def test_a_connection_without_a_request_yet_is_not_closed_as_idle_on_drain(
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory("--no-access-log", "--shutdown-timeout", "30", https=False)
    async with Backend() as be:
        proxy.put_snapshot(snapshot(route("app.test", be.spec())))
        served = await Client.open(proxy.http_port)
        assert (await served.request()).status == 200
        fresh = await Client.open(proxy.http_port)  # its first request is on the way
        proxy.proc.send_signal(signal.SIGTERM)
        await _until_refused(proxy.http_port)
        assert await served.closed()  # quiet after a response: closed by the drain
        resp = await fresh.request(path="/late")
        assert resp.status == 200 and resp.header("connection") == "close"
        assert await fresh.closed()
    assert await asyncio.to_thread(proxy.proc.wait, 15) == 0


async def test_a_failed_tls_handshake_does_not_hold_a_draining_worker(
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory("--no-access-log", "--shutdown-timeout", "120")
    assert proxy.https_port is not None
    r, w = await asyncio.open_connection("127.0.0.1", proxy.https_port)
    w.write(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")  # plain HTTP on the TLS port
    assert await asyncio.wait_for(r.read(), 10) == b""  # the handshake failed
    w.close()
    proxy.proc.send_signal(signal.SIGTERM)
    # Nothing is left to drain: the worker exits long before its 120 s deadline.
    assert await asyncio.to_thread(proxy.proc.wait, 60) == 0
