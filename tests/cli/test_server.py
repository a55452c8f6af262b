"""`haloy server add|list|delete` against a real loopback HTTP server, and token resolution."""

from __future__ import annotations

import contextlib
import io
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from unittest import mock

import pytest

from haloy.cli.client_config import (
    ClientConfig,
    client_config_dir,
    normalize_server_url,
    resolve_token,
    token_env_name,
)
from haloy.cli.main import main
from haloy.errors import ConfigError

BIN = Path(sys.executable).parent


class _Health(BaseHTTPRequestHandler):
    status = 200
    token = "tok-1"

    def do_GET(self) -> None:
        if self.path == "/v1/version":
            ok = self.headers.get("Authorization") == f"Bearer {self.token}"
            code = 200 if ok else 401
        else:
            code = self.status if self.path == "/health" else 404
        body = b'{"status":"ok"}' if code == 200 else b"nope"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[str]:
    """A real HTTP server on a loopback port answering GET /health with 200."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def refused_url() -> str:
    """A loopback URL nothing listens on (the port was bound, then closed)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    port = httpd.server_address[1]
    httpd.server_close()
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def client_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HALOY_")}
    env["HALOY_CLIENT_CONFIG_DIR"] = str(tmp_path / "client")
    return env


def haloy(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `haloy ARGS` in this process, through the CLI's own error boundary."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with (
        mock.patch.dict(os.environ, env, clear=True),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return subprocess.CompletedProcess(["haloy", *args], code, out.getvalue(), err.getvalue())


def haloy_script(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed `haloy` console script as a subprocess."""
    return subprocess.run(
        [str(BIN / "haloy"), *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_add_list_delete_roundtrip(health_server: str, client_env: dict[str, str]) -> None:
    add = haloy_script(client_env, "server", "add", health_server + "/", "tok-1")
    assert add.returncode == 0, add.stderr
    assert "warning" not in add.stderr

    client_dir = Path(client_env["HALOY_CLIENT_CONFIG_DIR"])
    for name in ("client.yaml", ".env"):
        assert stat.S_IMODE((client_dir / name).stat().st_mode) == 0o600
    assert "tok-1" not in (client_dir / "client.yaml").read_text()
    assert "tok-1" in (client_dir / ".env").read_text()

    listed = haloy_script(client_env, "server", "list")
    assert listed.returncode == 0
    assert health_server in listed.stdout and "set" in listed.stdout

    token = resolve_token(None, health_server, client_env)
    assert token == "tok-1"

    gone = haloy(client_env, "server", "delete", health_server)
    assert gone.returncode == 0, gone.stderr
    assert "tok-1" not in (client_dir / ".env").read_text()
    assert "no servers configured" in haloy(client_env, "server", "list").stdout


def test_add_with_a_rejected_token_warns(health_server: str, client_env: dict[str, str]) -> None:
    proc = haloy(client_env, "server", "add", health_server, "wrong-token")
    assert proc.returncode == 0, proc.stderr
    assert "rejected the token" in proc.stderr and "401" in proc.stderr


def test_add_reads_the_token_from_stdin(health_server: str, client_env: dict[str, str]) -> None:
    proc = subprocess.run(
        [str(BIN / "haloy"), "server", "add", health_server, "-"],
        input="tok-1\n",
        env=client_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr  # the stdin token was accepted by /v1/version
    assert resolve_token(None, health_server, client_env) == "tok-1"


def test_add_unreachable_is_an_error_naming_the_url(
    refused_url: str, client_env: dict[str, str]
) -> None:
    proc = haloy(client_env, "server", "add", refused_url, "tok")
    assert proc.returncode == 1
    assert f"{refused_url}/health" in proc.stderr
    assert "--force" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (Path(client_env["HALOY_CLIENT_CONFIG_DIR"]) / "client.yaml").exists()


def test_add_unreachable_with_force_warns_and_adds(
    refused_url: str, client_env: dict[str, str]
) -> None:
    proc = haloy(client_env, "server", "add", "--force", refused_url, "tok")
    assert proc.returncode == 0, proc.stderr
    assert "warning" in proc.stderr
    assert refused_url in haloy(client_env, "server", "list").stdout


def test_add_unhealthy_answer_is_a_warning(health_server: str, client_env: dict[str, str]) -> None:
    _Health.status = 503
    try:
        proc = haloy(client_env, "server", "add", health_server, "tok")
    finally:
        _Health.status = 200
    assert proc.returncode == 0, proc.stderr
    assert "warning" in proc.stderr and "503" in proc.stderr


def test_delete_unknown_server_is_exit_2(client_env: dict[str, str]) -> None:
    proc = haloy(client_env, "server", "delete", "https://nowhere.example.com")
    assert proc.returncode == 2
    assert "no server https://nowhere.example.com configured" in proc.stderr


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("api.example.com", "https://api.example.com"),
        ("HTTPS://API.Example.com/", "https://api.example.com"),
        ("http://127.0.0.1:9922", "http://127.0.0.1:9922"),
        ("https://api.example.com:8443", "https://api.example.com:8443"),
        ("http://[::1]:9922", "http://[::1]:9922"),
    ],
)
def test_normalize_server_url(raw: str, canonical: str) -> None:
    assert normalize_server_url(raw) == canonical


@pytest.mark.parametrize("bad", ["ftp://x.example.com", "https://x.example.com/api", "http://"])
def test_normalize_rejects(bad: str) -> None:
    with pytest.raises(ConfigError):
        normalize_server_url(bad)


def test_token_env_name() -> None:
    assert token_env_name("api.example.com") == "HALOY_API_TOKEN_API_EXAMPLE_COM"
    assert token_env_name("http://127.0.0.1:9922") == "HALOY_API_TOKEN_127_0_0_1_9922"


def test_client_config_dir_precedence(tmp_path: Path) -> None:
    home = {"HOME": str(tmp_path)}
    assert client_config_dir(home) == tmp_path / ".config" / "haloy"
    xdg = {**home, "XDG_CONFIG_HOME": str(tmp_path / "x")}
    assert client_config_dir(xdg) == tmp_path / "x" / "haloy"
    explicit = {**xdg, "HALOY_CLIENT_CONFIG_DIR": str(tmp_path / "c")}
    assert client_config_dir(explicit) == tmp_path / "c"


def test_resolve_token_order(tmp_path: Path) -> None:
    env = {"HALOY_CLIENT_CONFIG_DIR": str(tmp_path)}
    ClientConfig(tmp_path).add("api.example.com", "from-entry")
    with_global = {**env, "HALOY_API_TOKEN": "from-env"}
    assert resolve_token("from-target", "api.example.com", with_global) == "from-target"
    assert resolve_token(None, "https://api.example.com", with_global) == "from-entry"
    overridden = {**with_global, "HALOY_API_TOKEN_API_EXAMPLE_COM": "entry-var"}
    assert resolve_token(None, "api.example.com", overridden) == "entry-var"
    assert resolve_token(None, "other.example.com", with_global) == "from-env"
    assert resolve_token(None, None, with_global) == "from-env"
    with pytest.raises(ConfigError) as err:
        resolve_token(None, "other.example.com", env)
    assert "haloy server add https://other.example.com" in (err.value.hint or "")


def test_broken_client_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "client.yaml").write_text("servers:\n  api.example.com:\n    tokn_env: X\n")
    with pytest.raises(ConfigError) as err:
        ClientConfig(tmp_path).servers()
    assert "tokn_env" in " ".join(err.value.problems)


def test_unwritable_client_dir_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cannot create"):
        ClientConfig(blocker / "haloy").add("api.example.com", "tok")
