"""App names, layer digests and deployment ids: table-tested (pure)."""

from __future__ import annotations

import pytest

from haloy.daemon.api.validate import app_name_problem, deployment_id_problem, digest_problem

HEX = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("web", True),
        ("my-app", True),
        ("my_app.v2", True),
        ("a", True),
        ("0day", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("", False),
        ("..", False),
        (".", False),
        ("a..b", False),
        ("../etc", False),
        ("a/b", False),
        ("a\\b", False),
        ("Web", False),
        ("-web", False),
        ("web-", False),
        (".hidden", False),
        ("web\x00", False),
        ("web\n", False),
        ("wéb", False),
        ("web app", False),
        ("web:latest", False),
        ("%2e%2e", False),
    ],
)
def test_app_names(name: str, ok: bool) -> None:
    assert (app_name_problem(name) is None) is ok


@pytest.mark.parametrize(
    ("digest", "ok"),
    [
        (f"sha256:{HEX}", True),
        (f"sha256:{HEX.upper()}", False),
        (f"sha256:{HEX[:-1]}", False),
        (f"sha256:{HEX}0", False),
        (HEX, False),
        (f"sha512:{HEX}{HEX}", False),
        (f"sha256:../../{HEX[6:]}", False),
        ("sha256:../../etc/passwd", False),
        (f"sha256:{HEX}/..", False),
        (f"sha256:{HEX}\n", False),
        ("", False),
    ],
)
def test_digests(digest: str, ok: bool) -> None:
    assert (digest_problem(digest) is None) is ok


@pytest.mark.parametrize(
    ("dep_id", "ok"),
    [
        ("01J00000000000000000000001", True),
        ("01ARZ3NDEKTSV4RRFFQ69G5FAV", True),
        ("01arz3ndektsv4rrffq69g5fav", False),
        ("01ARZ3NDEKTSV4RRFFQ69G5FA", False),
        ("01ARZ3NDEKTSV4RRFFQ69G5FAVX", False),
        ("01ARZ3NDEKTSV4RRFFQ69G5FAU", False),
        ("../../../../../../../../..", False),
    ],
)
def test_deployment_ids(dep_id: str, ok: bool) -> None:
    assert (deployment_id_problem(dep_id) is None) is ok
