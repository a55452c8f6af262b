"""The CLI's client of the haloyd API: httpx, bearer token, errors translated to ApiError.

Every failure leaves as an `ApiError` a user can act on: the URL that could not be reached
(with a DNS/firewall hint), a rejected token (how to set it), a full disk (prune), or the
server's own `{error, detail, hint}`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from haloy.errors import ApiError
from haloy.wire.api import (
    TERMINAL_KINDS,
    AppList,
    AppStatus,
    DeploymentEvent,
    DeploymentList,
    LayerCheckResponse,
    LayerStored,
    ServerLogRecord,
    VersionInfo,
)

# Plain calls answer in milliseconds; a slow server still gets a generous bound.
DEFAULT_TIMEOUT_S = 30.0
# An event stream is idle between steps; haloyd sends a heartbeat every 15 s.
EVENTS_READ_TIMEOUT_S = 120.0
# Layers are big; only the gap between chunks is bounded.
UPLOAD_TIMEOUT = httpx.Timeout(DEFAULT_TIMEOUT_S, read=600.0, write=600.0)
# A stream dropped by a proxy or haloyd restart is resumed this many times.
EVENT_RECONNECTS = 5

M = TypeVar("M", bound=BaseModel)


def unreachable_error(url: str, exc: Exception) -> ApiError:
    """The server gave no HTTP answer: name the URL and what to check."""
    reason = str(exc) or type(exc).__name__
    return ApiError(
        f"cannot reach haloyd at {url}: {reason}",
        hint=(
            "check the server URL (`haloy server list`, `server:` in haloy.yaml), that its "
            "host name resolves (DNS), that the port is open in the firewall, and that "
            "haloyd and haloy-proxy run there (`haloyd verify` on the server)"
        ),
    )


def response_error(base_url: str, method: str, path: str, status: int, body: bytes) -> ApiError:
    """Translate an error answer (`{error, detail, hint}` or anything else) into an ApiError."""
    shape: dict[str, Any] = {}
    try:
        parsed = json.loads(body or b"null")
        if isinstance(parsed, dict):
            shape = parsed
    except ValueError:
        pass
    detail = str(shape.get("detail") or body[:200].decode("utf-8", "replace").strip())
    code = shape.get("error")
    server_hint = shape.get("hint")
    if status == 401:
        return ApiError(
            f"{base_url} rejected the API token ({detail or 'unauthorized'})",
            hint=(
                f"set the token with `haloy server add {base_url} <token>` (the token is in "
                "/etc/haloy/.env on the server, printed by `haloyd init`), or export "
                "HALOY_API_TOKEN, or set api_token in haloy.yaml"
            ),
            status=status,
        )
    if status == 507:
        return ApiError(
            f"the server's disk is full: {detail}",
            hint="free space on the server: `haloy prune-images`, or `docker system prune` there",
            status=status,
        )
    if status in (404, 405) and not shape:
        return ApiError(
            f"{base_url} does not serve {method} {path} (HTTP {status})",
            hint="is this a haloyd API? upgrade haloyd on the server to this CLI's version",
            status=status,
        )
    label = f"HTTP {status}" + (f" {code}" if code else "")
    return ApiError(f"{detail} ({label})", hint=server_hint, status=status)


class ApiClient:
    """One haloyd server: `async with ApiClient(url, token) as api: await api.version()`."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"authorization": f"Bearer {token}", "accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """Send one request; any failure or non-2xx answer raises ApiError."""
        url = f"{self.base_url}{path}"
        try:
            resp = await self._http.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise unreachable_error(url, exc) from exc
        if resp.is_success:
            return resp
        raise response_error(self.base_url, method, path, resp.status_code, resp.content)

    async def _model(self, model: type[M], method: str, path: str, **kw: Any) -> M:
        resp = await self.request(method, path, **kw)
        try:
            return model.model_validate_json(resp.content)
        except ValidationError as exc:
            raise ApiError(
                f"{self.base_url}{path} answered something this CLI does not understand",
                hint="the CLI and haloyd versions may differ; compare `haloy server version`",
            ) from exc

    async def version(self) -> VersionInfo:
        """GET /v1/version: also proves the token is accepted."""
        return await self._model(VersionInfo, "GET", "/v1/version")

    async def apps(self) -> AppList:
        """GET /v1/apps"""
        return await self._model(AppList, "GET", "/v1/apps")

    async def app(self, name: str) -> AppStatus:
        """GET /v1/apps/{name}"""
        return await self._model(AppStatus, "GET", f"/v1/apps/{name}")

    async def deployments(self, app: str, limit: int | None = None) -> DeploymentList:
        """GET /v1/apps/{app}/deployments, newest first."""
        params = {"limit": str(limit)} if limit else None
        return await self._model(
            DeploymentList, "GET", f"/v1/apps/{app}/deployments", params=params
        )

    async def layers_check(
        self, digests: list[str], diff_ids: list[str] | None = None
    ) -> LayerCheckResponse:
        """POST /v1/images/layers/check: which layers the server lacks.

        `diff_ids` (the image's ordered layers) lets the server count its engine's layers too;
        send it only with the `images.layers.engine` capability (older haloyds refuse it).
        """
        body: dict[str, list[str]] = {"digests": digests}
        if diff_ids is not None:
            body["diffIds"] = diff_ids
        return await self._model(LayerCheckResponse, "POST", "/v1/images/layers/check", json=body)

    async def put_layer(
        self, digest: str, body: bytes | AsyncIterable[bytes], size: int
    ) -> LayerStored:
        """PUT /v1/images/layers/{digest}: upload one layer (the server checks the digest)."""
        return await self._model(
            LayerStored, "PUT", f"/v1/images/layers/{digest}", content=body,
            headers={"content-type": "application/octet-stream", "content-length": str(size)},
            timeout=UPLOAD_TIMEOUT,
        )

    async def assemble_image(self, ref: str, config: str) -> dict[str, Any]:
        """POST /v1/images/assemble: tag `ref` on the image made of uploaded layers + config."""
        resp = await self.request("POST", "/v1/images/assemble",
                                  json={"ref": ref, "config": config}, timeout=UPLOAD_TIMEOUT)
        answer = resp.json()
        return answer if isinstance(answer, dict) else {}

    async def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST a JSON body; return the JSON object answered (empty if none)."""
        resp = await self.request("POST", path, json=body or {})
        try:
            parsed = resp.json() if resp.content else {}
        except ValueError as exc:
            raise ApiError(f"{self.base_url}{path} answered with invalid JSON") from exc
        return parsed if isinstance(parsed, dict) else {}

    async def events(self, deployment_id: str) -> AsyncGenerator[DeploymentEvent, None]:
        """Follow a deployment's server-sent events until the terminal one.

        A dropped stream is resumed with Last-Event-ID (the server replays what was missed).
        """
        path = f"/v1/deployments/{deployment_id}/events"
        timeout = httpx.Timeout(DEFAULT_TIMEOUT_S, read=EVENTS_READ_TIMEOUT_S)
        last: int | None = None
        for attempt in range(EVENT_RECONNECTS + 1):
            headers = {"accept": "text/event-stream"}
            if last is not None:
                headers["last-event-id"] = str(last)
            try:
                async with self._http.stream("GET", path, headers=headers,
                                             timeout=timeout) as resp:
                    if not resp.is_success:
                        body = await resp.aread()
                        raise response_error(self.base_url, "GET", path, resp.status_code, body)
                    async for data in sse_data(resp.aiter_lines()):
                        event = DeploymentEvent.model_validate_json(data)
                        last = event.seq
                        yield event
                        if event.kind in TERMINAL_KINDS:
                            return
            except httpx.TransportError as exc:
                if attempt == EVENT_RECONNECTS:
                    raise unreachable_error(f"{self.base_url}{path}", exc) from exc
            except ValidationError as exc:
                raise ApiError(
                    f"{self.base_url}{path} sent an event this CLI does not understand",
                    hint="compare `haloy server version` with `haloy version`",
                ) from exc
            # Back off a little so a restarting haloyd/proxy has time to come back.
            await asyncio.sleep(min(0.2 * 2**attempt, 5.0))
        raise ApiError(
            f"the event stream of deployment {deployment_id} kept ending without a result",
            hint="`haloy rollback-targets` shows how the deployment ended",
        )

    async def server_logs(self, tail: int, follow: bool) -> AsyncGenerator[ServerLogRecord, None]:
        """GET /v1/server/logs: haloyd's own log records until the stream ends."""
        params = {"tail": str(tail), "follow": "true" if follow else "false"}
        # Following waits on a quiet daemon; haloyd sends a heartbeat every 15 s.
        timeout = httpx.Timeout(DEFAULT_TIMEOUT_S, read=EVENTS_READ_TIMEOUT_S)
        try:
            async with self._http.stream("GET", "/v1/server/logs", params=params,
                                         headers={"accept": "text/event-stream"},
                                         timeout=timeout) as resp:
                if not resp.is_success:
                    body = await resp.aread()
                    raise response_error(self.base_url, "GET", "/v1/server/logs",
                                         resp.status_code, body)
                async for data in sse_data(resp.aiter_lines()):
                    if data != "{}":  # the `end` event
                        yield ServerLogRecord.model_validate_json(data)
        except httpx.TransportError as exc:
            raise unreachable_error(f"{self.base_url}/v1/server/logs", exc) from exc

    async def app_logs(
        self, app: str, params: dict[str, str]
    ) -> AsyncGenerator[dict[str, Any], None]:
        """GET /v1/apps/{app}/logs: each `log` event ({container, stream, time, line})."""
        path = f"/v1/apps/{app}/logs"
        # Following waits on a quiet app; haloyd sends a heartbeat every 15 s.
        timeout = httpx.Timeout(DEFAULT_TIMEOUT_S, read=EVENTS_READ_TIMEOUT_S)
        try:
            async with self._http.stream("GET", path, params=params, timeout=timeout,
                                         headers={"accept": "text/event-stream"}) as resp:
                if not resp.is_success:
                    body = await resp.aread()
                    raise response_error(self.base_url, "GET", path, resp.status_code, body)
                async for data in sse_data(resp.aiter_lines()):
                    event = json.loads(data)
                    if isinstance(event, dict) and "line" in event:  # `end` carries {}
                        yield event
        except httpx.TransportError as exc:
            raise unreachable_error(f"{self.base_url}{path}", exc) from exc


async def sse_data(lines: AsyncIterable[str]) -> AsyncIterator[str]:
    """The `data:` payload of each server-sent event (comments and other fields skipped)."""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        yield "\n".join(data)
