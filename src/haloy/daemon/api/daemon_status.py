"""The StatusProvider of a running haloyd: its status view, routes and the proxy's counters.

Mapping is pure (`to_app_status`); `DaemonStatusProvider` only gathers the inputs. The proxy's
counters are optional: when the proxy does not answer, replicas show `null` counters rather
than the API failing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from haloy.daemon import status as daemon_status
from haloy.errors import HaloyError
from haloy.wire.api import AppStatus, Domain, Replica
from haloy.wire.snapshot import Route

log = logging.getLogger(__name__)

# (address, port) of a backend -> (requests, active_connections) as the proxy counts them.
Counters = Mapping[tuple[str, int], tuple[int, int]]
ProxyStatus = Callable[[], Awaitable[Mapping[str, Any]]]
CertExpiry = Callable[[str], datetime | None]
# The proxy's public HTTP port and HTTPS port (None when HTTPS is off).
PublicPorts = tuple[int, int | None]
DEFAULT_PORTS: PublicPorts = (80, 443)


def public_url(domain: str, tls: bool, ports: PublicPorts) -> str:
    """The URL a browser uses for `domain` (the default port is left out)."""
    http, https = ports
    if tls and https is not None:
        return f"https://{domain}" + ("" if https == 443 else f":{https}")
    return f"http://{domain}" + ("" if http == 80 else f":{http}")


def counters_from_proxy(reply: Mapping[str, Any]) -> Counters:
    """Index the backends of a proxy `{"op": "status"}` reply by (address, port)."""
    out: dict[tuple[str, int], tuple[int, int]] = {}
    for route in reply.get("routes", []):
        for b in route.get("backends", []):
            key = (str(b["address"]), int(b["port"]))
            requests, active = out.get(key, (0, 0))
            out[key] = (
                requests + int(b.get("requests", 0)),
                active + int(b.get("active_connections", 0)),
            )
    return out


def to_app_status(
    app: daemon_status.AppStatus,
    routes: Sequence[Route] = (),
    counters: Counters | None = None,
    cert_expiry: CertExpiry | None = None,
    ports: PublicPorts = DEFAULT_PORTS,
) -> AppStatus:
    """The API view of one app (pure)."""
    aliases = {r.domain: list(r.aliases) for r in routes if r.app == app.app}
    tls = {r.domain: r.tls for r in routes if r.app == app.app}
    replicas = []
    for r in app.replicas:
        count = counters.get((r.address, r.port)) if counters is not None else None
        replicas.append(
            Replica(
                container_id=r.container_id, name=r.name, deployment_id=r.deployment_id,
                address=r.address, port=r.port, routing=r.routing, health=r.health,
                checks=r.checks, failures=r.failures, last_error=r.last_error,
                requests=None if counters is None else (count or (0, 0))[0],
                active_connections=None if counters is None else (count or (0, 0))[1],
            )
        )
    domains = [
        Domain(
            domain=d, aliases=aliases.get(d, []),
            certificate_expiry=cert_expiry(d) if cert_expiry else None,
            url=public_url(d, tls.get(d, False), ports),
        )
        for d in app.domains
    ]
    return AppStatus(
        name=app.app, deployment_id=app.deployment_id or None, replicas=replicas, domains=domains
    )


class DaemonStatusProvider:
    """StatusProvider over haloyd's `status()` (e.g. `Haloyd.status`) and current routes."""

    def __init__(
        self,
        status: Callable[[], daemon_status.DaemonStatus],
        routes: Callable[[], Sequence[Route]] = tuple,
        proxy_status: ProxyStatus | None = None,
        cert_expiry: CertExpiry | None = None,
        ports: PublicPorts = DEFAULT_PORTS,
    ) -> None:
        self._status = status
        self._routes = routes
        self._proxy_status = proxy_status
        self._cert_expiry = cert_expiry
        self._ports = ports

    async def _counters(self) -> Counters | None:
        if self._proxy_status is None:
            return None
        try:
            return counters_from_proxy(await self._proxy_status())
        except (HaloyError, OSError, TimeoutError, KeyError, TypeError, ValueError) as exc:
            # Counters are a nicety; the API must answer even while the proxy restarts.
            log.warning("proxy status unavailable: %s", exc)
            return None

    async def apps(self) -> Sequence[AppStatus]:
        """Every app, sorted by name."""
        counters = await self._counters()
        routes = self._routes()
        apps = sorted(self._status().apps, key=lambda a: a.app)
        return [
            to_app_status(a, routes, counters, self._cert_expiry, self._ports) for a in apps
        ]

    async def app(self, name: str) -> AppStatus | None:
        """One app, or None."""
        found = self._status().app(name)
        if found is None:
            return None
        counters = await self._counters()
        return to_app_status(found, self._routes(), counters, self._cert_expiry, self._ports)
