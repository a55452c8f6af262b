"""`haloyd verify` after a real `haloyd init`: passes, then fails naming each broken check."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from haloy.daemon.verify import Status, check_dir, check_env_file
from tests.daemon.haloyd_env import HaloydEnv, make_env, remove_network

pytestmark = pytest.mark.docker


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        code = 200 if self.path == "/health" else 404
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path, docker_available: None) -> Iterator[HaloydEnv]:
    """An initialised server whose API listener points at a free loopback port."""
    env = make_env(tmp_path)
    try:
        init = env.run("init")
        assert init.returncode == 0, init.stderr
        probe = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
        port = probe.server_address[1]
        probe.server_close()  # keep the number, free the port: "API not running"
        assert env.run("config", "set", "api.listen", f"127.0.0.1:{port}").returncode == 0
        yield env
    finally:
        remove_network(env.network)


def lines_with(output: str, word: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(word)]


def test_verify_passes_after_init_with_api_warning(server: HaloydEnv) -> None:
    proc = server.run_script("verify")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(lines_with(proc.stdout, "pass")) == 9  # 5 dirs, token, config, docker, network
    [warn] = lines_with(proc.stdout, "warn")
    assert "not running" in warn
    assert "fail" not in proc.stdout


def test_require_api_turns_the_warning_into_a_failure(server: HaloydEnv) -> None:
    proc = server.run("verify", "--require-api")
    assert proc.returncode == 1
    assert "checks failed: api http://127.0.0.1:" in proc.stderr


def test_running_api_passes(server: HaloydEnv) -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    try:
        listen = f"127.0.0.1:{httpd.server_address[1]}"
        assert server.run("config", "set", "api.listen", listen).returncode == 0
        proc = server.run("verify", "--require-api")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert any(f"api http://{listen}/health" in line for line in lines_with(proc.stdout, "pass"))


def test_ops_checks_only_when_installed_or_asked(server: HaloydEnv) -> None:
    # This machine has no haloy units: plain verify skips the installed-server checks...
    plain = server.run("verify")
    assert "unit haloyd.service" not in plain.stdout
    # ...and --ops runs them on the ports haloyd.yaml gives the proxy.
    assert server.run("config", "set", "proxy.http_listen", "127.0.0.1:1").returncode == 0
    proc = server.run("verify", "--ops")
    assert proc.returncode == 1
    [unit] = [line for line in proc.stdout.splitlines() if "unit haloyd.service" in line]
    assert unit.startswith("fail") and "install-server.sh" in unit
    assert any(line.startswith("fail  port 1:") for line in proc.stdout.splitlines())
    assert any("api domain" in line for line in lines_with(proc.stdout, "warn"))


def test_loose_dir_mode_fails_naming_the_dir(server: HaloydEnv) -> None:
    (server.data_dir / "certs").chmod(0o755)
    proc = server.run_script("verify")
    assert proc.returncode == 1
    [fail] = lines_with(proc.stdout, "fail")
    assert f"dir {server.data_dir / 'certs'}" in fail and "0755" in fail
    assert "1 of 10 checks failed" in proc.stderr


def test_readable_token_file_fails(server: HaloydEnv) -> None:
    (server.config_dir / ".env").chmod(0o644)
    proc = server.run("verify")
    assert proc.returncode == 1
    [fail] = lines_with(proc.stdout, "fail")
    assert "token" in fail and "0644" in fail


def test_broken_config_fails(server: HaloydEnv) -> None:
    config_file = server.config_dir / "haloyd.yaml"
    config_file.write_text(config_file.read_text() + "\nbogus_key: 1\n")
    proc = server.run("verify")
    assert proc.returncode == 1
    fails = lines_with(proc.stdout, "fail")
    assert any(f"config {config_file}" in line and "bogus_key" in line for line in fails)


def test_missing_network_fails(server: HaloydEnv) -> None:
    remove_network(server.network)
    proc = server.run("verify")
    assert proc.returncode == 1
    [fail] = lines_with(proc.stdout, "fail")
    assert f"network {server.network}" in fail and "missing" in fail


def test_unreachable_docker_fails(server: HaloydEnv, tmp_path: Path) -> None:
    proc = server.run("verify", DOCKER_HOST=f"unix://{tmp_path}/no-such.sock")
    assert proc.returncode == 1
    fails = lines_with(proc.stdout, "fail")
    assert [line.split()[1] for line in fails] == ["docker:", "network"]


def test_check_dir_and_env_file_in_memory(tmp_path: Path) -> None:
    assert check_dir(tmp_path / "missing").status is Status.FAIL
    env_file = tmp_path / ".env"
    env_file.write_text("HALOY_API_TOKEN=short\n")
    env_file.chmod(0o600)
    result = check_env_file(env_file)
    assert result.status is Status.FAIL and "64-character" in result.detail
