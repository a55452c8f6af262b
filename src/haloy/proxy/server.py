"""Composition root of one proxy worker: listeners, control socket, TLS, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from haloy.errors import ConfigError
from haloy.proxy.access_log import AccessLog
from haloy.proxy.client import ClientProtocol
from haloy.proxy.control import ControlServer, LocalControl
from haloy.proxy.limits import Limits
from haloy.proxy.metrics import Metrics, MetricsServer
from haloy.proxy.service import Observer, ProxyService
from haloy.proxy.snapshot import SnapshotError, read_snapshot

log = logging.getLogger("haloy.proxy")


@dataclass(frozen=True)
class ServeOptions:
    """Everything `haloy-proxy serve` was asked to do (one worker's view)."""

    http_listen: tuple[str, int]
    https_listen: tuple[str, int] | None
    snapshot_file: Path
    control_socket: Path
    certs_dir: Path
    access_log: bool = False
    metrics_listen: tuple[str, int] | None = None
    reuse_port: bool = False
    limits: Limits = field(default_factory=Limits)


def parse_listen(value: str, flag: str) -> tuple[str, int]:
    """'HOST:PORT' or ':PORT' -> (host, port); ConfigError naming the flag otherwise."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(
            f"{flag}: {value!r} is not HOST:PORT", hint=f"for example {flag} 127.0.0.1:8080"
        )
    return (host.strip("[]") or "0.0.0.0", int(port))


async def _listen(
    factory: Callable[[], asyncio.BaseProtocol],
    addr: tuple[str, int],
    reuse_port: bool,
    flag: str,
    ssl_context: ssl.SSLContext | None = None,
    handshake_timeout: float | None = None,
) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    try:
        return await loop.create_server(
            factory,
            addr[0],
            addr[1],
            reuse_port=reuse_port or None,
            backlog=2048,
            ssl=ssl_context,
            ssl_handshake_timeout=handshake_timeout,
        )
    except OSError as exc:
        raise ConfigError(
            f"{flag}: cannot listen on {addr[0]}:{addr[1]}: {exc.strerror or exc}",
            hint="pick a free port, or stop what listens there",
        ) from exc


def bound_port(server: asyncio.Server) -> int:
    """The port a server actually bound (for port 0)."""
    sock = server.sockets[0]
    return int(sock.getsockname()[1])


async def serve(opts: ServeOptions, ready: asyncio.Event | None = None) -> None:
    """Run one worker until SIGTERM/SIGINT, then shut down gracefully."""
    loop = asyncio.get_running_loop()
    observers: list[Observer] = []
    access = AccessLog(loop, sys.stdout) if opts.access_log else None
    if access is not None:
        observers.append(access)
    metrics = Metrics() if opts.metrics_listen else None
    if metrics is not None:
        observers.append(metrics)
    https_port = opts.https_listen[1] if opts.https_listen else None
    service = ProxyService(loop, opts.limits, https_port=https_port, observers=tuple(observers))
    if metrics is not None:
        metrics.service = service

    tls = None
    if opts.https_listen is not None:
        from haloy.proxy.tls import TlsTerminator  # owned by the certificates work

        tls = TlsTerminator(opts.certs_dir)
        service.on_snapshot.append(tls.update_routes)
    try:
        snap = read_snapshot(opts.snapshot_file)
    except (SnapshotError, OSError) as exc:
        log.warning("not booting from %s: %s", opts.snapshot_file, exc)
        snap = None
    if snap is not None:
        service.put_snapshot(snap)

    servers = [
        await _listen(
            lambda: ClientProtocol(service, b"http"), opts.http_listen, opts.reuse_port,
            "--http-listen",
        )
    ]
    if opts.https_listen is not None and tls is not None:
        servers.append(
            await _listen(
                lambda: ClientProtocol(service, b"https"), opts.https_listen,
                opts.reuse_port, "--https-listen", tls.server_context, opts.limits.header_timeout,
            )
        )
    service.ports["http"] = bound_port(servers[0])
    if len(servers) > 1:
        service.ports["https"] = service.https_port = bound_port(servers[1])
    control = ControlServer(opts.control_socket, LocalControl(service, tls.reload if tls else None))
    await control.start()
    metrics_server = None
    if metrics is not None and opts.metrics_listen is not None:
        metrics_server = MetricsServer(metrics, opts.metrics_listen)
        await metrics_server.start()

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    ports = " ".join(f"{s.sockets[0].getsockname()}" for s in servers)
    log.info("haloy-proxy listening on %s, control %s", ports, opts.control_socket)
    print(f"haloy-proxy ready {ports}", file=sys.stderr, flush=True)
    if ready is not None:
        ready.set()
    await stop.wait()
    await shutdown(service, servers, opts.limits.shutdown_timeout)
    await control.close()
    if metrics_server is not None:
        await metrics_server.close()
    if access is not None:
        access.flush()


async def shutdown(service: ProxyService, servers: list[asyncio.Server], deadline: float) -> None:
    """Stop accepting, let in-flight exchanges finish within `deadline`, then close the rest."""
    loop = asyncio.get_running_loop()
    for server in servers:
        server.close()
    end = loop.time() + deadline
    while service.clients and loop.time() < end:
        for client in list(service.clients):
            if client.idle:
                client.abort_idle()
            else:
                client.stopped = True  # finish this exchange, accept no further request
        await asyncio.sleep(0.05)
    for client in list(service.clients):
        if client.transport is not None:
            client.transport.abort()
    for task in list(service.tasks):
        task.cancel()
    for server in servers:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1.0)


def set_reuse_port_supported() -> bool:
    """True where SO_REUSEPORT exists (Linux)."""
    return hasattr(socket, "SO_REUSEPORT")
