"""Test helpers: a real asyncio TLS server on a TlsTerminator, TLS clients, raw ClientHellos."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509

from haloy.certs.certfile import CertInfo, describe
from haloy.proxy.tls import TlsTerminator


async def _serve_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer keep-alive GETs with `ok` until the client goes away."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if not head:
                break
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


@asynccontextmanager
async def tls_server(
    terminator: TlsTerminator, handshake_timeout: float = 10.0
) -> AsyncIterator[int]:
    """A real TLS listener on 127.0.0.1:<port 0> using the terminator's server context."""
    server = await asyncio.start_server(
        _serve_http, "127.0.0.1", 0, ssl=terminator.server_context,
        ssl_handshake_timeout=handshake_timeout,
    )
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


@dataclass
class TlsClient:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    @property
    def leaf(self) -> x509.Certificate:
        sslobj = self.writer.get_extra_info("ssl_object")
        return x509.load_der_x509_certificate(sslobj.getpeercert(binary_form=True))

    @property
    def info(self) -> CertInfo:
        return describe(self.leaf)

    @property
    def alpn(self) -> str | None:
        proto: str | None = self.writer.get_extra_info("ssl_object").selected_alpn_protocol()
        return proto

    async def get(self) -> bytes:
        """One keep-alive request; returns the body."""
        self.writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await self.writer.drain()
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200")
        return await self.reader.readexactly(2)

    async def fetch(self, host: str, path: str = "/") -> tuple[int, bytes]:
        """One keep-alive request with a Content-Length response; returns (status, body)."""
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        await self.writer.drain()
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await asyncio.wait_for(self.reader.readexactly(length), 10)
        return int(head.split(b" ", 2)[1]), body

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass


def place_cert(ca: trustme.CA, certs: Path, name: str) -> None:
    """Put a certificate for `name`, issued by `ca`, where the proxy looks (certs/<name>/)."""
    leaf = ca.issue_cert(name)
    d = certs / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "fullchain.pem").write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))
    (d / "privkey.pem").write_bytes(leaf.private_key_pem.bytes())
    (d / "privkey.pem").chmod(0o600)


def resumed(
    port: int, name: str, cafile: Path, version: ssl.TLSVersion,
    host: bytes = b"x", expect: bytes = b"HTTP/1.1 200",
) -> bool:
    """Two blocking handshakes with one session (SNI `name`, one GET each, the answer must
    start with `expect`); True when the second resumed the first one's session."""
    ctx = ssl.create_default_context(cafile=str(cafile))
    ctx.minimum_version = ctx.maximum_version = version
    session, reused = None, False
    for _ in range(2):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, ctx.wrap_socket(
            raw, server_hostname=name, session=session
        ) as conn:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
            assert conn.recv(100).startswith(expect)  # TLS 1.3 tickets come here
            reused, session = bool(conn.session_reused), conn.session
    return reused


def client_context(cafile: Path | None = None) -> ssl.SSLContext:
    """Verifying (with `cafile`) or non-verifying client context offering ALPN http/1.1."""
    if cafile is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cafile=str(cafile))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


async def connect(
    port: int, server_name: str | None, cafile: Path | None = None
) -> TlsClient:
    """Complete a TLS handshake with SNI `server_name` (verified when `cafile` is given)."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(
            "127.0.0.1", port, ssl=client_context(cafile), server_hostname=server_name or "",
        ),
        10,
    )
    return TlsClient(reader, writer)


def client_hello(server_name: bytes) -> bytes:
    """A minimal TLS 1.2 ClientHello record carrying an arbitrary SNI (RFC 6066 §3)."""
    names = b"\x00" + len(server_name).to_bytes(2, "big") + server_name
    sni = b"\x00\x00" + (len(names) + 2).to_bytes(2, "big") + len(names).to_bytes(2, "big") + names
    groups = b"\x00\x0a\x00\x04\x00\x02\x00\x17"  # secp256r1
    sigalgs = b"\x00\x0d\x00\x04\x00\x02\x04\x03"  # ecdsa_secp256r1_sha256
    exts = sni + groups + sigalgs
    body = (
        b"\x03\x03" + os.urandom(32) + b"\x00"
        + b"\x00\x04\xc0\x2b\xc0\x2f"  # ECDHE-ECDSA/RSA-AES128-GCM-SHA256
        + b"\x01\x00" + len(exts).to_bytes(2, "big") + exts
    )
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + len(handshake).to_bytes(2, "big") + handshake


async def raw_exchange(port: int, data: bytes) -> bytes:
    """Send raw bytes, return what the server sends back until it closes (b"" if nothing)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), 10)
    except ConnectionResetError:
        return b""
    finally:
        writer.close()
