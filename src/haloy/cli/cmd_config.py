"""`haloy validate-config` and `haloy targets`: check haloy.yaml and list what it deploys."""

from __future__ import annotations

import os
from pathlib import Path

import click
import yaml
from rich.console import Console
from rich.table import Table

from haloy.cli.client_config import client_config_dir
from haloy.cli.main import cli
from haloy.config.app import AppConfig, load_app_config
from haloy.config.resolve import resolve_config
from haloy.errors import ConfigError

config_option = click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="haloy.yaml/.yml/.json/.toml, or a directory holding one (default: current dir).",
)


def _load(config_path: Path | None) -> AppConfig:
    return load_app_config(config_path)


@cli.command("validate-config")
@config_option
@click.option(
    "--show-resolved-config",
    is_flag=True,
    help="Print each target with env vars and secrets resolved (secrets masked).",
)
@click.option(
    "-t", "--target", "targets", multiple=True, help="Only these targets (repeatable)."
)
def validate_config(config_path: Path | None, show_resolved_config: bool,
                    targets: tuple[str, ...]) -> None:
    """Check haloy.yaml: syntax, fields and targets; warn about env vars that are not set.

    Exits 2 and lists every problem as file:line: field: message when something is wrong.
    With --show-resolved-config every value must resolve (env vars, .env files, secrets).

    \b
    Examples:
      haloy validate-config
      haloy validate-config -c deploy/haloy.toml
      haloy validate-config --show-resolved-config -t production
    """
    config = _load(config_path)
    # The environment is read here, at the CLI edge, and passed down explicitly.
    environ = dict(os.environ)
    user_dir = client_config_dir(environ)
    if show_resolved_config:
        resolved = resolve_config(config, environ, user_dir, targets)
        shown = [r.display() for r in resolved]
        click.echo(yaml.safe_dump(shown, sort_keys=False, allow_unicode=True).rstrip())
    else:
        # Unset variables are warnings here: they may only exist where the deploy runs (CI).
        try:
            resolve_config(config, environ, user_dir, targets, fetch_secrets=False)
        except ConfigError as err:
            for problem in err.problems:
                click.secho(f"warning: {problem}", fg="yellow", err=True)
    count = len(config.targets)
    noun = "target" if count == 1 else "targets"
    click.echo(f"{config.path}: valid ({count} {noun})", err=show_resolved_config)


@cli.command("targets")
@config_option
def targets_cmd(config_path: Path | None) -> None:
    """List the targets of haloy.yaml: app name, server, domains, replicas, protection.

    \b
    Examples:
      haloy targets
      haloy targets -c deploy/
    """
    config = _load(config_path)
    table = Table(title=str(config.path), title_justify="left")
    for column in ("target", "name", "server", "domains", "replicas", "protected"):
        table.add_column(column, justify="right" if column == "replicas" else "left")
    for t in config.targets:
        domains = ", ".join(
            d.domain + (f" (+{len(d.aliases)} alias)" if d.aliases else "") for d in t.domains
        )
        table.add_row(
            t.target or "-", t.name, t.server, domains or "-", str(t.replicas),
            "yes" if t.protected else "no",
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # piped output: never cut a domain in half
    console.print(table)
