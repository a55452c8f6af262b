"""Label codec: table tests."""

from __future__ import annotations

import pytest

from haloy.runtime.labels import (
    AppLabels,
    Domain,
    LabelError,
    claims_haloy,
    decode,
    encode,
)

BASE = {
    "dev.haloy.appName": "web",
    "dev.haloy.deployment-id": "01JABC",
    "dev.haloy.role": "app",
    "dev.haloy.domain.0": "Example.COM",
}


def test_minimal_labels_take_defaults() -> None:
    assert decode(BASE) == AppLabels("web", "01JABC", (Domain("example.com"),), 8080, "/")


def test_full_labels_round_trip() -> None:
    labels = {
        **BASE,
        "dev.haloy.port": "3000",
        "dev.haloy.health-check-path": "/healthz",
        "dev.haloy.domain.0.alias.1": "b.example.com",
        "dev.haloy.domain.0.alias.0": "www.example.com",
        "dev.haloy.domain.1": "api.example.org",
        "dev.haloy.acme.email": "ignored@example.com",
    }
    decoded = decode(labels)
    assert decoded == AppLabels(
        "web",
        "01JABC",
        (Domain("example.com", ("www.example.com", "b.example.com")), Domain("api.example.org")),
        3000,
        "/healthz",
    )
    assert decode(encode(decoded)) == decoded


@pytest.mark.parametrize(
    ("change", "label", "reason"),
    [
        ({"dev.haloy.role": None}, "dev.haloy.role", "missing"),
        ({"dev.haloy.role": "db"}, "dev.haloy.role", "must be 'app'"),
        ({"dev.haloy.appName": None}, "dev.haloy.appName", "missing"),
        ({"dev.haloy.appName": "a b"}, "dev.haloy.appName", "invalid app name"),
        ({"dev.haloy.appName": 'x"} 1\nm{a="1'}, "dev.haloy.appName", "invalid app name"),
        ({"dev.haloy.deployment-id": 'x"} 1\nm{a="1'}, "dev.haloy.deployment-id", "invalid"),
        ({"dev.haloy.deployment-id": "01J/../x"}, "dev.haloy.deployment-id", "invalid"),
        ({"dev.haloy.deployment-id": ""}, "dev.haloy.deployment-id", "missing"),
        ({"dev.haloy.domain.0": None}, "dev.haloy.domain.0", "missing"),
        ({"dev.haloy.domain.0": "bad_domain!"}, "dev.haloy.domain.0", "invalid domain"),
        ({"dev.haloy.domain.0": "-x.com"}, "dev.haloy.domain.0", "invalid domain"),
        ({"dev.haloy.port": "http"}, "dev.haloy.port", "not a port"),
        ({"dev.haloy.port": "70000"}, "dev.haloy.port", "not a port"),
        ({"dev.haloy.port": "\u00b2"}, "dev.haloy.port", "not a port"),  # isdigit(), not int()
        ({"dev.haloy.port": "\u0668\u0660"}, "dev.haloy.port", "not a port"),
        ({"dev.haloy.health-check-path": "health"}, "dev.haloy.health-check-path", "start"),
        ({"dev.haloy.domain.x": "a.com"}, "dev.haloy.domain.x", "unknown domain label"),
        ({"dev.haloy.domain.2.alias.0": "a.com"}, "dev.haloy.domain.2.alias.0", "not set"),
    ],
)
def test_bad_labels_are_reported(change: dict[str, str | None], label: str, reason: str) -> None:
    labels = {**BASE, **{k: v for k, v in change.items() if v is not None}}
    for k, v in change.items():
        if v is None:
            del labels[k]
    with pytest.raises(LabelError) as info:
        decode(labels)
    assert [(p.label, reason in p.reason) for p in info.value.problems] == [(label, True)]


def test_every_problem_is_listed() -> None:
    with pytest.raises(LabelError) as info:
        decode({"dev.haloy.port": "x"})
    assert {p.label for p in info.value.problems} == {
        "dev.haloy.appName",
        "dev.haloy.deployment-id",
        "dev.haloy.role",
        "dev.haloy.port",
        "dev.haloy.domain.0",
    }


@pytest.mark.parametrize(
    ("labels", "claims"),
    [
        ({}, False),
        ({"com.example": "x", "dev.haloy.test": "1"}, False),
        ({"dev.haloy.role": "app"}, True),
        ({**BASE, "dev.haloy.role": "haloyd"}, False),
        ({"dev.haloy.domain.0": "a.com"}, True),
        (BASE, True),
    ],
)
def test_claims_haloy(labels: dict[str, str], claims: bool) -> None:
    assert claims_haloy(labels) is claims
