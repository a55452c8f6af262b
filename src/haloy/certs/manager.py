"""The certificate manager: keeps one certificate per wanted domain issued and fresh.

    wanted (canonical + aliases, API domain) ──ensure()──▶ per domain, independently:
        hand-placed cover? use it │ stored + fresh? keep │ backoff pending? wait │
        DNS pre-check (warn) → issue on a worker thread → store → event
    any change ──▶ on_change()  (haloyd: send `reload_certs` to haloy-proxy)

A failure never removes a certificate; it schedules a retry (policy.Backoff) and is reported
as an event with a hint. Decisions use the injected clock, so tests move time, not sleep.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from haloy.certs.dns_check import Resolver, check_name, system_resolve
from haloy.certs.issuer import IssuanceError, Issued
from haloy.certs.policy import CHECK_INTERVAL, CLEAR, Backoff, RenewalWindow, needs_certificate
from haloy.certs.store import CertStore
from haloy.errors import HaloyError
from haloy.wire.snapshot import Snapshot

log = logging.getLogger(__name__)

EventKind = Literal[
    "issued", "renewed", "unchanged", "hand_placed", "failed", "deferred", "warning"
]


@dataclass(frozen=True)
class WantedCert:
    """One certificate to keep: the canonical domain first, then its aliases."""

    domain: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class CertEvent:
    """What happened to one domain's certificate (for logs and the deploy event stream)."""

    domain: str
    kind: EventKind
    message: str
    hint: str | None = None
    not_after: dt.datetime | None = None


@dataclass(frozen=True)
class CertStatus:
    """One stored certificate as the API shows it."""

    domain: str
    names: tuple[str, ...]
    issuer: str
    not_after: dt.datetime
    managed: bool
    last_error: str | None


class Issuer(Protocol):
    def issue(self, names: list[str]) -> Issued: ...
    def renewal_window(self, cert_pem: bytes) -> RenewalWindow | None: ...


# ARI draft §4.3.3: absent a Retry-After, clients re-check renewal info every 6 hours.
ARI_RECHECK = dt.timedelta(hours=6)
OnChange = Callable[[], Awaitable[None] | None]
OnEvent = Callable[[CertEvent], None]


def wanted_from_snapshot(snapshot: Snapshot, api_domain: str | None = None) -> list[WantedCert]:
    """Every routed domain with its aliases, plus the API domain."""
    wanted = [WantedCert(r.domain, (r.domain, *r.aliases)) for r in snapshot.routes]
    api = api_domain or (snapshot.api.domain if snapshot.api else None)
    if api and all(api not in w.names for w in wanted):
        wanted.append(WantedCert(api, (api,)))
    return wanted


