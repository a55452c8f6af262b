"""`haloy server registry login|list|logout`, `haloy prune-images` and `--include-protected`,
run as real processes against a real API (uvicorn on loopback) over the real engine, with
Debian's docker-registry (htpasswd) on loopback for the logins."""

from __future__ import annotations

import json
from pathlib import Path

from haloy.daemon.api.registries import RegistryHandlers
from haloy.daemon.registry_auth import RegistryAuthStore
from haloy.runtime.docker import DockerRuntime
from haloy.store import Status
from tests.api.conftest import StartApi, start_api
from tests.api.test_prune import Built, build, present, unique_images
from tests.cli.test_status import cli_env, run_haloy
from tests.daemon.test_deployer_pull import PASSWORD, USER, registry_image
from tests.fixtures.docker import TEST_IMAGE

__all__ = ["registry_image", "start_api", "unique_images"]  # fixtures used by this module


async def test_registry_login_list_logout(
    tmp_path: Path, start_api: StartApi, registry_image: str,
) -> None:
    host = registry_image.split("/")[0]
    store = RegistryAuthStore(tmp_path / "var" / "registries.json")
    engine = DockerRuntime.open()
    try:
        api = await start_api(groups=[RegistryHandlers(store, engine.images)])
        env = cli_env(tmp_path)
        on = ("--server", api.url)
        wrong = await run_haloy("server", "registry", "login", host, "-u", USER, "-p", "nope",
                                *on, env=env)
        assert wrong.code == 1 and f"{host} refused the credentials" in wrong.err, wrong.err
        assert not store.path.exists()

        both = await run_haloy("server", "registry", "login", host, "-u", USER, "-p", "x",
                               "--password-stdin", *on, env=env)
        assert both.code == 2

        ok = await run_haloy("server", "registry", "login", host, "-u", USER, "-p", PASSWORD,
                             *on, env=env)
        assert ok.code == 0, ok.err
        assert f"logged in to {host} as {USER}" in ok.out
        assert store.get(host) is not None

        listed = await run_haloy("server", "registry", "list", "--json", *on, env=env)
        assert json.loads(listed.out) == [
            {"server": api.url, "registries": [{"server": host, "username": USER}]}]
        assert PASSWORD not in listed.out

        # The CLI normalizes what the user typed, as login does on the server.
        out = await run_haloy("server", "registry", "logout", f"http://{host}/", *on, env=env)
        assert out.code == 0 and f"logged out of {host}" in out.out
        again = await run_haloy("server", "registry", "logout", host, *on, env=env)
        assert again.code == 1 and "no stored login" in again.err
    finally:
        await engine.close()


async def test_prune_images_and_include_protected(
    tmp_path: Path, start_api: StartApi, unique_images: Built,
) -> None:
    api = await start_api()  # its prune endpoint works on this engine and api.store
    app = unique_images.app
    refs = []
    for _ in range(3):
        dep = await api.store.record(app, f"{TEST_IMAGE}:v1", {})
        await api.store.update(dep.id, Status.RUNNING)
        await api.store.update(dep.id, Status.SUCCEEDED)
        refs.append(build(unique_images, tmp_path, dep.id.lower()))
    project = tmp_path / "project"
    project.mkdir()
    cfg = project / "haloy.yaml"
    cfg.write_text(f"server: {api.url}\nimage: {TEST_IMAGE}:v1\n"
                   "targets:\n"
                   f"  main: {{name: {app}, domains: [{app}.test]}}\n"
                   f"  db: {{name: {app}db, domains: [{app}db.test], protected: true}}\n")
    env = cli_env(tmp_path)

    skipped = await run_haloy("prune-images", "-c", str(cfg), "-t", "db", env=env)
    assert skipped.code == 1, skipped.out + skipped.err
    assert "db: skipped, protected" in skipped.err and "every selected target" in skipped.err

    dry = await run_haloy("prune-images", "-c", str(cfg), "-a", "--keep", "1", env=env)
    assert dry.code == 1  # no answer to the confirmation: nothing removed
    assert "db: skipped, protected" in dry.err
    assert "main: would remove 2 image tag(s)" in dry.out
    assert all(present(r) for r in refs)

    done = await run_haloy("prune-images", "-c", str(cfg), "-a", "--keep", "1", "--yes",
                           "--include-protected", env=env)
    assert done.code == 0, done.err
    assert "main: removed 2 image tag(s)" in done.out and "db: removed 0" in done.out
    assert [present(r) for r in refs] == [False, False, True]

    # `stop` skips protected targets the same way (the API's deployer here refuses: 503).
    stop = await run_haloy("stop", "-c", str(cfg), "-t", "db", env=env)
    assert stop.code == 1 and "every selected target is protected" in stop.err
    forced = await run_haloy("stop", "-c", str(cfg), "-t", "db", "--include-protected",
                             env=env)
    assert forced.code == 1 and "no deployer in this test" in forced.err, forced.err
