"""External account binding against a real pebble that requires it."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from haloy.certs.challenges import ChallengeStore
from haloy.certs.issuer import AcmeIssuer, AcmeSettings, IssuanceError
from haloy.certs.store import CertStore
from tests.certs.conftest import serve_challenges
from tests.fixtures.pebble import Pebble, start_pebble

pytestmark = pytest.mark.pebble

KID = "kid-1"
HMAC_KEY = secrets.token_urlsafe(32)  # base64url, as CAs hand EAB keys out


@pytest.fixture(scope="module")
def pebble_eab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    with start_pebble(tmp_path_factory.mktemp("pebble-eab"), {KID: HMAC_KEY}) as running:
        yield running


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

        settings = dataclasses.replace(plain, eab_kid=KID, eab_hmac_key=HMAC_KEY)
        issuer = AcmeIssuer(settings, store, challenges)
        issued = await asyncio.to_thread(issuer.issue, ["eab.test"])
        assert issued.info.names == ("eab.test",)
        assert issuer.registrations == 1
