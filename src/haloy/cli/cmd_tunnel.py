"""`haloy tunnel [LOCAL_PORT]`: reach an app's container port (a database, say) from here."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import click

from haloy.cli.main import cli
from haloy.cli.target_options import (
    api_token,
    environ,
    select_targets,
    server_url,
    target_label,
    target_options,
)
from haloy.errors import ApiError

if TYPE_CHECKING:
    from haloy.cli.tunnel_client import Tunnel


@cli.command("tunnel")
@target_options
@click.argument("local_port", type=click.IntRange(0, 65535), required=False)
@click.option("--port", "container_port", type=click.IntRange(1, 65535), default=None,
              help="The container port to reach (default: the app's `port`).")
@click.option("--container", metavar="ID", default=None,
              help="This container (id prefix) instead of the newest deployment's.")
def tunnel(config_path: Path | None, targets: tuple[str, ...], all_targets: bool,
           local_port: int | None, container_port: int | None, container: str | None) -> None:
    """Forward a local port on 127.0.0.1 to a container port of the app, through the API.

    Each local connection becomes one TCP connection to the container on the app network,
    so a port that is not public (a database) can be reached. LOCAL_PORT defaults to the
    container port; 0 picks a free one. Ctrl-C stops.

    \b
    Examples:
      haloy tunnel --port 5432            # then: psql -h 127.0.0.1 -p 5432
      haloy tunnel 15432 --port 5432 -t production
    """
    from haloy.cli.tunnel_client import Tunnel, tunnel_url

    selected = select_targets(config_path, targets, all_targets)
    if len(selected.targets) != 1:
        raise click.UsageError("a tunnel goes to one target; choose it with -t NAME")
    target = selected.targets[0]
    port = container_port or target.port
    url = server_url(target)
    token = api_token(selected.config, target, environ())
    forward = Tunnel(tunnel_url(url, target.name, port, container), token,
                     lambda text: click.echo(text, err=True))
    asyncio.run(_serve(forward, url, token, target.name, port if local_port is None
                       else local_port, f"{target_label(target)} ({target.name}):{port}"))


async def _serve(forward: Tunnel, url: str, token: str, app: str, local_port: int,
                 label: str) -> None:
    from haloy.cli.api_client import ApiClient

    # Fail fast on a wrong token or an app that does not run, before anyone connects.
    async with ApiClient(url, token) as api:
        await api.app(app)
    handlers: set[asyncio.Task[object]] = set()

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # start_server runs each handler as a task
        handlers.add(task)
        try:
            await forward.handle(reader, writer)
        finally:
            handlers.discard(task)

    try:
        server = await asyncio.start_server(tracked, "127.0.0.1", local_port)
    except OSError as exc:
        raise ApiError(f"cannot listen on 127.0.0.1:{local_port}: {exc.strerror}",
                       hint="choose another LOCAL_PORT, or 0 for any free port") from exc
    bound = server.sockets[0].getsockname()[1]
    click.echo(f"forwarding 127.0.0.1:{bound} -> {label} via {url} (Ctrl-C stops)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # Not `async with server`: from Python 3.12.1 its exit waits for open connections, so
    # Ctrl-C would hang while one is tunnelled. Their handlers are cancelled instead (each
    # closes its WebSocket and local socket), then the wait is bounded.
    try:
        await stop.wait()
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await asyncio.gather(*handlers, return_exceptions=True)
                await server.wait_closed()
    click.echo("tunnel stopped")
