"""Auth, error shape, security headers, body limits and rate limiting on a real server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from haloy.daemon.api import ApiLimits, StaticStatus, create_api, make_server, serve_api
from haloy.daemon.api.ratelimit import RatePolicy
from haloy.daemon.api_token import forward_key
from haloy.errors import ConfigError
from haloy.store import DeploymentStore
from haloy.wire.snapshot import FORWARD_KEY_HEADER
from tests.api.conftest import TOKEN, RunningApi, StartApi

SECURITY = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def assert_error_shape(body: dict[str, object], code: str) -> None:
    assert set(body) == {"error", "detail", "hint"}
    assert body["error"] == code
    assert isinstance(body["detail"], str) and body["detail"]


async def test_health_needs_no_token(api: RunningApi) -> None:
    async with api.client(token=None) as c:
        r = await c.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    for k, v in SECURITY.items():
        assert r.headers[k] == v
    assert "server" not in r.headers


@pytest.mark.parametrize("path", ["/v1/version", "/v1/apps", "/v1/openapi.json",
                                  "/v1/apps/web/deployments", "/v1/nothing-here"])
@pytest.mark.parametrize("token", [None, "wrong-token-0123456789abcdef", TOKEN + "x", "x"])
async def test_no_or_wrong_token_is_401(api: RunningApi, path: str, token: str | None) -> None:
    async with api.client(token=token) as c:
        r = await c.get(path)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert_error_shape(r.json(), "unauthorized")
    assert r.json()["hint"]
    for k, v in SECURITY.items():
        assert r.headers[k] == v


async def test_other_schemes_are_401(api: RunningApi) -> None:
    async with api.client(token=None) as c:
        r = await c.get("/v1/version", headers={"authorization": f"Basic {TOKEN}"})
    assert r.status_code == 401


async def test_404_and_405_share_the_error_shape(api: RunningApi) -> None:
    async with api.client() as c:
        missing = await c.get("/v1/nothing-here")
        wrong_method = await c.delete("/v1/version")
    assert missing.status_code == 404
    assert_error_shape(missing.json(), "not_found")
    assert wrong_method.status_code == 405
    assert_error_shape(wrong_method.json(), "method_not_allowed")
    assert "GET" in wrong_method.headers["allow"]


async def test_422_for_a_body_not_matching_the_schema(api: RunningApi) -> None:
    async with api.client() as c:
        r = await c.post("/v1/images/layers/check", json={"digest": "x"})
        bad_json = await c.post("/v1/images/layers/check", content=b"{nope")
    assert r.status_code == 422
    assert_error_shape(r.json(), "invalid_request")
    assert "digests" in r.json()["detail"]
    assert bad_json.status_code == 422


async def test_body_too_large_by_content_length(start_api: StartApi) -> None:
    api = await start_api(limits=ApiLimits(max_json_bytes=1000))
    async with api.client() as c:
        r = await c.post("/v1/images/layers/check", content=b"x" * 1001)
    assert r.status_code == 413
    assert_error_shape(r.json(), "content_too_large")


async def test_body_too_large_while_streaming(start_api: StartApi) -> None:
    api = await start_api(limits=ApiLimits(max_json_bytes=1000))

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"y" * 100

    async with api.client() as c:
        # A generator body is sent chunked, without Content-Length: only counting catches it.
        r = await c.post("/v1/images/layers/check", content=chunks())
    assert r.status_code == 413
    assert_error_shape(r.json(), "content_too_large")


async def test_rate_limit_answers_429_per_client(start_api: StartApi) -> None:
    api = await start_api(limits=ApiLimits(rate=RatePolicy(rate=0.001, burst=3)))
    async with api.client() as c:
        codes = [(await c.get("/v1/version")).status_code for _ in range(4)]
        limited = await c.get("/v1/version")
        # A local process naming another client is still counted as itself...
        posing = await c.get("/v1/version", headers={"x-forwarded-for": "203.0.113.9"})
        wrong_key = await c.get("/v1/version", headers={
            "x-forwarded-for": "203.0.113.9", FORWARD_KEY_HEADER: forward_key("f" * 64)})
        # ...but the client haloy-proxy names (with its forward key, the last one) is its own.
        proxied = await c.get("/v1/version", headers=[
            (FORWARD_KEY_HEADER, "0" * 64), ("x-forwarded-for", "203.0.113.9"),
            (FORWARD_KEY_HEADER, forward_key(TOKEN))])
        health = await c.get("/health")
    assert codes == [200, 200, 200, 429]
    assert limited.status_code == 429
    assert_error_shape(limited.json(), "too_many_requests")
    assert int(limited.headers["retry-after"]) >= 1
    assert (posing.status_code, wrong_key.status_code) == (429, 429)
    assert proxied.status_code == 200
    assert health.status_code == 200


async def test_wrong_tokens_are_rate_limited(start_api: StartApi) -> None:
    api = await start_api(limits=ApiLimits(rate=RatePolicy(rate=0.001, burst=2)))
    async with api.client(token="guess-guess-guess-guess") as c:
        codes = [(await c.get("/v1/version")).status_code for _ in range(3)]
    assert codes == [401, 401, 429]


async def test_cancelled_server_stops_listening(tmp_path: Path) -> None:
    store = await DeploymentStore.open(tmp_path / "haloy.db")
    app = create_api(TOKEN, StaticStatus(), store)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    server = make_server(app)
    task = asyncio.create_task(serve_api(server, [sock]))
    try:
        async with httpx.AsyncClient() as c:
            r = await c.get(f"http://127.0.0.1:{port}/health")
        assert r.status_code == 200
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(httpx.ConnectError):
            async with httpx.AsyncClient() as c:
                await c.get(f"http://127.0.0.1:{port}/health")
    finally:
        await store.close()


def test_short_tokens_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        create_api("short", StaticStatus(), None)  # type: ignore[arg-type]
    assert err.value.hint


async def test_public_routes_skip_the_token(tmp_path: Path) -> None:
    async def challenge(request: Request) -> Response:
        return PlainTextResponse(f"key-auth-for-{request.path_params['token']}")

    store = await DeploymentStore.open(tmp_path / "haloy.db")
    acme = Route("/.well-known/acme-challenge/{token}", challenge)
    app = create_api(TOKEN, StaticStatus(), store, public_routes=[acme])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = make_server(app)
    task = asyncio.create_task(serve_api(server, [sock]))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}") as c:
            r = await c.get("/.well-known/acme-challenge/abc")
            private = await c.get("/v1/version")
        assert r.status_code == 200 and r.text == "key-auth-for-abc"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert private.status_code == 401
    finally:
        server.should_exit = True
        await task
        await store.close()
