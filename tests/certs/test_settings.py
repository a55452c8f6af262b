"""Choosing the CA from haloyd.yaml's `acme` section."""

from __future__ import annotations

from pathlib import Path

from haloy.certs.issuer import LETSENCRYPT_PRODUCTION, LETSENCRYPT_STAGING, AcmeSettings
from haloy.config.daemon import AcmeSettings as AcmeConfig


def test_defaults_to_letsencrypt_production() -> None:
    assert AcmeSettings.from_config(AcmeConfig()).directory_url == LETSENCRYPT_PRODUCTION


def test_staging_switch_and_custom_directory() -> None:
    staging = AcmeSettings.from_config(AcmeConfig(staging=True, email="ops@example.com"))
    assert (staging.directory_url, staging.email) == (LETSENCRYPT_STAGING, "ops@example.com")
    custom = AcmeSettings.from_config(
        AcmeConfig(directory_url="https://ca.internal/dir", ca_bundle=Path("/etc/ca.pem"))
    )
    assert custom.directory_url == "https://ca.internal/dir"
    assert custom.ca_bundle == Path("/etc/ca.pem")
    assert AcmeSettings.choose(None, staging=True).directory_url == LETSENCRYPT_STAGING
