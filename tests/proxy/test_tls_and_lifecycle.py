"""HTTPS termination, graceful shutdown, access log, metrics and multiple workers."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trustme

from tests.certs.tls_peer import place_cert
from tests.fixtures.proxy import ProxyProcess
from tests.proxy.http_peers import Backend, Client, Req, response_bytes, route, snapshot


async def test_https_with_sni_and_forwarded_proto(
    tmp_path: Path, proxy_factory: Callable[..., ProxyProcess]
) -> None:
    ca = trustme.CA()
    place_cert(ca, tmp_path / "certs", "app.test")
    proxy = proxy_factory("--no-access-log", data_dir=tmp_path)
    assert proxy.https_port
    async with Backend() as be:
        proxy.put_snapshot(snapshot(route("app.test", be.spec(), tls=True)))
        ctx = ssl.create_default_context()
        ca.configure_trust(ctx)
        c = await Client.open(proxy.https_port, ssl=ctx, server_hostname="app.test")
        for _ in range(3):
            r = await c.request()
            seen = {k.lower(): v for k, v in r.json()["headers"]}
            assert seen["x-forwarded-proto"] == "https"
        assert be.connections == 1
        # a certificate placed later is served after reload_certs
        place_cert(ca, tmp_path / "certs", "late.test")
        assert proxy.reload_certs() == {"ok": True, "certificates": 2}
        proxy.put_snapshot(snapshot(route("late.test", be.spec(), tls=True), generation=2))
        c2 = await Client.open(proxy.https_port, ssl=ctx, server_hostname="late.test")
        assert (await c2.request(host="late.test")).status == 200


async def test_sigterm_finishes_in_flight_then_exits(
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory("--no-access-log", https=False)
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(req: Req, reader: Any, w: asyncio.StreamWriter) -> None:
        if req.target == "/slow":
            entered.set()
            await release.wait()
        w.write(response_bytes(200, b"finished"))

    async with Backend(slow) as be:
        proxy.put_snapshot(snapshot(route("app.test", be.spec())))
        idle = await Client.open(proxy.http_port)
        assert (await idle.request()).status == 200  # keep-alive, between requests
        c = await Client.open(proxy.http_port)
        await c.send(b"GET /slow HTTP/1.1\r\nHost: app.test\r\n\r\n")
        await entered.wait()
        proxy.proc.send_signal(15)
        assert await idle.closed()  # idle keep-alive connections are closed first
        with socket.socket() as s:  # no longer accepting
            assert s.connect_ex(("127.0.0.1", proxy.http_port)) != 0
        release.set()
        assert (await c.response()).body == b"finished"
        assert await asyncio.to_thread(proxy.proc.wait, 15) == 0


async def test_access_log_and_metrics(proxy_factory: Callable[..., ProxyProcess]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        mport = s.getsockname()[1]
    proxy = proxy_factory("--access-log", "--metrics-listen", f"127.0.0.1:{mport}", https=False)
    async with Backend() as be:
        proxy.put_snapshot(snapshot(route("app.test", be.spec("d1"))))
        c = await Client.open(proxy.http_port)
        assert (await c.request(path="/logged?x=1")).status == 200
        assert (await c.request(host="nope.test")).status == 404
        r, w = await asyncio.open_connection("127.0.0.1", mport)
        w.write(b"GET /metrics HTTP/1.0\r\n\r\n")
        text = (await r.read()).decode()
        assert 'haloy_proxy_requests_total{app="app",code="2xx"} 1' in text
        assert 'haloy_proxy_requests_total{app="-",code="4xx"} 1' in text
        assert "haloy_proxy_request_duration_seconds_count 2" in text
        assert "haloy_proxy_client_connections 1" in text
    proxy.stop()
    lines = [json.loads(line) for line in proxy.logs().splitlines() if line.startswith("{")]
    first = next(x for x in lines if x["path"] == "/logged?x=1")
    assert first["status"] == 200 and first["host"] == "app.test"
    assert first["deployment_id"] == "d1" and first["backend"] == f"127.0.0.1:{be.port}"
    assert first["method"] == "GET" and first["bytes"] > 0 and first["duration"] >= 0


async def test_two_workers_share_the_port_and_get_every_snapshot(
    tmp_path: Path, proxy_factory: Callable[..., ProxyProcess]
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from tests.fixtures.proxy import start_proxy

    # --workers needs a fixed port; the fixture's 127.0.0.1:0 is overridden by the later flag
    proxy = start_proxy(tmp_path, "--no-access-log", "--workers", "2",
                        "--http-listen", f"127.0.0.1:{port}", https=False)
    try:
        async with Backend() as be:
            reply = proxy.put_snapshot(snapshot(route("app.test", be.spec()), generation=4))
            assert reply["ok"] and reply["generation"] == 4
            clients = [await Client.open(port) for _ in range(8)]
            for c in clients:
                assert (await c.request()).status == 200
            status = proxy.status()
            assert status["workers"] == 2 and status["generation"] == 4
            assert status["routes"][0]["backends"][0]["requests"] == 8
    finally:
        assert proxy.stop() == 0


async def test_wss_tunnel_and_acme_on_the_https_port(
    tmp_path: Path, proxy_factory: Callable[..., ProxyProcess]
) -> None:
    import websockets

    ca = trustme.CA()
    place_cert(ca, tmp_path / "certs", "app.test")
    proxy = proxy_factory("--no-access-log", data_dir=tmp_path)
    assert proxy.https_port

    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async with websockets.serve(echo, "127.0.0.1", 0) as server, Backend() as acme:
        port = next(iter(server.sockets)).getsockname()[1]
        proxy.put_snapshot(
            snapshot(
                route("app.test", {"address": "127.0.0.1", "port": port}, tls=True),
                acme_challenge_backend={"address": "127.0.0.1", "port": acme.port},
            )
        )
        ctx = ssl.create_default_context()
        ca.configure_trust(ctx)
        url = f"wss://app.test:{proxy.https_port}/ws"
        async with websockets.connect(
            url, ssl=ctx, host="127.0.0.1", port=proxy.https_port, server_hostname="app.test"
        ) as ws:
            await ws.send("over tls")
            assert await ws.recv() == "over tls"
        c = await Client.open(proxy.https_port, ssl=ctx, server_hostname="app.test")
        r = await c.request(path="/.well-known/acme-challenge/t")
        assert r.status == 200 and r.json()["target"] == "/.well-known/acme-challenge/t"
