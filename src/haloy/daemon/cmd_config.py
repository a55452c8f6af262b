"""`haloyd config get|set|generate-token`: read and change haloyd.yaml and the API token."""

from __future__ import annotations

from pathlib import Path

import click

from haloy.daemon.api_token import TOKEN_ENV, new_token, write_token
from haloy.daemon.main import cli
from haloy.daemon.path_options import paths_options, resolve_paths
from haloy.errors import ConfigError


@cli.group()
def config() -> None:
    """Read or change haloyd.yaml (dotted keys) and rotate the API token.

    \b
    Examples:
      haloyd config get api.listen
      haloyd config set health_monitor.interval 10s
      haloyd config generate-token
    """


@config.command("get")
@click.argument("key")
@paths_options
def get(key: str, config_dir: Path | None, data_dir: Path | None) -> None:
    """Print the effective value of KEY (defaults included).

    \b
    Example:
      haloyd config get proxy.http_listen
    """
    # Imported when run: `haloyd --help` stays fast, and one command's imports cannot break
    # the others that share this auto-registered group.
    from haloy.daemon.config_edit import get_value

    paths = resolve_paths(config_dir, data_dir)
    click.echo(get_value(paths.daemon_config, key))


@config.command("set")
@click.argument("key")
@click.argument("value")
@paths_options
def set_(key: str, value: str, config_dir: Path | None, data_dir: Path | None) -> None:
    """Set KEY to VALUE after validating the whole config; restart haloyd to apply.

    \b
    Example:
      haloyd config set api.domain api.example.com
    """
    from haloy.daemon.config_edit import set_value

    paths = resolve_paths(config_dir, data_dir)
    stored = set_value(paths.daemon_config, key, value)
    click.echo(f"{key} = {stored}  ({paths.daemon_config})")


@config.command("generate-token")
@paths_options
def generate_token(config_dir: Path | None, data_dir: Path | None) -> None:
    """Replace the API token in .env with a new random one and print it.

    \b
    Example:
      haloyd config generate-token
    """
    paths = resolve_paths(config_dir, data_dir)
    if not paths.config_dir.is_dir():
        raise ConfigError(
            f"config dir {paths.config_dir} does not exist", hint="run `haloyd init` first"
        )
    token = new_token()
    write_token(paths.env_file, token)
    click.echo(f"new {TOKEN_ENV} written to {paths.env_file}; restart haloyd, then on clients:")
    click.echo(f"  haloy server add <url> {token}")
