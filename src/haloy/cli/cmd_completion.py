"""`haloy completion bash|zsh|fish`: print the shell's completion script."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

from haloy.cli.main import cli

# click completes when this variable is set, e.g. `_HALOY_COMPLETE=bash_complete haloy`.
COMPLETE_VAR = "_HALOY_COMPLETE"


def completion_script(shell: str) -> str:
    """The completion script for `shell` (bash, zsh or fish)."""
    cls = get_completion_class(shell)
    if cls is None:  # click.Choice already refuses other shells; kept for direct callers
        raise click.UsageError(f"no completion for shell {shell!r}")
    return cls(cli, {}, "haloy", COMPLETE_VAR).source()


@cli.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the completion script for your shell.

    \b
    Examples:
      haloy completion bash > /etc/bash_completion.d/haloy
      haloy completion zsh > "${fpath[1]}/_haloy"
      haloy completion fish > ~/.config/fish/completions/haloy.fish
    """
    click.echo(completion_script(shell))
