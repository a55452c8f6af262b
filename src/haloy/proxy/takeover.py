"""Pieces of a graceful takeover: shared listening sockets and the worker command line.

The supervisor binds the public ports once and hands the same listening sockets to every
generation of workers (fd inheritance). When old workers close their copies, the sockets and
their accept queues live on in the supervisor and the new workers, so no queued connection is
reset (closing the last SO_REUSEPORT listener of a group would reset its backlog).
New workers start from the launcher that is installed *now*, so a takeover runs new code.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from haloy.errors import ConfigError

# Supervisor flags that workers must not inherit.
_SUPERVISOR_FLAGS = {"--workers": True, "--supervise": False}


def open_listener(addr: tuple[str, int], flag: str) -> socket.socket:
    """Bind and listen on `addr` (SO_REUSEPORT, so a restarted supervisor can overlap)."""
    family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
    try:
        sock = socket.create_server(addr, family=family, backlog=2048, reuse_port=True)
    except OSError as exc:
        raise ConfigError(
            f"{flag}: cannot listen on {addr[0]}:{addr[1]}: {exc.strerror or exc}",
            hint="pick a free port, or stop what listens there",
        ) from exc
    sock.setblocking(False)
    sock.set_inheritable(True)
    return sock


def launcher() -> list[str]:
    """The command that starts haloy-proxy as installed now.

    Under systemd this is the console script's path as invoked (a symlink into
    /opt/haloy/current), re-resolved at every spawn; from `python -m haloy.proxy` it is this
    interpreter. HALOY_PROXY_LAUNCHER overrides it (one path, for tests and packagers).
    """
    override = os.environ.get("HALOY_PROXY_LAUNCHER")
    if override:
        return [override]
    argv0 = Path(sys.argv[0])
    if argv0.name.startswith("haloy-proxy") and os.access(argv0, os.X_OK):
        return [str(argv0)]
    return [sys.executable, "-m", "haloy.proxy"]


def worker_args(argv: list[str]) -> list[str]:
    """The supervisor's own `serve ...` arguments minus the supervisor-only flags."""
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        name = a.split("=", 1)[0]
        if name in _SUPERVISOR_FLAGS:
            skip = _SUPERVISOR_FLAGS[name] and "=" not in a
            continue
        out.append(a)
    return out


def worker_argv(args: list[str], control: Path, fds: dict[str, int], required: bool) -> list[str]:
    """The full command line of one worker."""
    argv = [*launcher(), *args, "--control-socket", str(control)]
    for name, fd in sorted(fds.items()):
        argv += ["--listen-fd", f"{name}={fd}"]
    if required:
        argv.append("--snapshot-required")
    return argv
