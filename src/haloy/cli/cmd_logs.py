"""`haloy logs`: an app's container logs from each target, followed by default."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from haloy.cli.main import cli
from haloy.cli.target_options import (
    for_each_target,
    select_targets,
    target_label,
    target_options,
)
from haloy.config.app import AppTarget

if TYPE_CHECKING:
    from haloy.cli.api_client import ApiClient

# The server caps tail at this many lines per container.
MAX_TAIL = 10000


def log_params(tail: int, follow: bool, container: str | None, every: bool) -> dict[str, str]:
    """The query of GET /v1/apps/{app}/logs."""
    params = {"tail": str(tail), "follow": "true" if follow else "false"}
    if container:
        params["container"] = container
    if every:
        params["all"] = "true"
    return params


def format_line(event: dict[str, Any], target: str | None = None, container: bool = False,
                raw: bool = False) -> str:
    """One log line: `[target] HH:MM:SS container out|err | text`, or only the text if raw."""
    line = str(event.get("line", ""))
    if raw:
        return line
    stamp = str(event.get("time", ""))[11:19]  # RFC 3339: the time of day to the second
    parts = [f"[{target}]"] if target else []
    parts.append(stamp)
    if container:
        parts.append(str(event.get("container", "")))
    parts.append("err" if event.get("stream") == "stderr" else "out")
    return f"{' '.join(p for p in parts if p)} | {line}"


@cli.command("logs")
@target_options
@click.option("-n", "--tail", type=click.IntRange(0, MAX_TAIL), default=100, show_default=True,
              help="Lines to show from the end of each container's log before following.")
@click.option("--follow/--no-follow", default=True, show_default=True,
              help="Keep printing new lines (Ctrl-C stops).")
@click.option("--container", metavar="ID", default=None,
              help="Only this container (id prefix, see `haloy status`).")
@click.option("--all-containers", is_flag=True,
              help="Every container of the app, each line prefixed by its container.")
@click.option("--raw", is_flag=True, help="Only the lines: no time, container or stream prefix.")
def logs(config_path: Path | None, targets: tuple[str, ...], all_targets: bool, tail: int,
         follow: bool, container: str | None, all_containers: bool, raw: bool) -> None:
    """Show an app's container logs; stderr lines go to stderr, marked `err`.

    By default the newest deployment's container is followed.

    \b
    Examples:
      haloy logs
      haloy logs --tail 20 --no-follow
      haloy logs --all-containers -t production
      haloy logs --raw --no-follow | grep ERROR
    """
    selected = select_targets(config_path, targets, all_targets)
    several = len(selected.targets) > 1
    params = log_params(tail, follow, container, all_containers)

    async def one(target: AppTarget, api: ApiClient) -> None:
        label = target_label(target) if several else None
        # Closed here, not by the garbage collector after the client is gone: Ctrl-C must
        # close the stream before the connection pool.
        async with aclosing(api.app_logs(target.name, params)) as events:
            async for event in events:
                click.echo(format_line(event, label, all_containers, raw),
                           err=event.get("stream") == "stderr")

    asyncio.run(for_each_target(selected, one))
