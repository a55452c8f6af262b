"""Health monitor loop with a scripted prober (logic only; the real probe is tested below)."""

from __future__ import annotations

import asyncio
import functools

from haloy.health.monitor import HealthMonitor, HealthSettings, Target
from haloy.health.probe import ProbeResult, probe


async def test_monitor_transitions_and_concurrency_limit() -> None:
    healthy = {"a": True, "b": True}
    running = 0
    peak = 0
    changes = asyncio.Queue[None]()

    async def prober(address: str, port: int, path: str, timeout: float) -> ProbeResult:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)
        running -= 1
        return ProbeResult(healthy[address], error=None if healthy[address] else "HTTP 500")

    mon = HealthMonitor(
        HealthSettings(interval=0.01, fall=2, rise=2, timeout=1, concurrency=1),
        lambda: changes.put_nowait(None),
        prober,
    )
    mon.set_targets([Target(c, c, c, 80, "/") for c in ("a", "b")])
    task = asyncio.create_task(mon.run())
    try:
        async with asyncio.timeout(10):
            while not (mon.routable("a") and mon.routable("b")):
                await changes.get()
            healthy["a"] = False
            while mon.routable("a"):
                await changes.get()
            assert mon.states()["a"].fail_streak >= 2
            assert mon.states()["a"].last_error == "HTTP 500"
            assert mon.routable("b")
            healthy["a"] = True
            while not mon.routable("a"):
                await changes.get()
            assert mon.states()["a"].ok_streak >= 2
        mon.set_targets([Target("b", "b", "b", 80, "/")])
        assert set(mon.states()) == {"b"}
        assert peak == 1
    finally:
        task.cancel()


async def test_probe_against_real_sockets() -> None:
    async def serve(
        status: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 " + status + b"\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    results = {}
    for status in (b"200 OK", b"302 Found", b"404 Not Found", b"503 Busy"):
        server = await asyncio.start_server(functools.partial(serve, status), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            results[status] = await probe("127.0.0.1", port, "/health", 2)
    assert [(r.ok, r.status) for r in results.values()] == [
        (True, 200),
        (True, 302),
        (False, 404),
        (False, 503),
    ]
    closed = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = closed.sockets[0].getsockname()[1]
    closed.close()
    await closed.wait_closed()
    refused = await probe("127.0.0.1", port, "/", 2)
    assert not refused.ok and refused.error

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async with await asyncio.start_server(silent, "127.0.0.1", 0) as slow:
        port = slow.sockets[0].getsockname()[1]
        timed_out = await probe("127.0.0.1", port, "/", 0.05)
    assert not timed_out.ok and "timed out" in (timed_out.error or "")
