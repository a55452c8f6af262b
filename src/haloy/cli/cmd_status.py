"""`haloy status`, `rollback-targets`, `rollback`, `stop` and `server version`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from haloy import __version__
from haloy.cli.api_client import ApiClient
from haloy.cli.client_config import client_config_dir, normalize_server_url, resolve_token
from haloy.cli.cmd_prune import INCLUDE_PROTECTED_HELP, protected_filter
from haloy.cli.cmd_server import server
from haloy.cli.events_view import EventPrinter, Outcome, follow_events, print_summary
from haloy.cli.main import cli
from haloy.cli.target_options import (
    Selected,
    api_token,
    environ,
    select_targets,
    server_url,
    target_label,
    target_options,
)
from haloy.config.app import AppTarget
from haloy.config.resolve import resolve_target
from haloy.errors import ApiError, HaloyError
from haloy.wire.api import AppStatus

T = TypeVar("T")


def _console() -> Console:
    console = Console(highlight=False)
    return console if console.is_terminal else Console(width=200, highlight=False)


def age(at: datetime, now: datetime | None = None) -> str:
    """A short relative age: 42s, 5m, 3h, 2d."""
    seconds = max(0, int(((now or datetime.now(UTC)) - at).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def ulid_time(deployment_id: str) -> datetime | None:
    """When a deployment started, read from its ULID id (None if it is not one)."""
    from ulid import ULID

    try:
        return ULID.from_str(deployment_id).datetime
    except ValueError:
        return None


async def for_each_target(
    selected: Selected, action: Callable[[AppTarget, ApiClient], Awaitable[T]]
) -> list[T]:
    """Run `action` for every target in parallel, each with a client for its server."""
    env = environ()
    # Every token is resolved before any request, so a config problem stops all targets.
    tokens = [api_token(selected.config, t, env) for t in selected.targets]

    async def one(target: AppTarget, token: str) -> T:
        async with ApiClient(server_url(target), token) as api:
            return await action(target, api)

    return list(await asyncio.gather(*(one(t, k) for t, k in zip(selected.targets, tokens,
                                                                 strict=True))))


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
    console = _console()
    for target, app in found:
        print_status(console, target_label(target), server_url(target), app)


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
    console = _console()
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
    selected = select_targets(config_path, targets, all_targets)
    env = environ()
    console = _console()

    async def one(target: AppTarget, api: ApiClient) -> Outcome:
        resolved = resolve_target(selected.config, target, env, client_config_dir(env))
        answer = await api.post(f"/v1/apps/{target.name}/rollback",
                                {"deploymentId": deployment_id, "env": resolved.env})
        return await follow_started(target, api, answer, console, not no_logs)

    outcomes = asyncio.run(for_each_target(selected, one))
    print_summary(console, outcomes)
    if not all(o.succeeded for o in outcomes):
        raise HaloyError("rollback failed", hint="see the reason and container logs above")


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


@server.command("version")
@click.argument("url", required=False)
@target_options
def server_version(url: str | None, config_path: Path | None, targets: tuple[str, ...],
                   all_targets: bool) -> None:
    """Print this CLI's version and each server's haloyd version and capabilities.

    URL picks one configured server; otherwise the servers of haloy.yaml's targets.

    \b
    Examples:
      haloy server version https://api.example.com
      haloy server version -a
    """
    click.echo(f"haloy (CLI) {__version__}")
    if url is not None:
        base = normalize_server_url(url)
        urls = {base: resolve_token(None, base, environ())}
    else:
        selected = select_targets(config_path, targets, all_targets)
        env = environ()
        urls = {server_url(t): api_token(selected.config, t, env) for t in selected.targets}

    async def one(base: str, token: str) -> str:
        async with ApiClient(base, token) as api:
            info = await api.version()
        caps = ", ".join(info.capabilities) or "none"
        return f"{base}: haloyd {info.version} (API {info.api_version}; {caps})"

    async def all_servers() -> list[str]:
        return list(await asyncio.gather(*(one(u, t) for u, t in urls.items())))

    for line in asyncio.run(all_servers()):
        click.echo(line)
