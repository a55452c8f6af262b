"""The route table: an immutable compilation of a Snapshot, looked up by raw Host bytes.

The table is swapped atomically on each snapshot; requests keep the table they started with.
Per-backend counters live in `BackendState` objects that survive swaps (keyed by address, port
and deployment id), so status and draining see every connection whichever table opened it.
"""

from __future__ import annotations

import ipaddress
import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from haloy.proxy.hold import route_holds
from haloy.wire.snapshot import FORWARD_KEY_HEADER, Endpoint, Route, Snapshot

if TYPE_CHECKING:
    from haloy.proxy.upstream import UpstreamProtocol

log = logging.getLogger(__name__)
BackendKey = tuple[str, int, str]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class BackendState:
    """Live counters and idle pool of one backend; shared by every table naming it."""

    __slots__ = (
        "address",
        "deployment_id",
        "draining",
        "ejected_until",
        "idle",
        "inflight",
        "port",
        "requests",
        "tunnels",
    )

    def __init__(self, address: str, port: int, deployment_id: str = "") -> None:
        self.address = address
        self.port = port
        self.deployment_id = deployment_id
        self.draining = False
        self.ejected_until = 0.0
        self.inflight = 0
        self.requests = 0
        self.idle: list[UpstreamProtocol] = []  # pooled, most recent last (LIFO)
        self.tunnels: set[UpstreamProtocol] = set()

    @property
    def key(self) -> BackendKey:
        return (self.address, self.port, self.deployment_id)

    @property
    def active_connections(self) -> int:
        """In-flight requests plus open tunnels (idle pooled connections do not count)."""
        return self.inflight + len(self.tunnels)


@dataclass(frozen=True, slots=True)
class RouteEntry:
    """One compiled route: its snapshot model, backends and round-robin cursor."""

    route: Route
    canonical: bytes
    backends: tuple[BackendState, ...]
    active: tuple[BackendState, ...]
    holds: bool  # requests wait instead of failing (hold.py)
    tls: bool  # plain HTTP is redirected to HTTPS when HTTPS is on
    _rr: Iterator[int] = field(default_factory=itertools.count)

    def pick(self, now: Callable[[], float], exclude: BackendState | None = None) -> (
        BackendState | None
    ):
        """Round robin over active backends, skipping ejected ones unless all are."""
        active = self.active
        n = len(active)
        if n == 1:  # the common case; an ejected sole backend is still better than a 502
            return None if active[0] is exclude else active[0]
        if n == 0:
            return None
        start = next(self._rr)
        fallback = None
        t = 0.0
        for i in range(n):
            b = active[(start + i) % n]
            if b is exclude:
                continue
            if b.ejected_until:
                t = t or now()
                if b.ejected_until > t:
                    fallback = fallback or b
                    continue
            return b
        return fallback


@dataclass(frozen=True, slots=True)
class HostMatch:
    """What a host name maps to: a route, and whether the name is an alias of it."""

    entry: RouteEntry
    alias: bool


def normalize_host(raw: bytes) -> bytes:
    """Lower-case, strip the port and trailing dot: b'WWW.Ex.com.:80' -> b'www.ex.com'."""
    host = raw.strip().lower()
    if host.startswith(b"["):
        end = host.find(b"]")
        return host[: end + 1] if end > 0 else host
    colon = host.rfind(b":")
    if colon >= 0:
        host = host[:colon]
    return host.rstrip(b".")


@dataclass(frozen=True, slots=True)
class RouteTable:
    """Immutable host → route map plus the API and ACME challenge backends."""

    snapshot: Snapshot
    config_hash: str
    hosts: dict[bytes, HostMatch]
    entries: tuple[RouteEntry, ...]
    api_domain: bytes | None
    api_backend: BackendState | None
    acme_backend: BackendState | None
    trusted_proxies: tuple[Network, ...] = ()
    # What ends a head forwarded to the API: the forward key field, then the blank line.
    api_head_end: bytes = b"\r\n"

    @property
    def generation(self) -> int:
        return self.snapshot.generation

    def lookup(self, raw_host: bytes) -> HostMatch | None:
        """O(1) lookup by the raw Host header value."""
        match = self.hosts.get(raw_host)
        if match is None:
            match = self.hosts.get(normalize_host(raw_host))
        return match

    def is_trusted(self, ip: str) -> bool:
        """True when a peer at `ip` is one of trusted_proxies."""
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self.trusted_proxies)


class BackendRegistry:
    """BackendState objects by key, reused across snapshots."""

    def __init__(self) -> None:
        self.states: dict[BackendKey, BackendState] = {}

    def get(self, address: str, port: int, deployment_id: str = "") -> BackendState:
        """The state for this backend, created on first sight."""
        key = (address, port, deployment_id)
        state = self.states.get(key)
        if state is None:
            state = self.states[key] = BackendState(address, port, deployment_id)
        return state

    def endpoint(self, ep: Endpoint | None) -> BackendState | None:
        """State for an API/ACME endpoint (never draining)."""
        return None if ep is None else self.get(ep.address, ep.port, "")


def compile_table(snapshot: Snapshot, registry: BackendRegistry) -> RouteTable:
    """Compile a validated snapshot into a table; backend states come from the registry."""
    hosts: dict[bytes, HostMatch] = {}
    entries = []
    api = snapshot.api
    api_domain = api.domain.lower().rstrip(".").encode() if api and api.domain else None
    # The API domain (and localhost) belong to haloyd: an app claiming one would receive the
    # API's bearer tokens. haloyd refuses such deploys; this is the proxy's own guard.
    reserved = {b"localhost", api_domain} if api_domain else {b"localhost"}
    for route in snapshot.routes:
        backends = tuple(
            registry.get(b.address, b.port, b.deployment_id) for b in route.backends
        )
        active = tuple(
            s for s, b in zip(backends, route.backends, strict=True) if b.state == "active"
        )
        holds = route_holds(route, bool(active))
        entry = RouteEntry(route, route.domain.encode(), backends, active, holds, route.tls)
        entries.append(entry)
        for name in (entry.canonical, *(a.encode() for a in route.aliases)):
            if name in reserved:
                log.warning("route of app %s names the reserved host %s: not routed",
                            route.app, name.decode())
            elif name == entry.canonical:
                hosts[name] = HostMatch(entry, False)
            else:
                hosts[name] = HostMatch(entry, True)
    return RouteTable(
        snapshot=snapshot,
        config_hash=snapshot.config_hash,
        hosts=hosts,
        entries=tuple(entries),
        api_domain=api_domain,
        api_backend=registry.endpoint(api.backend if api else None),
        acme_backend=registry.endpoint(snapshot.acme_challenge_backend),
        trusted_proxies=tuple(
            ipaddress.ip_network(cidr, strict=False) for cidr in snapshot.trusted_proxies
        ),
        api_head_end=(
            f"{FORWARD_KEY_HEADER}: {api.forward_key}\r\n\r\n".encode()
            if api and api.forward_key else b"\r\n"
        ),
    )


def draining_changes(old: RouteTable | None, new: RouteTable) -> list[tuple[BackendState, float]]:
    """Backends that stop being active in `new` (draining or gone), with their drain grace."""
    if old is None:
        return []
    still_active = {id(b) for e in new.entries for b in e.active}
    changes = []
    for entry in old.entries:
        for b in entry.active:
            if id(b) not in still_active:
                changes.append((b, entry.route.drain_grace))
    return changes
