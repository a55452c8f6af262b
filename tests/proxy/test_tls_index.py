"""TlsTerminator against real TLS clients: SNI selection, reload, and bad input."""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path

import pytest
import trustme

from haloy.certs.keys import key_to_pem, new_key
from haloy.proxy.tls import CertStoreIndex, TlsTerminator
from haloy.wire.snapshot import parse_snapshot
from tests.certs.tls_peer import client_hello, connect, raw_exchange, resumed, tls_server

ALERT, HANDSHAKE = 0x15, 0x16


def place(certs: Path, dirname: str, ca: trustme.CA, *names: str) -> None:
    """Hand-place a trustme certificate as `<certs>/<dirname>/`."""
    cert = ca.issue_cert(*names)
    d = certs / dirname
    d.mkdir(parents=True, exist_ok=True)
    (d / "fullchain.pem").write_bytes(b"".join(p.bytes() for p in cert.cert_chain_pems))
    (d / "privkey.pem").write_bytes(cert.private_key_pem.bytes())


@pytest.fixture
def ca(tmp_path: Path) -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def certs(tmp_path: Path, ca: trustme.CA) -> Path:
    certs = tmp_path / "certs"
    place(certs, "app.test", ca, "app.test")
    place(certs, "other.test", ca, "other.test", "www.other.test")
    place(certs, "_.example.com", ca, "*.example.com")
    return certs


def test_index_selects_exact_then_wildcard(certs: Path) -> None:
    index = CertStoreIndex.load(certs)
    assert len(index.entries) == 3
    assert index.select("app.test").pair.info.names == ("app.test",)  # type: ignore[union-attr]
    assert index.select("a.example.com") is index.select("b.example.com") is not None
    assert index.select("example.com") is None  # a wildcard covers one level only
    assert index.select("x.a.example.com") is None
    assert index.select("nope.test") is None


def test_server_context_settings(certs: Path) -> None:
    ctx = TlsTerminator(certs).server_context
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert not ctx.options & ssl.OP_NO_TICKET  # session tickets on
    assert all(c["protocol"] in ("TLSv1.2", "TLSv1.3") for c in ctx.get_ciphers())


async def test_sni_selection_over_real_tls(certs: Path, ca_file: Path) -> None:
    tls = TlsTerminator(certs)
    tls.update_routes(parse_snapshot({"routes": [
        {"app": "app", "domain": "app.test", "aliases": ["www.app.test"]},
    ]}))
    async with tls_server(tls) as port:
        for name in ("app.test", "other.test", "www.other.test", "a.example.com",
                     "b.example.com"):
            client = await connect(port, name, cafile=ca_file)  # verifies chain + hostname
            assert client.alpn == "http/1.1"
            assert await client.get() == b"ok"
            await client.close()
        alias = await connect(port, "www.app.test")  # alias gets the canonical's cert
        assert alias.info.names == ("app.test",)
        await alias.close()
        for unknown in ("unknown.test", None, "x.a.example.com"):
            default = await connect(port, unknown)
            assert default.info.names == ("haloy-default",)
            assert await default.get() == b"ok"
            await default.close()


async def test_reload_swaps_index_and_keeps_open_connections(
    certs: Path, ca: trustme.CA, ca_file: Path
) -> None:
    tls = TlsTerminator(certs)
    async with tls_server(tls) as port:
        before = await connect(port, "new.test")
        assert before.info.names == ("haloy-default",)
        old = await connect(port, "app.test", cafile=ca_file)
        old_serial = old.info.serial
        place(certs, "new.test", ca, "new.test")
        place(certs, "app.test", ca, "app.test")  # a renewal: new serial
        assert tls.reload() == 4
        fresh = await connect(port, "new.test", cafile=ca_file)
        renewed = await connect(port, "app.test", cafile=ca_file)
        assert renewed.info.serial != old_serial
        # Connections opened before the reload keep working on their old certificate.
        assert await before.get() == b"ok"
        assert await old.get() == b"ok"
        assert await fresh.get() == b"ok"
        for c in (before, old, fresh, renewed):
            await c.close()


