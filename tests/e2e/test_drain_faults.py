"""haloy-proxy under load with hostile backends: drains, streams, tunnels, resets, slow heads.

Loopback backends stand in for replicas (the proxy cannot tell); the proxy is the real process.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import websockets

from tests.e2e.loadgen import LoadGen
from tests.e2e.scale import record, size
from tests.fixtures.proxy import ProxyProcess
from tests.proxy.http_peers import Backend, Req, response_bytes, route, snapshot

CHUNK = b"x" * 1024


def _stream_handler(seconds: float) -> Callable[..., Any]:
    """`/stream` sends ten 1 KiB chunks a second for `seconds`; anything else answers `name`."""

    async def handler(req: Req, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        if req.target != "/stream":
            w.write(response_bytes(200, b"ok"))
            return
        w.write(response_bytes(200, b"", [("Transfer-Encoding", "chunked")]))
        for _ in range(int(seconds * 10)):
            w.write(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
            await w.drain()
            await asyncio.sleep(0.1)  # paces the stream: it must outlive the route change
        w.write(b"0\r\n\r\n")

    return handler


async def _put(proxy: ProxyProcess, snap: dict[str, Any]) -> None:
    reply = await asyncio.to_thread(proxy.put_snapshot, snap)
    assert reply["ok"], reply


async def test_stream_from_draining_replica_completes_under_load(
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    seconds = size(5, 60)
    proxy = proxy_factory("--no-access-log", https=False)
    url = f"http://127.0.0.1:{proxy.http_port}"
    handler = _stream_handler(seconds)
    async with Backend(handler) as old, Backend(handler) as new:
        await _put(proxy, snapshot(route("app.test", old.spec("old"))))
        async with (
            LoadGen(url, "app.test", max_requests=100_000, max_seconds=seconds + 60) as load,
            httpx.AsyncClient(base_url=url, timeout=30, trust_env=False) as client,
            client.stream("GET", "/stream", headers={"host": "app.test"}) as resp,
        ):
            received = 0
            async for data in resp.aiter_bytes():
                if received == 0:  # the stream is flowing: deploy "new", drain "old"
                    snap = snapshot(route("app.test", old.spec("old", "draining"),
                                          new.spec("new"), drain_grace=seconds + 60),
                                    generation=2)
                    await _put(proxy, snap)
                received += len(data)
        record(f"{seconds:.0f}s stream from a draining replica", load.report,
               stream_bytes=received)
        assert resp.status_code == 200
        assert received == int(seconds * 10) * len(CHUNK)
        assert load.report.failures == [], load.report.describe_failures()
        # After the switch every new request went to the new replica.
        assert len(new.requests) > 0


async def _reset_mid_body(req: Req, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
    w.write(response_bytes(200, b"y" * 1000, [("Content-Length", "100000")]))
    await w.drain()
    sock = w.get_extra_info("socket")
    # SO_LINGER 0 turns the close into a TCP reset, as a crashing replica would.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    w.transport.abort()
    return True


async def test_backend_reset_mid_body_truncates_and_closes(
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory("--no-access-log", https=False)
    async with Backend(_reset_mid_body) as be:
        await _put(proxy, snapshot(route("app.test", be.spec("r"))))
        for _ in range(int(size(5, 50))):
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.http_port)
            writer.write(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
            data = b""
            async with asyncio.timeout(15):  # a hang fails here
                try:
                    while chunk := await reader.read(65536):
                        data += chunk
                except ConnectionError:
                    pass
            writer.close()
            head, _, body = data.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), data[:200]
            assert 0 < len(body) < 100_000


async def test_slow_headers_504_while_others_served(
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory("--no-access-log", "--response-header-timeout", "0.5", https=False)
    url = f"http://127.0.0.1:{proxy.http_port}"
    never = asyncio.Event()

    async def slow(req: Req, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        if req.target == "/slow":
            await never.wait()
        w.write(response_bytes(200, b"fast"))

    async with Backend(slow) as be:
        await _put(proxy, snapshot(route("app.test", be.spec("s"))))
        # The client gives up after 10 s (20x the proxy's timeout): a hang shows as a failure.
        slow_load = LoadGen(url, "app.test", path="/slow", keepalive=1, fresh=1,
                            max_requests=int(size(6, 60)), max_seconds=120, request_timeout=10)
        async with LoadGen(url, "app.test", max_requests=100_000, max_seconds=120) as load:
            slow_load.start()  # no readiness wait: readiness means a 2xx, /slow never gives one
            slow_report = await slow_load.finish()
        never.set()
        record("slow headers -> 504 alongside normal load", load.report,
               slow_sent=slow_report.sent,
               slow_504=sum(o.status == 504 for o in slow_report.outcomes))
        hung = [f"t={o.started:.3f}s {o.status} {o.error}" for o in slow_report.outcomes
                if o.status != 504]
        assert hung == [], f"{len(hung)} of {slow_report.sent} slow requests: {hung[:5]}"
        assert load.report.failures == [], load.report.describe_failures()


async def _echo(ws: Any) -> None:
    with contextlib.suppress(websockets.ConnectionClosed):
        async for message in ws:
            await ws.send(message)


@contextlib.asynccontextmanager
async def _ws_backend() -> AsyncIterator[dict[str, Any]]:
    """A WebSocket echo server; yields its backend spec (deployment "a1")."""
    async with websockets.serve(_echo, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield {"address": "127.0.0.1", "port": port, "deployment_id": "a1"}


async def _ws_connect(proxy: ProxyProcess) -> Any:
    return await websockets.connect(f"ws://a.test:{proxy.http_port}/chat", host="127.0.0.1",
                                    port=proxy.http_port)


async def test_websockets_survive_other_app_deploys_then_end_on_drain(
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory("--no-access-log", https=False)
    url = f"http://127.0.0.1:{proxy.http_port}"
    deploys = int(size(5, 50))
    async with _ws_backend() as a, Backend() as b1, Backend() as b2:

        def snap(gen: int, b_backends: list[dict[str, Any]], a_state: str = "active") -> Any:
            return snapshot(route("a.test", {**a, "state": a_state}, drain_grace=0.5),
                            route("b.test", *b_backends), generation=gen)

        await _put(proxy, snap(1, [b1.spec("b0")]))
        sockets = [await _ws_connect(proxy) for _ in range(3)]
        gen = 1
        async with LoadGen(url, "b.test", max_requests=100_000, max_seconds=300) as load:
            for i in range(deploys):
                old, new = (b1, b2) if i % 2 == 0 else (b2, b1)
                gen += 1
                await _put(proxy, snap(gen, [old.spec(f"b{i}", "draining"),
                                             new.spec(f"b{i + 1}")]))
                gen += 1
                await _put(proxy, snap(gen, [new.spec(f"b{i + 1}")]))
                for n, ws in enumerate(sockets):
                    await ws.send(f"{i}-{n}")
                    assert await ws.recv() == f"{i}-{n}"
        record(f"websockets on A across {deploys} deploys of B", load.report,
               tunnels=len(sockets))
        assert load.report.failures == [], load.report.describe_failures()
        # A deploy of A: its tunnels end once the drain grace is over.
        await _put(proxy, snap(gen + 1, [b1.spec("bx")], a_state="draining"))
        for ws in sockets:
            async with asyncio.timeout(15):
                await ws.wait_closed()


async def test_drained_websocket_gets_a_close_frame(
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory("--no-access-log", https=False)
    async with _ws_backend() as a:
        await _put(proxy, snapshot(route("a.test", a, drain_grace=0.2)))
        ws = await _ws_connect(proxy)
        await ws.send("hi")
        assert await ws.recv() == "hi"
        draining = {**a, "state": "draining"}
        await _put(proxy, snapshot(route("a.test", draining, drain_grace=0.2), generation=2))
        async with asyncio.timeout(15):
            await ws.wait_closed()
        # 1006 means "closed without a close frame": not the clean close a client can act on.
        assert ws.close_code == 1001, ws.close_code
