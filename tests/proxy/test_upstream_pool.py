"""Upstream pool rules: reuse, no reuse after Connection: close, stale retry, idle timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tests.fixtures.polling import await_until
from tests.fixtures.proxy import ProxyProcess
from tests.proxy.http_peers import Backend, Client, Req, response_bytes, route, snapshot


async def test_backend_connection_close_is_not_pooled(haloy_proxy: ProxyProcess) -> None:
    async def closing(req: Req, reader: Any, w: asyncio.StreamWriter) -> bool:
        w.write(response_bytes(200, b"x", [("Content-Length", "1"), ("Connection", "close")]))
        return True

    async with Backend(closing) as be:
        haloy_proxy.put_snapshot(snapshot(route("app.test", be.spec())))
        for _ in range(3):
            c = await Client.open(haloy_proxy.http_port)
            assert (await c.request()).status == 200
            c.close()
        assert be.connections == 3


async def test_stale_pooled_connection_is_retried_once(haloy_proxy: ProxyProcess) -> None:
    """The backend drops idle keep-alive connections without saying so (a stale pool)."""

    async def drop_after_response(req: Req, reader: Any, w: asyncio.StreamWriter) -> bool:
        w.write(response_bytes(200, req.target.encode()))
        return True  # closes after answering, but announced keep-alive

    async with Backend(drop_after_response) as be:
        haloy_proxy.put_snapshot(snapshot(route("app.test", be.spec())))
        c = await Client.open(haloy_proxy.http_port)
        for i in range(5):
            r = await c.request(path=f"/{i}")
            assert (r.status, r.body) == (200, f"/{i}".encode())
        assert haloy_proxy.status()["upstream_errors"].get("reset", 0) == 0


async def test_idle_client_closed_after_keepalive_timeout(
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory("--no-access-log", "--keepalive-timeout", "0.3", https=False)
    async with Backend() as be:
        proxy.put_snapshot(snapshot(route("app.test", be.spec())))
        c = await Client.open(proxy.http_port)
        assert (await c.request()).status == 200
        assert await c.closed()


async def test_slow_backend_upload_is_streamed(haloy_proxy: ProxyProcess) -> None:
    size = 16 * 1024 * 1024
    got = asyncio.Event()

    async def slow_reader(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"content-length: %d" % size in head.lower()
        n = 0
        while n < size:
            n += len(await reader.read(65536))
            await asyncio.sleep(0)  # consumes slower than the client produces
        got.set()
        w.write(response_bytes(200, b"%d" % n))
        await w.drain()
        w.close()

    server = await asyncio.start_server(slow_reader, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    haloy_proxy.put_snapshot(snapshot(route("app.test", {"address": "127.0.0.1", "port": port})))
    c = await Client.open(haloy_proxy.http_port)
    r = await c.request("POST", body=b"u" * size)
    assert (r.status, r.body) == (200, b"%d" % size)
    server.close()


async def test_max_connections(proxy_factory: Callable[..., ProxyProcess]) -> None:
    proxy = proxy_factory("--no-access-log", "--max-connections", "2", https=False)
    async with Backend() as be:
        proxy.put_snapshot(snapshot(route("app.test", be.spec())))
        a, b = await Client.open(proxy.http_port), await Client.open(proxy.http_port)
        assert (await a.request()).status == 200 and (await b.request()).status == 200
        third = await Client.open(proxy.http_port)
        assert await third.closed()
        b.close()
        await await_until("the proxy to see the close", proxy.status,
                          lambda s: s["connections"] <= 1, interval=0.02)
        fourth = await Client.open(proxy.http_port)
        assert (await fourth.request()).status == 200
