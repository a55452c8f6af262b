"""The certificate store on disk, under `Paths.certs_dir`.

    certs/<domain>/fullchain.pem, privkey.pem   one certificate (0600, written temp + rename)
    certs/<domain>/managed.json                 present only for certificates haloy issued
    certs/.acme/<ca-id>/account.key, account.json   the ACME account per CA directory URL

A directory without `managed.json` was placed by hand: it is used and never overwritten.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from haloy.certs.certfile import FULLCHAIN, PRIVKEY, CertInfo, CertPair, read_pair
from haloy.certs.keys import key_to_pem, new_key
from haloy.errors import CertificateError

MANAGED = "managed.json"


@dataclass(frozen=True)
class StoredCert:
    """A certificate found in the store."""

    domain: str  # directory name
    pair: CertPair
    managed: bool

    @property
    def info(self) -> CertInfo:
        return self.pair.info


def write_private(path: Path, data: bytes) -> None:
    """Write atomically: temp file 0600 + fsync + rename."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class CertStore:
    """Reads and writes certificates and ACME accounts below one directory."""

    def __init__(self, certs_dir: Path) -> None:
        self.certs_dir = certs_dir

    def domain_dir(self, domain: str) -> Path:
        """The directory of one managed domain's certificate."""
        return self.certs_dir / domain

    def read(self, domain: str) -> StoredCert | None:
        """The certificate stored under `domain`, or None when absent or unreadable."""
        directory = self.domain_dir(domain)
        if not (directory / FULLCHAIN).exists():
            return None
        try:
            pair = read_pair(directory)
        except CertificateError:
            return None
        return StoredCert(domain, pair, (directory / MANAGED).exists())

    def all(self) -> list[StoredCert]:
        """Every readable certificate directory, hand-placed ones included."""
        if not self.certs_dir.is_dir():
            return []
        found = []
        for d in sorted(self.certs_dir.iterdir()):
            if not d.name.startswith("."):
                cert = self.read(d.name)
                if cert is not None:
                    found.append(cert)
        return found

    def hand_placed_covering(self, names: tuple[str, ...], now: dt.datetime) -> StoredCert | None:
        """A valid hand-placed certificate (wildcards included) covering all `names`."""
        for cert in self.all():
            if not cert.managed and cert.info.valid_at(now):
                if all(cert.info.covers(n) for n in names):
                    return cert
        return None

    def is_hand_placed(self, domain: str) -> bool:
        """True when `<domain>/` holds files haloy did not write."""
        directory = self.domain_dir(domain)
        return directory.exists() and any(directory.iterdir()) and not (
            directory / MANAGED
        ).exists()

    def save(
        self, domain: str, fullchain_pem: bytes, key_pem: bytes, meta: dict[str, object]
    ) -> None:
        """Store a certificate haloy issued; refuses to overwrite a hand-placed one."""
        if self.is_hand_placed(domain):
            raise CertificateError(
                f"{self.domain_dir(domain)} holds a hand-placed certificate; not overwriting it",
                hint="remove that directory to let haloy manage the certificate",
            )
        directory = self.domain_dir(domain)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Marker first: a crash mid-save must never leave our files looking hand-placed.
        write_private(directory / MANAGED, json.dumps(meta, sort_keys=True).encode())
        # Each file is replaced atomically; the proxy is told to reload only after both are in
        # place, and a reload racing an outside write skips the mismatched pair with a warning.
        write_private(directory / PRIVKEY, key_pem)
        write_private(directory / FULLCHAIN, fullchain_pem)

    # --- ACME account -------------------------------------------------------------------

    def account_dir(self, directory_url: str) -> Path:
        """Where the account for one CA lives (accounts are per CA)."""
        digest = hashlib.sha256(directory_url.encode()).hexdigest()[:16]
        return self.certs_dir / ".acme" / digest

    def account_key(self, directory_url: str) -> ec.EllipticCurvePrivateKey:
        """The account key for this CA, created (ECDSA P-256, 0600) on first use."""
        path = self.account_dir(directory_url) / "account.key"
        with contextlib.suppress(FileNotFoundError):
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise CertificateError(f"{path}: the ACME account key is not an ECDSA key")
            return key
        key = new_key()
        write_private(path, key_to_pem(key))
        return key

    def account_registration(self, directory_url: str) -> dict[str, object] | None:
        """The saved registration resource (JSON) for this CA, if registered."""
        path = self.account_dir(directory_url) / "account.json"
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise CertificateError(f"{path}: corrupt ACME account file ({exc})") from exc
        return data if isinstance(data, dict) else None

    def save_account_registration(self, directory_url: str, regr: dict[str, object]) -> None:
        """Remember the registration so the account is registered only once."""
        path = self.account_dir(directory_url) / "account.json"
        write_private(path, json.dumps(regr, sort_keys=True).encode())
