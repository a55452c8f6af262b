"""`haloy server add|list|delete|version|logs`: the haloyd servers this machine deploys to.

`server logs` (and the `server registry` group) act on the servers picked by `--server URL`
(repeatable), else on the servers of haloy.yaml's targets (-c/-t/-a), each server once.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from haloy import __version__
from haloy.api_probe import probe_health, probe_token
from haloy.cli.client_config import ClientConfig, normalize_server_url, resolve_token
from haloy.cli.main import cli
from haloy.cli.target_options import (
    api_token,
    environ,
    select_targets,
    server_url,
    target_options,
)
from haloy.errors import ApiError, ConfigError

if TYPE_CHECKING:
    from haloy.cli.api_client import ApiClient

T = TypeVar("T")
# As `haloy logs`: enough to see what just happened, small enough for a terminal.
DEFAULT_TAIL = 100


def server_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add --server URL (repeatable) to a command."""
    return click.option(
        "--server", "servers", multiple=True, metavar="URL",
        help="A configured haloyd server (repeatable); default: the servers of haloy.yaml.",
    )(func)


def pick_servers(
    servers: tuple[str, ...], config_path: Path | None, targets: tuple[str, ...],
    all_targets: bool,
) -> dict[str, str]:
    """Server URL -> API token: the --server URLs, else each target's server once."""
    env = environ()
    if servers:
        return {normalize_server_url(u): resolve_token(None, u, env) for u in servers}
    selected = select_targets(config_path, targets, all_targets)
    picked: dict[str, str] = {}
    for t in selected.targets:
        picked.setdefault(server_url(t), api_token(selected.config, t, env))
    return picked


def on_servers(
    picked: dict[str, str], action: Callable[[ApiClient], Awaitable[T]]
) -> list[tuple[str, T]]:
    """Run `action` against every picked server in parallel."""
    from haloy.cli.api_client import ApiClient

    async def one(url: str, token: str) -> tuple[str, T]:
        async with ApiClient(url, token) as api:
            return url, await action(api)

    async def every() -> list[tuple[str, T]]:
        return list(await asyncio.gather(*(one(u, t) for u, t in picked.items())))

    return asyncio.run(every())


def _client() -> ClientConfig:
    # The environment is read here, at the CLI edge, and nowhere below.
    return ClientConfig.from_environ(os.environ)


def _warn(message: str) -> None:
    click.secho(f"warning: {message}", fg="yellow", err=True)


@cli.group()
def server() -> None:
    """Manage the haloyd servers you deploy to (URLs and API tokens).

    \b
    Examples:
      haloy server add https://api.example.com 3f2a...c9
      haloy server list
      haloy server delete https://api.example.com
    """


@server.command("add")
@click.argument("url")
@click.argument("token")
@click.option("--force", is_flag=True, help="Add the server even if /health cannot be reached.")
@click.option(
    "--timeout", type=float, default=5.0, show_default=True, help="Seconds to wait for /health."
)
def add(url: str, token: str, force: bool, timeout: float) -> None:
    """Add (or replace) a server and its API token, after checking its /health.

    TOKEN is the one `haloyd init` printed; `-` reads it from stdin.

    \b
    Examples:
      haloy server add https://api.example.com 3f2a...c9
      ssh srv cut -d= -f2 /etc/haloy/.env | haloy server add https://api.example.com -
    """
    canonical = normalize_server_url(url)
    if token == "-":  # keeps the token out of shell history and `ps`
        token = sys.stdin.readline()
    token = token.strip()
    if not token:
        raise ConfigError("the API token is empty", hint="pass the token `haloyd init` printed")
    probe = probe_health(canonical, timeout)
    if not probe.reachable:
        if not force:
            raise ApiError(
                f"cannot reach {probe.url}: {probe.detail}",
                hint=(
                    "check the URL and that haloyd and haloy-proxy run on the server "
                    "(`haloyd verify` there); use --force to add it anyway"
                ),
            )
        _warn(f"cannot reach {probe.url} ({probe.detail}); added anyway (--force)")
    elif not probe.healthy:
        _warn(f"{probe.url} answered {probe.detail}; is this a haloyd API?")
    else:
        auth = probe_token(canonical, token, timeout)
        if auth.status in (401, 403):
            _warn(f"{auth.url} rejected the token ({auth.detail}); check it on the server")
    client = _client()
    entry = client.add(canonical, token)
    click.echo(f"added {entry.url} (token in {client.token_file} as {entry.token_env})")


