"""`haloy-proxy`: the data plane's command line."""

from __future__ import annotations

import click

from haloy import __version__
from haloy.console import run_cli


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="haloy-proxy")
def cli() -> None:
    """haloy-proxy: TLS termination, host routing and load balancing for haloy apps."""


def main(args: list[str] | None = None) -> None:
    """Console-script entry point."""
    from haloy.proxy import cmd_reload, cmd_serve  # noqa: F401

    run_cli(cli, args)
