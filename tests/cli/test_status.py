"""`haloy status`, `rollback-targets` and `server version` run as real processes against a real
uvicorn serving `create_api` on a loopback port; plus the exit codes of the user's errors."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from haloy.cli.tables import age
from haloy.store import Status
from tests.api.conftest import TOKEN, RunningApi, api, start_api

__all__ = ["api", "start_api"]  # fixtures used by this module


@dataclass
class Result:
    code: int
    out: str
    err: str


async def run_haloy(*args: str, env: dict[str, str], cwd: Path | None = None,
                    timeout: float = 120) -> Result:
    """Run `python -m haloy ARGS` as a process (the API keeps serving on this loop)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "haloy", *args, cwd=cwd, env=env, stdout=out, stderr=err,
        )
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        out.seek(0)
        err.seek(0)
        result = Result(proc.returncode or 0, out.read().decode(), err.read().decode())
    if proc.returncode == -9:
        raise AssertionError(f"haloy {' '.join(args)} timed out:\n{result.out}\n{result.err}")
    return result


def cli_env(tmp_path: Path, token: str | None = TOKEN) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HALOY_")}
    env["HALOY_CLIENT_CONFIG_DIR"] = str(tmp_path / "client")
    env["COLUMNS"] = "200"
    if token is not None:
        env["HALOY_API_TOKEN"] = token
    return env


def write_config(directory: Path, server: str, name: str = "web", extra: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "haloy.yaml"
    path.write_text(
        f"name: {name}\nserver: {server}\nimage: haloy-test-app:v1\n"
        f"domains:\n  - {name}.example.com\n{extra}"
    )
    return path


async def test_status_shows_replicas(api: RunningApi, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "app", api.url)
    res = await run_haloy("status", "-c", str(cfg), env=cli_env(tmp_path))
    assert res.code == 0, res.err
    assert "01J00000000000000000000001" in res.out
    assert "web.example.com" in res.out and "www.example.com" in res.out
    assert "active" in res.out and "up" in res.out


async def test_status_json_and_not_running(api: RunningApi, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "app", api.url, name="nothere")
    res = await run_haloy("status", "--json", "-c", str(cfg), env=cli_env(tmp_path))
    assert res.code == 0, res.err
    assert json.loads(res.out) == [{"target": "nothere", "server": api.url, "app": None}]


async def test_rollback_targets_lists_history(api: RunningApi, tmp_path: Path) -> None:
    dep = await api.store.record("web", "haloy-test-app:v1", {"spec": {}})
    await api.store.update(dep.id, Status.RUNNING, image_digest="sha256:" + "a" * 64)
    await api.store.update(dep.id, Status.SUCCEEDED)
    cfg = write_config(tmp_path / "app", api.url)
    res = await run_haloy("rollback-targets", "-c", str(cfg), env=cli_env(tmp_path))
    assert res.code == 0, res.err
    assert dep.id in res.out and "succeeded" in res.out and "haloy-test-app:v1" in res.out
    res = await run_haloy("rollback-targets", "--json", "-c", str(cfg), env=cli_env(tmp_path))
    assert json.loads(res.out)[0]["deployments"][0]["id"] == dep.id


async def test_server_version(api: RunningApi, tmp_path: Path) -> None:
    res = await run_haloy("server", "version", api.url, env=cli_env(tmp_path))
    assert res.code == 0, res.err
    assert f"{api.url}: haloyd" in res.out and "images.layers" in res.out


async def test_bad_token_exits_1_with_token_hint(api: RunningApi, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "app", api.url)
    res = await run_haloy("status", "-c", str(cfg), env=cli_env(tmp_path, "wrong-token-xxxxxx"))
    assert res.code == 1
    assert "rejected the API token" in res.err
    assert f"haloy server add {api.url}" in res.err


async def test_unreachable_exits_1_with_url(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        cfg = write_config(tmp_path / "app", url)
        res = await run_haloy("status", "-c", str(cfg), env=cli_env(tmp_path))
    assert res.code == 1
    assert f"cannot reach haloyd at {url}/v1/apps/web" in res.err
    assert "firewall" in res.err


async def test_bad_config_exits_2(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "app", "http://127.0.0.1:1", extra="bogus_key: 1\n")
    res = await run_haloy("status", "-c", str(cfg), env=cli_env(tmp_path))
    assert res.code == 2
    assert "bogus_key" in res.err and "haloy.yaml:6" in res.err


async def test_missing_token_is_a_config_error(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "app", "http://127.0.0.1:1")
    res = await run_haloy("status", "-c", str(cfg), env=cli_env(tmp_path, token=None))
    assert res.code == 2
    assert "no API token for http://127.0.0.1:1" in res.err


@pytest.mark.parametrize(
    ("seconds", "shown"), [(5, "5s"), (90, "1m"), (7200, "2h"), (3 * 86400, "3d")]
)
def test_age(seconds: int, shown: str) -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert age(now - timedelta(seconds=seconds), now) == shown


OWN_COMMANDS = [
    ("deploy",), ("status",), ("rollback",), ("rollback-targets",), ("stop",),
    ("server", "version"), ("completion",),
]


@pytest.mark.parametrize("command", OWN_COMMANDS, ids=" ".join)
def test_help_has_an_example(command: tuple[str, ...]) -> None:
    from click.testing import CliRunner

    from haloy.cli.main import _register, cli

    _register()
    res = CliRunner().invoke(cli, [*command, "--help"])
    assert res.exit_code == 0 and "Example" in res.output and "haloy " in res.output


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell: str) -> None:
    from haloy.cli.cmd_completion import completion_script

    assert "_HALOY_COMPLETE" in completion_script(shell)
