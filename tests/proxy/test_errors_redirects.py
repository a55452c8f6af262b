"""Errors (404/502/503/504), retries and ejection, redirects, ACME and API special routes."""

from __future__ import annotations

import asyncio
import select
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tests.fixtures.proxy import ProxyProcess
from tests.proxy.http_peers import Backend, Client, Req, route, snapshot


def dead_port() -> int:
    """A loopback port nobody listens on (bound then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_unknown_host_404_and_missing_host_400(haloy_proxy: ProxyProcess) -> None:
    c = await Client.open(haloy_proxy.http_port)
    r = await c.request(host="nothing.test")
    assert r.status == 404 and b"404" in r.body
    await c.send(b"GET / HTTP/1.1\r\n\r\n")
    assert (await c.response()).status == 400


async def test_no_backend_502(haloy_proxy: ProxyProcess) -> None:
    haloy_proxy.put_snapshot(snapshot(route("app.test")))
    c = await Client.open(haloy_proxy.http_port)
    assert (await c.request()).status == 502
    assert (await c.request()).status == 502  # connection still usable


async def test_connect_failure_retries_next_backend_and_ejects(haloy_proxy: ProxyProcess) -> None:
    dead = {"address": "127.0.0.1", "port": dead_port(), "deployment_id": "dead"}
    async with Backend() as be:
        haloy_proxy.put_snapshot(snapshot(route("app.test", dead, be.spec("live"))))
        c = await Client.open(haloy_proxy.http_port)
        for _ in range(6):
            assert (await c.request()).status == 200
        status = haloy_proxy.status()
        by_id = {b["deployment_id"]: b for b in status["routes"][0]["backends"]}
        assert by_id["live"]["requests"] == 6
        assert by_id["dead"]["requests"] == 1  # ejected after its first refusal
        assert status["upstream_errors"]["connect"] == 1


@contextmanager
def blackhole() -> Iterator[int]:
    """A loopback port that never completes a handshake: its accept queue is full.

    Linux drops a SYN to a listener whose accept queue is full (no RST), like a killed
    container's bridge address that nothing answers any more.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    fillers: list[socket.socket] = []
    try:
        while True:  # fill the queue until a connect stays pending
            assert len(fillers) < 16, "could not fill the accept queue"
            s = socket.socket()
            s.setblocking(False)
            fillers.append(s)
            s.connect_ex(("127.0.0.1", port))
            if not select.select([], [s], [], 0.5)[1]:
                break
        yield port
    finally:
        for s in fillers:
            s.close()
        listener.close()


async def test_connect_timeout_retries_next_backend_and_ejects(
    haloy_proxy: ProxyProcess,
) -> None:
    # The default connect timeout (short, for local bridges) applies; nothing was sent yet,
    # so the request moves on to the live backend instead of failing.
    with blackhole() as port:
        hole = {"address": "127.0.0.1", "port": port, "deployment_id": "hole"}
        async with Backend() as be:
            haloy_proxy.put_snapshot(snapshot(route("app.test", hole, be.spec("live"))))
            c = await Client.open(haloy_proxy.http_port)
            for _ in range(4):
                assert (await c.request()).status == 200
            status = haloy_proxy.status()
            by_id = {b["deployment_id"]: b for b in status["routes"][0]["backends"]}
            assert by_id["live"]["requests"] == 4
            assert by_id["hole"]["requests"] == 1  # ejected after its first timeout
            assert status["upstream_errors"]["connect"] == 1


async def test_only_backend_refuses_502(haloy_proxy: ProxyProcess) -> None:
    dead = {"address": "127.0.0.1", "port": dead_port()}
    haloy_proxy.put_snapshot(snapshot(route("app.test", dead)))
    c = await Client.open(haloy_proxy.http_port)
    assert (await c.request()).status == 502


async def test_response_header_timeout_504(proxy_factory: Callable[..., ProxyProcess]) -> None:
    proxy = proxy_factory("--no-access-log", "--response-header-timeout", "0.3", https=False)
    never = asyncio.Event()

    async def silent(req: Req, reader: Any, w: asyncio.StreamWriter) -> None:
        await never.wait()

    async with Backend(silent) as be:
        proxy.put_snapshot(snapshot(route("app.test", be.spec())))
        c = await Client.open(proxy.http_port)
        assert (await c.request()).status == 504


async def test_api_domain_localhost_and_api_down(haloy_proxy: ProxyProcess) -> None:
    async with Backend() as api:
        snap = snapshot(api={"domain": "api.test", "backend": api.spec()})
        del snap["api"]["backend"]["deployment_id"], snap["api"]["backend"]["state"]
        haloy_proxy.put_snapshot(snap)
        c = await Client.open(haloy_proxy.http_port)
        assert (await c.request(host="api.test", path="/v1/x")).json()["target"] == "/v1/x"
        assert (await c.request(host="localhost")).status == 200
        assert (await c.request(host=f"localhost:{haloy_proxy.http_port}")).status == 200
    down = {"domain": "api.test", "backend": {"address": "127.0.0.1", "port": dead_port()}}
    haloy_proxy.put_snapshot(snapshot(api=down, generation=2))
    c = await Client.open(haloy_proxy.http_port)
    assert (await c.request(host="api.test")).status == 503


async def test_alias_redirects_to_canonical_with_path_and_query(haloy_proxy: ProxyProcess) -> None:
    haloy_proxy.put_snapshot(snapshot(route("app.test", aliases=["www.app.test"])))
    c = await Client.open(haloy_proxy.http_port)
    r = await c.request(host="WWW.app.test", path="/a/b?c=d&e")
    assert r.status == 301
    assert r.header("location") == "http://app.test/a/b?c=d&e"
    port = haloy_proxy.http_port
    r = await c.request(host=f"www.app.test:{port}", path="/x")
    assert r.header("location") == f"http://app.test:{port}/x"


async def test_http_to_https_redirect_for_tls_routes(haloy_proxy: ProxyProcess) -> None:
    async with Backend() as be:
        haloy_proxy.put_snapshot(
            snapshot(route("app.test", be.spec(), tls=True), route("plain.test", be.spec()))
        )
        c = await Client.open(haloy_proxy.http_port)
        r = await c.request(path="/login?next=/")
        assert r.status == 301
        assert r.header("location") == f"https://app.test:{haloy_proxy.https_port}/login?next=/"
        assert (await c.request(host="plain.test")).status == 200


async def test_acme_challenge_forwarded_on_http_even_for_tls_routes(
    haloy_proxy: ProxyProcess,
) -> None:
    async with Backend() as acme, Backend() as app:
        haloy_proxy.put_snapshot(
            snapshot(
                route("app.test", app.spec(), tls=True),
                acme_challenge_backend={"address": "127.0.0.1", "port": acme.port},
            )
        )
        c = await Client.open(haloy_proxy.http_port)
        for host in ("app.test", "not-routed.test"):
            r = await c.request(host=host, path="/.well-known/acme-challenge/tok123")
            assert r.status == 200 and r.json()["target"] == "/.well-known/acme-challenge/tok123"
        assert len(acme.requests) == 2 and not app.requests


async def test_limits_414_and_431(haloy_proxy: ProxyProcess) -> None:
    c = await Client.open(haloy_proxy.http_port)
    await c.send(b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await c.response()).status == 414
    assert await c.closed()
    c = await Client.open(haloy_proxy.http_port)
    await c.send(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"b" * 40_000 + b"\r\n\r\n")
    assert (await c.response()).status == 431
    c = await Client.open(haloy_proxy.http_port)
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(400))
    await c.send(b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert (await c.response()).status == 431
