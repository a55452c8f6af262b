"""Choosing the CA from haloyd.yaml's `acme` section."""

from __future__ import annotations

from pathlib import Path

from haloy.certs.challenges import ChallengeStore
from haloy.certs.issuer import AcmeIssuer
from haloy.certs.store import CertStore
from haloy.config.daemon import LETSENCRYPT_PRODUCTION, LETSENCRYPT_STAGING, AcmeSettings


def issuer_for(acme: AcmeSettings, tmp_path: Path) -> AcmeIssuer:
    return AcmeIssuer(acme, CertStore(tmp_path / "certs"), ChallengeStore())


def test_defaults_to_letsencrypt_production(tmp_path: Path) -> None:
    assert issuer_for(AcmeSettings(), tmp_path).directory_url == LETSENCRYPT_PRODUCTION


def test_staging_switch_and_custom_directory(tmp_path: Path) -> None:
    staging = issuer_for(AcmeSettings(staging=True, email="ops@example.com"), tmp_path)
    assert (staging.directory_url, staging.settings.email) == (
        LETSENCRYPT_STAGING, "ops@example.com")
    custom = issuer_for(
        AcmeSettings(directory_url="https://ca.internal/dir", ca_bundle=Path("/etc/ca.pem")),
        tmp_path,
    )
    assert custom.directory_url == "https://ca.internal/dir"
    assert custom.settings.ca_bundle == Path("/etc/ca.pem")
