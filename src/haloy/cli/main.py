"""`haloy`: the developer's command line. Each command group lives in its own module."""

from __future__ import annotations

import click

from haloy import __version__
from haloy.console import run_cli


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="haloy")
def cli() -> None:
    """Deploy Docker containers to your own servers with zero downtime.

    \b
    Examples:
      haloy validate-config -c haloy.yaml
      haloy server add https://api.example.com TOKEN
      haloy deploy
    """


@cli.command()
def version() -> None:
    """Print the haloy version.

    \b
    Example:
      haloy version
    """
    click.echo(f"haloy {__version__}")


def _register() -> None:
    # Command modules attach themselves to `cli`; imported here to keep one composition point.
    from haloy.cli import commands  # noqa: F401


def main(args: list[str] | None = None) -> None:
    """Console-script entry point."""
    _register()
    run_cli(cli, args)
