"""`haloyd verify`: check this server's set-up, one line per check."""

from __future__ import annotations

from pathlib import Path

import click

from haloy.daemon.main import cli
from haloy.daemon.path_options import docker_host, network_option, paths_options, resolve_paths
from haloy.errors import HaloyError


@cli.command()
@click.option(
    "--require-api", is_flag=True, help="Fail (instead of warn) when the API is not running."
)
@click.option(
    "--ops/--no-ops",
    default=None,
    help="Also check the installed server: systemd units enabled, ports owned by haloy-proxy, "
    "the API through its domain with a valid certificate, DNS. Default: when units are installed.",
)
@paths_options
@network_option
def verify(
    require_api: bool,
    ops: bool | None,
    config_dir: Path | None,
    data_dir: Path | None,
    network_name: str,
) -> None:
    """Check dirs and modes, the token, haloyd.yaml, Docker, the network and the API.

    On an installed server (systemd units present, or --ops) also the units, the owners of the
    proxy's ports, the API through its domain and the domain's DNS (a warning at worst).
    Exits 1 if any check fails; a stopped API is only a warning unless --require-api.

    \b
    Examples:
      haloyd verify
      haloyd verify --require-api
      haloyd verify --ops
    """
    # Imported when run: `haloyd --help` stays fast, and one command's imports cannot break
    # the others that share this auto-registered group.
    from haloy.daemon.verify import Status, run_checks

    colors = {Status.PASS: "green", Status.WARN: "yellow", Status.FAIL: "red"}
    paths = resolve_paths(config_dir, data_dir)
    checks = run_checks(
        paths,
        network=network_name,
        docker_host=docker_host(),
        require_api=require_api,
        ops=ops,
    )
    for check in checks:
        label = click.style(f"{check.status.value:<4}", fg=colors[check.status], bold=True)
        click.echo(f"{label}  {check.name}: {check.detail}")
    failed = [c.name for c in checks if c.status is Status.FAIL]
    if failed:
        raise HaloyError(
            f"{len(failed)} of {len(checks)} checks failed: {', '.join(failed)}",
            hint="fix the lines marked fail above, then run `haloyd verify` again",
        )
    warned = sum(c.status is Status.WARN for c in checks)
    click.echo(f"all {len(checks)} checks passed" + (f" ({warned} warnings)" if warned else ""))
