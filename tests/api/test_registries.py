"""Registry logins stored server-side: checked by the real engine against a real registry
(Debian's docker-registry with htpasswd on loopback), kept at 0600, used by later pulls."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from haloy.config.paths import Paths
from haloy.daemon.api.engine_problems import login_problem
from haloy.daemon.api.registries import RegistryHandlers
from haloy.daemon.registry_auth import RegistryAuthStore, RegistryCredentials, registries_file
from haloy.errors import HaloyError
from haloy.runtime.docker import DockerRuntime
from haloy.store import Status
from haloy.wire.registries import normalize_server, registry_of
from tests.api.conftest import StartApi, start_api
from tests.daemon.deployer_harness import deployer_harness
from tests.daemon.test_deployer_pull import PASSWORD, USER, registry_image
from tests.fixtures.proxy import ProxyProcess

__all__ = ["registry_image", "start_api"]  # fixtures used by this module


@pytest.mark.parametrize(("image", "registry"), [
    ("nginx", "docker.io"),
    ("library/nginx:1", "docker.io"),
    ("ghcr.io/me/app:v1", "ghcr.io"),
    ("127.0.0.1:5000/app:v1", "127.0.0.1:5000"),
    ("localhost/app", "localhost"),
    ("Registry.Example.com/a/b@sha256:00", "registry.example.com"),
])
def test_registry_of_image(image: str, registry: str) -> None:
    assert registry_of(image) == registry


@pytest.mark.parametrize(("raw", "server"), [
    ("https://index.docker.io/v1/", "docker.io"),
    ("index.docker.io", "docker.io"),
    ("https://ghcr.io/", "ghcr.io"),
    (" 127.0.0.1:5000 ", "127.0.0.1:5000"),
])
def test_normalize_server(raw: str, server: str) -> None:
    assert normalize_server(raw) == server


def test_engine_refusal_and_unreachable_registry_are_told_apart() -> None:
    refused = login_problem("r.test", "login attempt to http://r.test/v2/ failed with status: "
                            "401 Unauthorized")
    assert refused.status == 403 and refused.code == "registry_unauthorized"
    down = login_problem("r.test", 'Get "http://r.test/v2/": dial tcp: connection refused')
    assert down.status == 502 and down.code == "registry_unreachable"


def test_store_writes_0600_atomically_and_forgets(tmp_path: Path) -> None:
    store = RegistryAuthStore(tmp_path / "data" / "registries.json")
    assert store.all() == {} and store.auth_for("ghcr.io/a:b") is None
    store.put(RegistryCredentials("ghcr.io", "me", "pw1"))
    store.put(RegistryCredentials("ghcr.io", "me", "pw2"))  # replaces
    store.put(RegistryCredentials("docker.io", "hub", "pw3"))
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert [p.name for p in store.path.parent.iterdir()] == ["registries.json"]  # no temp left
    assert store.auth_for("ghcr.io/me/app:v1") == {
        "username": "me", "password": "pw2", "serveraddress": "ghcr.io"}
    assert store.auth_for("nginx")["username"] == "hub"  # type: ignore[index]
    gone = store.delete("https://ghcr.io")
    assert gone is not None and gone.username == "me"
    assert store.delete("ghcr.io") is None
    assert sorted(store.all()) == ["docker.io"]


async def test_login_checked_stored_listed_used_for_pull_and_logout(
    tmp_path: Path, start_api: StartApi, registry_image: str, docker_network: str,
    docker_cleanup: str, proxy_factory: Callable[..., ProxyProcess],
) -> None:
    server = registry_image.split("/")[0]
    store = RegistryAuthStore(tmp_path / "var" / "registries.json")
    engine = DockerRuntime.open()
    try:
        api = await start_api(groups=[RegistryHandlers(store, engine.images)])
        async with api.client() as c:
            bad = await c.post("/v1/registries/login",
                               json={"server": server, "username": USER, "password": "nope"})
            assert bad.status_code == 403, bad.text
            assert bad.json()["error"] == "registry_unauthorized"
            assert "nope" not in bad.text
            assert not store.path.exists()  # nothing stored

            ok = await c.post("/v1/registries/login",
                              json={"server": f"http://{server}/", "username": USER,
                                    "password": PASSWORD})
            assert ok.status_code == 200, ok.text
            assert ok.json() == {"server": server, "username": USER}
            assert stat.S_IMODE(store.path.stat().st_mode) == 0o600

            listed = await c.get("/v1/registries")
            assert listed.json() == {"registries": [{"server": server, "username": USER}]}
            assert PASSWORD not in listed.text

            # A deploy without credentials pulls the private image with the stored login.
            proxy = proxy_factory("--no-access-log", https=False)
            async with deployer_harness(tmp_path, docker_network, docker_cleanup, proxy) as h:
                h.deployer.registry_auth = store.auth_for
                done = await h.deploy(image=registry_image, pull_policy="always")
                assert done.status is Status.SUCCEEDED, h.stream(done.id)[-1]
                actions = [e.data.get("action") for e in h.stream(done.id) if e.data]
                assert "pull" in actions

            out = await c.delete(f"/v1/registries/{server}")
            assert out.status_code == 200 and out.json()["server"] == server
            again = await c.delete(f"/v1/registries/{server}")
            assert again.status_code == 404
            assert (await c.get("/v1/registries")).json() == {"registries": []}
    finally:
        await engine.close()


def test_a_damaged_file_is_reported_not_guessed(tmp_path: Path) -> None:
    path = tmp_path / "registries.json"
    path.write_text('{"registries": {"ghcr.io": {"username": "me"}}}')
    with pytest.raises(HaloyError, match="cannot read registry credentials"):
        RegistryAuthStore(path).auth_for("ghcr.io/a:b")


def test_credentials_live_in_the_dir_the_proxy_cannot_read(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "etc", tmp_path / "var")
    unit = (Path(__file__).parents[2] / "deploy/systemd/haloy-proxy.service").read_text()
    hidden = next(line for line in unit.splitlines() if line.startswith("InaccessiblePaths="))
    assert registries_file(paths).parent == paths.db_dir
    assert "@DATA_DIR@/db" in hidden
