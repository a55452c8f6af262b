"""HTTP/1.1 forwarding through a live haloy-proxy to loopback backends."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.fixtures.proxy import ProxyProcess
from tests.proxy.http_peers import Backend, Client, Req, response_bytes, route, snapshot


async def test_get_keepalive_reuses_upstream(haloy_proxy: ProxyProcess) -> None:
    async with Backend() as be:
        assert haloy_proxy.put_snapshot(snapshot(route("app.test", be.spec())))["ok"]
        c = await Client.open(haloy_proxy.http_port)
        for i in range(5):
            r = await c.request(path=f"/p/{i}?q=1")
            assert r.status == 200
            assert r.json()["target"] == f"/p/{i}?q=1"
        c.close()
        assert be.connections == 1  # pooled upstream keep-alive


async def test_host_lookup_is_case_insensitive_port_and_dot_tolerant(
    haloy_proxy: ProxyProcess,
) -> None:
    async with Backend() as be:
        haloy_proxy.put_snapshot(snapshot(route("app.test", be.spec())))
        c = await Client.open(haloy_proxy.http_port)
        for host in ("APP.Test", f"app.test:{haloy_proxy.http_port}", "app.test."):
            assert (await c.request(host=host)).status == 200
        assert (await c.request(host="other.test")).status == 404


async def test_forwarded_headers_and_hop_by_hop(haloy_proxy: ProxyProcess) -> None:
    async with Backend() as be:
        haloy_proxy.put_snapshot(snapshot(route("app.test", be.spec())))
        c = await Client.open(haloy_proxy.http_port)
        r = await c.request(
            headers=[
                ("X-Forwarded-For", "10.0.0.1"),
                ("X-Real-IP", "6.6.6.6"),
                ("X-Forwarded-Proto", "https"),
                ("Connection", "keep-alive, X-Secret"),
                ("X-Secret", "s"),
                ("Keep-Alive", "timeout=5"),
                ("TE", "trailers"),
                ("Proxy-Authorization", "Basic x"),
                ("X-App", "kept"),
            ]
        )
        seen = {k.lower(): v for k, v in r.json()["headers"]}
        # The client's forwarding fields are replaced by what the proxy saw.
        assert seen["x-forwarded-for"] == "127.0.0.1"
        assert seen["x-real-ip"] == "127.0.0.1"
        assert seen["x-forwarded-proto"] == "http"
        assert seen["x-forwarded-host"] == "app.test"
        assert seen["host"] == "app.test"
        assert seen["x-app"] == "kept"
        for gone in ("connection", "x-secret", "keep-alive", "te", "proxy-authorization"):
            assert gone not in seen


async def test_request_bodies_content_length_and_chunked_with_trailers(
    haloy_proxy: ProxyProcess,
) -> None:
    async with Backend() as be:
        haloy_proxy.put_snapshot(snapshot(route("app.test", be.spec())))
        c = await Client.open(haloy_proxy.http_port)
        r = await c.request("POST", body=b"x" * 100_000)
        assert r.json()["body"] == "x" * 100_000
        await c.send(
            b"POST /c HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n"
            b"Trailer: X-Sum\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n"
        )
        r = await c.response()
        assert r.json()["body"] == "hello world"
        assert r.json()["trailers"] == [["X-Sum", "42"]]


async def _streaming(req: Req, reader: Any, w: asyncio.StreamWriter) -> bool:
    if req.target == "/chunked":
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for part in (b"one", b"two", b"three"):
            w.write(b"%x\r\n%b\r\n" % (len(part), part))
            await w.drain()
        w.write(b"0\r\nX-Done: yes\r\n\r\n")
        return False
    if req.target == "/close":
        w.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-eof")
        return True
    if req.target == "/head":
        w.write(response_bytes(200, b"", [("Content-Length", "1234")]))
        return False
    w.write(response_bytes(200, b"ok"))
    return False


async def test_response_framings_and_head(haloy_proxy: ProxyProcess) -> None:
    async with Backend(_streaming) as be:
        haloy_proxy.put_snapshot(snapshot(route("app.test", be.spec())))
        c = await Client.open(haloy_proxy.http_port)
        r = await c.request(path="/chunked")
        assert (r.body, r.trailers) == (b"onetwothree", [("X-Done", "yes")])
        r = await c.request("HEAD", path="/head")
        assert r.header("content-length") == "1234"
        assert (await c.request(path="/x")).body == b"ok"  # still in step after HEAD
        r = await c.request(path="/close")
        assert r.body == b"until-eof"
        assert await c.closed()


async def test_http10_client(haloy_proxy: ProxyProcess) -> None:
    async with Backend() as be:
        haloy_proxy.put_snapshot(snapshot(route("app.test", be.spec())))
        c = await Client.open(haloy_proxy.http_port)
        r = await c.request(version="HTTP/1.0")
        assert r.status == 200 and r.json()["version"] == "HTTP/1.0"
        assert await c.closed()


async def test_expect_100_continue(haloy_proxy: ProxyProcess) -> None:
    async with Backend() as be:
        # The backend reads the body only after sending 100: write that one by hand.
        async def handler(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            assert b"expect: 100-continue" in head.lower()
            w.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = await reader.readexactly(5)
            w.write(response_bytes(200, b"got " + body))
            await w.drain()
            w.close()

        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        spec = {**be.spec(), "port": port}
        haloy_proxy.put_snapshot(snapshot(route("app.test", spec)))
        c = await Client.open(haloy_proxy.http_port)
        await c.send(
            b"PUT / HTTP/1.1\r\nHost: app.test\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
        )
        interim = await c.response()
        assert interim.status == 100
        await c.send(b"hello")
        final = await c.response()
        assert (final.status, final.body) == (200, b"got hello")
        server.close()


async def test_pipelined_requests_answered_in_order(haloy_proxy: ProxyProcess) -> None:
    async def slow_first(req: Req, reader: Any, w: asyncio.StreamWriter) -> None:
        if req.target == "/0":
            await asyncio.sleep(0.05)  # the backend, not the test, is slow
        w.write(response_bytes(200, req.target.encode()))

    async with Backend(slow_first) as be:
        haloy_proxy.put_snapshot(snapshot(route("app.test", be.spec())))
        c = await Client.open(haloy_proxy.http_port)
        await c.send(b"".join(b"GET /%d HTTP/1.1\r\nHost: app.test\r\n\r\n" % i for i in range(20)))
        bodies = [(await c.response()).body for _ in range(20)]
        assert bodies == [b"/%d" % i for i in range(20)]


async def test_large_response_to_slow_reader_is_streamed(haloy_proxy: ProxyProcess) -> None:
    size = 32 * 1024 * 1024

    async def big(req: Req, reader: Any, w: asyncio.StreamWriter) -> None:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        block = b"z" * 65536
        for _ in range(size // len(block)):
            w.write(block)
            await w.drain()

    async with Backend(big) as be:
        haloy_proxy.put_snapshot(snapshot(route("app.test", be.spec())))
        c = await Client.open(haloy_proxy.http_port)
        await c.send(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
        await c.reader.readuntil(b"\r\n\r\n")
        got = 0
        while got < size:
            got += len(await c.reader.read(1 << 20))
            await asyncio.sleep(0)  # read slowly relative to the backend
        assert got == size
        assert (await c.request()).status == 200


async def test_close_request_gets_connection_close_response(haloy_proxy: ProxyProcess) -> None:
    # The backend connection stays keep-alive (pooled), so its "Connection: keep-alive" must
    # not reach a client the proxy is about to close on (wrk and browsers would reuse it).
    async def keepalive_backend(req: Req, reader: Any, w: asyncio.StreamWriter) -> None:
        if req.header("expect"):
            w.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = b"" if req.method == "HEAD" else b"ok"
        w.write(response_bytes(200, body, [("Content-Length", "2"),
                                            ("Connection", "keep-alive"),
                                            ("Keep-Alive", "timeout=5")]))

    async with Backend(keepalive_backend) as be:
        haloy_proxy.put_snapshot(snapshot(route("app.test", be.spec())))
        for method, headers in (
            ("GET", [("Connection", "close")]),
            ("HEAD", [("Connection", "close")]),
            ("POST", [("Connection", "close"), ("Expect", "100-continue")]),
        ):
            c = await Client.open(haloy_proxy.http_port)
            r = await c.request(method, headers=headers, body=b"x" if method == "POST" else None)
            if r.status == 100:
                r = await c.response()
            assert r.status == 200 and r.header("connection") == "close"
            assert r.header("keep-alive") is None
            assert await c.closed()
        c = await Client.open(haloy_proxy.http_port)
        r = await c.request(version="HTTP/1.0")
        assert r.header("connection") == "close" and await c.closed()
        c = await Client.open(haloy_proxy.http_port)
        r = await c.request()  # keep-alive clients get the backend's head as received
        assert r.header("connection") == "keep-alive"


async def test_repeated_field_blocks_reuse_the_scan_only_when_identical(
    haloy_proxy: ProxyProcess,
) -> None:
    """The per-connection field-block cache: same fields → same Host/framing; any change rescans."""
    async with Backend() as be:
        haloy_proxy.put_snapshot(snapshot(route("app.test", be.spec())))
        c = await Client.open(haloy_proxy.http_port)
        for i, method in enumerate(("POST", "PUT", "POST")):  # identical field blocks
            body = b"ab%d" % i
            r = await c.request(method=method, path=f"/r/{i}", headers=[("X-App", "a")], body=body)
            got = r.json()
            assert (got["method"], got["target"], got["body"]) == (method, f"/r/{i}", f"ab{i}")
        # One more field, a hop-by-hop one: rescanned and rewritten, not served from the cache.
        r = await c.request(path="/hop", headers=[("X-App", "a"), ("Connection", "X-App")])
        seen = {k.lower() for k, _ in r.json()["headers"]}
        assert "x-app" not in seen and "connection" not in seen
        # A second Host after a cached head is still a 400.
        r = await c.request(path="/two", headers=[("X-App", "a"), ("Host", "app.test")])
        assert r.status == 400
        c.close()
