"""haloyd's trust boundaries against a real `haloyd serve` + haloy-proxy + dockerd.

What a token holder (or an image) must not be able to do: take the API domain, take another
app's domain, wedge the daemon with abandoned log streams, run something else than history
records on rollback, mount the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import os
import tarfile
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.daemon.deployer_harness import HEALTH
from tests.daemon.test_deployer_crash import events
from tests.fixtures.docker import TEST_IMAGE, docker_cli, run_app
from tests.fixtures.haloyd_server import HaloydServer, forget_app, serving
from tests.fixtures.polling import await_until
from tests.fixtures.proxy import ProxyProcess

pytestmark = pytest.mark.docker

API_DOMAIN = "api.test"


@pytest.fixture
async def hd(
    tmp_path: Path, test_image: str, docker_network: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> AsyncIterator[HaloydServer]:
    """haloyd with `api.domain` set, and its proxy."""
    server = HaloydServer.under(tmp_path, docker_network)
    async with serving(server, config={"api.domain": API_DOMAIN},
                       proxy_factory=proxy_factory) as running:
        yield running


@pytest.fixture
def labelled_image() -> Iterator[Callable[[dict[str, str]], str]]:
    """Build `haloy-test-app:<random>` FROM v1 with extra LABELs; removed after the test."""
    made: list[str] = []

    def build(labels: dict[str, str]) -> str:
        ref = f"{TEST_IMAGE}:l{uuid.uuid4().hex[:8]}"
        with tempfile.TemporaryDirectory(prefix="haloy-lbl-") as tmp:
            lines = "".join(f'LABEL "{k}"="{v}"\n' for k, v in labels.items())
            (Path(tmp) / "Dockerfile").write_text(f"FROM {TEST_IMAGE}:v1\n{lines}")
            docker_cli("build", "-q", "-t", ref, tmp, timeout=120)
        made.append(ref)
        return ref

    yield build
    for ref in made:
        docker_cli("rmi", "-f", ref, check=False)


def body(app: str, domain: str, image: str = f"{TEST_IMAGE}:v1", **extra: Any) -> dict[str, Any]:
    """A deploy request for one replica of the test app."""
    return {"app": app, "image": image, "domains": [{"domain": domain}],
            "healthCheckPath": HEALTH, "pullPolicy": "never", **extra}


async def deploy(c: httpx.AsyncClient, request: dict[str, Any]) -> tuple[str, str]:
    """POST /v1/deploy and follow it to the end: (deployment id, last event kind)."""
    started = await c.post("/v1/deploy", json=request)
    assert started.status_code == 202, started.text
    dep_id = started.json()["deploymentId"]
    kinds = [e["kind"] async for e in events(c, dep_id)]
    return dep_id, kinds[-1]


def routes(hd: HaloydServer) -> dict[str, str]:
    """host -> app, as haloy-proxy routes it now."""
    assert hd.proxy is not None
    return {h: r["app"] for r in hd.proxy.status()["routes"]
            for h in (r["domain"], *r.get("aliases", ()))}


async def warnings(hd: HaloydServer) -> list[str]:
    """The WARNING lines of haloyd's own log (GET /v1/server/logs)."""
    resp = await hd.client.get("/v1/server/logs", params={"tail": "1000", "follow": "false"})
    records = [json.loads(line[6:]) for line in resp.text.splitlines()
               if line.startswith("data: {\"")]
    return [r["message"] for r in records if r["level"] == "warning"]


async def warned(hd: HaloydServer, *needles: str) -> list[str]:
    """Wait until one warning holds every needle; all warnings."""
    return await await_until(f"a warning with {needles}", lambda: warnings(hd),
                             lambda found: any(all(n in w for n in needles) for w in found),
                             timeout=20, interval=0.1)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


# -- the API domain is never an app's --------------------------------------------------------


async def test_deploy_naming_the_api_domain_or_localhost_is_refused(hd: HaloydServer) -> None:
    app = unique("a")
    try:
        for domains in ([{"domain": API_DOMAIN}], [{"domain": "Api.Test."}],
                        [{"domain": f"{app}.test", "aliases": ["localhost"]}]):
            resp = await hd.client.post("/v1/deploy", json={**body(app, "x"), "domains": domains})
            assert resp.status_code == 422, resp.text
            assert resp.json()["error"] == "reserved_domain", resp.text
            assert "reserved for haloyd's API" in resp.json()["detail"]
            assert resp.json()["hint"]
        assert API_DOMAIN not in routes(hd)
    finally:
        forget_app(app)


