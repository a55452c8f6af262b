"""Version, apps, history and error answers on a real server."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from haloy import __version__
from haloy.errors import StoreError
from haloy.store import Status
from haloy.wire.api import AppStatus
from tests.api.conftest import RunningApi, StartApi


async def test_version_lists_capabilities(api: RunningApi) -> None:
    async with api.client() as c:
        r = await c.get("/v1/version")
    assert r.json() == {
        "version": __version__,
        "apiVersion": "v1",
        "capabilities": [
            "apps", "apps.exec", "apps.logs", "apps.stop", "apps.tunnel", "deployments",
            "deployments.events",
            "deployments.history", "deployments.rollback", "images.assemble", "images.layers",
            "images.prune", "images.tar", "registries", "server.logs",
        ],
        "engineId": None,  # the test app is not given the engine's identity
    }


async def test_apps_and_one_app_in_camel_case(api: RunningApi) -> None:
    async with api.client() as c:
        apps = (await c.get("/v1/apps")).json()["apps"]
        web = await c.get("/v1/apps/web")
        missing = await c.get("/v1/apps/nope")
    assert [a["name"] for a in apps] == ["api", "web"]
    body = web.json()
    assert body["deploymentId"] == "01J00000000000000000000001"
    [replica] = body["replicas"]
    assert replica == {
        "containerId": "c1", "name": "web-1", "deploymentId": "01J00000000000000000000001",
        "address": "172.18.0.2", "port": 8080, "routing": "active", "health": "up",
        "checks": 3, "failures": 0, "lastError": None, "requests": 7, "activeConnections": 1,
    }
    assert body["domains"] == [
        {"domain": "web.example.com", "aliases": ["www.example.com"], "certificateExpiry": None,
         "url": None}
    ]
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


async def test_deployment_history_newest_first(api: RunningApi) -> None:
    first = await api.store.record("web", "web:1", {"env": [{"name": "PW", "secretRef": "pw"}]})
    await api.store.update(first.id, Status.RUNNING)
    await api.store.update(first.id, Status.SUCCEEDED, image_digest="sha256:" + "1" * 64)
    second = await api.store.record("web", "web:2", {})
    await api.store.update(second.id, Status.FAILED, reason="health check failed")
    async with api.client() as c:
        r = await c.get("/v1/apps/web/deployments")
        one = await c.get("/v1/apps/web/deployments", params={"limit": "1"})
        bad_limit = await c.get("/v1/apps/web/deployments", params={"limit": "0"})
        empty = await c.get("/v1/apps/other/deployments")
    body = r.json()
    assert body["app"] == "web"
    assert [(d["id"], d["status"]) for d in body["deployments"]] == [
        (second.id, "failed"), (first.id, "succeeded"),
    ]
    newest, oldest = body["deployments"]
    assert newest["reason"] == "health check failed"
    assert oldest["imageDigest"] == "sha256:" + "1" * 64
    assert oldest["config"] == {"env": [{"name": "PW", "secretRef": "pw"}]}
    assert set(oldest) >= {"imageRef", "createdAt", "updatedAt", "rolledBackFrom"}
    assert len(one.json()["deployments"]) == 1
    assert bad_limit.status_code == 400
    assert empty.json() == {"app": "other", "deployments": []}


@pytest.mark.parametrize(
    "path",
    [
        "/v1/apps/%2e%2e",
        "/v1/apps/%2e%2e/deployments",
        "/v1/apps/..%2f..%2fetc/deployments",
        "/v1/apps/..%2Fetc%2Fpasswd",
        "/v1/apps/Web",
        "/v1/apps/a%00b/deployments",
        "/v1/apps/.hidden/deployments",
    ],
)
async def test_app_name_traversal_is_400(api: RunningApi, path: str) -> None:
    async with api.client() as c:
        r = await c.get(path)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_app_name"
    assert r.json()["hint"]


class FailingStatus:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    async def apps(self) -> Sequence[AppStatus]:
        raise self.exc

    async def app(self, name: str) -> AppStatus | None:
        raise self.exc


async def test_crash_is_500_in_the_error_shape(start_api: StartApi) -> None:
    api = await start_api(status=FailingStatus(ValueError("secret internals")))
    async with api.client() as c:
        r = await c.get("/v1/apps")
    assert r.status_code == 500
    body = r.json()
    assert body["error"] == "internal_error" and body["hint"]
    assert "secret internals" not in r.text
    assert r.headers["x-frame-options"] == "DENY"


async def test_store_error_is_503_with_its_hint(start_api: StartApi) -> None:
    api = await start_api(status=FailingStatus(StoreError("db is locked", hint="retry")))
    async with api.client() as c:
        r = await c.get("/v1/apps/web")
    assert r.status_code == 503
    assert r.json() == {"error": "store_unavailable", "detail": "db is locked", "hint": "retry"}
