"""The OpenAPI document: committed copy in sync, served copy in sync, answers match schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from haloy.daemon.api.openapi import build_openapi, render
from haloy.store import Status
from tests.api.conftest import RunningApi

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_committed_document_is_current() -> None:
    assert COMMITTED.read_text() == render(build_openapi()), (
        "docs/openapi.json is stale: run "
        "`.venv/bin/python -m haloy.daemon.api > docs/openapi.json`"
    )


def test_document_is_well_formed() -> None:
    doc = build_openapi()
    assert doc["openapi"].startswith("3.1")
    assert doc["paths"]["/health"]["get"]["security"] == []
    assert "/v1/images/layers/{digest}" in doc["paths"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["responses"], (method, path)
            for resp in op["responses"].values():
                for media in resp.get("content", {}).values():
                    ref = media["schema"].get("$ref")
                    if ref:
                        assert ref.rsplit("/", 1)[-1] in doc["components"]["schemas"]
    for schema in doc["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)


def validate(doc: dict[str, Any], name: str, instance: Any) -> None:
    schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    jsonschema.Draft202012Validator(schema).validate(instance)


async def test_served_document_matches_and_answers_validate(api: RunningApi) -> None:
    dep = await api.store.record("web", "web:1", {"a": 1})
    await api.store.update(dep.id, Status.RUNNING)
    async with api.client() as c:
        served = (await c.get("/v1/openapi.json")).json()
        answers = {
            "VersionInfo": (await c.get("/v1/version")).json(),
            "AppList": (await c.get("/v1/apps")).json(),
            "AppStatus": (await c.get("/v1/apps/web")).json(),
            "DeploymentList": (await c.get("/v1/apps/web/deployments")).json(),
            "ErrorBody": (await c.get("/v1/apps/none")).json(),
            "LayerCheckResponse": (
                await c.post("/v1/images/layers/check", json={"digests": []})
            ).json(),
        }
    assert served == json.loads(COMMITTED.read_text())
    for name, body in answers.items():
        validate(served, name, body)


def test_unknown_fields_are_refused_by_the_schema() -> None:
    doc = build_openapi()
    with pytest.raises(jsonschema.ValidationError):
        validate(doc, "LayerCheckRequest", {"digests": [], "extra": 1})
