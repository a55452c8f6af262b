"""Hold (paused / empty routes), draining backends, and WebSocket/Upgrade tunnels."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import websockets

from tests.fixtures.polling import await_until
from tests.fixtures.proxy import ProxyProcess
from tests.proxy.http_peers import Backend, Client, Req, response_bytes, route, snapshot


async def _wait_held(proxy: ProxyProcess, n: int) -> None:
    await await_until(f"{n} held requests", lambda: asyncio.to_thread(proxy.status),
                      lambda s: sum(r["held"] for r in s["routes"]) >= n, interval=0.02)


async def test_paused_route_holds_until_backend_appears(haloy_proxy: ProxyProcess) -> None:
    haloy_proxy.put_snapshot(snapshot(route("app.test", paused=True)))
    clients = [await Client.open(haloy_proxy.http_port) for _ in range(3)]
    pending = [asyncio.create_task(c.request(path=f"/{i}")) for i, c in enumerate(clients)]
    await _wait_held(haloy_proxy, 3)
    async with Backend() as be:
        await asyncio.to_thread(
            haloy_proxy.put_snapshot, snapshot(route("app.test", be.spec()), generation=2)
        )
        results = await asyncio.gather(*pending)
    assert [r.status for r in results] == [200, 200, 200]
    assert sorted(r.json()["target"] for r in results) == ["/0", "/1", "/2"]


async def test_hold_when_empty_times_out_503(haloy_proxy: ProxyProcess) -> None:
    haloy_proxy.put_snapshot(snapshot(route("app.test", hold_when_empty=True, hold_timeout=0.3)))
    c = await Client.open(haloy_proxy.http_port)
    assert (await c.request()).status == 503
    assert (await c.request()).status == 503  # connection stays usable


async def test_draining_backend_gets_no_new_requests_and_reports_idle(
    haloy_proxy: ProxyProcess,
) -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    async def slow(req: Req, reader: Any, w: asyncio.StreamWriter) -> None:
        if req.target == "/slow":
            entered.set()
            await release.wait()
        w.write(response_bytes(200, b"old"))

    async with Backend(slow) as old, Backend() as new:
        haloy_proxy.put_snapshot(snapshot(route("app.test", old.spec("old"))))
        slow_client = await Client.open(haloy_proxy.http_port)
        await slow_client.send(b"GET /slow HTTP/1.1\r\nHost: app.test\r\n\r\n")
        await entered.wait()
        snap = snapshot(route("app.test", old.spec("old", "draining"), new.spec("new")),
                        generation=2)
        await asyncio.to_thread(haloy_proxy.put_snapshot, snap)
        by_id = {b["deployment_id"]: b for b in haloy_proxy.status()["routes"][0]["backends"]}
        assert by_id["old"]["state"] == "draining"
        assert by_id["old"]["active_connections"] == 1 and by_id["old"]["idle"] is False
        c = await Client.open(haloy_proxy.http_port)
        for _ in range(4):
            assert (await c.request()).status == 200
        assert len(new.requests) == 4 and len(old.requests) == 1
        release.set()
        assert (await slow_client.response()).body == b"old"
        status = await asyncio.to_thread(haloy_proxy.status)
        by_id = {b["deployment_id"]: b for b in status["routes"][0]["backends"]}
        assert by_id["old"]["idle"] is True and by_id["old"]["active_connections"] == 0


async def _ws_echo(ws: Any) -> None:
    async for message in ws:
        await ws.send(message)


async def test_websocket_tunnel_counted_and_closed_after_drain_grace(
    haloy_proxy: ProxyProcess,
) -> None:
    async with websockets.serve(_ws_echo, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        backend = {"address": "127.0.0.1", "port": port, "deployment_id": "ws"}
        haloy_proxy.put_snapshot(snapshot(route("app.test", backend, drain_grace=0.2)))
        url = f"ws://app.test:{haloy_proxy.http_port}/chat"
        async with websockets.connect(url, host="127.0.0.1", port=haloy_proxy.http_port) as ws:
            for i in range(3):
                await ws.send(f"m{i}")
                assert await ws.recv() == f"m{i}"
            await ws.send(b"\x00" * 200_000)
            assert await ws.recv() == b"\x00" * 200_000
            b = haloy_proxy.status()["routes"][0]["backends"][0]
            assert b["active_connections"] == 1 and b["idle"] is False
            draining = {**backend, "state": "draining"}
            await asyncio.to_thread(
                haloy_proxy.put_snapshot,
                snapshot(route("app.test", draining, drain_grace=0.2), generation=2),
            )
            await ws.wait_closed()  # the proxy ends the tunnel after the grace period
        await await_until("the backend's connections to close", haloy_proxy.status,
                          lambda s: not s["routes"][0]["backends"][0]["active_connections"],
                          interval=0.02)


async def test_refused_upgrade_is_not_tunnelled(haloy_proxy: ProxyProcess) -> None:
    async with Backend() as be:  # answers 200 to an upgrade request
        haloy_proxy.put_snapshot(snapshot(route("app.test", be.spec())))
        c = await Client.open(haloy_proxy.http_port)
        await c.send(
            b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n"
            b"GET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n"
        )
        r = await c.response()
        assert r.status == 200
        assert await c.closed()
        assert [q.target for q in be.requests] == ["/"]


async def test_websocket_half_close(proxy_factory: Callable[..., ProxyProcess]) -> None:
    proxy = proxy_factory("--no-access-log", https=False)

    async def upgrade_then_echo_until_eof(
        reader: asyncio.StreamReader, w: asyncio.StreamWriter
    ) -> None:
        await reader.readuntil(b"\r\n\r\n")
        w.write(b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: raw\r\n\r\n")
        data = await reader.read()  # until the client's half-close arrives
        w.write(b"got:" + data)
        await w.drain()
        w.close()

    server = await asyncio.start_server(upgrade_then_echo_until_eof, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy.put_snapshot(snapshot(route("app.test", {"address": "127.0.0.1", "port": port})))
    c = await Client.open(proxy.http_port)
    await c.send(b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: upgrade\r\nUpgrade: raw\r\n\r\n")
    assert (await c.response()).status == 101
    await c.send(b"abc")
    c.writer.write_eof()
    assert await c.reader.read() == b"got:abc"
    server.close()
