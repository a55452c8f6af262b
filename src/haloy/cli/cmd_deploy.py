"""`haloy deploy`: the command and its flags; the work is in haloy.cli.deploy_flow."""

from __future__ import annotations

from pathlib import Path

import click

from haloy.cli.deploy_flow import run_deploy
from haloy.cli.main import cli
from haloy.cli.target_options import environ, select_targets, target_options
from haloy.wire.api import DEFAULT_DEADLINE_S


@cli.command("deploy")
@target_options
@click.option("--no-logs", is_flag=True, help="Only print each target's result, not its steps.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome of each target as JSON.")
@click.option("--shared-engine", is_flag=True,
              help="Treat every server as using this machine's Docker engine: upload nothing. "
              "(Detected by itself for a loopback server on the same engine.)")
@click.option("--deadline", type=click.FloatRange(1, 3600), default=DEFAULT_DEADLINE_S,
              show_default=True, metavar="SECONDS",
              help="Fail a rollout whose new replicas are not healthy within this time.")
def deploy(config_path: Path | None, targets: tuple[str, ...], all_targets: bool,
           no_logs: bool, as_json: bool, shared_engine: bool, deadline: float) -> None:
    """Build, ship and deploy the app to its servers, following each rollout to its end.

    Exits 1 when any target fails, with the reason and the failing container's last logs.

    \b
    Examples:
      haloy deploy
      haloy deploy -t production,staging
      haloy deploy --all --no-logs
      haloy deploy -c deploy/haloy.yaml --json
    """
    selected = select_targets(config_path, targets, all_targets)
    run_deploy(selected.config, selected.targets, environ(), show_logs=not no_logs,
               as_json=as_json, shared_engine=shared_engine, deadline_s=deadline)
