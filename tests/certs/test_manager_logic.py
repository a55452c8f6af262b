"""CertificateManager logic with a fake issuer (the real CA is in test_manager_pebble.py)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from pathlib import Path

from cryptography import x509

from haloy.certs.certfile import describe
from haloy.certs.issuer import Issued
from haloy.certs.keys import make_self_signed
from haloy.certs.manager import CertEvent, CertificateManager, WantedCert
from haloy.certs.policy import RenewalWindow
from haloy.certs.store import CertStore


class FakeIssuer:
    def __init__(self, broken: set[str], window: RenewalWindow | None = None) -> None:
        self.broken = broken
        self.window = window
        self.calls: list[list[str]] = []
        self.ari_calls = 0

    def issue(self, names: list[str]) -> Issued:
        self.calls.append(names)
        if names[0] in self.broken:
            raise ValueError("boom")  # not a HaloyError: must still be contained
        cert, key = make_self_signed(names[0])
        return Issued(cert, key, describe(x509.load_pem_x509_certificate(cert)))

    def renewal_window(self, cert_pem: bytes) -> RenewalWindow | None:
        self.ari_calls += 1
        return self.window


async def resolves_here(_: str) -> set[str]:
    return {"127.0.0.1"}


async def test_unexpected_error_is_contained_and_on_change_awaited(tmp_path: Path) -> None:
    changed = asyncio.Event()

    async def on_change() -> None:
        changed.set()

    issuer = FakeIssuer(broken={"bad.test"})
    manager = CertificateManager(CertStore(tmp_path), issuer, on_change=on_change,
                                 resolve=resolves_here)
    result = await manager.ensure([WantedCert("bad.test", ("bad.test",)),
                                   WantedCert("good.test", ("good.test",))])
    assert result["bad.test"].kind == "failed" and "boom" in result["bad.test"].message
    assert result["good.test"].kind == "issued"
    assert changed.is_set()


async def test_run_checks_at_start_and_on_wake(tmp_path: Path) -> None:
    seen: asyncio.Queue[CertEvent] = asyncio.Queue()
    wanted = [WantedCert("a.test", ("a.test",))]
    manager = CertificateManager(
        CertStore(tmp_path), FakeIssuer(set()), on_event=seen.put_nowait, resolve=resolves_here,
        clock=lambda: dt.datetime.now(dt.UTC),
    )
    wake = asyncio.Event()
    task = asyncio.create_task(manager.run(lambda: list(wanted), wake))
    try:
        assert (await asyncio.wait_for(seen.get(), 10)).kind == "issued"
        wanted.append(WantedCert("b.test", ("b.test",)))  # a route change
        wake.set()
        kinds = {(await asyncio.wait_for(seen.get(), 10)).kind for _ in range(2)}
        assert kinds == {"unchanged", "issued"}
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_ari_window_triggers_early_renewal_and_is_cached(tmp_path: Path) -> None:
    now = [dt.datetime.now(dt.UTC)]
    far = RenewalWindow(now[0] + dt.timedelta(days=900), now[0] + dt.timedelta(days=901))
    issuer = FakeIssuer(set(), window=far)
    manager = CertificateManager(CertStore(tmp_path), issuer, clock=lambda: now[0],
                                 resolve=resolves_here)
    wanted = [WantedCert("ari.test", ("ari.test",))]
    assert (await manager.ensure(wanted))["ari.test"].kind == "issued"
    for _ in range(3):
        assert (await manager.ensure(wanted))["ari.test"].kind == "unchanged"
    assert issuer.ari_calls == 1  # cached for ARI_RECHECK
    # The CA moves the window into the past (e.g. a mass revocation): renew long before 30 days.
    issuer.window = RenewalWindow(now[0] - dt.timedelta(hours=1), now[0])
    now[0] += dt.timedelta(hours=7)
    assert (await manager.ensure(wanted))["ari.test"].kind == "renewed"
    assert issuer.ari_calls == 2
