"""A throwaway Debian container to run the server scripts in, as root, with no network.

The checkout is mounted read-only at /src and the wheelhouse at /wheels. The host's Docker
socket is mounted too, because `haloyd init` creates the app network: each box names its own
network (HALOY_NETWORK_NAME) and removes it at the end, so the host's `haloy` network is untouched.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import uuid
from pathlib import Path
from typing import Any

from tests.fixtures.debian import REPO_ROOT
from tests.fixtures.docker import docker_cli
from tests.fixtures.peers import peer_missing

# Reads every fact the install tests check, inside the box, in one exec (stdlib only).
_CHILDREN = r"""
import json, os, sys
found = {}
for p in filter(str.isdigit, os.listdir("/proc")):
    try:
        stat = open(f"/proc/{p}/stat").read()
        if stat.rsplit(")", 1)[1].split()[1] == sys.argv[1]:
            found[p] = open(f"/proc/{p}/cmdline").read().replace("\0", " ").strip()
    except OSError:
        pass
print(json.dumps(found))
"""
_FACTS = r"""
import grp, json, os, pwd, stat, subprocess, sys
def st(p):
    try:
        s = os.lstat(p)
    except FileNotFoundError:
        return None
    link = os.readlink(p) if stat.S_ISLNK(s.st_mode) else None
    return {"mode": stat.S_IMODE(s.st_mode), "user": pwd.getpwuid(s.st_uid).pw_name,
            "group": grp.getgrgid(s.st_gid).gr_name, "link": link, "dir": stat.S_ISDIR(s.st_mode)}
paths = sys.argv[1:]
try:
    u = pwd.getpwnam("haloy")
    user = {"uid": u.pw_uid, "shell": u.pw_shell, "home": u.pw_dir,
            "groups": sorted(g.gr_name for g in grp.getgrall() if "haloy" in g.gr_mem)
                      + [grp.getgrgid(u.pw_gid).gr_name]}
except KeyError:
    user = None
print(json.dumps({"user": user, "stat": {p: st(p) for p in paths}}))
"""


def _docker_socket() -> str:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        peer_missing(f"the install test mounts a unix Docker socket; DOCKER_HOST is {host}")
    return host.removeprefix("unix://")


class DebianBox:
    """One running container; `run` executes a command in it as root."""

    def __init__(
        self, image: str, wheelhouse: Path, *, on_network: bool = False, systemd: bool = False
    ) -> None:
        """Start the box; `on_network` puts it on its (new) app network instead of none;
        `systemd` boots systemd as PID 1 (the image must have it)."""
        self.network = f"haloy-ops-{uuid.uuid4().hex[:8]}"
        self.name = f"haloy-ops-box-{uuid.uuid4().hex[:8]}"
        if on_network:
            # A bridge of the test engine (no masquerading): reaches app containers, no further.
            docker_cli("network", "create", self.network)
        # systemd as PID 1 wants its own /run and the cgroup tree; otherwise --init gives a
        # real PID 1 that reaps the services the tests stop (sleep would leave zombies).
        boot = (["--tmpfs", "/run", "--tmpfs", "/run/lock", "-e", "container=docker",
                 "-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro"] if systemd else ["--init"])
        command = ["/lib/systemd/systemd"] if systemd else ["sleep", "infinity"]
        docker_cli(
            "run", "-d", "--rm", *boot, "--name", self.name,
            "--network", self.network if on_network else "none",
            "--label", "dev.haloy.test=ops",
            "-v", f"{REPO_ROOT}:/src:ro", "-v", f"{wheelhouse}:/wheels:ro",
            "-v", f"{_docker_socket()}:/var/run/docker.sock",
            "-e", f"HALOY_NETWORK_NAME={self.network}",
            image, *command,
        )

    def run(self, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run argv in the box; never raises on a non-zero exit."""
        return subprocess.run(
            ["docker", "exec", self.name, *argv], capture_output=True, text=True, timeout=timeout
        )

    def ok(self, *argv: str, timeout: float = 300) -> str:
        """Run argv in the box; return stdout, fail with stderr on a non-zero exit."""
        proc = self.run(*argv, timeout=timeout)
        assert proc.returncode == 0, f"{argv} exited {proc.returncode}:\n{proc.stderr}"
        return proc.stdout

    def script(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run scripts/<name> from the mounted checkout."""
        return self.run("bash", f"/src/scripts/{name}", *args)

    def children(self, pid: int) -> dict[str, str]:
        """The child processes of `pid` in the box: pid -> command line (space-joined).

        The image has no procps, so /proc is read with the box's python."""
        out = self.ok("python3", "-c", _CHILDREN, str(pid))
        result: dict[str, str] = json.loads(out)
        return result

    def facts(self, *paths: str) -> dict[str, Any]:
        """The haloy user and lstat of `paths`, read inside the box."""
        result: dict[str, Any] = json.loads(self.ok("python3", "-c", _FACTS, *paths))
        return result

    def read(self, path: str) -> str:
        """A text file's contents."""
        return self.ok("cat", path)

    def export(self, dest: Path, *paths: str) -> None:
        """Copy `paths` (relative to /) out of the box into `dest`, symlinks kept."""
        proc = subprocess.run(
            ["docker", "exec", self.name, "tar", "-C", "/", "-cf", "-", *paths],
            capture_output=True, timeout=120,
        )
        assert proc.returncode == 0, proc.stderr.decode()
        with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
            tar.extractall(dest, filter="tar")

    def address(self) -> str:
        """The box's IP address on its app network."""
        fmt = f'{{{{(index .NetworkSettings.Networks "{self.network}").IPAddress}}}}'
        return docker_cli("inspect", "-f", fmt, self.name)

    def close(self) -> None:
        """Remove the box and the network its `haloyd init` made."""
        docker_cli("rm", "-f", self.name, check=False)
        docker_cli("network", "rm", self.network, check=False)