@server.command("list")
def list_() -> None:
    """List configured servers and whether a token is available for each.

    \b
    Example:
      haloy server list
    """
    client = _client()
    servers = client.servers()
    if not servers:
        click.echo(f"no servers configured in {client.servers_file}")
        click.echo("add one with: haloy server add <url> <token>")
        return
    width = max(len("URL"), *(len(u) for u in servers))
    click.echo(f"{'URL':<{width}}  {'TOKEN':<7}  TOKEN VARIABLE")
    for url, entry in sorted(servers.items()):
        state = "set" if client.token_for(entry, os.environ) else "missing"
        click.echo(f"{url:<{width}}  {state:<7}  {entry.token_env}")


@server.command("delete")
@click.argument("url")
def delete(url: str) -> None:
    """Remove a server and its stored token.

    \b
    Example:
      haloy server delete https://api.example.com
    """
    client = _client()
    entry = client.delete(url)
    if entry is None:
        known = ", ".join(sorted(client.servers())) or "none"
        raise ConfigError(
            f"no server {normalize_server_url(url)} configured",
            hint=f"configured servers: {known} (see `haloy server list`)",
        )
    click.echo(f"deleted {entry.url}")


@server.command("version")
@click.argument("url", required=False)
@target_options
def server_version(url: str | None, config_path: Path | None, targets: tuple[str, ...],
                   all_targets: bool) -> None:
    """Print this CLI's version and each server's haloyd version and capabilities.

    URL picks one configured server; otherwise the servers of haloy.yaml's targets.

    \b
    Examples:
      haloy server version https://api.example.com
      haloy server version -a
    """
    from haloy.cli.api_client import ApiClient

    click.echo(f"haloy (CLI) {__version__}")
    if url is not None:
        base = normalize_server_url(url)
        urls = {base: resolve_token(None, base, environ())}
    else:
        selected = select_targets(config_path, targets, all_targets)
        env = environ()
        urls = {server_url(t): api_token(selected.config, t, env) for t in selected.targets}

    async def one(base: str, token: str) -> str:
        async with ApiClient(base, token) as api:
            info = await api.version()
        caps = ", ".join(info.capabilities) or "none"
        return f"{base}: haloyd {info.version} (API {info.api_version}; {caps})"

    async def all_servers() -> list[str]:
        return list(await asyncio.gather(*(one(u, t) for u, t in urls.items())))

    for line in asyncio.run(all_servers()):
        click.echo(line)


@server.command("logs")
@click.option("--tail", type=click.IntRange(0, 10000), default=DEFAULT_TAIL, show_default=True,
              help="Recent records to show first.")
@click.option("--no-follow", is_flag=True, help="Print the recent records and exit.")
@server_option
@target_options
def logs(tail: int, no_follow: bool, servers: tuple[str, ...], config_path: Path | None,
         targets: tuple[str, ...], all_targets: bool) -> None:
    """Show haloyd's own log (follows by default; Ctrl-C stops).

    \b
    Examples:
      haloy server logs --tail 20 --no-follow
      haloy server logs --server https://api.example.com
    """
    picked = pick_servers(servers, config_path, targets, all_targets)
    several = len(picked) > 1

    async def one(api: ApiClient) -> None:
        prefix = f"[{api.base_url}] " if several else ""
        async with aclosing(api.server_logs(tail, not no_follow)) as records:
            async for r in records:
                click.echo(f"{prefix}{r.time:%Y-%m-%d %H:%M:%S} {r.level.upper():<7} "
                           f"{r.logger}: {r.message}")

    on_servers(picked, one)
