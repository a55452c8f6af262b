"""`haloy-proxy reload`: graceful takeover by new workers running the installed code."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import click

from haloy.config.paths import Paths
from haloy.errors import HaloyError
from haloy.proxy.main import cli
from haloy.wire.control import Op, send_control

# Under systemd's 90 s reload timeout. The new workers start concurrently, each within
# workers.START_TIMEOUT (30 s), so the takeover fits whatever --workers is.
REPLY_TIMEOUT = 80.0


class ReloadError(HaloyError):
    """The takeover did not happen; the running workers keep serving."""


@cli.command("reload")
@click.option("--config-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Config dir. Env: HALOY_CONFIG_DIR. Default: /etc/haloy.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Data dir (snapshot, control socket). Env: HALOY_DATA_DIR.")
def reload_cmd(config_dir: Path | None, data_dir: Path | None) -> None:
    """Start new workers from the installed haloy-proxy; once they serve, drain the old ones.

    Exits 0 when the new workers serve; otherwise non-zero with the reason, and the old
    workers keep serving. Needs a proxy started with --supervise (or --workers N).
    """
    paths = Paths.resolve(config_dir, data_dir, os.environ)
    try:
        reply = asyncio.run(send_control(paths.control_socket, {"op": Op.TAKEOVER},
                                         REPLY_TIMEOUT))
    except (OSError, TimeoutError) as exc:
        raise ReloadError(f"cannot reach haloy-proxy at {paths.control_socket}: {exc}",
                          hint="is haloy-proxy running? (systemctl status haloy-proxy)") from exc
    if not reply.get("ok"):
        error = str(reply.get("error", "unknown error"))
        hint = "see the proxy's log (journalctl -u haloy-proxy)"
        if "unknown op" in error:
            hint = ("this haloy-proxy runs without a supervisor: add --supervise to its "
                    "command line and restart it once (systemctl restart haloy-proxy)")
        raise ReloadError(f"haloy-proxy reload: {error}", hint=hint)
    click.echo(f"haloy-proxy: generation {reply['generation']} serves (pids "
               f"{', '.join(map(str, reply['pids']))}); {len(reply['draining'])} old worker(s) "
               "draining")
