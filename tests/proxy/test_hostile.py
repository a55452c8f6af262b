"""A corpus of hostile and malformed requests against a live proxy.

Each gets the right status or a clean close; a well-behaved client is served after every one;
the proxy's memory comes back to its baseline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.fixtures.proxy import ProxyProcess
from tests.proxy.http_peers import Backend, Client, read_response, route, snapshot

H = b"Host: app.test\r\n"
CLOSE = "close"
# (name, raw bytes, acceptable outcomes: status codes or CLOSE for a close without a response)
CORPUS: list[tuple[str, bytes, set[int | str]]] = [
    ("cl+te", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 4\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", {400}),
    ("te+cl", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n"
     b"Content-Length: 4\r\n\r\n0\r\n\r\n", {400}),
    ("conflicting-cl", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\n"
     b"Content-Length: 4\r\n\r\nabcd", {400}),
    ("cl-not-digits", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1a\r\n\r\na", {400}),
    ("cl-negative", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", {400}),
    ("cl-exponent", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1e3\r\n\r\n", {400}),
    ("cl-overflow", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 99999999999999999999999\r\n\r\n",
     {400}),
    ("chunk-size-garbage", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
     b"zz\r\nhello\r\n0\r\n\r\n", {400}),
    ("chunk-size-overflow", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
     b"ffffffffffffffffffff\r\nx\r\n", {400}),
    ("chunk-data-overrun", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
     b"2\r\nhello\r\n0\r\n\r\n", {400}),
    ("te-not-chunked-last", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, gzip\r\n"
     b"\r\nabc", {400}),
    ("te-unknown", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: foo\r\n\r\nabc", {501}),
    ("obs-fold", b"GET / HTTP/1.1\r\n" + H + b"X-A: 1\r\n  folded\r\n\r\n", {400}),
    ("space-before-colon", b"GET / HTTP/1.1\r\nHost : app.test\r\n\r\n", {400}),
    ("nul-in-value", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n", {400}),
    ("cr-in-value", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n", {400}),
    ("ctl-in-url", b"GET /a\x01b HTTP/1.1\r\n" + H + b"\r\n", {400}),
    ("space-in-url", b"GET /a b HTTP/1.1\r\n" + H + b"\r\n", {400}),
    ("nul-in-method", b"G\x00T / HTTP/1.1\r\n" + H + b"\r\n", {400}),
    ("invalid-method", b"G@T / HTTP/1.1\r\n" + H + b"\r\n", {400}),
    ("invalid-version", b"GET / HTTP/9.7\r\n" + H + b"\r\n", {400, 505}),
    ("garbage-version", b"GET / HTXP/1.1\r\n" + H + b"\r\n", {400}),
    ("http09", b"GET /\r\n\r\n", {400}),
    ("bad-header-name", b"GET / HTTP/1.1\r\n" + H + b"X(y): 1\r\n\r\n", {400}),
    ("double-host", b"GET / HTTP/1.1\r\n" + H + b"Host: evil.test\r\n\r\n", {400}),
    ("missing-host", b"GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", {400}),
    ("connect", b"CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test:443\r\n\r\n", {400, 405}),
    ("tls-on-plain-port", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64, {400}),
    ("long-url", b"GET /" + b"u" * 20_000 + b" HTTP/1.1\r\n" + H + b"\r\n", {414}),
    ("huge-header", b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"b" * 70_000 + b"\r\n\r\n", {431}),
    ("many-headers", b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-%d: v\r\n" % i for i in range(5000))
     + b"\r\n", {431}),
    ("long-header-name", b"GET / HTTP/1.1\r\n" + H + b"X" * 40_000 + b": v\r\n\r\n", {431}),
    ("premature-close-head", b"GET / HTTP/1.1\r\nHo", {CLOSE}),
    ("premature-close-body", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 100\r\n\r\nabc",
     {CLOSE}),
    ("premature-close-chunked", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
     b"5\r\nab", {CLOSE}),
]


async def probe(port: int, raw: bytes) -> int | str:
    """Send `raw`, half-close, and report the status or CLOSE."""
    c = await Client.open(port)
    try:
        try:
            await c.send(raw)
            if c.writer.can_write_eof():
                c.writer.write_eof()
        except OSError:
            pass  # the proxy answered and closed before reading it all: the answer is still read
        try:
            resp = await asyncio.wait_for(read_response(c.reader), 10)
        except (asyncio.IncompleteReadError, ConnectionError):
            return CLOSE
        return resp.status
    finally:
        c.close()


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def test_hostile_corpus(proxy_factory: Callable[..., ProxyProcess]) -> None:
    assert len(CORPUS) >= 30
    proxy = proxy_factory("--no-access-log", "--header-timeout", "0.5", https=False)
    async with Backend() as be:
        proxy.put_snapshot(snapshot(route("app.test", be.spec())))
        good = await Client.open(proxy.http_port)
        assert (await good.request()).status == 200
        baseline = rss_kib(proxy.proc.pid)
        failures = []
        for round_ in range(3):  # repeat: memory must not grow with the number of attacks
            for name, raw, expected in CORPUS:
                try:
                    got = await probe(proxy.http_port, raw)
                except TimeoutError:
                    got = "timeout"
                if got not in expected:
                    failures.append(f"{name}: got {got}, expected {expected}")
                r = await good.request()  # the long-lived client is still served
                assert r.status == 200, name
            if round_ == 0:
                assert not failures, "\n".join(failures)
        assert be.requests[0].target == "/"
        assert all(not q.target.startswith("/smug") for q in be.requests)
        # the proxy returns to its baseline (allow allocator slack, not per-attack growth)
        assert rss_kib(proxy.proc.pid) - baseline < 16 * 1024
        assert proxy.status()["connections"] <= 2


async def test_slowloris_gets_408(proxy_factory: Callable[..., ProxyProcess]) -> None:
    proxy = proxy_factory("--no-access-log", "--header-timeout", "0.3", https=False)
    c = await Client.open(proxy.http_port)
    await c.send(b"GET / HTTP/1.1\r\nHost: app.test\r\nX-Slow: ")
    r = await asyncio.wait_for(c.response(), 10)
    assert r.status == 408
    assert await c.closed()
    idle = await Client.open(proxy.http_port)  # a silent connection is closed too
    assert await idle.closed()


async def test_pipelined_flood_answered_in_order(haloy_proxy: ProxyProcess) -> None:
    async with Backend() as be:
        haloy_proxy.put_snapshot(snapshot(route("app.test", be.spec())))
        c = await Client.open(haloy_proxy.http_port)
        n = 2000
        await c.send(b"".join(b"GET /%d HTTP/1.1\r\n%b\r\n" % (i, H) for i in range(n)))
        for i in range(n):
            r = await c.response()
            assert r.json()["target"] == f"/{i}"
        assert be.connections == 1


async def test_error_answer_survives_a_client_still_sending(
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    """A client still uploading when it is refused reads the refusal, not a reset (the proxy
    half-closes and drops the rest of the input instead of closing on unread data)."""
    proxy = proxy_factory("--no-access-log", https=False)
    for _ in range(5):
        c = await Client.open(proxy.http_port)
        head = b"POST / HTTP/1.1\r\n" + H + b"X-Big: " + b"b" * 70_000 + b"\r\n"
        await c.send(head)
        await asyncio.sleep(0.05)  # the proxy has answered 431 by now
        for _ in range(64):  # the client does not read yet: 1 MiB more of "headers"
            await c.send(b"X-More: " + b"m" * 16_000 + b"\r\n")
        r = await asyncio.wait_for(c.response(), 10)
        assert r.status == 431
        c.close()
    assert proxy.proc.poll() is None