async def test_api_domain_in_image_or_hand_started_labels_is_not_routed(
    hd: HaloydServer, labelled_image: Callable[[dict[str, str]], str], docker_cleanup: str,
) -> None:
    app, squatter = unique("a"), unique("b")
    image = labelled_image({"dev.haloy.domain.1": API_DOMAIN})
    try:
        _, last = await deploy(hd.client, body(app, f"{app}.test", image))
        assert last == "succeeded"
        # A person's container on the network, labelled with the API domain.
        run_app(TEST_IMAGE + ":v1", hd.network, docker_cleanup, app=squatter,
                domain=API_DOMAIN)
        await warned(hd, f"domain {API_DOMAIN}", squatter, "API")
        assert routes(hd).get(f"{app}.test") == app
        assert API_DOMAIN not in routes(hd)
        assert hd.proxy is not None
        # Through the proxy, the API domain reaches haloyd (the token goes nowhere else).
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{hd.proxy.http_port}",
                                     trust_env=False, timeout=10) as c:
            resp = await c.get("/v1/version", headers={"host": API_DOMAIN,
                                                       "authorization": f"Bearer {hd.token}"})
        assert resp.status_code == 200 and "capabilities" in resp.json(), resp.text
        await warned(hd, "dev.haloy.domain.1", "image", app)
    finally:
        forget_app(app)
        forget_app(squatter)


# -- a host belongs to the app that holds it --------------------------------------------------


async def test_a_deploy_cannot_take_another_apps_domain(
    hd: HaloydServer, labelled_image: Callable[[dict[str, str]], str],
) -> None:
    # The intruder's name sorts first: a tie-break by name would hand it the domain.
    owner, intruder = unique("h"), unique("a")
    domain = f"{owner}.test"
    image = labelled_image({"dev.haloy.domain.1": domain})
    try:
        _, last = await deploy(hd.client, body(owner, domain))
        assert last == "succeeded"
        # Through the image's labels: deployed, the label ignored, the domain stays.
        _, last = await deploy(hd.client, body(intruder, f"{intruder}.test", image))
        assert last == "succeeded"
        assert routes(hd)[domain] == owner
        assert routes(hd)[f"{intruder}.test"] == intruder
        await warned(hd, "dev.haloy.domain.1", "image", intruder)
        # Through the request: refused, naming the owner.
        for domains in ([{"domain": domain}],
                        [{"domain": f"{intruder}.test", "aliases": [domain]}]):
            resp = await hd.client.post("/v1/deploy",
                                        json={**body(intruder, "x"), "domains": domains})
            assert resp.status_code == 409, resp.text
            assert resp.json()["error"] == "domain_in_use"
            assert owner in resp.json()["detail"] and resp.json()["hint"]
        assert routes(hd)[domain] == owner
        # The owner itself redeploys with it; once it is stopped, the domain is free.
        _, last = await deploy(hd.client, body(owner, domain, f"{TEST_IMAGE}:v2"))
        assert last == "succeeded"
        stopped = await hd.client.post(f"/v1/apps/{owner}/stop", json={"removeContainers": True})
        assert stopped.status_code == 200, stopped.text
        _, last = await deploy(hd.client, body(intruder, domain))
        assert last == "succeeded"
        assert routes(hd)[domain] == intruder
    finally:
        forget_app(owner)
        forget_app(intruder)


# -- abandoned log streams give their engine connections back ---------------------------------

ABANDONED_FOLLOWS = 150  # three times what exhausted the shared pool of 100 before


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


