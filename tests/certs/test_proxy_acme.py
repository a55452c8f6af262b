"""Issuance through the real haloy-proxy: HTTP-01 via its acme passthrough, served on its HTTPS.

    pebble ──HTTP-01──▶ haloy-proxy :http ──/.well-known/acme-challenge/──▶ challenge listener
    TLS client ──SNI──▶ haloy-proxy :https (TlsTerminator) ◀── reload_certs ── manager
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from haloy.certs.challenges import ChallengeStore
from haloy.certs.issuer import AcmeIssuer
from haloy.certs.manager import CertificateManager, wanted_from_snapshot
from haloy.certs.store import CertStore
from haloy.config.daemon import AcmeSettings
from haloy.wire.snapshot import parse_snapshot
from tests.certs.conftest import serve_challenges
from tests.certs.tls_peer import client_hello, connect, raw_exchange
from tests.fixtures.pebble import Pebble

pytestmark = pytest.mark.pebble


async def here(_: str) -> set[str]:
    return {"127.0.0.1"}


async def test_issue_renew_and_serve_through_haloy_proxy(
    pebble: Pebble, proxy_factory: Callable[..., Any], tmp_path: Path
) -> None:
    challenges = ChallengeStore()
    async with serve_challenges(challenges, 0) as responder:
        proxy = proxy_factory(
            "--no-access-log", "--http-listen", f"127.0.0.1:{pebble.http_port}",
            data_dir=tmp_path / "data",
        )
        backend = {"address": "127.0.0.1", "port": responder.port}
        snapshot: dict[str, Any] = {
            "acme_challenge_backend": backend,
            "routes": [
                {"app": "one", "domain": "p1.test", "aliases": ["www.p1.test"],
                 "backends": [backend], "tls": True},
                {"app": "two", "domain": "p2.test", "backends": [backend], "tls": True},
            ],
        }
        assert proxy.put_snapshot(snapshot)["ok"]
        now = [dt.datetime.now(dt.UTC)]
        reloads: list[int] = []

        async def reload_certs() -> None:
            reply = await asyncio.to_thread(proxy.reload_certs)
            assert reply["ok"]
            reloads.append(reply["certificates"])

        store = CertStore(proxy.paths.certs_dir)
        settings = AcmeSettings(directory_url=pebble.directory_url, ca_bundle=pebble.ca_bundle)
        manager = CertificateManager(
            store, AcmeIssuer(settings, store, challenges), clock=lambda: now[0],
            on_change=reload_certs, server_addresses={"127.0.0.1"}, resolve=here,
        )
        wanted = wanted_from_snapshot(parse_snapshot(snapshot))
        result = await manager.ensure(wanted)
        assert {d: e.kind for d, e in result.items()} == {"p1.test": "issued", "p2.test": "issued"}
        assert reloads == [2]

        port = proxy.https_port
        p1 = await connect(port, "p1.test", cafile=pebble.root_file)
        alias = await connect(port, "www.p1.test", cafile=pebble.root_file)
        p2 = await connect(port, "p2.test", cafile=pebble.root_file)
        assert alias.info.serial == p1.info.serial
        assert p2.info.names == ("p2.test",)
        unknown = await connect(port, "unknown.test")
        assert unknown.info.names == ("haloy-default",)
        assert (await p1.fetch("p1.test"))[0] == 404  # proxied to the backend (no page at /)
        assert (await alias.fetch("www.p1.test"))[0] == 301  # alias → canonical

        old_serial = p1.info.serial
        stored = store.read("p1.test")
        assert stored is not None
        now[0] = stored.info.not_after - dt.timedelta(days=29)
        renewed = await manager.ensure(wanted)
        assert renewed["p1.test"].kind == "renewed"
        fresh = await connect(port, "p1.test", cafile=pebble.root_file)
        assert fresh.info.serial != old_serial
        assert (await p1.fetch("p1.test"))[0] == 404  # opened before the reload: still served
        for client in (p1, alias, p2, unknown, fresh):
            await client.close()


async def test_bad_client_hellos_against_haloy_proxy(
    proxy_factory: Callable[..., Any], tmp_path: Path
) -> None:
    proxy = proxy_factory("--no-access-log", data_dir=tmp_path / "data")
    port = proxy.https_port
    assert (await raw_exchange(port, client_hello(b"ok.test")))[:1] == b"\x16"
    for bad in (b"GET / HTTP/1.1\r\n\r\n", client_hello(b"a" * 300),
                client_hello(b"bad name!.test")):
        assert (await raw_exchange(port, bad))[:1] in (b"", b"\x15")
    ok = await connect(port, "ok.test")
    assert ok.info.names == ("haloy-default",)
    await ok.close()
    assert "invalid SNI" in proxy.logs()
