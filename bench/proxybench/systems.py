"""Start, check and stop the backend and the proxies under test, each in its own temp dir."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import configs
from .configs import Listen, TlsFiles
from .tlsfiles import HOST, install_for_haloy

PEERS = ("nginx", "haproxy", "caddy")
ALL_SYSTEMS = ("haloy", *PEERS)
_START_TIMEOUT_S = 15.0


class StartError(RuntimeError):
    """A system did not start or does not answer as it should."""


def free_port() -> int:
    """A currently free high loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Running:
    """One started process (a proxy or the backend) and where it listens."""

    name: str
    argv: list[str]
    root: Path
    listen: Listen
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.root / "output.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        """Spawn in its own session so stop() can signal its whole process group."""
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.root,
                env={**os.environ, **self.env},
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 8) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        """SIGTERM the group we created, then SIGKILL whatever of it lingers."""
        if self.proc is None:
            return
        _signal_group(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            pass
        # Workers may outlive their leader; the group id still names them.
        _signal_group(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=5.0)
        self.proc = None


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _prepare(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    return root


def backend(root: Path) -> Running:
    """nginx returning a short body on / and 100 KiB on /100k."""
    _prepare(root)
    www = root / "www"
    www.mkdir(exist_ok=True)
    (www / configs.BIG_PATH.lstrip("/")).write_bytes(b"x" * configs.BIG_SIZE)
    port = free_port()
    conf = root / "nginx.conf"
    conf.write_text(configs.nginx_backend_conf(root, port, www))
    listen = Listen(http_port=port, https_port=None, backend_port=port, workers=1)
    return Running(
        "backend", ["nginx", "-e", str(root / "error.log"), "-c", str(conf)], root, listen
    )


def proxy(name: str, root: Path, listen: Listen, tls: TlsFiles | None) -> Running:
    """The argv, env and config files of one proxy under test."""
    _prepare(root)
    if name == "nginx":
        conf = root / "nginx.conf"
        conf.write_text(configs.nginx_proxy_conf(root, listen, tls))
        argv = ["nginx", "-e", str(root / "error.log"), "-c", str(conf)]
        return Running(name, argv, root, listen)
    if name == "haproxy":
        conf = root / "haproxy.cfg"
        conf.write_text(configs.haproxy_conf(root, listen, tls))
        return Running(name, ["haproxy", "-db", "-f", str(conf)], root, listen)
    if name == "caddy":
        conf = root / "Caddyfile"
        conf.write_text(configs.caddyfile(root, listen, tls))
        env = {
            "GOMAXPROCS": str(listen.workers),
            "HOME": str(root),
            "XDG_DATA_HOME": str(root / "data"),
            "XDG_CONFIG_HOME": str(root / "config"),
        }
        argv = ["caddy", "run", "--adapter", "caddyfile", "--config", str(conf)]
        return Running(name, argv, root, listen, env)
    if name == "haloy":
        return _haloy(root, listen, tls)
    raise ValueError(f"unknown system {name!r}")


def _haloy(root: Path, listen: Listen, tls: TlsFiles | None) -> Running:
    # Imported here so the peers can be benchmarked even while haloy's package is broken.
    from haloy.config.paths import Paths
    from haloy.wire.snapshot import Backend, Route, Snapshot, write_snapshot

    paths = Paths(config_dir=root / "etc", data_dir=root / "data")
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    route = Route(
        app="bench",
        domain=HOST,
        backends=(Backend(address="127.0.0.1", port=listen.backend_port, deployment_id="bench"),),
    )
    write_snapshot(paths.snapshot_file, Snapshot(generation=1, routes=(route,)))
    https = "off"
    if listen.https_port is not None and tls is not None:
        install_for_haloy(tls, paths.certs_dir)
        https = f"127.0.0.1:{listen.https_port}"
    exe = shutil.which("haloy-proxy", path=str(Path(sys.executable).parent)) or "haloy-proxy"
    argv = [
        exe, "serve",
        "--config-dir", str(paths.config_dir),
        "--data-dir", str(paths.data_dir),
        "--workers", str(listen.workers),
        "--http-listen", f"127.0.0.1:{listen.http_port}",
        "--https-listen", https,
        "--no-access-log",
    ]  # fmt: skip
    return Running("haloy", argv, root, listen)


def fetch(
    port: int, path: str = "/", *, tls: TlsFiles | None = None, timeout: float = 5.0
) -> tuple[int, bytes]:
    """GET path with Host bench.local; over TLS the chain must verify against our CA."""
    conn: http.client.HTTPConnection
    if tls is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    else:
        # Verifies the chain against our CA and that the certificate names bench.local.
        ctx = ssl.create_default_context(cafile=str(tls.ca))
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.sock = ctx.wrap_socket(raw, server_hostname=HOST)
    try:
        conn.request("GET", path, headers={"Host": HOST})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_ready(run: Running) -> None:
    """Wait until the process is alive and its plain HTTP port accepts connections."""
    _wait_port(run, run.listen.http_port, time.monotonic() + _START_TIMEOUT_S)


def _wait_port(run: Running, port: int, deadline: float) -> None:
    while True:
        if not run.alive():
            raise StartError(f"{run.name} exited at start:\n{run.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise StartError(
                    f"{run.name} does not listen on {port} after {_START_TIMEOUT_S:.0f} s:\n"
                    f"{run.log_tail()}"
                ) from None
            time.sleep(0.05)


def verify(run: Running, tls: TlsFiles | None = None) -> None:
    """The proxy must answer 200 with the backend's body: / and the 100 KiB file, or HTTPS /."""
    checks: list[tuple[int, str, bytes]] = [
        (run.listen.http_port, "/", configs.BACKEND_BODY),
        (run.listen.http_port, configs.BIG_PATH, b"x" * configs.BIG_SIZE),
    ]
    if tls is not None:
        if run.listen.https_port is None:
            raise StartError(f"{run.name}: no HTTPS listener configured")
        _wait_port(run, run.listen.https_port, time.monotonic() + _START_TIMEOUT_S)
        checks = [(run.listen.https_port, "/", configs.BACKEND_BODY)]
    scheme = "https" if tls else "http"
    for port, path, expected in checks:
        try:
            status, body = fetch(port, path, tls=tls)
        except (OSError, http.client.HTTPException) as exc:
            raise StartError(f"{run.name}: {scheme} GET {path} failed: {exc}") from exc
        if status != 200 or body != expected:
            raise StartError(
                f"{run.name}: {scheme} GET {path} gave {status} with {len(body)} bytes "
                f"{body[:80]!r}, not the backend's 200"
            )