def test_corrupt_and_mismatched_files_are_skipped(
    certs: Path, ca: trustme.CA, caplog: pytest.LogCaptureFixture
) -> None:
    (certs / "corrupt.test").mkdir()
    (certs / "corrupt.test" / "fullchain.pem").write_text("-----BEGIN CERTIFICATE-----\ngarbage")
    (certs / "corrupt.test" / "privkey.pem").write_bytes(key_to_pem(new_key()))
    place(certs, "mismatch.test", ca, "mismatch.test")
    (certs / "mismatch.test" / "privkey.pem").write_bytes(key_to_pem(new_key()))
    (certs / "nokey.test").mkdir()
    (certs / "nokey.test" / "fullchain.pem").write_bytes(
        (certs / "app.test" / "fullchain.pem").read_bytes()
    )
    with caplog.at_level(logging.WARNING, logger="haloy.proxy.tls"):
        tls = TlsTerminator(certs)
    assert len(tls.index.entries) == 3
    assert tls.index.select("mismatch.test") is None
    text = caplog.text
    assert "corrupt.test" in text and "not a PEM certificate chain" in text
    assert "mismatch.test" in text and "does not match" in text
    assert "nokey.test" in text and "cannot read" in text


async def test_bad_client_hellos_are_rejected_and_serving_continues(
    certs: Path, ca_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tls = TlsTerminator(certs)
    async with tls_server(tls) as port:
        # The hand-built ClientHello works with a good name (so rejections below are real).
        assert (await raw_exchange(port, client_hello(b"app.test")))[:1] == bytes([HANDSHAKE])
        # Garbage instead of a ClientHello: closed without a handshake.
        reply = await raw_exchange(port, b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
        assert reply[:1] in (b"", bytes([ALERT]))
        # Over-long SNI (300 bytes): OpenSSL refuses it.
        reply = await raw_exchange(port, client_hello(b"a" * 300))
        assert reply[:1] in (b"", bytes([ALERT]))
        # Invalid SNI characters: our callback refuses with unrecognized_name.
        with caplog.at_level(logging.INFO, logger="haloy.proxy.tls"):
            for bad in (b"bad name!.test", b"a..b.test", b"-x-" * 90):
                reply = await raw_exchange(port, client_hello(bad))
                assert reply[:1] in (b"", bytes([ALERT])), bad
        assert "invalid SNI" in caplog.text
        ok = await connect(port, "app.test", cafile=ca_file)
        assert await ok.get() == b"ok"
        await ok.close()


async def test_stalled_handshake_is_dropped_and_others_served(
    certs: Path, ca_file: Path
) -> None:
    tls = TlsTerminator(certs)
    async with tls_server(tls, handshake_timeout=1.5) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(client_hello(b"app.test")[:20])  # half a ClientHello, then silence
        await writer.drain()
        ok = await connect(port, "app.test", cafile=ca_file)  # served meanwhile
        assert await ok.get() == b"ok"
        await ok.close()
        # The server gives up on the staller at its handshake timeout: we see EOF.
        try:
            assert await asyncio.wait_for(reader.read(100), 20) == b""
        except ConnectionResetError:
            pass
        writer.close()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_session_resumption_after_sni_switch(
    certs: Path, ca_file: Path, version: ssl.TLSVersion
) -> None:
    tls = TlsTerminator(certs)
    async with tls_server(tls) as port:
        assert await asyncio.to_thread(resumed, port, "other.test", ca_file, version)



def test_unlistable_dir_keeps_current_index(
    certs: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    tls = TlsTerminator(certs)
    assert len(tls.index.entries) == 3

    def unlistable(self: Path) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "iterdir", unlistable)  # root ignores chmod; simulate EACCES
    with caplog.at_level(logging.ERROR, logger="haloy.proxy.tls"):
        assert tls.reload() == 3
    assert "keeping the current index" in caplog.text
    assert tls.index.select("app.test") is not None
