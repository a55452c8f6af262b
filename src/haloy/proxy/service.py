"""The proxy's shared state for one worker: route table swaps, dispatch, drain, status.

Protocols call into this object; it never blocks. The only tasks it creates open upstream
connections (and are kept in `tasks` until done).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any, Final

from haloy.proxy import NATIVE
from haloy.proxy.exchange import ACME, API, PROXY, Exchange
from haloy.proxy.head_watch import HeadWatch
from haloy.proxy.hold import HoldQueues
from haloy.proxy.limits import Limits
from haloy.proxy.pages import error_response, redirect_response, request_port, with_port
from haloy.proxy.routes import (
    BackendRegistry,
    BackendState,
    RouteTable,
    compile_table,
    draining_changes,
    normalize_host,
)
from haloy.proxy.upstream import UpstreamProtocol
from haloy.wire.snapshot import Snapshot

log = logging.getLogger(__name__)
ACME_PREFIX: Final = b"/.well-known/acme-challenge/"
# Resolution of ProxyService.clock (s): how late a keep-alive or response deadline may fire.
CLOCK_TICK: Final = 0.05
Observer = Callable[[Exchange], None]
# What a request head's field block says, the same for every head with that block (client.py):
# (Host, Content-Length or -1 for chunked, offsets from the request line's CRLF of the one
# hop-by-hop line to cut out, (0, 0) for none).
Verdict = tuple[bytes, int, int, int]
# Field blocks remembered across connections; the dict is emptied when full (a client cycling
# through distinct heads costs one scan per head, as without the cache).
VERDICTS_MAX: Final = 256


class ProxyService:
    """Routing and upstream management shared by every client connection of a worker."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        limits: Limits | None = None,
        *,
        https_port: int | None = None,
        observers: tuple[Observer, ...] = (),
    ) -> None:
        self.loop = loop
        self.now: Callable[[], float] = loop.time
        # A coarse clock for the per-request deadlines: loop time plus one tick, refreshed every
        # tick while clients are connected (0.0: stopped). Never earlier than the loop time, so
        # a deadline computed from it is at most one tick late, never early; reading it costs
        # an attribute load instead of a loop.time() call (three per proxied request).
        self.clock = 0.0
        self.head_watch = HeadWatch(loop)
        self.limits = limits = limits or Limits()
        # An exchange's timer first wakes after this long: its first deadline is the response
        # head's, or the read timeout's once a head came early (upstream.py).
        self.wake = min(limits.response_header_timeout, limits.read_timeout)
        self.https_port = https_port
        self.observers = observers
        self.registry = BackendRegistry()
        self.table: RouteTable = compile_table(Snapshot(), self.registry)
        self.clients: set[Any] = set()
        # TLS connections accepted and still in their handshake (tls_conn.py). A plain set,
        # not weak references: the compiled protocol classes do not clear weak references
        # when they are freed.
        self.handshaking: set[Any] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.holds = HoldQueues(loop, limits.hold_queue)
        self.upstream_errors: Counter[str] = Counter()
        self.started_wall = time.time()
        self.on_snapshot: list[Callable[[Snapshot], None]] = []
        self.ports: dict[str, int] = {}  # bound listener ports, reported by status
        self.verdicts: dict[bytes, Verdict] = {}  # field block -> verdict (client.py)

    def remember_verdict(self, fields: bytes, verdict: Verdict) -> None:
        """Keep the verdict on a field block for the next connection that sends it."""
        verdicts = self.verdicts
        if len(verdicts) >= VERDICTS_MAX:
            verdicts.clear()
        verdicts[fields] = verdict

    # -- snapshots -------------------------------------------------------------------------
    def put_snapshot(self, snapshot: Snapshot) -> RouteTable:
        """Swap in a compiled table; drain what stopped being active; release held requests."""
        old, new = self.table, compile_table(snapshot, self.registry)
        for entry in new.entries:
            for b in entry.active:
                b.draining = False
        self.table = new
        for backend, grace in draining_changes(old, new):
            self._drain(backend, grace)
        self._prune()
        for hook in self.on_snapshot:
            hook(snapshot)
        self.holds.release(new, self.dispatch)
        return new

    def _drain(self, backend: BackendState, grace: float) -> None:
        backend.draining = True
        for up in backend.idle:
            up.close()
        backend.idle.clear()
        self.loop.call_later(grace, self._close_tunnels, backend)

    def _close_tunnels(self, backend: BackendState) -> None:
        if not backend.draining:
            return
        for up in list(backend.tunnels):
            try:
                if up.ex is not None:
                    up.ex.client.close_tunnel_gracefully()  # a close frame for WebSockets
                else:
                    up.close()
            except Exception:  # one broken tunnel must not keep the others open
                log.exception("closing a draining tunnel failed")
                up.abort()

    def _prune(self) -> None:
        """Forget backends that are neither routed nor busy."""
        live = {b.key for e in self.table.entries for b in e.backends}
        for key, b in list(self.registry.states.items()):
            if key not in live and b.active_connections == 0 and key[2]:
                for up in b.idle:
                    up.close()
                del self.registry.states[key]

    # -- routing ---------------------------------------------------------------------------
    def route(self, ex: Exchange, host: bytes, loopback: bool, scheme: bytes) -> None:
        """Decide what answers `ex`: a route, the API, the ACME responder or a local page."""
        if self.observers:
            ex.started = self.now()
        table = self.table
        if table.acme_backend is not None and ex.url.startswith(ACME_PREFIX):
            ex.kind = ACME
            ex.backend = table.acme_backend
            return
        # The raw Host usually matches as is; table.lookup normalizes otherwise.
        match = table.hosts.get(host) or (table.lookup(host) if host else None)
        if match is not None:
            entry = match.entry
            to_https = entry.tls and self.https_port is not None and scheme == b"http"
            if match.alias or to_https:
                head_only = ex.method == b"HEAD"
                target = entry.canonical if match.alias else normalize_host(host)
                if to_https:
                    assert self.https_port is not None
                    loc = b"https://" + with_port(target, self.https_port, 443)
                else:
                    port = request_port(host)
                    loc = scheme + b"://" + (target if port is None else b"%b:%d" % (target, port))
                loc += ex.url if ex.url.startswith(b"/") else b"/"  # "OPTIONS *": the root
                ex.local = redirect_response(loc, not ex.keep_alive, head_only)
                return
            ex.entry = entry
            return
        if table.api_backend is not None:
            name = normalize_host(host)
            if name == table.api_domain or (loopback and name == b"localhost"):
                ex.kind = API
                ex.backend = table.api_backend
                return
        ex.local = error_response(404, not ex.keep_alive, ex.method == b"HEAD")

    def dispatch(self, ex: Exchange) -> None:
        """Give the front exchange of a connection a backend connection (or hold it)."""
        if ex.kind == PROXY:
            entry = ex.entry
            assert entry is not None
            if entry.holds:
                self.holds.hold(ex, entry)
                return
            active = entry.active
            backend = active[0] if len(active) == 1 else entry.pick(self.now)
            if backend is None:
                self.upstream_errors["no_backend"] += 1
                ex.client.local_error(ex, 502)
                return
        else:
            backend = ex.backend
            assert backend is not None
        self._use(ex, backend, ex.kind == PROXY)

    def redispatch_same(self, ex: Exchange) -> None:
        """Retry on a fresh connection to the same backend (a pooled one was stale)."""
        assert ex.backend is not None
        self._spawn(self._connect(ex, ex.backend, retry=False))

    def _use(self, ex: Exchange, backend: BackendState, retry: bool) -> None:
        if ex.counted and ex.backend is not None:
            ex.backend.inflight -= 1
        ex.backend = backend
        ex.counted = True
        backend.inflight += 1
        backend.requests += 1
        idle = backend.idle
        while idle:
            up = idle.pop()
            if not up.closed:
                ex.reused = True
                up.bind(ex)
                return
        ex.reused = False
        self._spawn(self._connect(ex, backend, retry))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self.loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _connect(self, ex: Exchange, backend: BackendState, retry: bool) -> None:
        try:
            async with asyncio.timeout(self.limits.connect_timeout):
                _, up = await self.loop.create_connection(
                    lambda: UpstreamProtocol(self, backend), backend.address, backend.port
                )
        except (OSError, TimeoutError) as exc:
            self.upstream_errors["connect"] += 1
            if ex.kind == PROXY:
                if backend.ejected_until <= self.now():  # log once per ejection, not per request
                    log.warning(
                        "backend %s:%d (%s) did not accept a connection (%s); skipped for %.0fs",
                        backend.address, backend.port, backend.deployment_id or "-",
                        exc.__class__.__name__, self.limits.eject_seconds,
                    )
                backend.ejected_until = self.now() + self.limits.eject_seconds
            if ex.cancelled:
                return
            if retry and ex.entry is not None:
                other = ex.entry.pick(self.now, exclude=backend)
                if other is not None and other is not backend:
                    self._use(ex, other, retry=False)
                    return
            ex.client.local_error(ex, 503 if ex.kind == API else 502)
            return
        if ex.cancelled or ex.client.closed:
            up.park()
            return
        backend.ejected_until = 0.0
        up.bind(ex)

    def _uncount(self, ex: Exchange) -> None:
        if ex.counted and ex.backend is not None:
            ex.backend.inflight -= 1
        ex.counted = False

    # -- bookkeeping -----------------------------------------------------------------------
    def release(self, ex: Exchange) -> None:
        """The client went away with `ex` unfinished."""
        self.holds.forget(ex)
        self._uncount(ex)

    def finished(self, ex: Exchange) -> None:
        """`ex` got its whole response."""
        ex.client.served = True
        if ex.counted and ex.backend is not None:
            ex.backend.inflight -= 1
            ex.counted = False
        if self.observers:
            for observe in self.observers:
                observe(ex)

    def tunnel_opened(self, ex: Exchange, up: UpstreamProtocol) -> None:
        """An upgraded connection now counts as a tunnel of its backend."""
        self._uncount(ex)
        up.backend.tunnels.add(up)
        for observe in self.observers:
            observe(ex)

    def count_upstream_error(self, kind: str, backend: BackendState | None = None) -> None:
        """Count an upstream failure by kind (connect, reset, timeout, bad_response)."""
        self.upstream_errors[kind] += 1
        if backend is not None:
            log.warning(
                "backend %s:%d (%s): %s", backend.address, backend.port,
                backend.deployment_id or "-", kind,
            )

    def client_opened(self, client: Any) -> bool:
        """Admit a new client connection unless the limit is reached."""
        if len(self.clients) >= self.limits.max_connections:
            return False
        self.clients.add(client)
        return True

    def start_clock(self) -> float:
        """Start the coarse clock (`clock` was 0.0); returns its value."""
        self.clock = self.loop.time() + CLOCK_TICK
        self.loop.call_later(CLOCK_TICK, self._tick)
        return self.clock

    def _tick(self) -> None:
        if self.clients:
            self.clock = self.loop.time() + CLOCK_TICK
            self.loop.call_later(CLOCK_TICK, self._tick)
        else:
            self.clock = 0.0  # an idle proxy does not wake up to keep time

    def client_closed(self, client: Any) -> None:
        """Forget a client connection."""
        self.clients.discard(client)

    # -- status ----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The `status` control reply."""
        table = self.table
        routes = []
        for entry in table.entries:
            backends = []
            for b, model in zip(entry.backends, entry.route.backends, strict=True):
                backends.append(
                    {
                        "address": b.address,
                        "port": b.port,
                        "deployment_id": b.deployment_id,
                        "state": model.state,
                        "active_connections": b.active_connections,
                        "requests": b.requests,
                        "idle": b.active_connections == 0,
                    }
                )
            held = self.holds.count(entry.canonical)
            routes.append(
                {"app": entry.route.app, "domain": entry.route.domain, "held": held,
                 "backends": backends}
            )
        return {
            "ok": True,
            "config_hash": table.config_hash,
            "generation": table.generation,
            "uptime": round(time.time() - self.started_wall, 3),
            "hot_path": NATIVE[0],  # compiled (mypyc) or pure Python: native.py
            "connections": len(self.clients),
            "listen": self.ports,
            "upstream_errors": dict(self.upstream_errors),
            "routes": routes,
        }
