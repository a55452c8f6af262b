"""The flags every per-target command shares (-c, -t, -a), how they pick targets + servers,
and running one request per target (`for_each_target`).

`protected_filter` is the one rule of `--include-protected`: destructive commands skip
targets marked `protected: true` unless the flag is given.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from haloy.cli.client_config import client_config_dir, normalize_server_url, resolve_token
from haloy.config.app import AppConfig, AppTarget, load_app_config
from haloy.config.resolve import resolve_target
from haloy.errors import HaloyError

if TYPE_CHECKING:
    from haloy.cli.api_client import ApiClient

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def target_options(func: F) -> F:
    """Add -c/--config, -t/--targets and -a/--all to a command."""
    func = click.option(
        "-a", "--all", "all_targets", is_flag=True, help="Every target in the config."
    )(func)
    func = click.option(
        "-t", "--targets", "targets", multiple=True, metavar="A,B",
        help="Targets to act on (comma-separated or repeated).",
    )(func)
    return click.option(
        "-c", "--config", "config_path", type=click.Path(path_type=Path), default=None,
        help="haloy.yaml/.yml/.json/.toml, or a directory holding one (default: current dir).",
    )(func)


@dataclass(frozen=True)
class Selected:
    """The loaded config and the targets a command acts on."""

    config: AppConfig
    targets: tuple[AppTarget, ...]


def split_names(values: tuple[str, ...]) -> tuple[str, ...]:
    """`-t a,b -t c` → ("a", "b", "c")."""
    return tuple(n.strip() for v in values for n in v.split(",") if n.strip())


def select_targets(
    config_path: Path | None, targets: tuple[str, ...], all_targets: bool
) -> Selected:
    """Load the config; with several targets, -t or -a must say which (as in Haloy)."""
    config = load_app_config(config_path)
    names = split_names(targets)
    if names and all_targets:
        raise click.UsageError("use either -t/--targets or -a/--all, not both")
    if not names and not all_targets and len(config.targets) > 1:
        known = ", ".join(t.target or t.name for t in config.targets)
        raise click.UsageError(
            f"{config.path} has several targets ({known}); choose with -t NAME or use --all"
        )
    return Selected(config, config.select(names))


def target_label(target: AppTarget) -> str:
    """How output names a target: its key in `targets:`, else the app name."""
    return target.target or target.name


def server_url(target: AppTarget) -> str:
    """The target's API base URL (a bare host means https)."""
    return normalize_server_url(target.server)


def api_token(config: AppConfig, target: AppTarget, environ: Mapping[str, str]) -> str:
    """The token for a target: its `api_token` (resolved), the server entry, HALOY_API_TOKEN."""
    explicit = None
    if target.api_token is not None:
        resolved = resolve_target(config, target, environ, client_config_dir(environ))
        explicit = resolved.api_token
    return resolve_token(explicit, target.server, environ)


def environ() -> dict[str, str]:
    """The process environment, read here at the CLI edge only."""
    return dict(os.environ)


INCLUDE_PROTECTED_HELP = "Also act on targets marked `protected: true` (skipped otherwise)."


def protected_filter(selected: Selected, include_protected: bool, action: str) -> Selected:
    """Drop protected targets (saying so) unless `include_protected`; error if none remain."""
    if include_protected:
        return selected
    skipped = [t for t in selected.targets if t.protected]
    for t in skipped:
        click.secho(f"{target_label(t)}: skipped, protected (use --include-protected to "
                    f"{action} it)", fg="yellow", err=True)
    kept = tuple(t for t in selected.targets if not t.protected)
    if not kept:
        raise HaloyError(f"every selected target is protected; nothing to {action}",
                         hint="pass --include-protected to act on protected targets")
    return Selected(selected.config, kept)


async def for_each_target(
    selected: Selected, action: Callable[[AppTarget, ApiClient], Awaitable[T]]
) -> list[T]:
    """Run `action` for every target in parallel, each with a client for its server."""
    from haloy.cli.api_client import ApiClient

    env = environ()
    # Every token is resolved before any request, so a config problem stops all targets.
    tokens = [api_token(selected.config, t, env) for t in selected.targets]

    async def one(target: AppTarget, token: str) -> T:
        async with ApiClient(server_url(target), token) as api:
            return await action(target, api)

    return list(await asyncio.gather(*(one(t, k) for t, k in zip(selected.targets, tokens,
                                                                 strict=True))))
