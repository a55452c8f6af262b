"""`haloy status`: what runs for each target (replicas, health, domains, deployment)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from haloy.cli.main import cli
from haloy.cli.tables import age, table_console
from haloy.cli.target_options import (
    for_each_target,
    select_targets,
    server_url,
    target_label,
    target_options,
)
from haloy.config.app import AppTarget
from haloy.errors import ApiError

if TYPE_CHECKING:
    # Imported where used: httpx and the API models slow the start of every command,
    # `haloy --help` included.
    from haloy.cli.api_client import ApiClient
    from haloy.wire.api import AppStatus


def ulid_time(deployment_id: str) -> datetime | None:
    """When a deployment started, read from its ULID id (None if it is not one)."""
    from ulid import ULID

    try:
        return ULID.from_str(deployment_id).datetime
    except ValueError:
        return None


def status_table(app: AppStatus) -> Table:
    """The replicas of an app as a table."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("container", "deployment", "routing", "health", "checks", "fails", "requests"):
        table.add_column(col, justify="right" if col in ("checks", "fails", "requests") else "left")
    for r in app.replicas:
        health_style = {"up": "green", "down": "red"}.get(r.health, "yellow")
        table.add_row(
            r.container_id[:12], r.deployment_id or "-", r.routing,
            f"[{health_style}]{r.health}[/]", str(r.checks), str(r.failures),
            "-" if r.requests is None else str(r.requests),
        )
    return table


def print_status(console: Console, label: str, url: str, app: AppStatus | None) -> None:
    """One target's status block: current deployment, domains and the replica table."""
    console.print(f"[bold]{escape(label)}[/] on {escape(url)}")
    if app is None:
        console.print("  [yellow]not running[/]")
        return
    started = ulid_time(app.deployment_id) if app.deployment_id else None
    since = f" (deployed {age(started)} ago)" if started else ""
    console.print(f"  deployment: {app.deployment_id or '-'}{since}")
    for d in app.domains:
        expiry = (f"certificate expires {d.certificate_expiry:%Y-%m-%d}"
                  if d.certificate_expiry else "no certificate yet")
        aliases = f" (aliases: {', '.join(d.aliases)})" if d.aliases else ""
        console.print(f"  domain: {d.url or d.domain}{aliases}, {expiry}")
    if app.replicas:
        console.print(status_table(app))
    else:
        console.print("  [yellow]no replicas[/]")


@cli.command("status")
@target_options
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(config_path: Path | None, targets: tuple[str, ...], all_targets: bool,
           as_json: bool) -> None:
    """Show what runs for each target: replicas, health, domains, current deployment.

    \b
    Examples:
      haloy status
      haloy status -t production --json
    """
    selected = select_targets(config_path, targets, all_targets)

    async def one(target: AppTarget, api: ApiClient) -> tuple[AppTarget, AppStatus | None]:
        try:
            return target, await api.app(target.name)
        except ApiError as err:
            if err.status == 404:
                return target, None
            raise

    found = asyncio.run(for_each_target(selected, one))
    if as_json:
        click.echo(json.dumps([
            {"target": target_label(t), "server": server_url(t),
             "app": a.model_dump(mode="json", by_alias=True) if a else None}
            for t, a in found
        ], indent=2))
        return
    console = table_console()
    for target, app in found:
        print_status(console, target_label(target), server_url(target), app)
