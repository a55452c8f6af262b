"""Prometheus exposition: label values are escaped (hostile names add no series) and a real
proxy's /metrics parses as the text format."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from haloy.proxy.metrics import Metrics
from haloy.proxy.service import ProxyService
from haloy.wire.snapshot import Backend, Route, Snapshot
from tests.fixtures.proxy import ProxyProcess
from tests.proxy.http_peers import Backend as HttpBackend
from tests.proxy.http_peers import Client, route, snapshot

# Closes the quoted value and the label set, ends the sample, and starts a series of its own.
HOSTILE = 'x"} 1\nfake_metric{a="1'
FAMILIES = {
    "haloy_proxy_requests",
    "haloy_proxy_request_duration_seconds",
    "haloy_proxy_client_connections",
    "haloy_proxy_upstream_errors",
    "haloy_proxy_backend_active_connections",
    "haloy_proxy_backend_draining",
}


def _samples(text: str) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    return {
        family.name: [(s.name, s.labels, s.value) for s in family.samples]
        for family in text_string_to_metric_families(text)
    }


async def test_hostile_label_values_are_escaped() -> None:
    service = ProxyService(asyncio.get_running_loop())
    # Built without validation: the snapshot parser refuses these names (test_snapshot.py);
    # the exposition must stay well-formed even so.
    backend = Backend.model_construct(address="127.0.0.1", port=9, deployment_id=HOSTILE)
    service.put_snapshot(Snapshot.model_construct(routes=(
        Route.model_construct(app=HOSTILE, domain="web.test", backends=(backend,)),
    )))
    metrics = Metrics()
    metrics.service = service
    metrics.requests[(HOSTILE, "2xx")] += 3
    text = metrics.render()
    assert "\nfake_metric" not in text
    samples = _samples(text)
    assert set(samples) == FAMILIES
    assert samples["haloy_proxy_requests"] == [
        ("haloy_proxy_requests_total", {"app": HOSTILE, "code": "2xx"}, 3.0),
    ]
    labels = {"app": HOSTILE, "backend": "127.0.0.1:9", "deployment_id": HOSTILE}
    assert samples["haloy_proxy_backend_active_connections"] == [
        ("haloy_proxy_backend_active_connections", labels, 0.0),
    ]
    assert samples["haloy_proxy_backend_draining"] == [
        ("haloy_proxy_backend_draining", labels, 0.0),
    ]


async def test_backslashes_survive_the_round_trip() -> None:
    metrics = Metrics()
    metrics.requests[("a\\b\\", "5xx")] += 1
    samples = _samples(metrics.render())
    assert samples["haloy_proxy_requests"] == [
        ("haloy_proxy_requests_total", {"app": "a\\b\\", "code": "5xx"}, 1.0),
    ]


async def test_a_real_proxys_metrics_parse(proxy_factory: Callable[..., ProxyProcess]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        mport = s.getsockname()[1]
    proxy = proxy_factory("--no-access-log", "--metrics-listen", f"127.0.0.1:{mport}",
                          https=False)
    async with HttpBackend() as be:
        proxy.put_snapshot(snapshot(route("app.test", be.spec("01J00000000000000000000001"))))
        c = await Client.open(proxy.http_port)
        assert (await c.request()).status == 200
        assert (await c.request(host="nope.test")).status == 404
        r, w = await asyncio.open_connection("127.0.0.1", mport)
        w.write(b"GET /metrics HTTP/1.0\r\n\r\n")
        head, _, body = (await r.read()).partition(b"\r\n\r\n")
        w.close()
    assert head.startswith(b"HTTP/1.0 200 ") and b"text/plain; version=0.0.4" in head
    samples = _samples(body.decode())
    assert set(samples) == FAMILIES
    assert sorted(samples["haloy_proxy_requests"], key=lambda s: s[1]["app"]) == [
        ("haloy_proxy_requests_total", {"app": "-", "code": "4xx"}, 1.0),
        ("haloy_proxy_requests_total", {"app": "app", "code": "2xx"}, 1.0),
    ]
    duration = {name: value for name, labels, value
                in samples["haloy_proxy_request_duration_seconds"] if "le" not in labels}
    assert duration["haloy_proxy_request_duration_seconds_count"] == 2.0
    assert samples["haloy_proxy_client_connections"] == [
        ("haloy_proxy_client_connections", {}, 1.0),
    ]
    assert samples["haloy_proxy_backend_draining"] == [
        ("haloy_proxy_backend_draining", {"app": "app", "backend": f"127.0.0.1:{be.port}",
                                          "deployment_id": "01J00000000000000000000001"}, 0.0),
    ]
