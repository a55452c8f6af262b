"""Certificate store on a real temp directory: atomic 0600 writes, accounts, hand-placed certs."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest
import trustme

from haloy.certs.certfile import parse_pair
from haloy.certs.keys import key_to_pem, make_self_signed, new_key
from haloy.certs.store import CertStore
from haloy.errors import CertificateError
from tests.proxy.test_tls_index import place

NOW = dt.datetime.now(dt.UTC)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_save_is_private_and_marks_managed(tmp_path: Path) -> None:
    store = CertStore(tmp_path / "certs")
    cert, key = make_self_signed("site.test")
    store.save("site.test", cert, key, {"names": ["site.test"]})
    for name in ("fullchain.pem", "privkey.pem", "managed.json"):
        assert mode(tmp_path / "certs" / "site.test" / name) == 0o600
    assert not list((tmp_path / "certs" / "site.test").glob(".*tmp"))  # no temp leftovers
    stored = store.read("site.test")
    assert stored is not None and stored.managed and stored.info.names == ("site.test",)
    # A managed certificate may be replaced (renewal).
    cert2, key2 = make_self_signed("site.test")
    store.save("site.test", cert2, key2, {})
    assert store.read("site.test").pair.fullchain_pem == cert2  # type: ignore[union-attr]


def test_hand_placed_is_found_and_never_overwritten(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    ca = trustme.CA()
    place(certs, "_.example.com", ca, "*.example.com")
    place(certs, "manual.test", ca, "manual.test")
    store = CertStore(certs)
    assert store.is_hand_placed("manual.test")
    cover = store.hand_placed_covering(("a.example.com",), NOW)
    assert cover is not None and cover.domain == "_.example.com"
    assert store.hand_placed_covering(("example.com",), NOW) is None
    assert store.hand_placed_covering(("a.example.com", "x.other.test"), NOW) is None
    cert, key = make_self_signed("manual.test")
    with pytest.raises(CertificateError) as err:
        store.save("manual.test", cert, key, {})
    assert err.value.hint and "remove that directory" in err.value.hint


def test_account_key_created_once_and_reused(tmp_path: Path) -> None:
    store = CertStore(tmp_path / "certs")
    url = "https://ca.test/dir"
    key = store.account_key(url)
    path = store.account_dir(url) / "account.key"
    assert mode(path) == 0o600
    again = CertStore(tmp_path / "certs").account_key(url)
    assert key_to_pem(again) == key_to_pem(key)
    assert store.account_dir("https://other.test/dir") != store.account_dir(url)
    assert store.account_registration(url) is None
    store.save_account_registration(url, {"uri": "https://ca.test/acct/1"})
    assert store.account_registration(url) == {"uri": "https://ca.test/acct/1"}


def test_parse_pair_reasons(tmp_path: Path) -> None:
    cert, key = make_self_signed("x.test")
    assert parse_pair(tmp_path, cert, key).info.names == ("x.test",)
    with pytest.raises(CertificateError, match="does not match"):
        parse_pair(tmp_path, cert, key_to_pem(new_key()))
    with pytest.raises(CertificateError, match="not a PEM certificate chain"):
        parse_pair(tmp_path, b"junk", key)
    with pytest.raises(CertificateError, match="not an unencrypted PEM private key"):
        parse_pair(tmp_path, cert, b"junk")
