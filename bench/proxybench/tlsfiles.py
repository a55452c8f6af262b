"""One certificate for bench.local, shared by every proxy under test."""

from __future__ import annotations

import os
from pathlib import Path

import trustme

from .configs import TlsFiles

HOST = "bench.local"


def make_tls_files(directory: Path) -> TlsFiles:
    """Issue an ECDSA P-256 leaf for bench.local from a fresh CA and write the PEM files."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    leaf = ca.issue_cert(HOST)
    chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    key = leaf.private_key_pem.bytes()
    files = TlsFiles(
        fullchain=directory / "fullchain.pem",
        privkey=directory / "privkey.pem",
        combined=directory / "combined.pem",
        ca=directory / "ca.pem",
    )
    files.fullchain.write_bytes(chain)
    _write_private(files.privkey, key)
    _write_private(files.combined, chain + key)
    files.ca.write_bytes(ca.cert_pem.bytes())
    return files


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def install_for_haloy(files: TlsFiles, certs_dir: Path) -> None:
    """Place the certificate where haloy-proxy looks: <certs>/bench.local/{fullchain,privkey}."""
    target = certs_dir / HOST
    target.mkdir(parents=True, exist_ok=True)
    (target / "fullchain.pem").write_bytes(files.fullchain.read_bytes())
    _write_private(target / "privkey.pem", files.privkey.read_bytes())
