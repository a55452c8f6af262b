"""The CLI's API client against a real uvicorn serving `create_api`: errors with hints, the SSE
stream, and layer shipping that uploads only what the server lacks (bytes counted)."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from haloy.cli.api_client import ApiClient, response_error, sse_data
from haloy.cli.ship import (
    ASSEMBLE_CAPABILITY,
    is_loopback,
    save_image,
    shares_engine,
    ship_layers,
    upload_layers,
)
from haloy.errors import ApiError
from haloy.wire.api import EventKind
from tests.api.conftest import TOKEN, RunningApi, StartApi, api, start_api
from tests.fixtures.docker import TEST_IMAGE, docker_cli
from tests.fixtures.polling import await_until

__all__ = ["api", "start_api"]  # fixtures used by this module

BASE = "https://api.example.com"


def test_401_says_how_to_set_the_token() -> None:
    err = response_error(BASE, "GET", "/v1/apps", 401,
                         b'{"error":"unauthorized","detail":"bad token","hint":null}')
    assert err.status == 401 and "rejected the API token" in err.message
    assert err.hint is not None and f"haloy server add {BASE}" in err.hint


def test_507_hints_prune() -> None:
    err = response_error(BASE, "PUT", "/v1/images/layers/x", 507,
                         b'{"error":"insufficient_storage","detail":"disk full","hint":"x"}')
    assert "disk is full" in err.message and err.hint is not None and "prune" in err.hint


@pytest.mark.parametrize(
    ("status", "body", "message", "hint"),
    [
        (409, b'{"error":"deploy_in_progress","detail":"busy","hint":"follow it"}',
         "busy (HTTP 409 deploy_in_progress)", "follow it"),
        (404, b"<html>nginx</html>", f"{BASE} does not serve GET /v1/x (HTTP 404)", "haloyd"),
        (502, b"Bad Gateway", "Bad Gateway (HTTP 502)", None),
    ],
)
def test_other_errors_show_the_server_shape(
    status: int, body: bytes, message: str, hint: str | None
) -> None:
    err = response_error(BASE, "GET", "/v1/x", status, body)
    assert err.message == message
    assert (err.hint is None) if hint is None else (hint in (err.hint or ""))


async def _lines(*lines: str) -> AsyncIterator[str]:
    for line in lines:
        yield line


async def test_sse_data_skips_comments_and_joins_lines() -> None:
    got = [d async for d in sse_data(_lines(
        ": keep-alive", "", "id: 0", "event: info", "data: {\"a\":", "data: 1}", "", "data: x",
    ))]
    assert got == ['{"a":\n1}', "x"]


@pytest.mark.parametrize(
    ("url", "server", "local", "forced", "shared"),
    [
        ("http://127.0.0.1:9922", "E1", "E1", False, True),
        ("http://localhost:9922", "E1", "E2", False, False),  # another engine on this machine
        ("http://localhost:9922", None, "E1", False, False),  # an older haloyd does not say
        ("http://localhost:9922", "E1", None, False, False),  # no local engine answers
        ("https://api.example.com", "E1", "E1", False, False),  # same ID, remote: a clone
        ("https://api.example.com", None, None, True, True),
    ],
)
def test_shares_engine(
    url: str, server: str | None, local: str | None, forced: bool, shared: bool
) -> None:
    assert shares_engine(url, server, local, forced) is shared
    assert is_loopback("http://[::1]:1") and not is_loopback(BASE)


async def test_version_and_bad_token(api: RunningApi) -> None:
    async with ApiClient(api.url, TOKEN) as client:
        info = await client.version()
        assert "images.layers" in info.capabilities
        with pytest.raises(ApiError) as missing:
            await client.app("nope")
        assert missing.value.status == 404 and "haloy status" in (missing.value.hint or "")
    async with ApiClient(api.url, "not-the-token-0000") as client:
        with pytest.raises(ApiError) as bad:
            await client.apps()
    assert bad.value.status == 401 and "haloy server add" in (bad.value.hint or "")


async def test_events_follow_to_the_terminal_event(api: RunningApi) -> None:
    dep_id = "01J00000000000000000000009"
    log = api.events.create(dep_id)
    log.append(EventKind.INFO, "accepted")

    async def later() -> None:
        # The client is following: append the rest live.
        await await_until("the client to follow", lambda: log.waiters, interval=0.01)
        log.append(EventKind.STEP, "start new 1")
        log.append(EventKind.FAILED, "boom", {"logs": ["line 1"]})

    async with ApiClient(api.url, TOKEN) as client:
        task = asyncio.create_task(later())
        kinds = [(e.kind, e.message) async for e in client.events(dep_id)]
        await task
    assert kinds == [("info", "accepted"), ("step", "start new 1"), ("failed", "boom")]


@pytest.fixture(scope="module")
def layered_image(test_image: str) -> Iterator[str]:
    """v1 plus one small extra layer: shares v1's layer, adds one."""
    ref = f"{TEST_IMAGE}:cli-layered"
    with tempfile.TemporaryDirectory(prefix="haloy-layered-") as tmp:
        (Path(tmp) / "extra.txt").write_text("one more layer\n" * 100)
        (Path(tmp) / "Dockerfile").write_text(f"FROM {TEST_IMAGE}:v1\nCOPY extra.txt /www/\n")
        docker_cli("build", "-q", "-t", ref, tmp, timeout=120)
    yield ref
    docker_cli("rmi", ref, check=False)


