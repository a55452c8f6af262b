"""`haloyd serve` with its services, as real processes: `haloyd init`, `haloy-proxy serve`,
`haloyd serve`. The API answers on api.listen and through the proxy (loopback `localhost` and
the API domain); a hand-started labelled container shows up in /v1/apps; with pebble as the
ACME directory an app's domain gets a certificate through the proxy's HTTP-01 passthrough and
the proxy serves it over HTTPS.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import yaml

from haloy.certs.store import CertStore
from haloy.config.daemon import LETSENCRYPT_PRODUCTION, DaemonConfig, load_daemon_config
from haloy.config.paths import Paths
from haloy.daemon.api_token import forward_key, read_token
from haloy.daemon.serve_tasks import Listen, acme_requested, listener_extras, tls_hosts
from haloy.wire.snapshot import Route, Snapshot
from tests.certs.tls_peer import connect
from tests.daemon.haloyd_env import HaloydEnv
from tests.fixtures.docker import run_app
from tests.fixtures.pebble import Pebble, free_port
from tests.fixtures.proxy import ProxyProcess

API_DOMAIN = "api.svc.test"


def init_env(tmp_path: Path, network: str, *settings: tuple[str, str]) -> HaloydEnv:
    """`haloyd init` in a temp layout, then `haloyd config set` each (key, value)."""
    config_dir, data_dir = tmp_path / "etc", tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HALOY_")}
    env.update(HALOY_CONFIG_DIR=str(config_dir), HALOY_DATA_DIR=str(data_dir),
               HALOY_NETWORK_NAME=network)
    h = HaloydEnv(config_dir, data_dir, network, env)
    done = h.run_script("init", "--api-domain", API_DOMAIN)
    assert done.returncode == 0, done.stderr
    # Edited as YAML (one `haloyd config set` process per key costs seconds), then validated.
    config_file = config_dir / "haloyd.yaml"
    data = yaml.safe_load(config_file.read_text())
    for key, value in settings:
        section, field = key.split(".")
        data.setdefault(section, {})[field] = value
    config_file.write_text(yaml.safe_dump(data))
    load_daemon_config(config_file)
    return h


@asynccontextmanager
async def haloyd(h: HaloydEnv, *args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """`haloyd serve` as a subprocess (fast health checks); SIGTERM at exit."""
    log = open(h.data_dir / "haloyd.log", "wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from haloy.daemon.main import main; main()", "serve",
        "--config-dir", str(h.config_dir), "--data-dir", str(h.data_dir),
        "--network-name", h.network, "--health-interval", "0.2", "--health-fall", "2",
        "--health-rise", "1", "--health-timeout", "1", *args,
        stderr=log, env=h.env,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(20):
                await proc.wait()
        log.close()


async def until(get: Callable[[], object], ok: Callable[[object], bool], timeout: float = 30):
    """Poll an async getter until `ok(result)`; transport errors count as not yet."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                result = await get()  # type: ignore[misc]
                if ok(result):
                    return result
            except (httpx.HTTPError, OSError):
                pass
            await asyncio.sleep(0.05)


# -- pure parts ------------------------------------------------------------------------------


def test_acme_is_opt_in() -> None:
    assert not acme_requested(DaemonConfig().acme)
    assert acme_requested(DaemonConfig.model_validate({"acme": {"email": "a@b.test"}}).acme)
    assert acme_requested(DaemonConfig.model_validate({"acme": {"staging": True}}).acme)
    custom = {"acme": {"directory_url": "https://127.0.0.1:14000/dir"}}
    assert acme_requested(DaemonConfig.model_validate(custom).acme)
    assert DaemonConfig().acme.directory_url == LETSENCRYPT_PRODUCTION


def test_extras_point_at_api_listen() -> None:
    config = DaemonConfig.model_validate({"api": {"listen": "0.0.0.0:9400", "domain": "a.test"}})
    extras = listener_extras(config, "a" * 64)
    assert extras.api is not None and extras.api.domain == "a.test"
    assert extras.api.forward_key == forward_key("a" * 64)
    assert (extras.api.backend.address, extras.api.backend.port) == ("127.0.0.1", 9400)
    assert extras.acme_challenge_backend == extras.api.backend
    assert Listen.parse(":81") == Listen("0.0.0.0", 81)
    assert Listen.parse("[::1]:82").backend.address == "::1"


def test_tls_hosts_without_certs(tmp_path: Path) -> None:
    snap = Snapshot(routes=(Route(app="a", domain="a.test", aliases=("www.a.test",)),))
    now = dt.datetime.now(dt.UTC)
    assert tls_hosts(snap, CertStore(tmp_path), now) == frozenset()
    assert tls_hosts(None, CertStore(tmp_path), now) == frozenset()


