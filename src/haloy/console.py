"""The error boundary of haloy, haloyd and haloy-proxy: renders a HaloyError (message + hint)
and picks the exit code, in one place for all three command lines."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from haloy.errors import EXIT_FAILED, ConfigError, HaloyError


def render_error(err: HaloyError, console: Console | None = None) -> int:
    """Print `err` to stderr and return the exit code it maps to."""
    out = console or Console(stderr=True, highlight=False, soft_wrap=True)
    out.print(f"[bold red]error:[/] {err.message}", markup=True)
    if isinstance(err, ConfigError):
        for problem in err.problems:
            out.print(f"  {problem}", markup=False)
    if err.hint:
        out.print(f"[bold]hint:[/] {err.hint}", markup=True)
    return err.exit_code


def run_cli(group: click.Group, args: list[str] | None = None) -> None:
    """Run a click group; HaloyError becomes a rendered message and its exit code."""
    try:
        # Without standalone mode click returns (not raises) the code of `ctx.exit(n)` /
        # `click.exceptions.Exit(n)`, so pass it on.
        code = group.main(args=args, standalone_mode=False)
    except HaloyError as err:
        sys.exit(render_error(err))
    except click.exceptions.Abort as err:
        # Ctrl-C (how `haloy logs -f` is left) arrives as Abort from click: 128 + SIGINT.
        sys.exit(130 if isinstance(err.__cause__, KeyboardInterrupt) else EXIT_FAILED)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    if isinstance(code, int) and code != 0:
        sys.exit(code)


