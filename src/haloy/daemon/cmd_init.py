"""`haloyd init`: prepare a server (dirs, haloyd.yaml, API token, Docker network)."""

from __future__ import annotations

from pathlib import Path

import click

from haloy.daemon.main import cli
from haloy.daemon.path_options import docker_host, network_option, paths_options, resolve_paths


@cli.command()
@click.option("--api-domain", help="Host name the API answers on through the proxy (TLS).")
@click.option("--override", is_flag=True, help="Replace an existing haloyd.yaml and API token.")
@paths_options
@network_option
def init(
    api_domain: str | None,
    override: bool,
    config_dir: Path | None,
    data_dir: Path | None,
    network_name: str,
) -> None:
    """Initialise this server: dirs (0700), haloyd.yaml, API token (.env, 0600), network.

    \b
    Examples:
      haloyd init --api-domain api.example.com
      haloyd init --config-dir /tmp/h/etc --data-dir /tmp/h/var
    """
    # Imported when run: `haloyd --help` stays fast, and one command's imports cannot break
    # the others that share this auto-registered group.
    from haloy.daemon.init import init_server

    paths = resolve_paths(config_dir, data_dir)
    result = init_server(
        paths,
        api_domain=api_domain,
        override=override,
        network=network_name,
        docker_host=docker_host(),
    )
    net_state = "created" if result.network_created else "already present"
    click.echo(f"config   {paths.daemon_config}")
    click.echo(f"token    {paths.env_file} (0600)")
    click.echo(f"data     {paths.data_dir} (certs/, db/, proxy/)")
    click.echo(f"network  {result.network} ({net_state})")
    click.echo("")
    if not api_domain:
        click.echo(
            "no --api-domain given: the API answers only on this machine; set one with "
            "`haloyd config set api.domain api.example.com`"
        )
    click.echo("On your development machine, run:")
    click.echo(f"  haloy server add {result.api_url} {result.token}")
