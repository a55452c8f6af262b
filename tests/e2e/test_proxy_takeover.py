"""Graceful takeover of haloy-proxy under load: new workers serve before old ones drain.

A supervised proxy (`--supervise --workers 2`) routes to loopback backends while keep-alive
and new-connection clients send requests; takeovers (`haloy-proxy reload` and SIGHUP) replace
the workers. Nothing may fail. A takeover whose new workers cannot load the snapshot reports
the failure and leaves the old workers serving.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Callable
from typing import Any

import websockets

from tests.e2e.loadgen import LoadGen
from tests.e2e.scale import record, size
from tests.fixtures.polling import await_until
from tests.fixtures.proxy import BIN, ProxyProcess
from tests.proxy.http_peers import Backend, route, snapshot

ARGS = ("--no-access-log", "--supervise", "--workers", "2", "--shutdown-timeout", "3")


def _reload(proxy: ProxyProcess) -> subprocess.CompletedProcess[str]:
    """`haloy-proxy reload` as a user types it."""
    return subprocess.run(
        [str(BIN), "reload", "--config-dir", str(proxy.paths.config_dir),
         "--data-dir", str(proxy.data_dir)],
        capture_output=True, text=True, timeout=120, check=False,
    )


async def _status(proxy: ProxyProcess) -> dict[str, Any]:
    return await asyncio.to_thread(proxy.status)


async def _more_requests(load: LoadGen, n: int) -> None:
    target = load.report.sent + n
    await await_until(f"{n} more requests", lambda: load.report.sent >= target)


async def test_takeovers_under_load_drop_nothing(
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory(*ARGS, https=False)
    url = f"http://127.0.0.1:{proxy.http_port}"
    takeovers = int(size(3, 10))
    async with Backend(name="one") as b1, Backend(name="two") as b2:
        reply = await asyncio.to_thread(
            proxy.put_snapshot, snapshot(route("app.test", b1.spec("d1"), b2.spec("d2")))
        )
        assert reply["ok"], reply
        first = await _status(proxy)
        async with LoadGen(url, "app.test", keepalive=2, fresh=2, max_requests=200_000,
                           max_seconds=240) as load:
            for n in range(takeovers):
                await _more_requests(load, 100)
                if n % 2 == 0:
                    run = await asyncio.to_thread(_reload, proxy)
                    assert run.returncode == 0, run.stderr
                    assert f"generation {n + 1} serves" in run.stdout, run.stdout
                else:  # what `systemctl reload haloy-proxy` does
                    proxy.proc.send_signal(signal.SIGHUP)

                    def taken_over(status: dict[str, Any], n: int = n) -> bool:
                        return bool(status["supervisor"]["generation"] == n + 1)

                    await await_until("the SIGHUP takeover",
                                      lambda: asyncio.to_thread(proxy.status), taken_over)
            await _more_requests(load, 100)
        record(f"proxy takeovers under load ({takeovers})", load.report)
        assert load.report.failures == [], load.report.describe_failures()
        status = await _status(proxy)
        assert status["supervisor"]["generation"] == takeovers
        # The new generation serves the same routes, read from the snapshot file.
        assert status["config_hash"] == first["config_hash"]
        await await_until("the old workers to exit", lambda: asyncio.to_thread(proxy.status),
                          lambda s: s["supervisor"]["draining_workers"] == 0)
    assert proxy.stop() == 0


async def test_takeover_that_cannot_start_keeps_the_old_workers(
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory(*ARGS, https=False)
    url = f"http://127.0.0.1:{proxy.http_port}"
    async with Backend() as b1:
        reply = await asyncio.to_thread(proxy.put_snapshot,
                                        snapshot(route("app.test", b1.spec("d1"))))
        assert reply["ok"], reply
        async with LoadGen(url, "app.test", keepalive=1, fresh=1, max_requests=100_000,
                           max_seconds=120) as load:
            await _more_requests(load, 50)
            proxy.snapshot_file.write_text("{ not json")
            run = await asyncio.to_thread(_reload, proxy)
            assert run.returncode != 0
            assert "takeover failed" in run.stderr and "keep serving" in run.stderr, run.stderr
            await _more_requests(load, 50)
        assert load.report.failures == [], load.report.describe_failures()
        status = await _status(proxy)
        assert status["supervisor"]["generation"] == 0 and status["workers"] == 2
    assert proxy.stop() == 0


async def test_websocket_gets_its_grace_then_a_close_frame_on_takeover(
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory(*ARGS, https=False)

    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async with websockets.serve(echo, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        backend = {"address": "127.0.0.1", "port": port, "deployment_id": "w1"}
        reply = await asyncio.to_thread(proxy.put_snapshot, snapshot(route("a.test", backend)))
        assert reply["ok"], reply
        ws = await websockets.connect(f"ws://a.test:{proxy.http_port}/", host="127.0.0.1",
                                      port=proxy.http_port)
        run = await asyncio.to_thread(_reload, proxy)
        assert run.returncode == 0, run.stderr
        # The old worker keeps the tunnel through its grace (--shutdown-timeout 3).
        await ws.send("still there")
        assert await ws.recv() == "still there"
        async with asyncio.timeout(20):
            await ws.wait_closed()
        assert ws.close_code == 1001, ws.close_code
        fresh = await websockets.connect(f"ws://a.test:{proxy.http_port}/", host="127.0.0.1",
                                         port=proxy.http_port)
        await fresh.send("new worker")
        assert await fresh.recv() == "new worker"
        await fresh.close()
    assert proxy.stop() == 0
