"""`haloyd serve` with its services, as real processes: `haloyd init`, `haloy-proxy serve`,
`haloyd serve`. The API answers on api.listen and through the proxy (loopback `localhost` and
the API domain); a hand-started labelled container shows up in /v1/apps; with pebble as the
ACME directory an app's domain gets a certificate through the proxy's HTTP-01 passthrough and
the proxy serves it over HTTPS.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from haloy.certs.store import CertStore
from haloy.config.daemon import LETSENCRYPT_PRODUCTION, DaemonConfig
from haloy.config.paths import Paths
from haloy.daemon.api_token import forward_key
from haloy.daemon.serve_tasks import Listen, acme_requested, listener_extras, tls_hosts
from haloy.wire.snapshot import Route, Snapshot
from tests.certs.tls_peer import connect
from tests.fixtures.docker import run_app
from tests.fixtures.haloyd_server import FAST_HEALTH, HaloydServer, serving
from tests.fixtures.pebble import Pebble
from tests.fixtures.polling import await_until
from tests.fixtures.proxy import ProxyProcess

API_DOMAIN = "api.svc.test"
INIT_ARGS = ("--api-domain", API_DOMAIN)
NOT_YET = (httpx.HTTPError, OSError)  # a server still starting: connection refused or reset


def server(tmp_path: Path, network: str) -> HaloydServer:
    """A haloyd with ACME as configured, logging (haloyd-<n>.log) to `tmp_path`."""
    return HaloydServer(Paths(tmp_path / "etc", tmp_path / "var"), network, tmp_path,
                        serve_args=FAST_HEALTH, acme=True)


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
    hd = server(tmp_path, docker_network)
    async with (
        serving(hd, init_args=INIT_ARGS, config={"proxy.https_listen": "off"},
                proxy_factory=proxy_factory),
        httpx.AsyncClient(timeout=5, trust_env=False) as client,
    ):
        assert hd.proxy is not None
        token, data_dir = hd.token, hd.paths.data_dir
        direct = hd.url
        via = f"http://127.0.0.1:{hd.proxy.http_port}"

        async def health(base: str, host: str | None = None) -> httpx.Response:
            headers = {"Host": host} if host else {}
            return await client.get(f"{base}/health", headers=headers)

        def healthy(r: httpx.Response) -> bool:
            return r.status_code == 200

        await await_until("the API", lambda: health(direct), healthy, ignoring=NOT_YET)
        await await_until("the API via localhost", lambda: health(via, "localhost"), healthy,
                          ignoring=NOT_YET)
        await await_until("the API via its domain", lambda: health(via, API_DOMAIN), healthy,
                          ignoring=NOT_YET)
        unknown = await health(via, "nobody.test")
        assert unknown.status_code == 404

        no_token = await client.get(f"{via}/v1/apps", headers={"Host": "localhost"})
        assert no_token.status_code == 401
        run_app(f"{test_image}:v1", docker_network, docker_cleanup, app="svc",
                domain="svc.test")
        auth = {"Host": API_DOMAIN, "Authorization": f"Bearer {token}"}

        async def apps() -> httpx.Response:
            return await client.get(f"{via}/v1/apps", headers=auth)

        def lists_svc(r: httpx.Response) -> bool:
            return r.status_code == 200 and any(a["name"] == "svc" for a in r.json()["apps"])

        await await_until("svc in /v1/apps", apps, lists_svc, ignoring=NOT_YET)
        served = await await_until("svc through the proxy",
                                   lambda: client.get(f"{via}/", headers={"Host": "svc.test"}),
                                   healthy, ignoring=NOT_YET)
        assert served.text == "haloy-test-app v1\n"
        # No ACME configured: nothing was requested, the certs dir holds no certificate.
        assert CertStore(data_dir / "certs").all() == []
    assert "ACME off" in hd.log(tail=None)


@pytest.mark.docker
@pytest.mark.pebble
async def test_acme_certificate_through_proxy(
    tmp_path: Path, test_image: str, docker_network: str, docker_cleanup: str,
    proxy_factory: Callable[..., ProxyProcess], pebble: Pebble,
) -> None:
    config = {
        "proxy.https_listen": "127.0.0.1:8443",  # any non-off value: routes get `tls`
        "acme.directory_url": pebble.directory_url, "acme.ca_bundle": str(pebble.ca_bundle),
    }
    run_app(f"{test_image}:v1", docker_network, docker_cleanup, app="tlsapp",
            domain="tlsapp.test")
    hd = server(tmp_path, docker_network)
    async with serving(hd, init_args=INIT_ARGS, config=config, proxy_factory=proxy_factory,
                       proxy_args=("--http-listen", f"127.0.0.1:{pebble.http_port}"),
                       proxy_https=True):
        proxy = hd.proxy
        assert proxy is not None and proxy.https_port
        https_port = proxy.https_port
        certs = CertStore(hd.paths.data_dir / "certs")

        await await_until("a certificate for tlsapp.test", lambda: certs.read("tlsapp.test"),
                          lambda c: c is not None, timeout=60, ignoring=NOT_YET)

        async def names() -> object:
            client = await connect(https_port, "tlsapp.test", cafile=pebble.root_file)
            try:
                return client.info.names
            finally:
                await client.close()

        # The proxy serves it once haloyd's reload_certs arrived.
        await await_until("the proxy to serve it", names, lambda n: n == ("tlsapp.test",),
                          timeout=30, ignoring=NOT_YET)

        def tls_route(s: dict[str, Any]) -> bool:
            return any(r["domain"] == "tlsapp.test" for r in s["routes"])

        await await_until("the route in the proxy", proxy.status, tls_route, ignoring=NOT_YET)
        # The route now redirects plain HTTP to HTTPS.
        async with httpx.AsyncClient(timeout=5, trust_env=False) as client:
            r = await await_until(
                "a redirect to HTTPS",
                lambda: client.get(f"http://127.0.0.1:{proxy.http_port}/",
                                   headers={"Host": "tlsapp.test"}),
                lambda r: r.status_code in (301, 308), ignoring=NOT_YET,
            )
        assert "https://tlsapp.test" in r.headers["location"]
    assert "certificate tlsapp.test: issued" in hd.log(tail=None)
