"""`haloy validate-config` and `haloy targets` on valid configs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import haloy.cli.cmd_config  # noqa: F401  (attaches the commands to the group)
from haloy.cli.main import cli
from haloy.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
HALOY = Path(sys.executable).parent / "haloy"


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("HALOY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HALOY_CLIENT_CONFIG_DIR", str(tmp_path / "user"))


def write(tmp_path: Path, data: Mapping[str, object]) -> Path:
    path = tmp_path / "haloy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


APP = {
    "name": "app",
    "server": "api.example.com",
    "image": "web:v1",
    "api_token": {"from": {"env": "APP_TOKEN"}},
    "env": [
        {"name": "USER", "from": {"env": "APP_USER"}},
        {"name": "URL", "value": "pg://${USER}@db/x"},
    ],
}


def test_valid_config_in_a_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, APP)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["validate-config"])
    assert result.exit_code == 0, result.output
    assert f"{tmp_path / 'haloy.yaml'}: valid (1 target)" in result.output
    # Unset variables are warnings without --show-resolved-config.
    assert "warning:" in result.output and "APP_TOKEN" in result.output


def test_show_resolved_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, APP)
    (tmp_path / ".env").write_text("APP_USER=alice\n")
    monkeypatch.setenv("APP_TOKEN", "tok-123")
    result = CliRunner().invoke(cli, ["validate-config", "-c", str(path), "--show-resolved-config"])
    assert result.exit_code == 0, result.output
    [shown] = yaml.safe_load(result.output.split(f"{path}: valid")[0])
    assert shown["env"] == {"USER": "alice", "URL": "pg://alice@db/x"}
    assert shown["api_token"] == "********" and "tok-123" not in result.output


def test_show_resolved_config_fails_on_missing_values(tmp_path: Path) -> None:
    path = write(tmp_path, APP)
    result = CliRunner().invoke(cli, ["validate-config", "-c", str(path), "--show-resolved-config"])
    assert isinstance(result.exception, ConfigError)
    assert result.exception.exit_code == 2
    assert len(result.exception.problems) == 2  # APP_USER and APP_TOKEN, both at once


def test_targets_table(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(HALOY), "targets", "-c", str(ROOT / "examples" / "multi-target")],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "80"},
    )
    assert proc.returncode == 0, proc.stderr
    rows = {line.split("│")[1].strip(): line for line in proc.stdout.splitlines() if "│" in line}
    assert "shop.example.com (+1 alias)" in rows["production"]
    assert "api.example.com" in rows["production"] and "yes" in rows["production"]
    assert "staging.shop.example.com" in rows["staging"]
    assert " no " in rows["staging"]


def test_console_script_validates_every_example() -> None:
    for config in ("hello", "multi-target", "database", "formats/toml", "formats/json"):
        proc = subprocess.run(
            [str(HALOY), "validate-config", "-c", str(ROOT / "examples" / config)],
            capture_output=True, text=True, timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        assert ": valid (" in proc.stdout


def test_missing_config_is_a_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(HALOY), "validate-config", "-c", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "no haloy config" in proc.stderr and "Traceback" not in proc.stderr
