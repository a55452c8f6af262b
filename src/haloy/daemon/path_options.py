"""The `--config-dir` / `--data-dir` options every haloyd command shares, resolved to `Paths`."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from haloy.config.paths import Paths
from haloy.runtime.docker import DEFAULT_NETWORK

F = TypeVar("F", bound=Callable[..., Any])


def paths_options(func: F) -> F:
    """Add --config-dir and --data-dir (env HALOY_CONFIG_DIR / HALOY_DATA_DIR)."""
    func = click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Data dir (certs, db, proxy). Env: HALOY_DATA_DIR. Default: /var/lib/haloy.",
    )(func)
    func = click.option(
        "--config-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Config dir (haloyd.yaml, .env). Env: HALOY_CONFIG_DIR. Default: /etc/haloy.",
    )(func)
    return func


def network_option(func: F) -> F:
    """Hidden --network-name (env HALOY_NETWORK_NAME): tests use their own network."""
    return click.option(
        "--network-name",
        envvar="HALOY_NETWORK_NAME",
        default=DEFAULT_NETWORK,
        show_default=True,
        hidden=True,
        help="Docker network for app containers.",
    )(func)


def resolve_paths(config_dir: Path | None, data_dir: Path | None) -> Paths:
    """Flags first, then the environment (read here, at the CLI edge), then defaults."""
    return Paths.resolve(config_dir, data_dir, os.environ)


def docker_host() -> str | None:
    """DOCKER_HOST from the environment, if set."""
    return os.environ.get("DOCKER_HOST") or None
