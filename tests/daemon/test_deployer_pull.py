"""Pulling per pull_policy with credentials from a real registry (Debian's docker-registry)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from haloy.store import Status
from haloy.wire.api import EventKind
from tests.daemon.deployer_harness import deployer_harness
from tests.fixtures.docker import TEST_IMAGE, docker_cli
from tests.fixtures.peers import peer_missing
from tests.fixtures.proxy import ProxyProcess

USER, PASSWORD = "deployer", "s3cret-pass"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def registry_image(test_image: str) -> Iterator[str]:
    """A registry with htpasswd auth on loopback holding haloy-test-app:v1; yields its ref."""
    if shutil.which("docker-registry") is None or shutil.which("htpasswd") is None:
        peer_missing("docker-registry / htpasswd not installed (apt-get install docker-registry "
                     "apache2-utils)")
    with tempfile.TemporaryDirectory(prefix="haloy-registry-") as tmp:
        root = Path(tmp)
        htpasswd = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], capture_output=True,
                                  text=True, check=True).stdout
        (root / "htpasswd").write_text(htpasswd)
        port = _free_port()
        (root / "config.yml").write_text(
            "version: 0.1\n"
            f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
            f"http:\n  addr: 127.0.0.1:{port}\n"
            f"auth:\n  htpasswd:\n    realm: haloy-test\n    path: {root / 'htpasswd'}\n"
        )
        log = open(root / "registry.log", "wb")  # closed after the process ends
        proc = subprocess.Popen(["docker-registry", "serve", str(root / "config.yml")],
                                stdout=log, stderr=subprocess.STDOUT)
        ref = f"127.0.0.1:{port}/haloy-pull-test:v1"
        env = {**os.environ, "DOCKER_CONFIG": str(root / "docker")}
        try:
            deadline = time.monotonic() + 20
            while True:  # readiness: the port accepts connections
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError((root / "registry.log").read_text()) from None
                    time.sleep(0.05)
            docker_cli("tag", f"{TEST_IMAGE}:v1", ref)
            subprocess.run(["docker", "login", "-u", USER, "--password-stdin", ref.split("/")[0]],
                           input=PASSWORD, env=env, check=True, capture_output=True, text=True)
            subprocess.run(["docker", "push", ref], env=env, check=True, capture_output=True)
            docker_cli("rmi", ref)
            yield ref
        finally:
            docker_cli("rmi", ref, check=False)
            proc.terminate()
            proc.wait(10)
            log.close()


async def test_pull_with_credentials_and_wrong_ones_fail_clearly(
    tmp_path: Path, registry_image: str, docker_network: str, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    proxy = proxy_factory("--no-access-log", https=False)
    server = registry_image.split("/")[0]
    async with deployer_harness(tmp_path, docker_network, docker_cleanup, proxy) as h:
        wrong = {"username": USER, "password": "nope", "serveraddress": server}
        dep = await h.deployer.submit(h.spec(image=registry_image, registry_auth=wrong))
        failed = await h.deployer.wait(dep.id)
        assert failed.status is Status.FAILED
        end = h.stream(dep.id)[-1]
        assert end.kind is EventKind.FAILED
        assert "unauthorized" in end.message or "no basic auth" in end.message, end.message
        assert "nope" not in end.message

        right = {"username": USER, "password": PASSWORD, "serveraddress": server}
        dep = await h.deployer.submit(h.spec(image=registry_image, registry_auth=right))
        done = await h.deployer.wait(dep.id)
        assert done.status is Status.SUCCEEDED, h.stream(dep.id)[-1]
        assert done.image_digest is not None and done.image_digest.startswith("sha256:")
        assert PASSWORD not in str(done.config)
        assert [e.data["action"] for e in h.stream(dep.id) if e.data and "action" in e.data][:2] \
            == ["pull", "image"]