async def test_only_missing_layers_are_uploaded(
    api: RunningApi, layered_image: str, tmp_path: Path
) -> None:
    sent: list[int] = []
    async with ApiClient(api.url, TOKEN) as client:
        v1 = await save_image(f"{TEST_IMAGE}:v1", tmp_path / "a")
        first = await upload_layers(client, v1, sent.append)
        assert [layer.digest for layer in first] == [layer.digest for layer in v1]
        assert sum(sent) == sum(layer.size for layer in v1)

        sent.clear()
        assert await upload_layers(client, v1, sent.append) == []  # nothing again
        assert sent == []

        layered = await save_image(layered_image, tmp_path / "b")
        assert len(layered) == len(v1) + 1
        second = await upload_layers(client, layered, sent.append)
        assert [layer.digest for layer in second] == [layered[-1].digest]
        assert sum(sent) == layered[-1].size  # only the changed layer's bytes went
        for layer in layered:
            assert api.layers.size_of(layer.digest) == layer.size


async def test_ship_says_when_the_server_cannot_assemble(
    api: RunningApi, test_image: str
) -> None:
    async with ApiClient(api.url, TOKEN) as client:
        # An older haloyd: everything but assembling.
        caps = [c for c in (await client.version()).capabilities if c != ASSEMBLE_CAPABILITY]
        with pytest.raises(ApiError) as info:
            await ship_layers(client, f"{TEST_IMAGE}:v2", caps, lambda n, total: None)
    assert "cannot assemble" in info.value.message
    assert "--shared-engine" in (info.value.hint or "")


async def test_full_disk_is_507_with_prune_hint(
    start_api: StartApi, test_image: str, tmp_path: Path
) -> None:
    full = await start_api(min_free_bytes=1 << 60)  # no disk has an exbibyte free
    async with ApiClient(full.url, TOKEN) as client:
        layers = await save_image(f"{TEST_IMAGE}:v1", tmp_path)
        with pytest.raises(ApiError) as info:
            await upload_layers(client, layers, lambda n: None)
    assert info.value.status == 507 and "prune" in (info.value.hint or "")


def _sse(seq: int, kind: str, message: str) -> bytes:
    data = (f'{{"seq":{seq},"deploymentId":"D","kind":"{kind}","message":"{message}",'
            '"at":"2026-01-01T00:00:00Z","data":null}')
    return f"id: {seq}\nevent: {kind}\ndata: {data}\n\n".encode()


async def test_dropped_event_stream_resumes_with_last_event_id() -> None:
    """A real socket peer that drops the stream after one event, then serves the rest."""
    seen: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode().lower()
        resume = next((line.split(":", 1)[1].strip() for line in head.split("\r\n")
                       if line.startswith("last-event-id:")), None)
        seen.append(resume or "-")
        body = _sse(0, "info", "accepted") if resume is None else \
            _sse(1, "step", "start") + _sse(2, "succeeded", "done")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                     b"connection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()  # the connection drops with no terminal event the first time

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, ApiClient(f"http://127.0.0.1:{port}", TOKEN) as client:
        got = [(e.seq, e.kind) async for e in client.events("D")]
    assert got == [(0, "info"), (1, "step"), (2, "succeeded")]
    assert seen == ["-", "0"]
