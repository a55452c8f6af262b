"""GET /v1/apps/{app}/tunnel: a WebSocket to a real container's TCP port (real dockerd)."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from haloy.daemon.api.problems import ApiProblem
from haloy.daemon.api.tunnel import CLOSE_REFUSED, TunnelHandlers, close_reason, parse_port
from haloy.runtime.docker import DockerRuntime
from tests.api.conftest import TOKEN, RunningApi, StartApi
from tests.fixtures.docker import TEST_IMAGE, TEST_LABEL, docker_cli, run_app
from tests.fixtures.polling import await_until

pytestmark = pytest.mark.docker

Connect = Callable[..., Awaitable[ClientConnection]]


@pytest.fixture
async def engine() -> AsyncIterator[DockerRuntime]:
    runtime = DockerRuntime.open()
    yield runtime
    await runtime.close()


@pytest.fixture
async def tunnel_api(start_api: StartApi, engine: DockerRuntime,
                     docker_network: str) -> RunningApi:
    return await start_api(groups=[TunnelHandlers(engine, docker_network)])


def ws_url(api: RunningApi, app: str, query: str) -> str:
    return f"{api.url.replace('http://', 'ws://')}/v1/apps/{app}/tunnel?{query}"


def open_ws(api: RunningApi, app: str, query: str, token: str | None = TOKEN) -> connect:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return connect(ws_url(api, app, query), additional_headers=headers, open_timeout=10)


async def exchange(ws: ClientConnection, request: bytes, chunk: int = 65536) -> bytes:
    """Send `request` then end our direction; collect until the server's end-of-stream."""
    async def send() -> None:
        for i in range(0, len(request), chunk):
            await ws.send(request[i:i + chunk])
        await ws.send(b"")

    sender = asyncio.create_task(send())
    got = bytearray()
    async for frame in ws:
        assert isinstance(frame, bytes)
        if not frame:
            break
        got += frame
    await sender
    return bytes(got)


def test_pure_parts() -> None:
    assert parse_port("8080") == 8080
    for bad in (None, "0", "x", "65536", "-1"):
        with pytest.raises(ApiProblem):
            parse_port(bad)
    assert len(close_reason("é" * 100).encode()) <= 123


async def test_http_request_through_the_tunnel(
    tunnel_api: RunningApi, test_image: str, docker_network: str, docker_cleanup: str
) -> None:
    app = f"tun{uuid.uuid4().hex[:8]}"
    run_app(f"{test_image}:v1", docker_network, docker_cleanup, app=app)
    # busybox httpd answers HTTP/1.0 and closes: a real request, a real answer, then EOF.

    async def request() -> bytes:
        async with open_ws(tunnel_api, app, "port=8080") as ws:
            answer = await exchange(ws, b"GET / HTTP/1.0\r\nHost: t\r\n\r\n")
            if answer:
                await ws.wait_closed()
                assert ws.close_code == 1000
        return answer

    # readiness: httpd may not listen yet right after `docker run -d`
    answer = await await_until("httpd to answer through the tunnel", request)
    assert answer.startswith(b"HTTP/1.") and b"haloy-test-app v1" in answer


async def test_echo_half_close_and_a_big_transfer(
    tunnel_api: RunningApi, test_image: str, docker_network: str, docker_cleanup: str
) -> None:
    app = f"echo{uuid.uuid4().hex[:8]}"
    docker_cli("run", "-d", "--network", docker_network, "--label", f"dev.haloy.appName={app}",
               "--label", "dev.haloy.deployment-id=01A",
               "--label", f"{TEST_LABEL}={docker_cleanup}",
               f"{TEST_IMAGE}:v1", "nc", "-ll", "-p", "9000", "-e", "/bin/busybox", "cat")
    payload = os.urandom(3 * 1024 * 1024 + 17)

    async def echoed() -> bool:
        try:
            async with open_ws(tunnel_api, app, "port=9000") as ws:
                # cat echoes everything and exits on our EOF, which ends the other direction.
                assert await exchange(ws, payload) == payload
                return True
        except ConnectionClosed as exc:
            assert exc.rcvd is not None and exc.rcvd.code == CLOSE_REFUSED
            return False

    await await_until("the echo server to listen", echoed)  # it refuses until nc runs


async def test_refusals(
    tunnel_api: RunningApi, test_image: str, docker_network: str, docker_cleanup: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    app = f"ref{uuid.uuid4().hex[:8]}"
    cid = run_app(f"{test_image}:v1", docker_network, docker_cleanup, app=app)
    for token, query, status in ((None, "port=8080", 401), ("wrong" * 8, "port=8080", 401),
                                 (TOKEN, "port=0", 400), (TOKEN, "port=x", 400),
                                 (TOKEN, "", 400), (TOKEN, "port=8080&container=fff", 404)):
        with pytest.raises(InvalidStatus) as err:
            async with open_ws(tunnel_api, app, query, token=token):
                pass
        assert err.value.response.status_code == status, (token, query)
    with pytest.raises(InvalidStatus) as err:
        async with open_ws(tunnel_api, "no-such-app", "port=8080"):
            pass
    assert err.value.response.status_code == 404 and b"no running container" in (
        err.value.response.body or b"")
    # Port 9 (discard) is closed in the container: accepted, then closed with the reason.
    async with open_ws(tunnel_api, app, f"port=9&container={cid[:12]}") as ws:
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert ws.close_code == CLOSE_REFUSED and "refused" in (ws.close_reason or "").lower()
    # A refusal is an answer, not a server error: nothing at ERROR in uvicorn's log.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def pumps() -> list[asyncio.Task[object]]:
    """The tunnel's container-to-client pumps alive in this process (the API runs here)."""
    return [t for t in asyncio.all_tasks()
            if getattr(t.get_coro(), "__name__", "") == "_to_client" and not t.done()]


async def test_client_gone_after_its_eof_ends_a_silent_tunnel(
    tunnel_api: RunningApi, test_image: str, docker_network: str, docker_cleanup: str
) -> None:
    app = f"quiet{uuid.uuid4().hex[:8]}"
    # The accepted connection's program never reads nor writes: the container stays silent.
    docker_cli("run", "-d", "--network", docker_network, "--label", f"dev.haloy.appName={app}",
               "--label", "dev.haloy.deployment-id=01A",
               "--label", f"{TEST_LABEL}={docker_cleanup}",
               f"{TEST_IMAGE}:v1", "nc", "-ll", "-p", "9000", "-e", "/bin/sleep", "600")

    async def connected() -> ClientConnection | None:
        ws = await open_ws(tunnel_api, app, "port=9000")
        await ws.send(b"hello")
        await ws.send(b"")  # our end of stream; the container never answers
        try:
            await asyncio.wait_for(ws.recv(), 0.2)  # refused: closed at once with 4502
        except TimeoutError:
            return ws  # connected: nothing comes back
        except ConnectionClosed as exc:
            assert exc.rcvd is not None and exc.rcvd.code == CLOSE_REFUSED
        return None

    # readiness: the listener refuses until nc runs
    ws = await await_until("the silent server to listen", connected)
    assert ws is not None
    assert pumps()
    ws.transport.abort()  # the client vanishes without a close frame
    # The server notices and drops the container connection.
    await await_until("the tunnel's pumps to end", pumps, lambda alive: not alive, timeout=10,
                      interval=0.02)
