"""CertificateManager end to end against real pebble, served through a real TLS listener.

HTTP-01 is answered by a real uvicorn listener serving the challenge store on the port pebble
validates against (the proxy's acme passthrough is tested by the proxy's own suite).
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme

from haloy.certs.challenges import ChallengeStore
from haloy.certs.issuer import AcmeIssuer
from haloy.certs.manager import CertEvent, CertificateManager, WantedCert, wanted_from_snapshot
from haloy.certs.store import CertStore
from haloy.config.daemon import AcmeSettings
from haloy.proxy.tls import TlsTerminator
from haloy.wire.snapshot import parse_snapshot
from tests.certs.conftest import serve_challenges
from tests.certs.tls_peer import connect, tls_server
from tests.fixtures.pebble import Pebble
from tests.proxy.test_tls_index import place

pytestmark = pytest.mark.pebble

SNAPSHOT = parse_snapshot({
    "api": {"domain": "api.test", "backend": {"address": "127.0.0.1", "port": 9922}},
    "routes": [
        {"app": "one", "domain": "app1.test", "aliases": ["www.app1.test"]},
        {"app": "two", "domain": "app2.test"},
    ],
})


async def here(_: str) -> set[str]:
    """Resolver standing in for public DNS: every name points at this server."""
    return {"127.0.0.1"}


@dataclass
class Env:
    pebble: Pebble
    certs: Path
    store: CertStore
    challenges: ChallengeStore
    tls: TlsTerminator
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    events: list[CertEvent] = field(default_factory=list)
    reloads: int = 0

    def clock(self) -> dt.datetime:
        return self.now

    def issuer(self) -> AcmeIssuer:
        settings = AcmeSettings(
            directory_url=self.pebble.directory_url, ca_bundle=self.pebble.ca_bundle
        )
        return AcmeIssuer(settings, self.store, self.challenges, clock=self.clock)

    def manager(self, issuer: AcmeIssuer | None = None) -> CertificateManager:
        def reload() -> None:
            self.reloads += 1
            self.tls.reload()

        return CertificateManager(
            self.store, issuer or self.issuer(), clock=self.clock, on_change=reload,
            on_event=self.events.append, server_addresses={"127.0.0.1"}, resolve=here,
        )


@pytest.fixture
async def env(pebble: Pebble, tmp_path: Path) -> AsyncIterator[Env]:
    certs = tmp_path / "certs"
    store = ChallengeStore()
    async with serve_challenges(store, pebble.http_port):
        yield Env(pebble, certs, CertStore(certs), store, TlsTerminator(certs))


def kinds(events: dict[str, CertEvent]) -> dict[str, str]:
    return {d: e.kind for d, e in events.items()}


async def test_issue_two_apps_and_api_then_serve_over_tls(env: Env) -> None:
    manager = env.manager()
    result = await manager.ensure(wanted_from_snapshot(SNAPSHOT))
    assert kinds(result) == {"app1.test": "issued", "app2.test": "issued", "api.test": "issued"}
    assert env.reloads == 1  # one reload for the whole batch
    for domain in ("app1.test", "app2.test", "api.test"):
        for name in ("fullchain.pem", "privkey.pem"):
            assert stat.S_IMODE(os.stat(env.certs / domain / name).st_mode) == 0o600
    account_key = next((env.certs / ".acme").glob("*/account.key"))
    assert stat.S_IMODE(account_key.stat().st_mode) == 0o600

    env.tls.update_routes(SNAPSHOT)
    async with tls_server(env.tls) as port:
        served = {}
        for name in ("app1.test", "www.app1.test", "app2.test", "api.test"):
            # Verifies the chain up to pebble's root and the host name.
            client = await connect(port, name, cafile=env.pebble.root_file)
            served[name] = client.info
            assert await client.get() == b"ok"
            await client.close()
        assert served["app1.test"].names == ("app1.test", "www.app1.test")
        assert served["www.app1.test"].serial == served["app1.test"].serial
        assert served["app2.test"].names == ("app2.test",)
        assert served["app1.test"].issuer.startswith("Pebble Intermediate")
        unknown = await connect(port, "unknown.test")
        assert unknown.info.names == ("haloy-default",)
        await unknown.close()
    statuses = {s.domain: s for s in manager.status()}
    assert statuses["app2.test"].managed and statuses["app2.test"].issuer.startswith("Pebble")


async def test_renewal_at_expiry_minus_29_days(env: Env) -> None:
    manager = env.manager()
    wanted = [WantedCert("renew.test", ("renew.test",))]
    assert kinds(await manager.ensure(wanted)) == {"renew.test": "issued"}
    first = env.store.read("renew.test")
    assert first is not None
    env.now = first.info.not_after - dt.timedelta(days=31)
    assert kinds(await manager.ensure(wanted)) == {"renew.test": "unchanged"}
    async with tls_server(env.tls) as port:
        before = await connect(port, "renew.test", cafile=env.pebble.root_file)
        assert before.info.serial == first.info.serial
        env.now = first.info.not_after - dt.timedelta(days=29)
        assert kinds(await manager.ensure(wanted)) == {"renew.test": "renewed"}
        after = await connect(port, "renew.test", cafile=env.pebble.root_file)
        assert after.info.serial != first.info.serial
        assert await before.get() == b"ok"  # opened before the reload, still served
        assert await after.get() == b"ok"
        await before.close()
        await after.close()


async def test_failing_domain_keeps_old_cert_retries_and_others_issue(env: Env) -> None:
    manager = env.manager()
    flaky = WantedCert("flaky.test", ("flaky.test",))
    assert kinds(await manager.ensure([flaky])) == {"flaky.test": "issued"}
    old = env.store.read("flaky.test")
    assert old is not None
    # Validation now reaches an address where nothing listens: HTTP-01 cannot succeed.
    env.pebble.add_a("flaky.test", ["127.0.0.2"])
    env.pebble.add_a("never.test", ["127.0.0.2"])
    try:
        env.now = old.info.not_after - dt.timedelta(days=29)
        wanted = [flaky, WantedCert("never.test", ("never.test",)),
                  WantedCert("fine.test", ("fine.test",))]
        result = await manager.ensure(wanted)
        assert kinds(result) == {"flaky.test": "failed", "never.test": "failed",
                                 "fine.test": "issued"}
        failed = result["flaky.test"]
        assert "validation of flaky.test failed" in failed.message
        assert "stays in use" in failed.message
        assert failed.hint is not None and "port 80" in failed.hint
        kept = env.store.read("flaky.test")
        assert kept is not None and kept.info.serial == old.info.serial
        assert not (env.certs / "never.test").exists()
        # Retried later, not at once: backoff first, then a new attempt.
        orders = manager.orders
        again = await manager.ensure(wanted[:2])
        assert kinds(again) == {"flaky.test": "deferred", "never.test": "deferred"}
        assert "last error: HTTP-01 validation" in again["never.test"].message
        assert manager.orders == orders
    finally:
        env.pebble.clear_a("flaky.test")
        env.pebble.clear_a("never.test")
    env.now += dt.timedelta(minutes=2)
    result = await manager.ensure([flaky])
    assert kinds(result) == {"flaky.test": "renewed"}
    renewed = env.store.read("flaky.test")
    assert renewed is not None and renewed.info.serial != old.info.serial


async def test_restart_reuses_account_and_certificates(env: Env) -> None:
    first_issuer = env.issuer()
    wanted = wanted_from_snapshot(SNAPSHOT)
    await env.manager(first_issuer).ensure(wanted)
    assert first_issuer.registrations == 1  # once, for three certificates
    account = next((env.certs / ".acme").glob("*/account.json")).read_bytes()

    restarted_issuer = env.issuer()  # a new haloyd process: fresh objects, same disk
    restarted = env.manager(restarted_issuer)
    result = await restarted.ensure(wanted)
    assert set(kinds(result).values()) == {"unchanged"}
    stored = env.store.read("app1.test")
    assert stored is not None  # pebble 2.4 offers no ARI: the 30-day rule alone decides
    assert restarted_issuer.renewal_window(stored.pair.fullchain_pem) is None
    assert restarted.orders == 0 and restarted_issuer.registrations == 0
    # A new order after restart uses the stored account, without registering again.
    assert kinds(await restarted.ensure([WantedCert("later.test", ("later.test",))])) == {
        "later.test": "issued"
    }
    assert restarted_issuer.registrations == 0
    assert next((env.certs / ".acme").glob("*/account.json")).read_bytes() == account


async def test_hand_placed_certificates_are_used_never_overwritten(env: Env) -> None:
    ca = trustme.CA()
    place(env.certs, "_.example.com", ca, "*.example.com")
    place(env.certs, "manual.test", ca, "manual.test")  # does not cover the alias below
    before = (env.certs / "manual.test" / "fullchain.pem").read_bytes()
    manager = env.manager()
    result = await manager.ensure([
        WantedCert("shop.example.com", ("shop.example.com",)),
        WantedCert("manual.test", ("manual.test", "www.manual.test")),
    ])
    assert result["shop.example.com"].kind == "hand_placed"
    assert result["manual.test"].kind == "failed"
    assert result["manual.test"].hint and "remove the directory" in result["manual.test"].hint
    assert manager.orders == 0
    assert not (env.certs / "shop.example.com").exists()
    assert (env.certs / "manual.test" / "fullchain.pem").read_bytes() == before


async def test_dns_mismatch_warns_but_still_issues(env: Env) -> None:
    async def cdn(_: str) -> set[str]:
        return {"203.0.113.7"}

    manager = CertificateManager(
        env.store, env.issuer(), clock=env.clock, on_event=env.events.append,
        server_addresses={"127.0.0.1"}, resolve=cdn,
    )
    result = await manager.ensure([WantedCert("cdn.test", ("cdn.test",))])
    assert result["cdn.test"].kind == "issued"
    warnings = [e for e in env.events if e.kind == "warning"]
    assert len(warnings) == 1 and "203.0.113.7" in warnings[0].message
    assert warnings[0].hint and "CDN" in warnings[0].hint
