"""`haloy prune-images`: remove image versions nothing needs any more, after a dry run."""

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

def human_bytes(size: int) -> str:
    """1536 -> '1.5 KiB'."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # unreachable; keeps mypy's return check simple


def print_plan(label: str, answer: dict[str, Any]) -> None:
    """One target's prune answer as a table."""
    images = answer.get("images") or []
    verb = "would remove" if answer.get("dryRun") else "removed"
    click.echo(f"{label}: {verb} {len(images)} image tag(s), "
               f"{human_bytes(int(answer.get('bytesFreed') or 0))} freed")
    layers = answer.get("layers") or []
    if layers:
        click.echo(f"  and {len(layers)} uploaded layer(s) no kept deployment needs, "
                   f"{human_bytes(int(answer.get('layerBytesFreed') or 0))}")
    if images:
        width = max(len(i["ref"]) for i in images)
        click.echo(f"  {'REF':<{width}}  {'ID':<12}  {'SIZE':>10}  REASON")
        for i in images:
            short = str(i["id"]).removeprefix("sha256:")[:12]
            click.echo(f"  {i['ref']:<{width}}  {short:<12}  {human_bytes(int(i['size'])):>10}"
                       f"  {i['reason']}")


@cli.command("prune-images")
@target_options
@click.option("--keep", type=click.IntRange(1, 1000), default=None,
              help="Keep the newest N deployments' images (default: all kept in history).")
@click.option("-y", "--yes", is_flag=True, help="Remove without asking.")
@click.option("--include-protected", is_flag=True, help=INCLUDE_PROTECTED_HELP)
def prune_images(config_path: Path | None, targets: tuple[str, ...], all_targets: bool,
                 keep: int | None, yes: bool, include_protected: bool) -> None:
    """Remove each target's old image versions on its server (never ones in use).

    Shows what would go first and asks before removing, unless --yes.

    \b
    Examples:
      haloy prune-images
      haloy prune-images --keep 2 --yes -a
    """
    selected = protected_filter(select_targets(config_path, targets, all_targets),
                                include_protected, "prune")

    def run(
        shown: dict[int, list[str]] | None = None,
    ) -> list[tuple[AppTarget, dict[str, Any]]]:
        async def one(target: AppTarget, api: ApiClient) -> tuple[AppTarget, dict[str, Any]]:
            body: dict[str, Any] = {"dryRun": shown is None, "app": target.name}
            if keep is not None:
                body["keep"] = keep
            if shown is not None:  # remove what the user saw, not a fresh plan
                body["refs"] = shown[id(target)]
            return target, await api.post("/v1/images/prune", body)

        return asyncio.run(for_each_target(selected, one))

    plans = run()
    for target, answer in plans:
        print_plan(target_label(target), answer)
    if not any(answer.get("images") or answer.get("layers") for _, answer in plans):
        return
    if not yes and not click.confirm("Remove these images?", default=False):
        click.echo("nothing removed")
        return
    shown = {id(t): [i["ref"] for i in answer.get("images") or []] for t, answer in plans}
    for target, answer in run(shown):
        print_plan(target_label(target), answer)
