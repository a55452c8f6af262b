"""This haloyd's instance id: which app containers on a shared Docker engine are its own.

Two haloyds may share one engine (a test's, a staging next to production); each labels the
containers it creates `dev.haloy.instance=<its id>`. Exec, tunnels, logs, stop and a deploy's
clean-up leave alone a container carrying another instance's id. A container without the label
(started by hand, or by a haloyd older than the label) counts as this haloyd's, as before.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path

from haloy.config.envfile import write_private_file
from haloy.runtime.label_origin import sort_labels

INSTANCE_LABEL = "dev.haloy.instance"
INSTANCE_FILE = "instance-id"


def instance_id(data_dir: Path) -> str:
    """The id stored in the data dir, made (random, 0600) on first use."""
    path = data_dir / INSTANCE_FILE
    if path.is_file():
        found = path.read_text().strip()
        if found:
            return found
    made = secrets.token_hex(8)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private_file(path, made + "\n")
    return made


def is_mine(labels: Mapping[str, str], instance: str | None) -> bool:
    """True unless the container was created by another haloyd (its own label says so)."""
    if instance is None:
        return True
    owner = sort_labels(labels, {}).own.get(INSTANCE_LABEL)
    return owner is None or owner == instance
