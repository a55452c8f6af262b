"""External account binding against a real pebble that requires it."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from haloy.certs.challenges import ChallengeStore
from haloy.certs.issuer import AcmeIssuer, IssuanceError
from haloy.certs.store import CertStore
from haloy.config.daemon import AcmeSettings, load_daemon_config
from tests.certs.conftest import serve_challenges
from tests.fixtures.pebble import Pebble, start_pebble

pytestmark = pytest.mark.pebble

KID = "kid-1"
HMAC_KEY = secrets.token_urlsafe(32)  # base64url, as CAs hand EAB keys out


@pytest.fixture(scope="module")
def pebble_eab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    with start_pebble(tmp_path_factory.mktemp("pebble-eab"), {KID: HMAC_KEY}) as running:
        yield running


def haloyd_yaml(pebble: Pebble, tmp_path: Path, eab: str) -> Path:
    """A haloyd.yaml whose `acme` section points at `pebble`, with `eab` lines below it."""
    path = tmp_path / "haloyd.yaml"
    path.write_text(
        "acme:\n"
        f"  directory_url: {pebble.directory_url}\n"
        f"  ca_bundle: {pebble.ca_bundle}\n"
        f"{eab}"
    )
    return path


async def test_eab_required_then_given(pebble_eab: Pebble, tmp_path: Path) -> None:
    challenges = ChallengeStore()
    store = CertStore(tmp_path / "certs")
    plain = AcmeSettings(directory_url=pebble_eab.directory_url, ca_bundle=pebble_eab.ca_bundle)
    async with serve_challenges(challenges, pebble_eab.http_port):
        without = AcmeIssuer(plain, store, challenges)
        with pytest.raises(IssuanceError) as err:
            await asyncio.to_thread(without.issue, ["eab.test"])
        assert "external account binding" in err.value.message
        assert err.value.hint and "EAB" in err.value.hint

        settings = plain.model_copy(update={"eab_kid": KID, "eab_hmac_key": HMAC_KEY})
        issuer = AcmeIssuer(settings, store, challenges)
        issued = await asyncio.to_thread(issuer.issue, ["eab.test"])
        assert issued.info.names == ("eab.test",)
        assert issuer.registrations == 1


async def test_eab_from_haloyd_yaml_issues(pebble_eab: Pebble, tmp_path: Path) -> None:
    path = haloyd_yaml(pebble_eab, tmp_path, f"  eab_kid: {KID}\n  eab_hmac_key: {HMAC_KEY}\n")
    config = load_daemon_config(path)
    challenges = ChallengeStore()
    issuer = AcmeIssuer(config.acme, CertStore(tmp_path / "certs"), challenges)
    async with serve_challenges(challenges, pebble_eab.http_port):
        issued = await asyncio.to_thread(issuer.issue, ["eab-yaml.test"])
    assert issued.info.names == ("eab-yaml.test",)
    assert issuer.registrations == 1


async def test_eab_missing_in_haloyd_yaml_names_the_settings(
    pebble_eab: Pebble, tmp_path: Path
) -> None:
    config = load_daemon_config(haloyd_yaml(pebble_eab, tmp_path, ""))
    challenges = ChallengeStore()
    issuer = AcmeIssuer(config.acme, CertStore(tmp_path / "certs"), challenges)
    async with serve_challenges(challenges, pebble_eab.http_port):
        with pytest.raises(IssuanceError) as err:
            await asyncio.to_thread(issuer.issue, ["eab-none.test"])
    assert "requires external account binding" in err.value.message
    assert err.value.hint and "acme.eab_kid" in err.value.hint
    assert "acme.eab_hmac_key" in err.value.hint
    assert issuer.registrations == 0


async def test_wrong_eab_key_names_the_settings(pebble_eab: Pebble, tmp_path: Path) -> None:
    wrong = secrets.token_urlsafe(32)
    path = haloyd_yaml(pebble_eab, tmp_path, f"  eab_kid: {KID}\n  eab_hmac_key: {wrong}\n")
    config = load_daemon_config(path)
    challenges = ChallengeStore()
    issuer = AcmeIssuer(config.acme, CertStore(tmp_path / "certs"), challenges)
    async with serve_challenges(challenges, pebble_eab.http_port):
        with pytest.raises(IssuanceError) as err:
            await asyncio.to_thread(issuer.issue, ["eab-wrong.test"])
    assert "external account binding" in err.value.message and KID in err.value.message
    assert wrong not in err.value.message
    assert err.value.hint and "acme.eab_hmac_key" in err.value.hint
    assert issuer.registrations == 0
