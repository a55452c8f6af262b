"""`run_cli`: every way a command ends maps to one exit code (pure: an in-process click group)."""

from __future__ import annotations

import click
import pytest

from haloy.console import run_cli
from haloy.errors import ConfigError, HaloyError


@click.group()
def group() -> None:
    """A throwaway group."""


@group.command()
@click.argument("how")
def end(how: str) -> None:
    """End the way `how` says."""
    if how == "exit7":
        raise click.exceptions.Exit(7)
    if how == "ctx-exit3":
        click.get_current_context().exit(3)
    if how == "failed":
        raise HaloyError("it failed", hint="try again")
    if how == "config":
        raise ConfigError("bad config")
    if how == "abort":
        raise click.exceptions.Abort()
    if how == "usage":
        raise click.UsageError("wrong")
    if how == "ctrl-c":
        raise KeyboardInterrupt  # click turns it into Abort; the shell convention is 130


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["end", "ok"], 0),
        (["end", "exit7"], 7),
        (["end", "ctx-exit3"], 3),
        (["end", "failed"], 1),
        (["end", "config"], 2),
        (["end", "abort"], 1),
        (["end", "usage"], 2),
        (["end", "ctrl-c"], 130),
        (["--help"], 0),
        (["nope"], 2),
    ],
)
def test_exit_codes(args: list[str], code: int) -> None:
    with pytest.raises(SystemExit) as ended:
        run_cli(group, args)
        raise SystemExit(0)  # run_cli returned: success
    assert (ended.value.code or 0) == code