class CertificateManager:
    """Issues and renews certificates, each domain independently of the others."""

    def __init__(
        self, store: CertStore, issuer: Issuer, *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        on_change: OnChange | None = None, on_event: OnEvent | None = None,
        server_addresses: Collection[str] | None = None, resolve: Resolver = system_resolve,
        use_ari: bool = True,
    ) -> None:
        self.store, self.issuer, self.clock = store, issuer, clock
        self.on_change, self.on_event = on_change, on_event
        self.server_addresses, self.resolve, self.use_ari = server_addresses, resolve, use_ari
        self._backoff: dict[str, Backoff] = {}
        self._last_failure: dict[str, CertEvent] = {}
        self._ari: dict[str, tuple[int, RenewalWindow | None, dt.datetime]] = {}
        self.orders = 0  # issuance attempts made by this manager

    async def ensure(
        self, wanted: Iterable[WantedCert], on_event: OnEvent | None = None
    ) -> dict[str, CertEvent]:
        """Bring every wanted certificate up to date; returns the final event per domain."""
        emit = _fan_out(self.on_event, on_event)
        results: dict[str, CertEvent] = {}
        for w in wanted:  # sequential: the ACME client is single-threaded anyway
            results[w.domain] = await self._ensure_one(w, emit)
        if any(e.kind in ("issued", "renewed") for e in results.values()) and self.on_change:
            outcome = self.on_change()
            if inspect.isawaitable(outcome):
                await outcome
        return results

    def status(self) -> list[CertStatus]:
        """Every certificate in the store with issuer and expiry (for `haloy status`)."""
        return [
            CertStatus(c.domain, c.info.names, c.info.issuer, c.info.not_after, c.managed,
                       self._last_failure[c.domain].message
                       if c.domain in self._last_failure else None)
            for c in self.store.all()
        ]

    async def run(
        self, wanted: Callable[[], Iterable[WantedCert]], wake: asyncio.Event,
        interval: dt.timedelta = CHECK_INTERVAL,
    ) -> None:
        """Check at start, every `interval`, and whenever `wake` is set (route changes)."""
        while True:
            wake.clear()
            try:
                await self.ensure(wanted())
            except Exception:  # the loop must survive anything a single pass throws
                log.exception("certificate check failed")
            try:
                await asyncio.wait_for(wake.wait(), self._next_wait(interval))
            except TimeoutError:
                pass

    async def _renewal_window(
        self, domain: str, pem: bytes, serial: int, now: dt.datetime
    ) -> RenewalWindow | None:
        """The CA's ARI window, fetched at most every ARI_RECHECK per certificate."""
        if not self.use_ari:
            return None
        cached = self._ari.get(domain)
        if cached is not None and cached[0] == serial and now - cached[2] < ARI_RECHECK:
            return cached[1]
        window = await asyncio.to_thread(self.issuer.renewal_window, pem)
        self._ari[domain] = (serial, window, now)
        return window

    def _next_wait(self, interval: dt.timedelta) -> float:
        now, wait = self.clock(), interval.total_seconds()
        for b in self._backoff.values():
            if b.next_attempt is not None:
                wait = min(wait, max((b.next_attempt - now).total_seconds(), 1.0))
        return wait

    async def _ensure_one(self, w: WantedCert, emit: OnEvent) -> CertEvent:
        now = self.clock()
        names = tuple(dict.fromkeys(n.lower().rstrip(".") for n in w.names))
        cover = self.store.hand_placed_covering(names, now)
        if cover is not None:
            return _emit(emit, CertEvent(w.domain, "hand_placed",
                         f"using the hand-placed certificate in {cover.pair.directory}",
                         not_after=cover.info.not_after))
        if self.store.is_hand_placed(w.domain):
            return _emit(emit, CertEvent(
                w.domain, "failed",
                f"{self.store.domain_dir(w.domain)} holds a hand-placed certificate that does "
                f"not cover {', '.join(names)} or has expired; haloy will not overwrite it",
                hint="replace it with a valid certificate for all names, or remove the "
                "directory to let haloy issue one"))
        current = self.store.read(w.domain)
        if current is not None and set(names) <= set(current.info.names):
            ari = await self._renewal_window(w.domain, current.pair.fullchain_pem,
                                             current.info.serial, now)
            if not needs_certificate(current.info.not_after, now, ari):
                return _emit(emit, CertEvent(w.domain, "unchanged",
                             f"certificate valid until {current.info.not_after:%Y-%m-%d}",
                             not_after=current.info.not_after))
        backoff = self._backoff.get(w.domain, CLEAR)
        if not backoff.may_attempt(now):
            last = self._last_failure.get(w.domain)
            return _emit(emit, CertEvent(
                w.domain, "deferred",
                f"next attempt after {backoff.next_attempt:%Y-%m-%d %H:%M:%S} UTC"
                + (f" (last error: {last.message})" if last else ""),
                hint=last.hint if last else None))
        for name in names:
            warning = await check_name(name, self.server_addresses, self.resolve)
            if warning is not None:
                emit(CertEvent(w.domain, "warning", warning.message, warning.hint))
        self.orders += 1
        try:
            issued = await asyncio.to_thread(self.issuer.issue, list(names))
            await asyncio.to_thread(self.store.save, w.domain, issued.fullchain_pem,
                                    issued.key_pem, _meta(names, issued, now))
        except Exception as exc:  # one domain's failure, whatever it is, must not stop others
            if not isinstance(exc, HaloyError):
                log.exception("unexpected error issuing %s", w.domain)
                exc = HaloyError(f"unexpected error issuing {w.domain}: {exc!r}")
            retry_after = exc.retry_after if isinstance(exc, IssuanceError) else None
            limited = exc.rate_limited if isinstance(exc, IssuanceError) else False
            self._backoff[w.domain] = backoff.failed(now, retry_after, limited)
            kept = " (the current certificate stays in use)" if current else ""
            event = CertEvent(w.domain, "failed", exc.message + kept, exc.hint)
            self._last_failure[w.domain] = event
            return _emit(emit, event)
        self._backoff.pop(w.domain, None)
        self._last_failure.pop(w.domain, None)
        kind: EventKind = "renewed" if current is not None else "issued"
        return _emit(emit, CertEvent(
            w.domain, kind,
            f"certificate for {', '.join(names)} {kind} by {issued.info.issuer}, valid until "
            f"{issued.info.not_after:%Y-%m-%d}", not_after=issued.info.not_after))


def _meta(names: tuple[str, ...], issued: Issued, now: dt.datetime) -> dict[str, object]:
    return {"names": list(names), "issuer": issued.info.issuer, "issued_at": now.isoformat(),
            "not_after": issued.info.not_after.isoformat()}


def _emit(emit: OnEvent, event: CertEvent) -> CertEvent:
    level = logging.WARNING if event.kind in ("failed", "warning") else logging.INFO
    log.log(level, "%s: %s: %s", event.domain, event.kind, event.message)
    emit(event)
    return event


def _fan_out(*callbacks: OnEvent | None) -> OnEvent:
    present = [c for c in callbacks if c is not None]

    def emit(event: CertEvent) -> None:
        for callback in present:
            callback(event)

    return emit