async def test_abandoned_log_follows_do_not_wedge_haloyd(hd: HaloydServer) -> None:
    app = unique("l")
    assert hd.proc is not None
    try:
        _, last = await deploy(hd.client, body(app, f"{app}.test", replicas=2))
        assert last == "succeeded"
        # A line in every replica's log, so each follow has something to send at once.
        wrote = await hd.client.post(f"/v1/apps/{app}/exec", json={
            "argv": ["sh", "-c", "echo hello > /proc/1/fd/1"], "allContainers": True})
        assert wrote.status_code == 200, wrote.text
        baseline = open_fds(hd.proc.pid)

        async def abandon() -> None:
            # Both replicas, stdout and stderr: four engine streams per request.
            async with hd.client.stream("GET", f"/v1/apps/{app}/logs",
                                        params={"all": "true", "tail": "1"}) as resp:
                assert resp.status_code == 200
                async for line in resp.aiter_lines():
                    if line.startswith(("event: log", ":")):
                        break  # the stream is open: walk away

        # 15 at a time, 15 a second: under the API's rate limit (20/s, burst 100).
        for start in range(0, ABANDONED_FOLLOWS, 15):
            await asyncio.gather(*(abandon() for _ in range(start, start + 15)),
                                 asyncio.sleep(1.0))
        # Every engine connection the streams held is closed again (aiohttp also drops idle
        # keep-alive connections 15-30 s after their last use, so wait for that).
        pid = hd.proc.pid
        now = await await_until("haloyd's engine connections to close", lambda: open_fds(pid),
                                lambda fds: fds <= baseline + 2, timeout=45, interval=0.1)
        print(f"haloyd fds: {baseline} before, {now} after {ABANDONED_FOLLOWS} abandoned follows")
        assert now <= baseline + 2, (baseline, now)
        # The engine still answers haloyd: a deploy (new containers routed) goes through.
        _, last = await asyncio.wait_for(
            deploy(hd.client, body(app, f"{app}.test", f"{TEST_IMAGE}:v2", replicas=2)), 120)
        assert last == "succeeded"
        assert routes(hd)[f"{app}.test"] == app
    finally:
        forget_app(app)


# -- rollback runs the recorded digest ----------------------------------------------------------


def image_id(ref: str) -> str:
    return docker_cli("image", "inspect", "-f", "{{.Id}}", ref)


def saved_as(ref: str, tag: str, dest: Path) -> bytes:
    """`docker save ref`, with the tar's tags rewritten to `tag` (no tag moves on the engine)."""
    docker_cli("save", "-o", str(dest), ref, timeout=120)
    out = dest.with_suffix(".retagged.tar")
    repo, _, version = tag.rpartition(":")
    with tarfile.open(dest) as src, tarfile.open(out, "w") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else None  # type: ignore[union-attr]
            if member.name == "manifest.json":
                manifest = json.loads(data or b"")
                manifest[0]["RepoTags"] = [tag]
                data = json.dumps(manifest).encode()
            elif member.name == "repositories":
                data = json.dumps({repo: {version: next(iter(
                    next(iter(json.loads(data or b"").values())).values()))}}).encode()
            if data is not None:
                member.size = len(data)
                dst.addfile(member, io.BytesIO(data))
            else:
                dst.addfile(member)
    return out.read_bytes()


async def test_rollback_runs_the_recorded_digest_and_uploads_cannot_move_its_tag(
    hd: HaloydServer, labelled_image: Callable[[dict[str, str]], str], tmp_path: Path,
) -> None:
    app = unique("r")
    domain = f"{app}.test"
    first = labelled_image({"dev.haloy.test-variant": app})  # an image of this test's own
    first_id = image_id(first)
    c = hd.client
    assert hd.proxy is not None
    try:
        v1, last = await deploy(c, body(app, domain, first))
        assert last == "succeeded"
        v2, last = await deploy(c, body(app, domain, f"{TEST_IMAGE}:v2"))
        assert last == "succeeded"
        tag = f"{app}:{v1.lower()}"
        # An upload naming v1's tag with another image is refused; the tag stays.
        tar = saved_as(f"{TEST_IMAGE}:v2", tag, tmp_path / "v2.tar")
        upload = await c.post("/v1/images", content=tar,
                              headers={"content-type": "application/x-tar"})
        assert upload.status_code == 409, upload.text
        assert upload.json()["error"] == "image_tag_in_use" and upload.json()["hint"]
        assert image_id(tag) == first_id
        # Moved by hand on the engine: rollback still runs what v1 ran.
        docker_cli("tag", f"{TEST_IMAGE}:v2", tag)
        back = await c.post(f"/v1/apps/{app}/rollback", json={"deploymentId": v1})
        assert back.status_code == 202, back.text
        kinds = [e["kind"] async for e in events(c, back.json()["deploymentId"])]
        assert kinds[-1] == "succeeded", kinds
        running = docker_cli("ps", "-q", "--filter", f"label=dev.haloy.appName={app}").split()
        assert [docker_cli("inspect", "-f", "{{.Image}}", cid) for cid in running] == [first_id]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{hd.proxy.http_port}",
                                     trust_env=False, timeout=10) as proxy:
            assert (await proxy.get("/", headers={"host": domain})).text.strip() == (
                "haloy-test-app v1")
        # Once the engine no longer has that image, rollback says so instead of running v2.
        _, last = await deploy(c, body(app, domain, f"{TEST_IMAGE}:v2"))
        assert last == "succeeded"
        docker_cli("rmi", "-f", first_id)
        gone = await c.post(f"/v1/apps/{app}/rollback", json={"deploymentId": v1})
        assert gone.status_code == 409, gone.text
        assert gone.json()["error"] == "image_missing" and first_id in gone.json()["detail"]
        del v2
    finally:
        forget_app(app)


