"""`haloy logs`, `haloy exec` and `haloy tunnel` as processes against a real `haloyd serve` +
haloy-proxy + dockerd; one tunnel also goes through the proxy on the API domain."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from haloy.cli.cmd_exec import exit_code, prefixed
from haloy.cli.cmd_logs import format_line, log_params
from haloy.cli.tunnel_client import tunnel_url
from haloy.wire.api import ExecResult
from tests.cli.test_status import cli_env, run_haloy
from tests.fixtures.docker import TEST_IMAGE
from tests.fixtures.haloyd_server import HaloydServer, serving
from tests.fixtures.proxy import ProxyProcess

API_DOMAIN = "api.test"


@dataclass
class Served:
    """A running haloyd + proxy with one deployed app, and a CLI environment for it."""

    url: str
    token: str
    app: str
    cfg: Path
    env: dict[str, str]
    proxy: ProxyProcess


def test_pure_parts() -> None:
    assert tunnel_url("http://127.0.0.1:9922/", "web", 5432) == (
        "ws://127.0.0.1:9922/v1/apps/web/tunnel?port=5432")
    assert tunnel_url("https://api.example.com", "web", 80, "abc") == (
        "wss://api.example.com/v1/apps/web/tunnel?port=80&container=abc")
    assert log_params(5, False, None, True) == {"tail": "5", "follow": "false", "all": "true"}
    event = {"container": "abc", "stream": "stderr", "time": "2026-01-02T03:04:05.6Z",
             "line": "boom"}
    assert format_line(event, raw=True) == "boom"
    assert format_line(event, "prod", container=True) == "[prod] 03:04:05 abc err | boom"
    ok = ExecResult(container_id="a", exit_code=0, stdout="", stderr="", timed_out=False,
                    truncated=False)
    assert exit_code([ok, ok.model_copy(update={"exit_code": 3}),
                      ok.model_copy(update={"exit_code": 5})]) == 3
    assert exit_code([ok.model_copy(update={"timed_out": True, "exit_code": None})]) == 124
    assert exit_code([ok, ok.model_copy(update={"exit_code": None})]) == 1  # unknown: failure
    assert prefixed("a\nb\n", "[x] ") == "[x] a\n[x] b\n"


@pytest.fixture
async def served(
    tmp_path: Path, test_image: str, docker_network: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> AsyncIterator[Served]:
    app = f"let{tmp_path.name[-6:].lower().replace('_', '')}"
    env = cli_env(tmp_path, token=None)
    hd = HaloydServer.under(tmp_path, docker_network)
    async with serving(hd, config={"api.domain": API_DOMAIN}, proxy_factory=proxy_factory):
        assert hd.proxy is not None
        assert (await run_haloy("server", "add", hd.url, hd.token, env=env)).code == 0
        cfg = tmp_path / "project" / "haloy.yaml"
        cfg.parent.mkdir()
        cfg.write_text(
            f"name: {app}\nserver: {hd.url}\ndomains: [{app}.test]\n"
            "health_check_path: /cgi-bin/health\n"
            f"image: {{repository: {TEST_IMAGE}, tag: v1, pull_policy: never}}\n"
        )
        deployed = await run_haloy("deploy", "--no-logs", "-c", str(cfg), env=env)
        assert deployed.code == 0, deployed.out + deployed.err
        yield Served(hd.url, hd.token, app, cfg, env, hd.proxy)
        stopped = await run_haloy("stop", "-r", "-c", str(cfg), env=env)
        assert stopped.code == 0, stopped.err


async def read_line_with(stream: asyncio.StreamReader, needle: str) -> str:
    """Readiness: read lines until one holds `needle`."""
    async with asyncio.timeout(30):
        while line := (await stream.readline()).decode():
            if needle in line:
                return line
    raise AssertionError(f"stream ended before {needle!r}")


def _interruptible() -> None:
    # Ctrl-C as in a terminal: a run started in the background by a shell inherits SIGINT
    # ignored (and Python then never turns it into KeyboardInterrupt).
    signal.signal(signal.SIGINT, signal.SIG_DFL)


async def haloy_proc(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "haloy", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        preexec_fn=_interruptible,
    )


async def ended(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    if proc.returncode is None:
        proc.send_signal(signal.SIGINT)
    async with asyncio.timeout(20):
        _, err = await proc.communicate()
    return proc.returncode or 0, err.decode()


@pytest.mark.docker
async def test_exec_and_logs(served: Served) -> None:
    cfg, env = str(served.cfg), served.env
    failed = await run_haloy("exec", "-c", cfg, "--", "sh", "-c", "echo hi; echo oops >&2; exit 7",
                             env=env)
    assert (failed.code, failed.out) == (7, "hi\n")
    assert failed.err.startswith("oops\n") and "the command exited with 7" in failed.err
    slow = await run_haloy("exec", "-c", cfg, "--timeout", "0.5", "--", "sleep", "5", env=env)
    assert slow.code == 124 and "timed out after 0.5 s and killed" in slow.err
    # Lines written to PID 1's stdout/stderr are what Docker logs.
    wrote = await run_haloy("exec", "-c", cfg, "--", "sh", "-c",
                            "echo to-out > /proc/1/fd/1; echo to-err > /proc/1/fd/2", env=env)
    assert wrote.code == 0, wrote.err
    logs = await run_haloy("logs", "-c", cfg, "--no-follow", "--tail", "5", env=env)
    assert logs.code == 0, logs.err
    assert "out | to-out" in logs.out and "err | to-err" in logs.err
    raw = await run_haloy("logs", "-c", cfg, "--no-follow", "--raw", "--all-containers", env=env)
    assert raw.out.splitlines()[-1] == "to-out" and "to-err" in raw.err.splitlines()

    # Docker's tail counts both streams' lines: the last two are to-out and to-err.
    follower = await haloy_proc("logs", "-c", cfg, "--tail", "2", "--raw", env=env)
    try:
        assert follower.stdout is not None
        await read_line_with(follower.stdout, "to-out")  # the tail: the follow is running
        await run_haloy("exec", "-c", cfg, "--", "sh", "-c", "echo later > /proc/1/fd/1",
                        env=env)
        await read_line_with(follower.stdout, "later")
    finally:
        await ended(follower)
    missing = await run_haloy("logs", "-c", cfg, "--no-follow", "--container", "ffffff", env=env)
    assert missing.code == 1 and "no container" in missing.err


@pytest.mark.docker
async def test_tunnel_from_the_cli_and_through_the_proxy(served: Served) -> None:
    proc = await haloy_proc("tunnel", "0", "--port", "8080", "-c", str(served.cfg),
                            env=served.env)
    try:
        assert proc.stdout is not None
        line = await read_line_with(proc.stdout, "forwarding 127.0.0.1:")
        local = int(line.split("127.0.0.1:")[1].split()[0])
        async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
            for _ in range(3):  # each request is its own tunnel connection
                answer = await client.get(f"http://127.0.0.1:{local}/",
                                          headers={"connection": "close"})
                assert answer.status_code == 200 and answer.text == f"{TEST_IMAGE} v1\n"
        # Ctrl-C while a tunnelled connection is still open (httpd awaits the rest of the
        # request) stops the CLI all the same.
        _, writer = await asyncio.open_connection("127.0.0.1", local)
        writer.write(b"GET / HTTP/1.0\r\n")
        await writer.drain()
    finally:
        code, err = await ended(proc)
    assert code == 0, err
    writer.close()

    # The same tunnel through haloy-proxy on the API domain (the proxy forwards the upgrade).
    port = served.proxy.http_port
    sock = socket.create_connection(("127.0.0.1", port))
    async with connect(tunnel_url(f"http://{API_DOMAIN}:{port}", served.app, 8080), sock=sock,
                       additional_headers={"authorization": f"Bearer {served.token}"}) as ws:
        await ws.send(b"GET / HTTP/1.0\r\nHost: t\r\n\r\n")
        await ws.send(b"")
        got = b""
        async for frame in ws:
            assert isinstance(frame, bytes)
            if not frame:
                break
            got += frame
    assert b"200 OK" in got and got.endswith(f"{TEST_IMAGE} v1\n".encode())

    # Nothing listens on port 9: the local connection ends and the CLI says why.
    proc = await haloy_proc("tunnel", "0", "--port", "9", "-c", str(served.cfg), env=served.env)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = await read_line_with(proc.stdout, "forwarding 127.0.0.1:")
        local = int(line.split("127.0.0.1:")[1].split()[0])
        reader, writer = await asyncio.open_connection("127.0.0.1", local)
        assert await reader.read() == b""
        writer.close()
        await read_line_with(proc.stderr, "refused the connection")
    finally:
        await ended(proc)
