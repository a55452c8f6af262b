"""Prometheus metrics: counters fed by finished exchanges, rendered as text on demand.

The text is written by prometheus_client's exposition (text format 0.0.4), which escapes label
values as the format requires (backslash, double quote and line feed), so an app name or
deployment id can never end a sample early and add series of its own.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from haloy.proxy.exchange import Exchange

# Latency buckets (seconds): sub-millisecond proxying up to the 60 s response timeout.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60)
_BUCKET_LABELS = (*(str(float(b)) for b in BUCKETS), "+Inf")  # `le` values: 1.0, not 1
_CLASSES = ("0xx", "1xx", "2xx", "3xx", "4xx", "5xx")
_BACKEND_LABELS = ("app", "backend", "deployment_id")


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
        return generate_latest(self).decode()

    def collect(self) -> Iterator[Metric]:
        """The metric families (prometheus_client's collector protocol)."""
        requests = CounterMetricFamily(
            "haloy_proxy_requests", "Requests answered, by route and status class.",
            labels=("app", "code"),
        )
        for (app, cls), n in sorted(self.requests.items()):
            requests.add_metric((app, cls), n)
        yield requests
        cumulative, total = [], 0
        for bound, n in zip(_BUCKET_LABELS, self.buckets, strict=True):
            total += n
            cumulative.append((bound, float(total)))
        duration = HistogramMetricFamily(
            "haloy_proxy_request_duration_seconds", "Time from request head to response end."
        )
        duration.add_metric((), cumulative, sum_value=self.latency_sum)
        yield duration
        svc = self.service
        if svc is None:
            return
        yield GaugeMetricFamily(
            "haloy_proxy_client_connections", "Client connections open now.",
            value=len(svc.clients),
        )
        errors = CounterMetricFamily(
            "haloy_proxy_upstream_errors", "Backend failures, by kind.", labels=("kind",)
        )
        for kind, n in sorted(svc.upstream_errors.items()):
            errors.add_metric((kind,), n)
        yield errors
        active = GaugeMetricFamily(
            "haloy_proxy_backend_active_connections",
            "In-flight requests plus open tunnels, by backend.", labels=_BACKEND_LABELS,
        )
        draining = GaugeMetricFamily(
            "haloy_proxy_backend_draining", "1 while a backend drains, by backend.",
            labels=_BACKEND_LABELS,
        )
        for entry in svc.table.entries:
            for b in entry.backends:
                labels = (entry.route.app, f"{b.address}:{b.port}", b.deployment_id)
                active.add_metric(labels, b.active_connections)
                draining.add_metric(labels, int(b.draining))
        yield active
        yield draining


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
