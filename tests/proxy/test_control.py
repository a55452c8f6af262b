"""The control socket: put_snapshot, status, reload_certs, rejection, permissions, boot file."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Callable
from typing import Any

from haloy.proxy.control_client import send_control
from haloy.proxy.snapshot import parse_snapshot
from tests.fixtures.proxy import ProxyProcess
from tests.proxy.http_peers import Backend, Client, Req, response_bytes, route, snapshot


async def test_put_snapshot_and_status(haloy_proxy: ProxyProcess) -> None:
    async with Backend() as be:
        snap = snapshot(route("app.test", be.spec("01A")), generation=7)
        reply = haloy_proxy.put_snapshot(snap)
        assert reply == {
            "ok": True,
            "config_hash": parse_snapshot(snap).config_hash,
            "generation": 7,
        }
        c = await Client.open(haloy_proxy.http_port)
        await c.request()
        status = await send_control(haloy_proxy.control_socket, {"op": "status"})
        assert status["ok"] and status["generation"] == 7
        assert status["config_hash"] == reply["config_hash"]
        assert status["uptime"] >= 0
        (r,) = status["routes"]
        assert (r["app"], r["domain"]) == ("app", "app.test")
        (b,) = r["backends"]
        assert b["deployment_id"] == "01A" and b["state"] == "active"
        assert b["requests"] == 1 and b["active_connections"] == 0 and b["idle"] is True


def test_control_socket_is_0600(haloy_proxy: ProxyProcess) -> None:
    mode = haloy_proxy.control_socket.stat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600


def test_invalid_snapshot_rejected_old_kept(haloy_proxy: ProxyProcess) -> None:
    good = snapshot(route("app.test", {"address": "127.0.0.1", "port": 9}), generation=3)
    assert haloy_proxy.put_snapshot(good)["ok"]
    bad = snapshot(route("app.test", {"address": "127.0.0.1", "port": 70000}), generation=4)
    reply = haloy_proxy.put_snapshot(bad, write_file=False)
    assert reply["ok"] is False and "port" in reply["error"]
    dup = snapshot(route("app.test"), route("app.test"), generation=5)
    assert "claimed" in haloy_proxy.put_snapshot(dup, write_file=False)["error"]
    assert haloy_proxy.status()["generation"] == 3
    assert haloy_proxy.control({"op": "nope"})["ok"] is False
    assert haloy_proxy.control({"op": "put_snapshot"})["ok"] is False


def test_reload_certs(haloy_proxy: ProxyProcess) -> None:
    reply = haloy_proxy.reload_certs()
    assert reply == {"ok": True, "certificates": 0}


async def test_boots_from_snapshot_file(proxy_factory: Callable[..., ProxyProcess]) -> None:
    async with Backend() as be:
        first = proxy_factory("--no-access-log", https=False)
        first.put_snapshot(snapshot(route("app.test", be.spec()), generation=9))
        first.stop()
        second = proxy_factory("--no-access-log", https=False)
        assert second.status()["generation"] == 9
        c = await Client.open(second.http_port)
        assert (await c.request()).status == 200


async def test_in_flight_request_keeps_its_table(haloy_proxy: ProxyProcess) -> None:
    release = asyncio.Event()

    async def slow(req: Req, reader: Any, w: asyncio.StreamWriter) -> None:
        await release.wait()
        w.write(response_bytes(200, b"old"))

    async with Backend(slow) as old, Backend() as new:
        haloy_proxy.put_snapshot(snapshot(route("app.test", old.spec("o")), generation=1))
        c = await Client.open(haloy_proxy.http_port)
        await c.send(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
        while not old.requests:
            await asyncio.sleep(0.01)  # wait until the request reached the old backend
        await asyncio.to_thread(
            haloy_proxy.put_snapshot,
            snapshot(route("app.test", new.spec("n")), generation=2),
        )
        release.set()
        assert (await c.response()).body == b"old"
        assert (await c.request()).status == 200
        assert len(new.requests) == 1
