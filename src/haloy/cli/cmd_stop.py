"""`haloy stop`: take an app out of the routes and stop (or remove) its containers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from haloy.cli.main import cli
from haloy.cli.target_options import (
    INCLUDE_PROTECTED_HELP,
    for_each_target,
    protected_filter,
    select_targets,
    target_label,
    target_options,
)
from haloy.config.app import AppTarget

if TYPE_CHECKING:
    from haloy.cli.api_client import ApiClient


@cli.command("stop")
@target_options
@click.option("-r", "--remove-containers", is_flag=True, help="Remove the containers too.")
@click.option("--remove-volumes", is_flag=True, help="Remove their volumes (needs -r).")
@click.option("--include-protected", is_flag=True, help=INCLUDE_PROTECTED_HELP)
def stop(config_path: Path | None, targets: tuple[str, ...], all_targets: bool,
         remove_containers: bool, remove_volumes: bool, include_protected: bool) -> None:
    """Stop an app's containers and take it out of the proxy's routes.

    \b
    Examples:
      haloy stop -t staging
      haloy stop -r --remove-volumes
      haloy stop -a --include-protected
    """
    if remove_volumes and not remove_containers:
        raise click.UsageError("--remove-volumes needs -r/--remove-containers")
    selected = protected_filter(select_targets(config_path, targets, all_targets),
                                include_protected, "stop")

    async def one(target: AppTarget, api: ApiClient) -> tuple[AppTarget, dict[str, Any]]:
        body = {"removeContainers": remove_containers, "removeVolumes": remove_volumes}
        return target, await api.post(f"/v1/apps/{target.name}/stop", body)

    for target, answer in asyncio.run(for_each_target(selected, one)):
        ids = answer.get("containers") or answer.get("containerIds") or []
        verb = "removed" if remove_containers else "stopped"
        click.echo(f"{target_label(target)}: {verb} {len(ids)} container(s) of {target.name}")
