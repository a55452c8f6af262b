"""`haloy server registry login|logout|list` and `haloy server logs`.

Each acts on the haloyd servers picked by `--server URL` (repeatable), else on the servers of
haloy.yaml's targets (-c/-t/-a), each server once.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from haloy.cli.client_config import normalize_server_url, resolve_token
from haloy.cli.cmd_server import server
from haloy.cli.target_options import (
    api_token,
    environ,
    select_targets,
    server_url,
    target_options,
)
from haloy.errors import ConfigError

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


@server.group("registry")
def registry() -> None:
    """Registry logins haloyd keeps (0600, on the server) for pulling private images.

    \b
    Examples:
      echo "$TOKEN" | haloy server registry login ghcr.io -u me --password-stdin
      haloy server registry list --json
      haloy server registry logout ghcr.io
    """


@registry.command("login")
@click.argument("registry_server", metavar="REGISTRY")
@click.option("-u", "--username", required=True, help="Registry username.")
@click.option("-p", "--password", default=None, help="Password (prefer --password-stdin).")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@server_option
@target_options
def login(registry_server: str, username: str, password: str | None, password_stdin: bool,
          servers: tuple[str, ...], config_path: Path | None, targets: tuple[str, ...],
          all_targets: bool) -> None:
    """Check a registry login on each server and store it there for later pulls.

    \b
    Examples:
      echo "$TOKEN" | haloy server registry login ghcr.io -u me --password-stdin
      haloy server registry login 127.0.0.1:5000 -u ci -p s3cret --server https://api.example.com
    """
    if password_stdin == (password is not None):
        raise click.UsageError("give the password with exactly one of -p or --password-stdin")
    if password_stdin:  # keeps the secret out of shell history and `ps`
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise ConfigError("the registry password is empty", hint="pass it on stdin or with -p")
    body = {"server": registry_server, "username": username, "password": password}
    picked = pick_servers(servers, config_path, targets, all_targets)
    for url, answer in on_servers(picked, lambda api: api.post("/v1/registries/login", body)):
        click.echo(f"{url}: logged in to {answer.get('server')} as {answer.get('username')}")


@registry.command("logout")
@click.argument("registry_server", metavar="REGISTRY")
@server_option
@target_options
def logout(registry_server: str, servers: tuple[str, ...], config_path: Path | None,
           targets: tuple[str, ...], all_targets: bool) -> None:
    """Forget a registry login on each server.

    \b
    Example:
      haloy server registry logout ghcr.io
    """
    from urllib.parse import quote

    from haloy.daemon.registry_auth import normalize_server

    # `https://ghcr.io/` must name the login `ghcr.io`, not a path below /v1/registries/.
    name = normalize_server(registry_server)

    async def one(api: ApiClient) -> None:
        await api.request("DELETE", f"/v1/registries/{quote(name, safe='')}")

    for url, _ in on_servers(pick_servers(servers, config_path, targets, all_targets), one):
        click.echo(f"{url}: logged out of {name}")


@registry.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the logins as JSON.")
@server_option
@target_options
def list_(as_json: bool, servers: tuple[str, ...], config_path: Path | None,
          targets: tuple[str, ...], all_targets: bool) -> None:
    """List the registry logins each server keeps (never the passwords).

    \b
    Examples:
      haloy server registry list
      haloy server registry list --json --server https://api.example.com
    """

    async def one(api: ApiClient) -> list[dict[str, Any]]:
        answer = (await api.request("GET", "/v1/registries")).json()
        return list(answer.get("registries") or [])

    found = on_servers(pick_servers(servers, config_path, targets, all_targets), one)
    if as_json:
        click.echo(json.dumps([{"server": u, "registries": r} for u, r in found], indent=2))
        return
    for url, entries in found:
        click.echo(f"{url}:" + ("" if entries else " no registry logins"))
        for e in entries:
            click.echo(f"  {e['server']}  {e['username']}")


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
        async for r in api.server_logs(tail, not no_follow):
            click.echo(f"{prefix}{r.time:%Y-%m-%d %H:%M:%S} {r.level.upper():<7} "
                       f"{r.logger}: {r.message}")

    on_servers(picked, one)
