"""Prometheus metrics: counters fed by finished exchanges, rendered as text on demand."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections import Counter
from typing import Any

from haloy.proxy.exchange import Exchange

# Latency buckets (seconds): sub-millisecond proxying up to the 60 s response timeout.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60)
_CLASSES = ("0xx", "1xx", "2xx", "3xx", "4xx", "5xx")


class Metrics:
    """Request counts by route and status class and a latency histogram."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str]] = Counter()
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.latency_sum = 0.0
        self.latency_count = 0
        self.service: Any = None

    def __call__(self, ex: Exchange) -> None:
        """Count `ex` (an observer of ProxyService)."""
        app = ex.entry.route.app if ex.entry is not None else ("api" if ex.kind == 1 else "-")
        self.requests[(app, _CLASSES[min(ex.status // 100, 5)])] += 1
        if self.service is not None:
            took = self.service.now() - ex.started
            self.buckets[bisect.bisect_left(BUCKETS, took)] += 1
            self.latency_sum += took
            self.latency_count += 1

    def render(self) -> str:
        """The Prometheus text exposition (version 0.0.4)."""
        out = [
            "# HELP haloy_proxy_requests_total Requests answered, by route and status class.",
            "# TYPE haloy_proxy_requests_total counter",
        ]
        for (app, cls), n in sorted(self.requests.items()):
            out.append(f'haloy_proxy_requests_total{{app="{app}",code="{cls}"}} {n}')
        out += [
            "# HELP haloy_proxy_request_duration_seconds Time from request head to response end.",
            "# TYPE haloy_proxy_request_duration_seconds histogram",
        ]
        total = 0
        for bound, n in zip((*BUCKETS, "+Inf"), self.buckets, strict=True):
            total += n
            out.append(f'haloy_proxy_request_duration_seconds_bucket{{le="{bound}"}} {total}')
        out.append(f"haloy_proxy_request_duration_seconds_sum {self.latency_sum:.6f}")
        out.append(f"haloy_proxy_request_duration_seconds_count {self.latency_count}")
        svc = self.service
        if svc is not None:
            out += [
                "# TYPE haloy_proxy_client_connections gauge",
                f"haloy_proxy_client_connections {len(svc.clients)}",
                "# TYPE haloy_proxy_upstream_errors_total counter",
            ]
            for kind, n in sorted(svc.upstream_errors.items()):
                out.append(f'haloy_proxy_upstream_errors_total{{kind="{kind}"}} {n}')
            out.append("# TYPE haloy_proxy_backend_active_connections gauge")
            out.append("# TYPE haloy_proxy_backend_draining gauge")
            for entry in svc.table.entries:
                for b in entry.backends:
                    labels = (
                        f'app="{entry.route.app}",backend="{b.address}:{b.port}",'
                        f'deployment_id="{b.deployment_id}"'
                    )
                    out.append(
                        f"haloy_proxy_backend_active_connections{{{labels}}} "
                        f"{b.active_connections}"
                    )
                    out.append(f"haloy_proxy_backend_draining{{{labels}}} {int(b.draining)}")
        return "\n".join(out) + "\n"


class MetricsServer:
    """A minimal HTTP/1.0 endpoint serving `GET /metrics` (no keep-alive, loopback use)."""

    def __init__(self, metrics: Metrics, listen: tuple[str, int]) -> None:
        self.metrics = metrics
        self.listen = listen
        self.server: asyncio.Server | None = None
        self.reuse_port = False  # supervised workers (and a takeover's overlap) share the port

    async def start(self) -> None:
        """Bind and serve."""
        self.server = await asyncio.start_server(self._serve, self.listen[0], self.listen[1],
                                                 reuse_port=self.reuse_port or None)

    @property
    def port(self) -> int:
        """The bound port."""
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop serving."""
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 1.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                line = await reader.readline()
                while (await reader.readline()).strip():
                    pass
            if line.split(b" ")[1:2] == [b"/metrics"]:
                body = self.metrics.render().encode()
                head = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
            else:
                body, head = b"not found\n", b"HTTP/1.0 404 Not Found\r\n"
            writer.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
            await writer.drain()
        except (TimeoutError, ConnectionError, ValueError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
