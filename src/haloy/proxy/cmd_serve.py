"""`haloy-proxy serve`: parse flags at the edge, then run one worker or a worker supervisor."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import click

from haloy.config.paths import Paths
from haloy.errors import ConfigError
from haloy.proxy import limits as L
from haloy.proxy.limits import Limits
from haloy.proxy.main import cli
from haloy.proxy.server import ServeOptions, parse_listen, serve


def _run(coro: object) -> None:
    try:
        import uvloop

        uvloop.run(coro)  # type: ignore[arg-type]
    except ImportError:  # pragma: no cover - uvloop is a dependency; keep a working fallback
        asyncio.run(coro)  # type: ignore[arg-type]


@cli.command("serve")
@click.option("--config-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Config dir. Env: HALOY_CONFIG_DIR. Default: /etc/haloy.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Data dir (snapshot, control socket, certs). Env: HALOY_DATA_DIR.")
@click.option("--http-listen", default="0.0.0.0:80", show_default=True, metavar="HOST:PORT")
@click.option("--https-listen", default="0.0.0.0:443", show_default=True,
              metavar="HOST:PORT|off", help="HTTPS listener ('off' disables it).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes sharing the ports (implies --supervise when > 1).")
@click.option("--supervise", is_flag=True,
              help="Run a supervisor that owns the ports and replaces its workers without "
              "dropping a request on SIGHUP or `haloy-proxy reload`.")
# Off by default: +48 % in-process work per request on the hot path (docs/proxy.md), far
# above what an always-on feature may cost.
@click.option("--access-log/--no-access-log", default=False, show_default=True,
              help="JSON access log lines on stdout.")
@click.option("--metrics-listen", default="off", show_default=True, metavar="HOST:PORT|off",
              help="Serve Prometheus metrics at /metrics.")
@click.option("--control-socket", type=click.Path(dir_okay=False, path_type=Path), hidden=True,
              help="Override the control socket path (used for workers).")
@click.option("--reuse-port", is_flag=True, hidden=True)
@click.option("--listen-fd", "listen_fds", multiple=True, hidden=True, metavar="NAME=FD",
              help="Serve on an inherited listening socket (set by the supervisor).")
@click.option("--snapshot-required", is_flag=True, hidden=True,
              help="Exit instead of booting empty when the snapshot file cannot be read.")
@click.option("--keepalive-timeout", type=float, default=L.KEEPALIVE_TIMEOUT, hidden=True)
@click.option("--header-timeout", type=float, default=L.HEADER_TIMEOUT, hidden=True)
@click.option("--response-header-timeout", type=float, default=L.RESPONSE_HEADER_TIMEOUT,
              hidden=True)
@click.option("--read-timeout", type=float, default=L.READ_TIMEOUT, show_default=True,
              help="Seconds a backend may be silent mid-response before it is cut off.")
@click.option("--body-timeout", type=float, default=L.BODY_TIMEOUT, show_default=True,
              help="Seconds a client may pause while sending a request body (then 408).")
@click.option("--connect-timeout", type=float, default=L.CONNECT_TIMEOUT, hidden=True)
@click.option("--shutdown-timeout", type=float, default=L.SHUTDOWN_TIMEOUT, hidden=True)
@click.option("--max-connections", type=int, default=L.MAX_CONNECTIONS, hidden=True)
def serve_cmd(
    config_dir: Path | None,
    data_dir: Path | None,
    http_listen: str,
    https_listen: str,
    workers: int,
    supervise: bool,
    access_log: bool,
    metrics_listen: str,
    control_socket: Path | None,
    reuse_port: bool,
    listen_fds: tuple[str, ...],
    snapshot_required: bool,
    keepalive_timeout: float,
    header_timeout: float,
    response_header_timeout: float,
    read_timeout: float,
    body_timeout: float,
    connect_timeout: float,
    shutdown_timeout: float,
    max_connections: int,
) -> None:
    """Serve HTTP(S) traffic from the route snapshot; take new snapshots on the control socket."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    paths = Paths.resolve(config_dir, data_dir, os.environ)
    http = parse_listen(http_listen, "--http-listen")
    https = None if https_listen.lower() == "off" else parse_listen(https_listen, "--https-listen")
    metrics = None if metrics_listen.lower() == "off" else parse_listen(
        metrics_listen, "--metrics-listen"
    )
    limits = Limits(
        keepalive_timeout=keepalive_timeout,
        header_timeout=header_timeout,
        response_header_timeout=response_header_timeout,
        read_timeout=read_timeout,
        body_timeout=body_timeout,
        connect_timeout=connect_timeout,
        shutdown_timeout=shutdown_timeout,
        max_connections=max_connections,
    )
    if supervise or workers > 1:
        from haloy.proxy.takeover import open_listener
        from haloy.proxy.workers import supervise as run_supervisor

        listeners = {"http": open_listener(http, "--http-listen")}
        if https is not None:
            listeners["https"] = open_listener(https, "--https-listen")
        _run(run_supervisor(paths, workers, listeners))
        return
    opts = ServeOptions(
        http_listen=http,
        https_listen=https,
        snapshot_file=paths.snapshot_file,
        control_socket=control_socket or paths.control_socket,
        certs_dir=paths.certs_dir,
        access_log=access_log,
        metrics_listen=metrics,
        reuse_port=reuse_port,
        limits=limits,
        listen_fds=_parse_fds(listen_fds),
        snapshot_required=snapshot_required,
    )
    _run(serve(opts))


def _parse_fds(values: tuple[str, ...]) -> dict[str, int]:
    fds: dict[str, int] = {}
    for value in values:
        name, _, fd = value.partition("=")
        if name not in ("http", "https") or not fd.isdigit():
            raise ConfigError(f"--listen-fd: {value!r} is not http=FD or https=FD",
                              hint="this flag is set by the supervisor, not by hand")
        fds[name] = int(fd)
    return fds
