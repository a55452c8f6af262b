"""Key material made in memory: ECDSA P-256 keys, CSRs and the proxy's self-signed default."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# The default certificate only has to be syntactically valid: clients that reach it get a
# name mismatch anyway. Ten years so a long-running proxy never serves an expired one.
DEFAULT_CERT_DAYS = 3650


def new_key() -> ec.EllipticCurvePrivateKey:
    """A fresh ECDSA P-256 key (small, fast handshakes, accepted by every ACME CA)."""
    return ec.generate_private_key(ec.SECP256R1())


def key_to_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """PKCS#8 PEM without a passphrase."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_csr(names: Sequence[str], key: ec.EllipticCurvePrivateKey) -> bytes:
    """A PEM CSR for `names` (first is the subject CN), all as DNS SANs."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def make_self_signed(common_name: str = "haloy-default") -> tuple[bytes, bytes]:
    """(cert PEM, key PEM) of a self-signed certificate, made in memory only."""
    key = new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=DEFAULT_CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_to_pem(key)