# -- the token is not root on the host ----------------------------------------------------------


@pytest.fixture
async def hd_mounts(
    tmp_path: Path, test_image: str, docker_network: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> AsyncIterator[tuple[HaloydServer, Path, Path]]:
    """haloyd whose bind root and one extra allowed path are directories of this test."""
    root, shared = tmp_path / "bind-root", tmp_path / "shared"
    (root / "app").mkdir(parents=True)
    shared.mkdir()
    server = HaloydServer.under(tmp_path / "srv", docker_network)
    (tmp_path / "srv").mkdir()
    config = {"containers.bind_root": str(root),
              "containers.allowed_host_paths": json.dumps([str(shared)])}
    async with serving(server, config=config, proxy_factory=proxy_factory) as running:
        yield running, root, shared


async def test_deploys_cannot_mount_the_host(
    hd_mounts: tuple[HaloydServer, Path, Path],
) -> None:
    hd, root, shared = hd_mounts
    app = unique("m")
    (root / "app" / "sneaky").symlink_to("/etc")  # as a container could leave it
    refused = ["/:/host", "/var/run/docker.sock:/var/run/docker.sock", "/etc:/x:ro",
               "/proc:/p", f"{root}/../..:/up", f"{root}/app/sneaky:/s",
               f"{hd.paths.data_dir}:/d", f"{hd.paths.config_dir}/.env:/t", "/var:/v",
               "/home:/h"]
    try:
        for volume in refused:
            resp = await hd.client.post("/v1/deploy", json=body(app, f"{app}.test",
                                                                 volumes=[volume]))
            assert resp.status_code == 422, (volume, resp.text)
            assert resp.json()["error"] == "volume_not_allowed", resp.text
            assert "allowed_host_paths" in resp.json()["hint"]
        (root / "app" / "data").mkdir()
        (shared / "hello.txt").write_text("shared\n")
        allowed = [f"{app}-data:/data", f"{root}/app/data:/appdata",
                   f"{shared}:/shared:ro"]
        _, last = await deploy(hd.client, body(app, f"{app}.test", volumes=allowed))
        assert last == "succeeded"
        read = await hd.client.post(f"/v1/apps/{app}/exec", json={
            "argv": ["sh", "-c", "cat /shared/hello.txt"]})
        assert read.json()["results"][0]["stdout"] == "shared\n", read.text
    finally:
        forget_app(app)
        docker_cli("volume", "rm", "-f", f"{app}-data", check=False)


# -- history keeps no secrets --------------------------------------------------------------------


async def test_history_and_api_keep_no_literal_secrets(hd: HaloydServer) -> None:
    app = unique("s")
    secrets = ["literal-api-token-1", "s3cret-env-value", "staging-token-2",
               "staging-env-value", "registry-pw-3"]
    config = {"target": "prod", "file": {
        "name": app, "api_token": secrets[0],
        "env": [{"name": "GREETING", "value": secrets[1]},
                {"name": "DB_URL", "from": {"secret": "db-url"}}],
        "image": {"repository": "x", "registry": {"username": "u",
                                                  "password": secrets[4]}},
        "targets": {"prod": {"server": "a.example.com"},
                    "staging": {"api_token": secrets[2],
                                "env": [{"name": "S", "value": secrets[3]}]}},
    }}
    try:
        request = body(app, f"{app}.test", env={"GREETING": secrets[1]}, config=config)
        v1, last = await deploy(hd.client, request)
        assert last == "succeeded"
        shown = await hd.client.get(f"/v1/apps/{app}/deployments")
        assert shown.status_code == 200
        kept = shown.json()["deployments"][0]["config"]
        assert not [s for s in secrets if s in shown.text], shown.text
        file = kept["spec"]["config"]["file"]
        # What is kept: the deployed target, env names and secret references.
        assert list(file["targets"]) == ["prod"]
        assert file["env"][1] == {"name": "DB_URL", "from": {"secret": "db-url"}}
        assert kept["spec"]["env"] == ["GREETING"]
        # Nor does the database hold them.
        db = b"".join(p.read_bytes() for p in hd.paths.db_file.parent.iterdir() if p.is_file())
        assert not [s for s in secrets if s.encode() in db]
        # A rollback needs none of it: the client sends the env again.
        back = await hd.client.post(f"/v1/apps/{app}/rollback",
                                    json={"deploymentId": v1, "env": {"GREETING": "again"}})
        assert back.status_code == 202, back.text
        kinds = [e["kind"] async for e in events(hd.client, back.json()["deploymentId"])]
        assert kinds[-1] == "succeeded", kinds
    finally:
        forget_app(app)


# -- small things: numbers are ASCII digits, env names are names ---------------------------------


async def test_unicode_digits_and_bad_env_names_are_client_errors(hd: HaloydServer) -> None:
    app = unique("n")
    try:
        _, last = await deploy(hd.client, body(app, f"{app}.test"))
        assert last == "succeeded"
        c = hd.client
        for digits in ("²", "١٢", "1²", "+5", " 5", "5 "):
            logs = await c.get(f"/v1/apps/{app}/logs",
                               params={"tail": digits, "follow": "false"})
            assert logs.status_code == 400, (digits, logs.text)
            limit = await c.get(f"/v1/apps/{app}/deployments", params={"limit": digits})
            assert limit.status_code == 400, (digits, limit.text)
            with pytest.raises(InvalidStatus) as refused:
                url = f"ws://127.0.0.1:{hd.port}/v1/apps/{app}/tunnel?port={quote(digits)}"
                async with connect(url, additional_headers={
                        "authorization": f"Bearer {hd.token}"}):
                    pass
            assert refused.value.response.status_code == 400, digits
        for name in ("A=B", "1ST", "", "BAD NAME", "X\x00Y"):
            resp = await c.post("/v1/deploy", json=body(app, f"{app}.test", env={name: "v"}))
            assert resp.status_code == 422, (name, resp.text)
            assert resp.json()["error"] in ("invalid_env", "invalid_request"), resp.text
    finally:
        forget_app(app)


# -- the rate limit counts the client haloy-proxy names, no one else's claim --------------------


async def test_only_haloy_proxy_can_name_the_client_the_rate_limit_counts(
    hd: HaloydServer,
) -> None:
    assert hd.proxy is not None
    # A local process talking to haloyd directly, naming a new client each time, is still
    # one client: its bucket (burst 100, 20/s) runs dry.
    statuses: list[int] = []
    async with httpx.AsyncClient(base_url=hd.url, trust_env=False) as direct:
        for i in range(400):
            resp = await direct.get("/v1/version", headers={
                "x-forwarded-for": f"198.51.100.{i % 250}",
                "x-haloy-forward-key": "0" * 64})
            statuses.append(resp.status_code)
            if resp.status_code == 429:
                break
    assert statuses[-1] == 429, statuses[-5:]
    # A client coming through haloy-proxy (from another loopback address) has its own bucket:
    # haloyd believes the proxy's X-Forwarded-For, shown with the snapshot's forward key.
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.3")
    async with httpx.AsyncClient(transport=transport, trust_env=False) as outside:
        via_proxy = await outside.get(f"http://127.0.0.1:{hd.proxy.http_port}/v1/version",
                                      headers={"host": API_DOMAIN})
    assert via_proxy.status_code == 401, via_proxy.text


# -- exec, logs and stop reach only this haloyd's containers ------------------------------------


async def test_exec_and_stop_leave_another_haloyds_containers_alone(
    hd: HaloydServer, docker_cleanup: str,
) -> None:
    app = unique("x")
    try:
        _, last = await deploy(hd.client, body(app, f"{app}.test"))
        assert last == "succeeded"
        # Same app name, same engine, made by another haloyd.
        other = run_app(f"{TEST_IMAGE}:v1", hd.network, docker_cleanup, app=app,
                        domain=None, extra={"dev.haloy.instance": "another-haloyd"})
        ran = await hd.client.post(f"/v1/apps/{app}/exec", json={
            "argv": ["sh", "-c", "hostname"], "allContainers": True})
        assert ran.status_code == 200, ran.text
        assert [r["containerId"] for r in ran.json()["results"]] != [other[:12]]
        assert other[:12] not in ran.text
        picked = await hd.client.post(f"/v1/apps/{app}/exec", json={
            "argv": ["true"], "container": other[:12]})
        assert picked.status_code == 404, picked.text
        logs = await hd.client.get(f"/v1/apps/{app}/logs",
                                   params={"follow": "false", "container": other[:12]})
        assert logs.status_code == 404, logs.text
        stopped = await hd.client.post(f"/v1/apps/{app}/stop", json={"removeContainers": True})
        assert stopped.status_code == 200, stopped.text
        assert other not in stopped.json()["containers"] and stopped.json()["containers"]
        assert docker_cli("inspect", "-f", "{{.State.Running}}", other) == "true"
    finally:
        forget_app(app)


# -- uploaded layers do not pile up --------------------------------------------------------------


def image_layers(ref: str, dest: Path) -> dict[str, bytes]:
    """diff id -> layer tar bytes of `ref` (from `docker save`)."""
    docker_cli("save", "-o", str(dest), ref, timeout=120)
    found: dict[str, bytes] = {}
    with tarfile.open(dest) as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith("layer.tar"):
                data = tar.extractfile(member).read()  # type: ignore[union-attr]
                found["sha256:" + hashlib.sha256(data).hexdigest()] = data
    return found


async def test_uploaded_layers_no_kept_deployment_needs_are_pruned(
    hd: HaloydServer, tmp_path: Path,
) -> None:
    app = unique("p")
    c = hd.client
    store = hd.paths.data_dir / "layers" / "sha256"

    async def upload(data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        put = await c.put(f"/v1/images/layers/{digest}", content=data)
        assert put.status_code in (200, 201), put.text
        return digest

    def age(digest: str, days: float = 2) -> None:
        then = time.time() - days * 86400
        os.utime(store / digest.removeprefix("sha256:"), (then, then))

    try:
        _, last = await deploy(c, body(app, f"{app}.test"))
        assert last == "succeeded"
        # An old upload of a layer the deployed image has: kept.
        needed = await upload(next(iter(image_layers(f"{TEST_IMAGE}:v1",
                                                     tmp_path / "v1.tar").values())))
        stale = await upload(os.urandom(4096))  # old, in no image: goes
        fresh = await upload(os.urandom(4096))  # in no image, but just uploaded: kept
        for digest in (needed, stale):
            age(digest)
        plan = await c.post("/v1/images/prune", json={"dryRun": True})
        assert plan.status_code == 200, plan.text
        assert [layer["digest"] for layer in plan.json()["layers"]] == [stale]
        assert plan.json()["layerBytesFreed"] == 4096
        assert (store / stale.removeprefix("sha256:")).exists()
        done = await c.post("/v1/images/prune", json={"dryRun": False, "app": app})
        assert [layer["digest"] for layer in done.json()["layers"]] == [stale], done.text
        on_disk = {f"sha256:{p.name}" for p in store.iterdir()}
        assert stale not in on_disk and {needed, fresh} <= on_disk
        # On a schedule too: haloyd prunes when it starts, then every hour.
        age(fresh)
        await hd.restart()
        await await_until("the scheduled prune", (store / fresh.removeprefix("sha256:")).exists,
                          lambda exists: not exists, timeout=10, interval=0.1)
        assert not (store / fresh.removeprefix("sha256:")).exists()
        assert (store / needed.removeprefix("sha256:")).exists()
    finally:
        forget_app(app)


HELD_FOLLOWS = 60  # two engine streams each: more than the stream pool, and than one pool of 100


async def test_held_log_follows_cannot_starve_deploys(hd: HaloydServer) -> None:
    app = unique("f")
    try:
        _, last = await deploy(hd.client, body(app, f"{app}.test"))
        assert last == "succeeded"
        async with contextlib.AsyncExitStack() as held:
            for _ in range(HELD_FOLLOWS):
                resp = await held.enter_async_context(
                    hd.client.stream("GET", f"/v1/apps/{app}/logs", params={"tail": "1"}))
                assert resp.status_code == 200
            # Every stream is still open: discovery, the deployer and short calls go on.
            _, last = await asyncio.wait_for(
                deploy(hd.client, body(app, f"{app}.test", f"{TEST_IMAGE}:v2")), 90)
            assert last == "succeeded"
            assert (await hd.client.get(f"/v1/apps/{app}")).status_code == 200
    finally:
        forget_app(app)
