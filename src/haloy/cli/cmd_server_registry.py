"""`haloy server registry login|logout|list`: registry logins haloyd keeps for pulls.

Each acts on the servers `--server URL` picks, else on those of haloy.yaml's targets.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from haloy.cli.cmd_server import on_servers, pick_servers, server, server_option
from haloy.cli.target_options import target_options
from haloy.errors import ConfigError
from haloy.wire.registries import normalize_server

if TYPE_CHECKING:
    from haloy.cli.api_client import ApiClient


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
