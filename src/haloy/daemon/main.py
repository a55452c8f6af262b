"""`haloyd`: the control-plane daemon's command line. Commands live in `cmd_*.py` modules."""

from __future__ import annotations

import importlib
import pkgutil

import click

from haloy import __version__
from haloy.console import run_cli


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="haloyd")
def cli() -> None:
    """haloyd: the haloy control plane (API, deployer, discovery, health, certificates).

    \b
    Examples:
      haloyd init --api-domain api.example.com
      haloyd verify
      haloyd serve
    """


def main(args: list[str] | None = None) -> None:
    """Console-script entry point."""
    import haloy.daemon as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name.startswith("cmd_"):
            importlib.import_module(f"haloy.daemon.{mod.name}")
    run_cli(cli, args)
