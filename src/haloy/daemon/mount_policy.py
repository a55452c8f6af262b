"""Which volumes a deployment may mount: the API token must not be root on the host.

A container that bind-mounts `/` or the Docker socket owns the machine, so haloyd checks
every volume of a deploy (and of a rollback, whose volumes come from history):

* a named volume (`data:/data`) is always fine;
* a host path is fine below `containers.bind_root` (default /srv/haloy), unless it is, holds
  or lies below one of the protected paths: `/`, the OS's directories, the Docker socket and
  data root, haloy's config and data directories;
* a host path listed (or below one listed) in `containers.allowed_host_paths` is fine
  whatever it is: the operator said so.

Paths are resolved on the host first (`..`, symlinks), so a symlink a container left in a
mounted directory cannot point the next deploy's mount at /etc.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from haloy.daemon.refusals import Invalid

# What a container must never get unless the operator lists it: the host's system, the
# engine that runs every container, and haloy's own state (token, history, certificates).
PROTECTED = (
    "/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/root", "/run",
    "/sbin", "/sys", "/usr", "/var/lib/docker", "/var/run", "/var/run/docker.sock",
    "/run/docker.sock",
)


@dataclass(frozen=True)
class MountPolicy:
    """Where bind mounts may come from (from haloyd.yaml's `containers`)."""

    bind_root: str = "/srv/haloy"
    allowed: tuple[str, ...] = ()
    protected: tuple[str, ...] = PROTECTED  # plus haloy's own config and data dirs
    resolve: Callable[[str], str] = field(default=os.path.realpath, compare=False)


def host_source(volume: str) -> str | None:
    """The host path a `source:target[:options]` volume binds, None for a named volume."""
    source = volume.split(":", 1)[0]
    return source if source.startswith("/") else None


def _within(path: PurePosixPath, root: str) -> bool:
    return path == PurePosixPath(root) or PurePosixPath(root) in path.parents


def refusal(volume: str, policy: MountPolicy) -> str | None:
    """Why `volume` may not be mounted, or None when it may."""
    source = host_source(volume)
    if source is None:
        return None
    path = PurePosixPath(policy.resolve(source))
    if any(_within(path, policy.resolve(a)) for a in policy.allowed):
        return None
    for protected in policy.protected:
        guarded = PurePosixPath(protected)
        if protected != "/" and (_within(path, protected) or path in guarded.parents):
            return f"{path} is or holds {protected}"
        if path == guarded:
            return f"{path} is the host's root"
    if not _within(path, policy.resolve(policy.bind_root)):
        return f"{path} is not below {policy.bind_root}"
    return None


def check_volumes(volumes: Sequence[str], policy: MountPolicy) -> None:
    """Raise Invalid naming every volume the policy refuses."""
    refused = [(v, why) for v in volumes if (why := refusal(v, policy)) is not None]
    if refused:
        raise Invalid(
            "haloyd does not mount these host paths: "
            + "; ".join(f"{v} ({why})" for v, why in refused),
            hint=f"use a named volume or a path below {policy.bind_root}, or have the "
            "server's operator list the path in containers.allowed_host_paths in haloyd.yaml",
            code="volume_not_allowed",
        )
