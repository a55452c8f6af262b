"""`haloyd serve`: run the control plane (discovery, health monitor, route publisher)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path

import click

from haloy.config.daemon import DaemonConfig, load_daemon_config
from haloy.config.paths import Paths
from haloy.daemon.app import ServeSettings, serve
from haloy.daemon.main import cli
from haloy.daemon.path_options import docker_host, network_option, paths_options, resolve_paths
from haloy.daemon.route_builder import Extras
from haloy.daemon.serve_tasks import with_serve_tasks
from haloy.health.monitor import HealthSettings
from haloy.wire.snapshot import ApiRoute, Endpoint


def _endpoint(listen: str) -> Endpoint:
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"  # the proxy reaches the API on this machine
    return Endpoint(address=host, port=int(port))


def settings_from_config(
    config: DaemonConfig, paths: Paths, docker_host: str | None, network: str
) -> ServeSettings:
    """Map haloyd.yaml onto what `serve` needs."""
    hm = config.health_monitor
    health = HealthSettings(
        enabled=hm.enabled, interval=hm.interval.total_seconds(), fall=hm.fall, rise=hm.rise,
        timeout=hm.timeout.total_seconds(), concurrency=hm.concurrency,
    )
    api_backend = _endpoint(config.api.listen)
    extras = Extras(
        api=ApiRoute(domain=config.api.domain, backend=api_backend) if config.api.domain else None,
        acme_challenge_backend=api_backend,
        trusted_proxies=config.proxy.trusted_proxies,
    )
    return ServeSettings(paths, network, health, extras, docker_host)


def load_settings(paths: Paths, docker_host: str | None, network: str) -> ServeSettings:
    """Read haloyd.yaml (defaults when it does not exist yet)."""
    exists = paths.daemon_config.exists()
    config = load_daemon_config(paths.daemon_config) if exists else DaemonConfig()
    return settings_from_config(config, paths, docker_host, network)


@cli.command("serve")
@paths_options
@network_option
@click.option("--health-interval", type=float, help="Override health_monitor.interval (s).")
@click.option("--health-timeout", type=float, help="Override health_monitor.timeout (s).")
@click.option("--health-fall", type=int, help="Override health_monitor.fall.")
@click.option("--health-rise", type=int, help="Override health_monitor.rise.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--no-acme", is_flag=True,
              help="Never request certificates (setups without a public domain).")
def serve_cmd(
    config_dir: Path | None, data_dir: Path | None, network_name: str,
    health_interval: float | None, health_timeout: float | None, health_fall: int | None,
    health_rise: int | None, log_level: str, no_acme: bool,
) -> None:
    """Watch Docker for labelled containers, check their health, publish routes to the proxy.

    \b
    Examples:
      haloyd serve
      haloyd serve --data-dir /tmp/haloy --health-interval 1
      haloyd serve --no-acme

    \b
    The API (and the ACME challenge answers) listen on api.listen once `haloyd init` wrote
    the token. ACME runs only when haloyd.yaml sets acme.email, acme.directory_url or
    acme.staging, and never with --no-acme.
    """
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    paths = resolve_paths(config_dir, data_dir)
    settings = load_settings(paths, docker_host(), network_name)
    h = settings.health
    h = replace(
        h,
        interval=h.interval if health_interval is None else health_interval,
        timeout=h.timeout if health_timeout is None else health_timeout,
        fall=h.fall if health_fall is None else health_fall,
        rise=h.rise if health_rise is None else health_rise,
    )
    settings = replace(settings, health=h)
    exists = paths.daemon_config.exists()
    config = load_daemon_config(paths.daemon_config) if exists else DaemonConfig()
    settings, extra = with_serve_tasks(settings, config, acme=not no_acme)
    asyncio.run(serve(settings, extra))
