"""In-process cost of one proxied request: µs of Python per request, no syscalls.

Feeds a request to `ClientProtocol.data_received` and nginx's response to
`UpstreamProtocol.data_received` with fake transports, N times, and prints ns per request.
Usage: python bench/proxy_micro.py [--headers] [--vary] [--close] [-n N] [--repeat R]

Timings drift with the load of this shared machine; instruction counts do not. To A/B a
hot-path change, run it under `valgrind --tool=callgrind` with --repeat 1 and -n 500, then
-n 2500, and divide the difference of the two totals by 2000; confirm with bench/proxy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

import uvloop

from haloy.proxy.access_log import AccessLog
from haloy.proxy.client import ClientProtocol
from haloy.proxy.metrics import Metrics
from haloy.proxy.service import ProxyService
from haloy.proxy.upstream import UpstreamProtocol
from haloy.wire.snapshot import Backend, Route, Snapshot

PLAIN = b"GET / HTTP/1.1\r\nHost: bench.local\r\n\r\n"
BROWSER = (
    b"GET /index.html?page=1 HTTP/1.1\r\nHost: bench.local\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    b"Chrome/120.0.0.0 Safari/537.36\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    b"*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.9,de;q=0.8\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\nCache-Control: max-age=0\r\n"
    b"Cookie: session=0123456789abcdef0123456789abcdef; theme=dark; _ga=GA1.1.123456789.1700000000"
    b"; consent=yes\r\nReferer: https://bench.local/\r\nSec-Ch-Ua: \"Chromium\";v=\"120\"\r\n"
    b"Sec-Ch-Ua-Mobile: ?0\r\nSec-Ch-Ua-Platform: \"Linux\"\r\nSec-Fetch-Dest: document\r\n"
    b"Sec-Fetch-Mode: navigate\r\nSec-Fetch-Site: same-origin\r\nUpgrade-Insecure-Requests: 1\r\n"
    b"\r\n"
)
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Fri, 27 Nov 2026 03:00:00 GMT\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 35\r\nConnection: keep-alive\r\n\r\n"
    b"hello from the haloy bench backend\n"
)


class FakeTransport:
    """Just enough of asyncio.Transport; counts bytes written."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...
    def is_closing(self) -> bool:
        return False


def run(request: bytes, n: int, vary: bool = False, observe: str = "") -> float:
    """ns per request over n requests on one keep-alive connection and one pooled backend.

    With `vary`, every other request carries a different cookie value, so no head repeats
    its predecessor's field block (the per-connection scan cache never hits).
    """
    loop = uvloop.new_event_loop()
    observers: list[Any] = []
    if "log" in observe:
        observers.append(AccessLog(loop, open(os.devnull, "w")))
    if "metrics" in observe:
        observers.append(Metrics())
    service = ProxyService(loop, observers=tuple(observers))
    for obs in observers:
        if isinstance(obs, Metrics):
            obs.service = service
    backends = (Backend(address="127.0.0.1", port=9, deployment_id="d"),)
    route = Route(app="b", domain="bench.local", backends=backends)
    service.put_snapshot(Snapshot(generation=1, routes=(route,)))
    backend = service.table.entries[0].active[0]
    up = UpstreamProtocol(service, backend)
    up.connection_made(FakeTransport())  # type: ignore[arg-type]
    up.park()
    client = ClientProtocol(service, b"http")
    ct = FakeTransport()
    client.connection_made(ct)  # type: ignore[arg-type]
    feed, answer = client.data_received, up.data_received
    other = request.replace(b"Host:", b"Cookie: v=2\r\nHost:", 1) if vary else request
    for i in range(200):
        feed(request if i & 1 else other)
        answer(RESPONSE)
    t0 = time.perf_counter_ns()
    for i in range(n):
        feed(request if i & 1 else other)
        answer(RESPONSE)
    dt = time.perf_counter_ns() - t0
    assert ct.written == (n + 200) * len(RESPONSE), "responses not forwarded"
    loop.close()
    return dt / n


def run_close(request: bytes, n: int) -> float:
    """ns per connection: accept, one request with Connection: close, answer, close."""
    loop = uvloop.new_event_loop()
    service = ProxyService(loop)
    backends = (Backend(address="127.0.0.1", port=9, deployment_id="d"),)
    route = Route(app="b", domain="bench.local", backends=backends)
    service.put_snapshot(Snapshot(generation=1, routes=(route,)))
    backend = service.table.entries[0].active[0]
    up = UpstreamProtocol(service, backend)
    up.connection_made(FakeTransport())  # type: ignore[arg-type]
    up.park()
    request = request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
    answer = up.data_received
    written = 0

    def one() -> None:
        nonlocal written
        client = ClientProtocol(service, b"http")
        ct = FakeTransport()
        client.connection_made(ct)  # type: ignore[arg-type]
        client.data_received(request)
        answer(RESPONSE)
        client.connection_lost(None)
        written += ct.written

    for _ in range(200):
        one()
    t0 = time.perf_counter_ns()
    for _ in range(n):
        one()
    dt = time.perf_counter_ns() - t0
    assert written >= (n + 200) * (len(RESPONSE) - 10), "responses not forwarded"
    loop.close()
    return dt / n


def main() -> None:
    """Print the median ns per request over --repeat runs."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--headers", action="store_true", help="browser-like ~700-byte heads")
    ap.add_argument("--vary", action="store_true", help="no head repeats the previous one")
    ap.add_argument("--observe", default="", help="'log', 'metrics' or 'log,metrics'")
    ap.add_argument("--close", action="store_true", help="a new connection per request")
    ap.add_argument("-n", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    req = BROWSER if args.headers else PLAIN
    asyncio.set_event_loop_policy(None)
    if args.close:
        times = sorted(run_close(req, args.n) for _ in range(args.repeat))
        print(f"close ({len(req)} B head): median {times[len(times) // 2]:.0f} ns/connection")
        return
    times = sorted(run(req, args.n, args.vary, args.observe) for _ in range(args.repeat))
    print(f"{'browser' if args.headers else 'plain'} head ({len(req)} B"
          f"{', varying' if args.vary else ''}{', ' + args.observe if args.observe else ''}): "
          f"median {times[len(times) // 2]:.0f} ns/request, min {times[0]:.0f}")


if __name__ == "__main__":
    main()
