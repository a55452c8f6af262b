"""The installed console scripts start, and the error boundary maps errors to exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from haloy import __version__

BIN = Path(sys.executable).parent


def run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), capture_output=True, text=True, timeout=60, env=env or dict(os.environ)
    )


@pytest.mark.parametrize("script", ["haloy", "haloyd"])
def test_version(script: str) -> None:
    proc = run(str(BIN / script), "--version")
    assert proc.returncode == 0, proc.stderr
    assert f"{script}, version {__version__}" in proc.stdout


@pytest.mark.parametrize(
    "argv",
    [
        [str(BIN / "haloy-proxy"), "--help"],
        [str(BIN / "haloyd"), "--help"],
        [sys.executable, "-m", "haloy", "--help"],
    ],
    ids=["haloy-proxy", "haloyd", "python-m-haloy"],
)
def test_help(argv: list[str]) -> None:
    proc = run(*argv)
    assert proc.returncode == 0, proc.stderr
    assert "Usage:" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_haloyd_lists_its_foundation_commands() -> None:
    out = run(str(BIN / "haloyd"), "--help").stdout
    for command in ("init", "verify", "config"):
        assert command in out


def test_usage_error_is_exit_2() -> None:
    proc = run(str(BIN / "haloy"), "server", "add")
    assert proc.returncode == 2
    assert "Missing argument" in proc.stderr


def test_config_error_is_exit_2_with_hint(tmp_path: Path) -> None:
    env = {**os.environ, "HALOY_CLIENT_CONFIG_DIR": str(tmp_path)}
    proc = run(str(BIN / "haloy"), "server", "delete", "https://a.example.com", env=env)
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "hint:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_failed_operation_is_exit_1(tmp_path: Path) -> None:
    env = {**os.environ, "HALOY_CLIENT_CONFIG_DIR": str(tmp_path)}
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    proc = run(str(BIN / "haloy"), "server", "add", "http://127.0.0.1:1", "tok", env=env)
    assert proc.returncode == 1
    assert "error: cannot reach http://127.0.0.1:1/health" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_command_is_exit_2() -> None:
    proc = run(str(BIN / "haloyd"), "no-such-command")
    assert proc.returncode == 2
