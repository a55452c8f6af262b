"""TLS termination: an immutable certificate index and the SNI callback that picks from it.

    certs_dir/<name>/fullchain.pem + privkey.pem  ──reload()──▶  CertStoreIndex (frozen)
    snapshot routes (alias → canonical)  ──update_routes()──▶   _Selection (frozen)
    ClientHello SNI ──sni_callback──▶ exact → canonical-for-alias → *.parent → built-in default

Every certificate gets its own pre-built `ssl.SSLContext` at load time, so a handshake costs one
dict lookup (two for a wildcard). Readers never lock: `reload()` and `update_routes()` build a
new frozen selection and swap one attribute. Sessions and tickets stay with the server context
(OpenSSL keeps the original SSL_CTX as the session context after an SNI switch).
"""

from __future__ import annotations

import logging
import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from haloy.certs.certfile import FULLCHAIN, CertPair, read_pair
from haloy.certs.keys import make_self_signed
from haloy.errors import CertificateError
from haloy.wire.snapshot import Snapshot

log = logging.getLogger(__name__)

# Mozilla "intermediate" TLS 1.2 suites (forward secret AEAD only); TLS 1.3 suites are
# OpenSSL's defaults, which are already that.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
ALPN = ("http/1.1",)
# RFC 1035 limits a name to 253 characters; OpenSSL itself rejects SNI over 255 bytes.
_SNI_RE = re.compile(r"^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_-]{1,63})*$")
_EMPTY: Mapping[str, ssl.SSLContext] = MappingProxyType({})


def new_server_context() -> ssl.SSLContext:
    """A server context with haloy's TLS settings and no certificate yet."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.set_alpn_protocols(list(ALPN))
    # Client-initiated renegotiation is a DoS vector and unused by HTTP/1.1 clients.
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    return ctx


def context_for_pem(fullchain_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    """A server context holding this chain and key (loaded from memory, not from disk)."""
    ctx = new_server_context()
    # load_cert_chain only takes paths; an anonymous memfd keeps the key off any filesystem.
    fd = os.memfd_create("haloy-cert", os.MFD_CLOEXEC)
    try:
        os.write(fd, fullchain_pem.rstrip(b"\n") + b"\n" + key_pem)
        ctx.load_cert_chain(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)
    return ctx


@dataclass(frozen=True)
class CertEntry:
    """One loaded certificate directory and its ready context."""

    pair: CertPair
    context: ssl.SSLContext = field(compare=False)


@dataclass(frozen=True)
class CertStoreIndex:
    """Immutable map from names to certificates: exact SANs and one-level wildcards."""

    exact: Mapping[str, CertEntry]
    wildcard: Mapping[str, CertEntry]  # keyed by the parent: "example.com" for *.example.com
    entries: tuple[CertEntry, ...]

    @classmethod
    def load(cls, certs_dir: Path) -> CertStoreIndex:
        """Load every `<certs_dir>/*/` holding a chain; bad ones are logged and skipped.

        Raises CertificateError only when the directory itself cannot be listed.
        """
        entries: list[CertEntry] = []
        try:
            dirs = sorted(certs_dir.iterdir()) if certs_dir.is_dir() else []
        except OSError as exc:
            raise CertificateError(f"cannot list {certs_dir}: {exc}") from exc
        for directory in dirs:
            if directory.name.startswith(".") or not (directory / FULLCHAIN).exists():
                continue
            try:
                pair = read_pair(directory)
                entries.append(CertEntry(pair, context_for_pem(pair.fullchain_pem, pair.key_pem)))
            except CertificateError as exc:
                log.warning("skipping certificate %s: %s", directory, exc.message)
            except (ssl.SSLError, OSError) as exc:
                log.warning("skipping certificate %s: %s", directory, exc)
        return cls.build(entries)

    @classmethod
    def build(cls, entries: list[CertEntry]) -> CertStoreIndex:
        """Index entries; when two claim a name the one expiring last wins."""
        exact: dict[str, CertEntry] = {}
        wildcard: dict[str, CertEntry] = {}
        for entry in sorted(entries, key=lambda e: e.pair.info.not_after):
            for name in entry.pair.info.names:
                if name.startswith("*."):
                    wildcard[name[2:]] = entry
                else:
                    exact[name] = entry
        return cls(MappingProxyType(exact), MappingProxyType(wildcard), tuple(entries))

    def select(self, server_name: str) -> CertEntry | None:
        """Exact SAN first, then a one-level wildcard; None when nothing covers the name."""
        entry = self.exact.get(server_name)
        if entry is None:
            entry = self.wildcard.get(server_name.partition(".")[2])
        return entry


@dataclass(frozen=True)
class _Selection:
    index: CertStoreIndex
    by_name: Mapping[str, ssl.SSLContext]  # exact names plus aliases resolved to canonical


def _selection(index: CertStoreIndex, aliases: Mapping[str, str]) -> _Selection:
    by_name = {name: entry.context for name, entry in index.exact.items()}
    for alias, canonical in aliases.items():
        if alias in by_name:
            continue
        entry = index.select(canonical)
        if entry is not None:
            by_name[alias] = entry.context
    return _Selection(index, MappingProxyType(by_name))


class TlsTerminator:
    """Owns the server SSLContext; swaps certificates in without touching open connections."""

    def __init__(self, certs_dir: Path) -> None:
        self.certs_dir = certs_dir
        self._aliases: Mapping[str, str] = _EMPTY  # type: ignore[assignment]
        self._selection = _Selection(CertStoreIndex.build([]), _EMPTY)
        cert_pem, key_pem = make_self_signed()
        self._context = context_for_pem(cert_pem, key_pem)
        self._context.sni_callback = self.sni_callback
        self.reload()

    @property
    def server_context(self) -> ssl.SSLContext:
        """The context to hand to the listener; serves the default cert unless SNI matches."""
        return self._context

    @property
    def index(self) -> CertStoreIndex:
        """The certificate index in use."""
        return self._selection.index

    def reload(self) -> int:
        """Re-read the certificate directory and swap the index in; returns certificates loaded."""
        try:
            index = CertStoreIndex.load(self.certs_dir)
        except CertificateError as exc:  # keep serving what we have rather than nothing
            log.error("certificate reload failed, keeping the current index: %s", exc.message)
            return len(self._selection.index.entries)
        self._selection = _selection(index, self._aliases)
        log.info("loaded %d certificate(s) from %s", len(index.entries), self.certs_dir)
        return len(index.entries)

    def update_routes(self, snapshot: Snapshot) -> None:
        """Learn alias → canonical domain from the route snapshot."""
        aliases = {a: r.domain for r in snapshot.routes for a in r.aliases}
        if snapshot.api is not None and snapshot.api.domain:
            aliases.pop(snapshot.api.domain, None)
        self._aliases = MappingProxyType(aliases)
        self._selection = _selection(self._selection.index, self._aliases)

    def sni_callback(
        self, sock: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext
    ) -> int | None:
        """Pick the certificate for this ClientHello (hot path: no I/O, no locks)."""
        if server_name is None:
            return None  # no SNI: the default certificate
        name = server_name.lower().rstrip(".")
        selection = self._selection
        ctx = selection.by_name.get(name)
        if ctx is None:
            if not _SNI_RE.match(name):
                log.info("rejecting handshake: invalid SNI %r", server_name[:80])
                return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
            entry = selection.index.wildcard.get(name.partition(".")[2])
            if entry is None:
                return None
            ctx = entry.context
        sock.context = ctx
        return None