# -- real processes --------------------------------------------------------------------------


@pytest.mark.docker
async def test_api_through_proxy_and_apps_listing(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    api_port = free_port()
    h = init_env(tmp_path, docker_network, ("api.listen", f"127.0.0.1:{api_port}"),
                 ("proxy.https_listen", "off"))
    token = read_token(Paths(h.config_dir, h.data_dir).env_file)
    proxy = proxy_factory("--no-access-log", https=False, data_dir=h.data_dir)
    async with haloyd(h), httpx.AsyncClient(timeout=5, trust_env=False) as client:
        direct = f"http://127.0.0.1:{api_port}"
        via = f"http://127.0.0.1:{proxy.http_port}"

        async def health(base: str, host: str | None = None) -> httpx.Response:
            headers = {"Host": host} if host else {}
            return await client.get(f"{base}/health", headers=headers)

        def healthy(r: object) -> bool:
            return isinstance(r, httpx.Response) and r.status_code == 200

        await until(lambda: health(direct), healthy)
        await until(lambda: health(via, "localhost"), healthy)
        await until(lambda: health(via, API_DOMAIN), healthy)
        unknown = await health(via, "nobody.test")
        assert unknown.status_code == 404

        no_token = await client.get(f"{via}/v1/apps", headers={"Host": "localhost"})
        assert no_token.status_code == 401
        run_app(f"{test_image}:v1", docker_network, docker_cleanup, app="svc",
                domain="svc.test")
        auth = {"Host": API_DOMAIN, "Authorization": f"Bearer {token}"}

        async def apps() -> httpx.Response:
            return await client.get(f"{via}/v1/apps", headers=auth)

        def lists_svc(r: object) -> bool:
            return (isinstance(r, httpx.Response) and r.status_code == 200
                    and any(a["name"] == "svc" for a in r.json()["apps"]))

        await until(apps, lists_svc)
        served = await until(
            lambda: client.get(f"{via}/", headers={"Host": "svc.test"}),
            lambda r: isinstance(r, httpx.Response) and r.status_code == 200,
        )
        assert served.text == "haloy-test-app v1\n"  # type: ignore[attr-defined]
        # No ACME configured: nothing was requested, the certs dir holds no certificate.
        assert CertStore(h.data_dir / "certs").all() == []
    assert "ACME off" in (h.data_dir / "haloyd.log").read_text()


@pytest.mark.docker
@pytest.mark.pebble
async def test_acme_certificate_through_proxy(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess], pebble: Pebble,
) -> None:
    api_port = free_port()
    h = init_env(
        tmp_path, docker_network, ("api.listen", f"127.0.0.1:{api_port}"),
        ("proxy.https_listen", "127.0.0.1:8443"),  # any non-off value: routes get `tls`
        ("acme.directory_url", pebble.directory_url), ("acme.ca_bundle", str(pebble.ca_bundle)),
    )
    proxy = proxy_factory("--no-access-log", "--http-listen", f"127.0.0.1:{pebble.http_port}",
                          data_dir=h.data_dir)
    assert proxy.https_port
    run_app(f"{test_image}:v1", docker_network, docker_cleanup, app="tlsapp",
            domain="tlsapp.test")
    certs = CertStore(h.data_dir / "certs")
    async with haloyd(h):
        async def issued() -> object:
            return certs.read("tlsapp.test")

        await until(issued, lambda c: c is not None, timeout=60)

        async def names() -> object:
            client = await connect(proxy.https_port, "tlsapp.test", cafile=pebble.root_file)
            try:
                return client.info.names
            finally:
                await client.close()

        # The proxy serves it once haloyd's reload_certs arrived.
        await until(names, lambda n: n == ("tlsapp.test",), timeout=30)

        async def status() -> object:
            return proxy.status()

        def tls_route(s: object) -> bool:
            routes = s["routes"] if isinstance(s, dict) else []
            return any(r["domain"] == "tlsapp.test" for r in routes)

        await until(status, tls_route)
        # The route now redirects plain HTTP to HTTPS.
        async with httpx.AsyncClient(timeout=5, trust_env=False) as client:
            r = await until(
                lambda: client.get(f"http://127.0.0.1:{proxy.http_port}/",
                                   headers={"Host": "tlsapp.test"}),
                lambda r: isinstance(r, httpx.Response) and r.status_code in (301, 308),
            )
        assert "https://tlsapp.test" in r.headers["location"]  # type: ignore[attr-defined]
    assert "certificate tlsapp.test: issued" in (h.data_dir / "haloyd.log").read_text()
