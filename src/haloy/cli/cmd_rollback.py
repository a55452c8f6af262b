"""`haloy rollback-targets` and `haloy rollback`: list kept deployments, deploy one again."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from haloy.cli.client_config import client_config_dir
from haloy.cli.main import cli
from haloy.cli.tables import age, table_console
from haloy.cli.target_options import (
    environ,
    for_each_target,
    select_targets,
    target_label,
    target_options,
)
from haloy.config.app import AppTarget
from haloy.config.resolve import resolve_target
from haloy.errors import ApiError, HaloyError

if TYPE_CHECKING:
    from haloy.cli.api_client import ApiClient
    from haloy.cli.events_view import Outcome


@cli.command("rollback-targets")
@target_options
@click.option("--json", "as_json", is_flag=True, help="Print the deployments as JSON.")
def rollback_targets(config_path: Path | None, targets: tuple[str, ...], all_targets: bool,
                     as_json: bool) -> None:
    """List the kept deployments each target can roll back to, newest first.

    \b
    Examples:
      haloy rollback-targets
      haloy rollback 01J8Z3K6N4X2T1R0QW5E7Y9ABC
    """
    selected = select_targets(config_path, targets, all_targets)

    async def one(target: AppTarget, api: ApiClient) -> tuple[AppTarget, list[Any]]:
        return target, list((await api.deployments(target.name)).deployments)

    found = asyncio.run(for_each_target(selected, one))
    if as_json:
        click.echo(json.dumps([
            {"target": target_label(t),
             "deployments": [d.model_dump(mode="json", by_alias=True) for d in deps]}
            for t, deps in found
        ], indent=2))
        return
    console = table_console()
    for target, deps in found:
        table = Table(title=f"{target_label(target)} ({target.name})", title_justify="left")
        for col in ("id", "status", "image", "digest", "created"):
            table.add_column(col)
        for d in deps:
            style = {"succeeded": "green", "failed": "red"}.get(d.status, "")
            table.add_row(d.id, f"[{style}]{d.status}[/]" if style else d.status,
                          d.image_ref, (d.image_digest or "-")[:19], f"{age(d.created_at)} ago")
        console.print(table if deps else f"{target_label(target)}: no deployments kept")


async def follow_started(
    target: AppTarget, api: ApiClient, answer: dict[str, Any], console: Console,
    show_progress: bool,
) -> Outcome:
    """Follow the deployment a POST started (`{deploymentId}`) to its end."""
    from haloy.cli.events_view import EventPrinter, Outcome, follow_events

    outcome = Outcome(target_label(target), deployment_id=answer.get("deploymentId"))
    if outcome.deployment_id is None:
        raise ApiError(f"{api.base_url} did not answer with a deployment id")
    outcome.urls = [f"https://{d.domain}" for d in target.domains]
    printer = EventPrinter(console, f"[{target_label(target)}]", show_progress)
    return await follow_events(api, outcome, printer, target.name)


@cli.command("rollback")
@click.argument("deployment_id")
@target_options
@click.option("--no-logs", is_flag=True, help="Only print the result, not each step.")
def rollback(deployment_id: str, config_path: Path | None, targets: tuple[str, ...],
             all_targets: bool, no_logs: bool) -> None:
    """Deploy a kept deployment again (its image and stored config, env re-resolved here).

    \b
    Examples:
      haloy rollback-targets
      haloy rollback 01J8Z3K6N4X2T1R0QW5E7Y9ABC -t production
    """
    from haloy.cli.events_view import print_summary

    selected = select_targets(config_path, targets, all_targets)
    env = environ()
    console = table_console()

    async def one(target: AppTarget, api: ApiClient) -> Outcome:
        resolved = resolve_target(selected.config, target, env, client_config_dir(env))
        answer = await api.post(f"/v1/apps/{target.name}/rollback",
                                {"deploymentId": deployment_id, "env": resolved.env})
        return await follow_started(target, api, answer, console, not no_logs)

    outcomes = asyncio.run(for_each_target(selected, one))
    print_summary(console, outcomes)
    if not all(o.succeeded for o in outcomes):
        raise HaloyError("rollback failed", hint="see the reason and container logs above")
