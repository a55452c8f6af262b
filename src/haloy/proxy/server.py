"""Composition root of one proxy worker: listeners, control socket, TLS, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from haloy.errors import ConfigError
from haloy.proxy import NATIVE
from haloy.proxy.access_log import AccessLog
from haloy.proxy.client import ClientProtocol
from haloy.proxy.connection import ClientConnection
from haloy.proxy.control import ControlServer, LocalControl
from haloy.proxy.limits import Limits
from haloy.proxy.metrics import Metrics, MetricsServer
from haloy.proxy.service import Observer, ProxyService
from haloy.proxy.tls_conn import TlsClientProtocol
from haloy.wire.snapshot import SnapshotError, read_snapshot

log = logging.getLogger(__name__)
# A draining worker closes a keep-alive connection idle this long (a busy client's next request
# arrives well within it and is answered with Connection: close instead).
DRAIN_IDLE = 0.5
# How long WebSocket tunnels get to finish the close handshake at the end of a shutdown.
WS_CLOSE_WAIT = 2.0


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
    # Listening sockets inherited from the supervisor ("http"/"https" -> fd): no bind here.
    listen_fds: dict[str, int] = field(default_factory=dict)
    # A takeover worker must not serve an empty table because the snapshot file is unreadable.
    snapshot_required: bool = False


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
    fd: int | None = None,
) -> asyncio.Server:
    # Both listeners are plain TCP: TLS is done by the HTTPS protocol itself (tls_conn.py).
    loop = asyncio.get_running_loop()
    if fd is not None:
        # Shared with the supervisor and the other workers: closing ours never resets the
        # accept queue, which is what makes a takeover lossless.
        sock = socket.socket(fileno=fd)
        return await loop.create_server(factory, sock=sock, backlog=2048)
    try:
        return await loop.create_server(
            factory, addr[0], addr[1], reuse_port=reuse_port or None, backlog=2048
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
        if opts.snapshot_required and opts.snapshot_file.exists():
            raise ConfigError(
                f"cannot load the route snapshot {opts.snapshot_file}: {exc}",
                hint="the running workers keep serving; fix or republish the snapshot "
                "(restart haloyd) and retry",
            ) from exc
        log.warning("not booting from %s: %s", opts.snapshot_file, exc)
        snap = None
    if snap is not None:
        service.put_snapshot(snap)

    servers = [
        await _listen(
            # partial, not a lambda: uvloop calls the (compiled) class without a Python frame.
            functools.partial(ClientProtocol, service, b"http"), opts.http_listen,
            opts.reuse_port,
            "--http-listen", fd=opts.listen_fds.get("http"),
        )
    ]
    if opts.https_listen is not None and tls is not None:
        servers.append(
            await _listen(
                functools.partial(TlsClientProtocol, service, tls.server_context),
                opts.https_listen, opts.reuse_port, "--https-listen",
                fd=opts.listen_fds.get("https"),
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
        metrics_server.reuse_port = opts.reuse_port or bool(opts.listen_fds)
        await metrics_server.start()

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # A worker must not die of a stray SIGHUP (its default action): reloads go to the supervisor.
    loop.add_signal_handler(signal.SIGHUP, log.warning,
                            "SIGHUP ignored: send it to the supervisor (haloy-proxy --supervise)")
    # What starting made (modules, configuration, certificates) lives as long as the
    # process: frozen, the collector no longer walks it on each full collection.
    gc.freeze()
    ports = " ".join(f"{s.sockets[0].getsockname()}" for s in servers)
    log.info("haloy-proxy listening on %s, control %s", ports, opts.control_socket)
    mode, why = NATIVE
    (log.warning if mode == "stale" else log.info)("hot path: %s (%s)", mode, why)
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


async def shutdown(
    service: ProxyService,
    servers: list[asyncio.Server],
    deadline: float,
) -> None:
    """Stop accepting, let in-flight exchanges finish within `deadline`, then close the rest.

    Keep-alive connections get `Connection: close` on their next response; one that served a
    request and stays idle for `DRAIN_IDLE` is closed (a fresh one keeps its header timeout:
    its first request may be on the way). Tunnels keep their grace until `deadline`, then
    WebSockets get a close frame (1001) and everything left is closed.
    """
    loop = asyncio.get_running_loop()
    for server in servers:
        server.close()
    end = loop.time() + deadline
    quiet: dict[object, tuple[float, float]] = {}  # client -> (its deadline, first seen idle)
    for client in list(service.clients):
        _each(client, client.begin_drain)
    # TLS connections still in their handshake are not clients yet; the worker must not
    # exit under them either.
    while (service.clients or service.handshaking) and loop.time() < end:
        now = loop.time()
        for client in list(service.clients):
            _each(client, functools.partial(_drain_step, client, quiet, now))
        await asyncio.sleep(0.05)
    for client in list(service.clients):
        if client.tunnel is not None:
            _each(client, client.close_tunnel_gracefully)
    close_end = loop.time() + WS_CLOSE_WAIT
    while any(c.tunnel is not None for c in service.clients) and loop.time() < close_end:
        await asyncio.sleep(0.05)
    for client in list(service.clients):
        if client.transport is not None:
            client.transport.abort()
    for task in list(service.tasks):
        task.cancel()
    for server in servers:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1.0)


def _drain_step(
    client: ClientConnection, quiet: dict[object, tuple[float, float]], now: float
) -> None:
    if client.tunnel is not None:
        return
    client.begin_drain()  # accepted just before the listener closed
    if not client.idle or not client.served:
        quiet.pop(client, None)
        return
    # An idle connection may be a keep-alive client about to send its next request
    # (which would get Connection: close); only a quiet one is closed, narrowing the
    # race every HTTP/1.1 server has when it closes an idle connection.
    seen = quiet.get(client)
    if seen is None or seen[0] != client.deadline:
        quiet[client] = (client.deadline, now)
    elif now - seen[1] >= DRAIN_IDLE:
        client.abort_idle()


def _each(client: ClientConnection, step: Callable[[], None]) -> None:
    """Run one connection's drain step; a failure drops that connection, not the shutdown."""
    try:
        step()
    except Exception:
        log.exception("draining a connection failed; dropping it")
        if client.transport is not None:
            client.transport.abort()
