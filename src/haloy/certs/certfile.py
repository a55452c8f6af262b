"""Reading a certificate directory: `fullchain.pem` + `privkey.pem`, checked and described.

Pure apart from reading the two files; used by the proxy's TLS index and the certificate store.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from haloy.errors import CertificateError

FULLCHAIN = "fullchain.pem"
PRIVKEY = "privkey.pem"


@dataclass(frozen=True)
class CertInfo:
    """What haloy needs to know about one leaf certificate."""

    names: tuple[str, ...]  # DNS SANs, lower-case; wildcards kept as "*.example.com"
    not_before: dt.datetime
    not_after: dt.datetime
    serial: int
    issuer: str

    def covers(self, name: str) -> bool:
        """True when a SAN matches `name` exactly or as a one-level wildcard."""
        name = name.lower().rstrip(".")
        if name in self.names:
            return True
        _, dot, parent = name.partition(".")
        return bool(dot) and f"*.{parent}" in self.names

    def valid_at(self, now: dt.datetime) -> bool:
        """True when `now` lies inside the validity window."""
        return self.not_before <= now < self.not_after


@dataclass(frozen=True)
class CertPair:
    """A checked certificate directory."""

    directory: Path
    fullchain_pem: bytes
    key_pem: bytes
    info: CertInfo


def describe(cert: x509.Certificate) -> CertInfo:
    """Summarise a parsed leaf certificate."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = tuple(n.lower().rstrip(".") for n in san.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    if not names:
        # Pre-SAN certificates: fall back to the subject CN, as browsers once did.
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        names = tuple(str(a.value).lower() for a in cns)
    issuer_cn = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    issuer = str(issuer_cn[0].value) if issuer_cn else cert.issuer.rfc4514_string()
    return CertInfo(
        names=names,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        serial=cert.serial_number,
        issuer=issuer,
    )


def parse_pair(directory: Path, fullchain_pem: bytes, key_pem: bytes) -> CertPair:
    """Check a chain and key belong together; raise CertificateError saying why not."""
    try:
        chain = x509.load_pem_x509_certificates(fullchain_pem)
    except ValueError as exc:
        raise CertificateError(
            f"{directory / FULLCHAIN}: not a PEM certificate chain ({exc})",
            hint="replace the file with the full chain in PEM format (leaf first)",
        ) from exc
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise CertificateError(
            f"{directory / PRIVKEY}: not an unencrypted PEM private key ({exc})",
            hint="place the certificate's private key, PEM encoded and without a passphrase",
        ) from exc
    if not isinstance(
        key,
        rsa.RSAPrivateKey
        | ec.EllipticCurvePrivateKey
        | ed25519.Ed25519PrivateKey
        | ed448.Ed448PrivateKey,
    ):
        raise CertificateError(f"{directory / PRIVKEY}: unsupported key type")
    leaf = chain[0]
    if _public_bytes(key.public_key()) != _public_bytes(leaf.public_key()):
        raise CertificateError(
            f"{directory}: the private key does not match the certificate",
            hint=f"put the key that belongs to {FULLCHAIN}'s first certificate in {PRIVKEY}",
        )
    return CertPair(directory, fullchain_pem, key_pem, describe(leaf))


def read_pair(directory: Path) -> CertPair:
    """Read and check `<directory>/fullchain.pem` + `privkey.pem`."""
    try:
        fullchain = (directory / FULLCHAIN).read_bytes()
        key = (directory / PRIVKEY).read_bytes()
    except OSError as exc:
        raise CertificateError(f"{directory}: cannot read certificate files ({exc})") from exc
    return parse_pair(directory, fullchain, key)


def _public_bytes(public_key: object) -> bytes:
    return public_key.public_bytes(  # type: ignore[attr-defined,no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
