"""`haloy-proxy reload`, the supervisor's takeover edges, and control socket ownership."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from haloy.proxy.control import ControlServer
from haloy.proxy.takeover import worker_args
from haloy.wire.control import send_control
from tests.fixtures.proxy import BIN, ProxyProcess
from tests.proxy.http_peers import Backend, Client, Req, response_bytes, route, snapshot


def _reload(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), "reload", "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=120, check=False)


def test_reload_without_a_supervisor_says_how_to_get_one(
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory("--no-access-log", https=False)
    run = _reload(proxy.data_dir)
    assert run.returncode != 0
    assert "unknown op 'takeover'" in run.stderr and "--supervise" in run.stderr, run.stderr
    assert proxy.status()["ok"]  # still serving


def test_reload_with_no_proxy_running(tmp_path: Path) -> None:
    run = _reload(tmp_path)
    assert run.returncode != 0
    assert "cannot reach haloy-proxy" in run.stderr, run.stderr


def test_takeover_with_metrics_and_https_listeners(
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        metrics_port = s.getsockname()[1]
    proxy = proxy_factory("--no-access-log", "--supervise",
                          "--metrics-listen", f"127.0.0.1:{metrics_port}")
    assert proxy.https_port is not None
    run = _reload(proxy.data_dir)
    assert run.returncode == 0, run.stderr
    status = proxy.status()
    assert status["supervisor"]["generation"] == 1
    assert status["listen"] == {"http": proxy.http_port, "https": proxy.https_port}
    resp = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5, trust_env=False)
    assert resp.status_code == 200
    resp = httpx.get(f"http://127.0.0.1:{proxy.http_port}/", headers={"host": "none.test"},
                     timeout=5, trust_env=False)
    assert resp.status_code == 404
    assert proxy.stop() == 0
    assert not proxy.control_socket.exists()


async def test_old_worker_finishes_in_flight_requests_with_connection_close(
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    release = asyncio.Event()
    arrived = asyncio.Event()

    async def slow(req: Req, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        if req.target == "/slow":
            arrived.set()
            await release.wait()
        w.write(response_bytes(200, req.target.encode()))

    proxy = proxy_factory("--no-access-log", "--supervise", https=False)
    async with Backend(slow) as be:
        assert (await asyncio.to_thread(
            proxy.put_snapshot, snapshot(route("app.test", be.spec("d1")))))["ok"]
        idle = await Client.open(proxy.http_port)  # keep-alive, between requests
        assert (await idle.request(path="/first")).status == 200
        busy = await Client.open(proxy.http_port)
        await busy.send(b"GET /slow HTTP/1.1\r\nHost: app.test\r\n\r\n")
        await asyncio.wait_for(arrived.wait(), 10)
        run = await asyncio.to_thread(_reload, proxy.data_dir)
        assert run.returncode == 0, run.stderr
        status = await asyncio.to_thread(proxy.status)
        # The old worker's in-flight request still counts (haloyd waits for idle backends).
        assert status["supervisor"]["draining_workers"] == 1
        assert status["routes"][0]["backends"][0]["active_connections"] == 1
        assert await idle.closed()  # idle keep-alive connections are closed
        release.set()
        resp = await busy.response()
        assert resp.status == 200 and resp.body == b"/slow"
        # Its head had not gone out when the drain began: it says close, and the proxy closes.
        assert resp.header("connection") == "close"
        assert await busy.closed()
        fresh = await Client.open(proxy.http_port)
        assert (await fresh.request(path="/after")).status == 200
        fresh.close()
    assert proxy.stop() == 0


async def test_an_old_control_server_never_removes_its_successors_socket(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"

    def answering(name: str) -> Callable[[dict[str, Any]], Any]:
        async def handler(request: dict[str, Any]) -> dict[str, Any]:
            return {"ok": True, "name": name}

        return handler

    old, new = ControlServer(path, answering("old")), ControlServer(path, answering("new"))
    await old.start()
    assert (await send_control(path, {"op": "x"}))["name"] == "old"
    await new.start()  # renamed over the old path: new connections reach the new server
    assert (await send_control(path, {"op": "x"}))["name"] == "new"
    await old.close()
    assert (await send_control(path, {"op": "x"}))["name"] == "new"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    await new.close()
    assert not path.exists()


def test_worker_args_drop_supervisor_flags() -> None:
    argv = ["--data-dir", "/d", "--workers", "2", "--supervise", "--workers=3",
            "--http-listen", "127.0.0.1:80"]
    assert worker_args(argv) == ["--data-dir", "/d", "--http-listen", "127.0.0.1:80"]
