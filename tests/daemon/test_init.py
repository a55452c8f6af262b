"""`haloyd init` and `haloyd config` through the real console script and the real engine."""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from haloy.config.daemon import load_daemon_config
from haloy.daemon.api_token import TOKEN_ENV, read_token
from tests.daemon.haloyd_env import HaloydEnv, make_env, remove_network
from tests.fixtures.docker import docker_cli

pytestmark = pytest.mark.docker


@pytest.fixture
def haloyd(tmp_path: Path, docker_available: None) -> Iterator[HaloydEnv]:
    env = make_env(tmp_path)
    yield env
    remove_network(env.network)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_lays_out_the_server_and_creates_the_network(haloyd: HaloydEnv) -> None:
    assert not haloyd.network_exists()
    # A permissive umask must not loosen the modes: init sets them explicitly.
    proc = haloyd.run_script("init", "--api-domain", "api.example.com", umask="000")
    assert proc.returncode == 0, proc.stderr

    for d in ("etc", "var", "var/certs", "var/db", "var/proxy"):
        assert mode(haloyd.config_dir.parent / d) == 0o700, d
    env_file = haloyd.config_dir / ".env"
    assert mode(env_file) == 0o600
    token = read_token(env_file)
    assert re.fullmatch(r"[0-9a-f]{64}", token)
    assert f"{TOKEN_ENV}={token}" in env_file.read_text()

    config = load_daemon_config(haloyd.config_dir / "haloyd.yaml")
    assert config.api.domain == "api.example.com"
    assert config.api.listen == "127.0.0.1:9922"

    assert f"haloy server add https://api.example.com {token}" in proc.stdout
    assert f"{haloyd.network} (created)" in proc.stdout

    # The network is real: the engine reports a bridge that containers may attach to.
    [info] = json.loads(docker_cli("network", "inspect", haloyd.network))
    assert (info["Driver"], info["Attachable"]) == ("bridge", True)


def test_init_refuses_an_existing_setup_without_override(haloyd: HaloydEnv) -> None:
    assert haloyd.run("init").returncode == 0
    first = read_token(haloyd.config_dir / ".env")

    again = haloyd.run("init")
    assert again.returncode == 2
    assert "already initialised" in again.stderr and "--override" in again.stderr
    assert "Traceback" not in again.stderr
    assert read_token(haloyd.config_dir / ".env") == first

    forced = haloyd.run("init", "--override", "--api-domain", "api2.example.com")
    assert forced.returncode == 0, forced.stderr
    assert "(already present)" in forced.stdout
    assert read_token(haloyd.config_dir / ".env") != first
    assert load_daemon_config(haloyd.config_dir / "haloyd.yaml").api.domain == "api2.example.com"


def test_init_without_domain_prints_the_loopback_url(haloyd: HaloydEnv) -> None:
    proc = haloyd.run("init")
    assert proc.returncode == 0, proc.stderr
    token = read_token(haloyd.config_dir / ".env")
    assert f"haloy server add http://127.0.0.1:9922 {token}" in proc.stdout
    assert "haloyd config set api.domain" in proc.stdout


@pytest.mark.parametrize("domain", ["*.example.com", "not a domain", "http://api.example.com"])
def test_bad_api_domain_is_exit_2_and_writes_nothing(haloyd: HaloydEnv, domain: str) -> None:
    proc = haloyd.run("init", "--api-domain", domain)
    assert proc.returncode == 2
    assert "invalid --api-domain" in proc.stderr and "api.domain" in proc.stderr
    assert not haloyd.config_dir.exists() and not haloyd.network_exists()


def test_flags_win_over_the_environment(haloyd: HaloydEnv, tmp_path: Path) -> None:
    cfg, data = tmp_path / "flag-etc", tmp_path / "flag-var"
    proc = haloyd.run("init", "--config-dir", str(cfg), "--data-dir", str(data))
    assert proc.returncode == 0, proc.stderr
    assert (cfg / ".env").is_file() and (data / "db").is_dir()
    assert not haloyd.config_dir.exists()


def test_init_with_unreachable_docker_writes_nothing(haloyd: HaloydEnv, tmp_path: Path) -> None:
    proc = haloyd.run("init", DOCKER_HOST=f"unix://{tmp_path}/no-such.sock")
    assert proc.returncode == 1
    assert "docker" in proc.stderr and "hint:" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not haloyd.config_dir.exists()


def test_unwritable_dir_is_a_clear_error(haloyd: HaloydEnv, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    proc = haloyd.run("init", "--config-dir", str(blocker / "etc"))
    assert proc.returncode == 1
    assert f"cannot create {blocker / 'etc'}" in proc.stderr and "hint:" in proc.stderr


def test_config_get_set_and_generate_token(haloyd: HaloydEnv) -> None:
    assert haloyd.run("init").returncode == 0
    config_file = haloyd.config_dir / "haloyd.yaml"

    got = haloyd.run("config", "get", "api.listen")
    assert (got.returncode, got.stdout.strip()) == (0, "127.0.0.1:9922")

    assert haloyd.run("config", "set", "api.domain", "api.example.com").returncode == 0
    assert load_daemon_config(config_file).api.domain == "api.example.com"
    assert mode(config_file) == 0o600

    assert haloyd.run("config", "set", "health_monitor.fall", "5").returncode == 0
    assert load_daemon_config(config_file).health_monitor.fall == 5
    assert haloyd.run("config", "set", "health_monitor.interval", "1m").returncode == 0
    assert haloyd.run("config", "get", "health_monitor.interval").stdout.strip() == "1m"
    # YAML reads `off` as false; the string reading is tried next and is valid here.
    assert haloyd.run("config", "set", "proxy.https_listen", "off").returncode == 0
    assert load_daemon_config(config_file).proxy.https_listen == "off"
    assert "# haloyd.yaml: settings" in config_file.read_text()  # comments survive edits
    section = haloyd.run("config", "get", "proxy")
    assert "https_listen: 'off'" in section.stdout and "workers: 1" in section.stdout

    before = config_file.read_text()
    bad = haloyd.run("config", "set", "health_monitor.fall", "many")
    assert bad.returncode == 2
    assert "health_monitor.fall" in bad.stderr and "Traceback" not in bad.stderr
    assert config_file.read_text() == before

    unknown = haloyd.run("config", "get", "api.lisen")
    assert unknown.returncode == 2
    assert "did you mean 'listen'" in unknown.stderr

    old = read_token(haloyd.config_dir / ".env")
    rotated = haloyd.run("config", "generate-token")
    assert rotated.returncode == 0, rotated.stderr
    new = read_token(haloyd.config_dir / ".env")
    assert new != old and new in rotated.stdout
    assert mode(haloyd.config_dir / ".env") == 0o600
