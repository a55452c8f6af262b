"""`haloy server add|list|delete`: the haloyd servers this machine deploys to."""

from __future__ import annotations

import os
import sys

import click

from haloy.api_probe import probe_health, probe_token
from haloy.cli.client_config import ClientConfig, normalize_server_url
from haloy.cli.main import cli
from haloy.errors import ApiError, ConfigError


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
