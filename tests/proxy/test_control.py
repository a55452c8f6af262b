"""The control socket: put_snapshot, status, reload_certs, rejection, permissions, boot file,
malformed and idle connections."""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from haloy.proxy.control import ControlServer
from haloy.wire.control import LINE_LIMIT, send_control
from haloy.wire.snapshot import parse_snapshot
from tests.fixtures.polling import await_until
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
        await await_until("the request to reach the old backend", lambda: old.requests,
                          interval=0.01)
        await asyncio.to_thread(
            haloy_proxy.put_snapshot,
            snapshot(route("app.test", new.spec("n")), generation=2),
        )
        release.set()
        assert (await c.response()).body == b"old"
        assert (await c.request()).status == 200
        assert len(new.requests) == 1


async def _echo(request: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "op": request.get("op")}


@asynccontextmanager
async def _control_server(path: Path, **kwargs: Any) -> AsyncIterator[ControlServer]:
    server = ControlServer(path, _echo, **kwargs)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


async def _ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: bytes) -> Any:
    writer.write(line + b"\n")
    await writer.drain()
    async with asyncio.timeout(10):
        reply = await reader.readline()
    assert reply.endswith(b"\n"), f"no reply line to {line[:40]!r}: {reply[:200]!r}"
    return json.loads(reply)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        # json's decoder recurses per level: this raised RecursionError, not ValueError.
        (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
        (b'{"op":' * 50_000 + b"1" + b"}" * 50_000, "nested too deeply"),
        (b'{"op": "status"', "invalid JSON"),
        (b"\xff\xfe", "invalid JSON"),
        (b'["op", "status"]', "a request is a JSON object"),
    ],
    ids=["deep-arrays", "deep-objects", "truncated", "not-utf8", "not-an-object"],
)
async def test_undecodable_request_gets_an_error_reply_and_the_connection_stays_usable(
    tmp_path: Path, line: bytes, reason: str
) -> None:
    path = tmp_path / "c.sock"
    async with _control_server(path):
        reader, writer = await asyncio.open_unix_connection(str(path), limit=LINE_LIMIT)
        try:
            reply = await _ask(reader, writer, line)
            assert reply["ok"] is False and reason in reply["error"]
            assert await _ask(reader, writer, b'{"op":"status"}') == {"ok": True, "op": "status"}
        finally:
            writer.close()


async def test_an_over_long_request_line_gets_an_error_reply_then_close(tmp_path: Path) -> None:
    path = tmp_path / "c.sock"
    async with _control_server(path):
        reader, writer = await asyncio.open_unix_connection(str(path), limit=LINE_LIMIT)
        try:
            writer.write(b" " * (LINE_LIMIT + 1) + b"\n")
            async with asyncio.timeout(10):
                reply = json.loads(await reader.readline())
                assert reply["ok"] is False and "longer than" in reply["error"]
                assert await reader.read() == b""  # the rest of that line cannot be framed
        finally:
            writer.close()


async def test_an_idle_control_connection_is_closed(tmp_path: Path) -> None:
    path = tmp_path / "c.sock"
    async with _control_server(path, idle_timeout=0.2):
        reader, writer = await asyncio.open_unix_connection(str(path))
        try:
            assert await _ask(reader, writer, b'{"op":"status"}') == {"ok": True, "op": "status"}
            async with asyncio.timeout(10):  # a bound for a broken build, not the timeout tested
                assert await reader.read() == b""
        finally:
            writer.close()
