"""Mapping haloyd's status view and the proxy's counters to the API's AppStatus (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from haloy.daemon.api.daemon_status import (
    DaemonStatusProvider,
    counters_from_proxy,
    public_url,
    to_app_status,
)
from haloy.daemon.status import AppStatus, DaemonStatus, ReplicaStatus
from haloy.errors import HaloyError
from haloy.wire.snapshot import Backend, Route

DEP = "01J00000000000000000000001"


def replica(cid: str, address: str, routing: str = "active") -> ReplicaStatus:
    return ReplicaStatus(cid, f"web-{cid}", address, 8080, DEP, routing, "up", 4, 1, 4, 0, None)


WEB = AppStatus("web", DEP, ("web.example.com", "shop.example.com"), ("www.example.com",),
                (replica("c1", "172.18.0.2"), replica("c2", "172.18.0.3", "draining")))
API = AppStatus("api", "", (), (), ())
STATUS = DaemonStatus((WEB, API), (), 3, "h", True)
ROUTES = (
    Route(app="web", domain="web.example.com", aliases=("www.example.com",),
          backends=(Backend(address="172.18.0.2", port=8080, deployment_id=DEP),)),
    Route(app="web", domain="shop.example.com"),
)
PROXY_REPLY: dict[str, Any] = {
    "ok": True,
    "routes": [
        {"app": "web", "domain": "web.example.com", "backends": [
            {"address": "172.18.0.2", "port": 8080, "requests": 10, "active_connections": 2},
        ]},
        {"app": "web", "domain": "shop.example.com", "backends": [
            {"address": "172.18.0.2", "port": 8080, "requests": 5, "active_connections": 1},
        ]},
    ],
}


def test_counters_sum_over_routes() -> None:
    assert counters_from_proxy(PROXY_REPLY) == {("172.18.0.2", 8080): (15, 3)}


def test_to_app_status() -> None:
    expiry = datetime(2027, 1, 1, tzinfo=UTC)
    out = to_app_status(WEB, ROUTES, counters_from_proxy(PROXY_REPLY),
                        lambda d: expiry if d == "web.example.com" else None)
    assert out.name == "web" and out.deployment_id == DEP
    assert [(d.domain, d.aliases, d.certificate_expiry) for d in out.domains] == [
        ("web.example.com", ["www.example.com"], expiry), ("shop.example.com", [], None),
    ]
    first, second = out.replicas
    assert (first.routing, first.health, first.requests, first.active_connections) == (
        "active", "up", 15, 3)
    assert (second.routing, second.requests) == ("draining", 0)


@pytest.mark.parametrize(
    ("tls", "ports", "url"),
    [
        (True, (80, 443), "https://web.example.com"),
        (False, (80, 443), "http://web.example.com"),
        (True, (8480, None), "http://web.example.com:8480"),  # HTTPS off: never https://
        (True, (8480, 8443), "https://web.example.com:8443"),
        (False, (8480, 8443), "http://web.example.com:8480"),
    ],
)
def test_public_url(tls: bool, ports: tuple[int, int | None], url: str) -> None:
    assert public_url("web.example.com", tls, ports) == url


def test_domain_urls_follow_the_routes_tls_flag() -> None:
    routes = (Route(app="web", domain="web.example.com", tls=True),
              Route(app="web", domain="shop.example.com"))
    out = to_app_status(WEB, routes, ports=(8480, 8443))
    assert [d.url for d in out.domains] == [
        "https://web.example.com:8443", "http://shop.example.com:8480"]


def test_without_proxy_counters_are_null() -> None:
    out = to_app_status(API)
    assert out.deployment_id is None and out.replicas == [] and out.domains == []
    assert to_app_status(WEB).replicas[0].requests is None


async def test_provider_survives_a_missing_proxy() -> None:
    async def down() -> Mapping[str, Any]:
        raise HaloyError("proxy control socket refused")

    provider = DaemonStatusProvider(lambda: STATUS, lambda: ROUTES, proxy_status=down)
    apps = await provider.apps()
    assert [a.name for a in apps] == ["api", "web"]
    assert apps[1].replicas[0].requests is None
    assert await provider.app("nope") is None
    web = await provider.app("web")
    assert web is not None and web.domains[0].aliases == ["www.example.com"]


async def test_provider_with_proxy_counters() -> None:
    async def up() -> Mapping[str, Any]:
        return PROXY_REPLY

    provider = DaemonStatusProvider(lambda: STATUS, lambda: ROUTES, proxy_status=up)
    web = await provider.app("web")
    assert web is not None and web.replicas[0].requests == 15
