"""`haloy exec -- CMD ARGS...`: run a command in an app's containers, exit code propagated."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import click

from haloy.cli.api_client import ApiClient
from haloy.cli.main import cli
from haloy.cli.target_options import (
    for_each_target,
    select_targets,
    target_label,
    target_options,
)
from haloy.config.app import AppTarget
from haloy.errors import ApiError, RuntimeError_
from haloy.wire.api import ExecResult, ExecResults

# What timeout(1) exits with when the command ran out of time.
EXIT_TIMED_OUT = 124
# The server could not learn how the command ended: never report that as success.
EXIT_UNKNOWN = 1
# The server answers a little after the command's timeout (kill, inspect).
ANSWER_MARGIN_S = 30.0


class CommandFailed(RuntimeError_):
    """The exec'd command exited non-zero (or timed out): its code becomes haloy's."""

    def __init__(self, code: int) -> None:
        what = {EXIT_TIMED_OUT: "timed out", EXIT_UNKNOWN: "ended with an unknown exit code"
                }.get(code, f"exited with {code}")
        super().__init__(f"the command {what}")
        self.exit_code = code


def exit_code(results: Sequence[ExecResult]) -> int:
    """The first non-zero exit code (124 for a timeout, 1 when unknown), else 0."""
    for r in results:
        if r.timed_out:
            return EXIT_TIMED_OUT
        if r.exit_code is None:
            return EXIT_UNKNOWN
        if r.exit_code:
            return r.exit_code
    return 0


def prefixed(text: str, prefix: str) -> str:
    """Every line of `text` with `prefix` in front (no prefix: unchanged)."""
    if not prefix or not text:
        return text
    return "".join(f"{prefix}{line}" for line in text.splitlines(keepends=True))


def print_result(result: ExecResult, prefix: str, timeout: float) -> None:
    """The command's output as it came, then what went wrong, on stderr."""
    click.echo(prefixed(result.stdout, prefix), nl=False)
    click.echo(prefixed(result.stderr, prefix), nl=False, err=True)
    if result.truncated:
        click.echo(f"{prefix}(output cut off: the server keeps the first MiB)", err=True)
    if result.timed_out and result.killed:
        click.echo(f"{prefix}(timed out after {timeout:g} s and killed)", err=True)
    elif result.timed_out:
        click.echo(f"{prefix}(timed out after {timeout:g} s; it could not be killed and may "
                   "still run)", err=True)
    elif result.exit_code is None:
        click.echo(f"{prefix}(the server could not learn the exit code)", err=True)


@cli.command(
    "exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@target_options
@click.option("--container", metavar="ID", default=None,
              help="Run in this container (id prefix) instead of the newest one.")
@click.option("--all-containers", is_flag=True,
              help="Run in every running container; output prefixed by container.")
@click.option("--timeout", type=click.FloatRange(0, 3600, min_open=True), default=60.0,
              show_default=True, help="Seconds before the command is killed.")
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_command(config_path: Path | None, targets: tuple[str, ...], all_targets: bool,
                 container: str | None, all_containers: bool, timeout: float,
                 argv: tuple[str, ...]) -> None:
    """Run a command (no TTY, no stdin) in the app's container and print its output.

    Exits with the command's exit code (the first non-zero one when several ran).

    \b
    Examples:
      haloy exec -- ls -l /data
      haloy exec --all-containers -- cat /etc/hostname
      haloy exec -t production --timeout 600 -- ./migrate
    """
    selected = select_targets(config_path, targets, all_targets)
    body = {"argv": list(argv), "timeout": timeout, "container": container,
            "allContainers": all_containers}

    async def one(target: AppTarget, api: ApiClient) -> tuple[AppTarget, ExecResults]:
        # The answer comes when the command ended: wait past its timeout, not the default.
        resp = await api.request("POST", f"/v1/apps/{target.name}/exec", json=body,
                                 timeout=timeout + ANSWER_MARGIN_S)
        try:
            return target, ExecResults.model_validate_json(resp.content)
        except ValueError as exc:
            raise ApiError(f"{api.base_url} answered exec with something this CLI does not "
                           "understand", hint="compare `haloy server version` with "
                           "`haloy version`") from exc

    found = asyncio.run(for_each_target(selected, one))
    several_targets = len(found) > 1
    every: list[ExecResult] = []
    for target, results in found:
        several = several_targets or len(results.results) > 1
        for result in results.results:
            name = (f"{target_label(target)}/" if several_targets else "") + result.container_id
            print_result(result, f"[{name}] " if several else "", timeout)
            every.append(result)
    code = exit_code(every)
    if code:
        raise CommandFailed(code)
