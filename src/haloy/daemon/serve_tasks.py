"""The long-lived parts `haloyd serve` runs next to discovery: the API and the certificates.

    with_serve_tasks(settings, config) ──▶ (settings with snapshot Extras, [api, certificates])

    API          uvicorn on `api.listen`: the REST API (store opened, interrupted deployments
                 marked failed by the deployer's recover()), plus the public ACME HTTP-01 answer
                 `/.well-known/acme-challenge/<token>`. The snapshot routes the API domain (and
                 `localhost` from loopback) and the proxy's ACME passthrough to this listener.
    certificates CertificateManager fed from the published snapshot (woken on every new
                 generation); `on_change` sends `reload_certs` to haloy-proxy. Routes whose
                 names a stored certificate covers get `tls` (HTTP → HTTPS redirect) unless
                 the proxy's HTTPS listener is off.

ACME runs only when asked for: `acme.email` set, or `acme.directory_url`/`acme.staging` changed
from the default, and not `--no-acme`. A fresh `haloyd init` therefore never contacts
Let's Encrypt until the operator opts in; hand-placed certificates work either way.
The API runs only when the token exists (`haloyd init` writes it); without it haloyd still
routes, and says why the API is off.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass, replace
from typing import Any

from starlette.routing import Route

from haloy.certs.challenges import ChallengeApp, ChallengeStore
from haloy.certs.issuer import AcmeIssuer
from haloy.certs.manager import CertEvent, CertificateManager, WantedCert, wanted_from_snapshot
from haloy.certs.store import CertStore
from haloy.config.daemon import LETSENCRYPT_PRODUCTION, AcmeSettings, DaemonConfig
from haloy.config.paths import Paths
from haloy.daemon.api import LayerStore, create_api, make_server, serve_api
from haloy.daemon.api.daemon_status import DaemonStatusProvider
from haloy.daemon.api.exec import ExecHandlers
from haloy.daemon.api.history_tags import HistoryTags
from haloy.daemon.api.layer_chains import EngineChains
from haloy.daemon.api.layer_prune import LayerPruner
from haloy.daemon.api.logs import LogHandlers
from haloy.daemon.api.prune import PruneHandlers
from haloy.daemon.api.registries import RegistryHandlers
from haloy.daemon.api.server_logs import LogRing, ServerLogHandlers
from haloy.daemon.api.tunnel import TunnelHandlers
from haloy.daemon.api_token import forward_key, read_token
from haloy.daemon.app import Extra, Haloyd, ServeSettings
from haloy.daemon.deployer import Deployer
from haloy.daemon.events import EventHub
from haloy.daemon.host_claims import HostRules
from haloy.daemon.instance import instance_id
from haloy.daemon.mount_policy import PROTECTED, MountPolicy
from haloy.daemon.registry_auth import RegistryAuthStore, registries_file
from haloy.daemon.route_builder import Extras, host_owners, reserved_hosts
from haloy.daemon.route_control import RouteControl
from haloy.errors import HaloyError
from haloy.store import DeploymentStore
from haloy.wire.control import CONTROL_TIMEOUT, send_control
from haloy.wire.snapshot import ApiRoute, Endpoint, Snapshot

log = logging.getLogger(__name__)

# How often the certificate side looks for a new snapshot generation (cheap: one int compare).
GENERATION_POLL_S = 0.25
# Recovering interrupted deployments comes before the API listens; it takes seconds at most.
API_START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Listen:
    """`api.listen` split into what uvicorn binds and what the proxy connects to."""

    bind_host: str
    port: int

    @classmethod
    def parse(cls, listen: str) -> Listen:
        """From "HOST:PORT", ":PORT" or "[v6]:PORT" (already validated by the config)."""
        host, _, port = listen.rpartition(":")
        return cls(host.strip("[]") or "0.0.0.0", int(port))

    @property
    def backend(self) -> Endpoint:
        """Where the proxy on this machine reaches the listener."""
        host = self.bind_host
        if host in ("0.0.0.0", "::", "localhost"):
            host = "127.0.0.1"
        return Endpoint(address=host, port=self.port)


def acme_requested(acme: AcmeSettings) -> bool:
    """True when haloyd.yaml opts in to ACME (email, custom directory or staging)."""
    return bool(acme.email) or acme.staging or acme.directory_url != LETSENCRYPT_PRODUCTION


def listener_extras(config: DaemonConfig, token: str) -> Extras:
    """The snapshot parts pointing at haloyd's own listener: API route and ACME passthrough."""
    backend = Listen.parse(config.api.listen).backend
    return Extras(api=ApiRoute(domain=config.api.domain, backend=backend,
                               forward_key=forward_key(token)),
                  acme_challenge_backend=backend,
                  trusted_proxies=config.proxy.trusted_proxies)


def api_task(
    config: DaemonConfig, token: str, challenges: ChallengeStore, certs: CertStore
) -> Extra:
    """The `serve` extra running the store, the deployer and the API on `api.listen`."""
    listen = Listen.parse(config.api.listen)

    def cert_expiry(domain: str) -> dt.datetime | None:
        stored = certs.read(domain)
        return stored.info.not_after if stored else None

    async def run(haloyd: Haloyd) -> None:
        paths = haloyd.settings.paths
        store = await DeploymentStore.open(paths.db_file)
        events = EventHub()
        ring = LogRing()  # `haloy server logs` reads haloyd's own log from here
        logging.getLogger().addHandler(ring)
        registries = RegistryAuthStore(registries_file(paths))
        instance = instance_id(paths.data_dir)
        hosts = HostRules(reserved_hosts(config.api.domain),
                          lambda: host_owners(haloyd.publisher.current))
        deployer = Deployer(haloyd.runtime, RouteControl(haloyd), store, events,
                            network=haloyd.settings.network, registry_auth=registries.auth_for,
                            hosts=hosts, mounts=mount_policy(config, paths),
                            instance=instance)
        engine = haloyd.runtime
        pruner = LayerPruner(LayerStore(paths.layers_dir), engine.images, store)
        try:
            await haloyd.ready.wait()
            interrupted = await deployer.recover()
            if interrupted:
                log.warning("marked interrupted deployments failed: %s", ", ".join(interrupted))

            async def proxy_status() -> dict[str, Any]:
                return await send_control(paths.control_socket, {"op": "status"})

            def routes() -> Any:
                current = haloyd.publisher.current
                return current.routes if current else ()

            status = DaemonStatusProvider(haloyd.status, routes, proxy_status, cert_expiry,
                                          public_ports(config))
            acme = Route("/.well-known/acme-challenge/{token}", ChallengeApp(challenges))
            app = create_api(token, status, store, events=events,
                             layers=LayerStore(paths.layers_dir), deployer=deployer,
                             images=engine.images,
                             chains=EngineChains(engine.images),
                             history_tags=HistoryTags(engine.images, store),
                             public_routes=[acme],
                             engine_id=await engine_id(haloyd),
                             groups=[RegistryHandlers(registries, engine.images),
                                     PruneHandlers(engine, store, pruner),
                                     ServerLogHandlers(ring),
                                     ExecHandlers(engine, instance=instance),
                                     TunnelHandlers(engine, haloyd.settings.network,
                                                    instance=instance)],
                             logs=LogHandlers(engine, instance=instance))
            server = make_server(app, listen.bind_host, listen.port)
            log.info("API listening on %s:%d", listen.bind_host, listen.port)
            async with asyncio.TaskGroup() as tg:
                schedule = tg.create_task(pruner.run(), name="layer-prune")
                try:
                    await serve_api(server)
                finally:
                    schedule.cancel()  # the API stopped: so does the layer prune
        finally:
            logging.getLogger().removeHandler(ring)
            await deployer.close()
            await store.close()

    return run


def mount_policy(config: DaemonConfig, paths: Paths) -> MountPolicy:
    """haloyd.yaml's `containers` section, with haloy's own directories protected."""
    own = tuple(str(p.resolve()) for p in (paths.config_dir, paths.data_dir))
    return MountPolicy(
        bind_root=str(config.containers.bind_root),
        allowed=tuple(str(p) for p in config.containers.allowed_host_paths),
        protected=PROTECTED + own,
    )


async def wait_listening(endpoint: Endpoint, timeout: float) -> bool:
    """Wait until `endpoint` accepts TCP connections; False if it did not within `timeout`."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    _, writer = await asyncio.open_connection(endpoint.address, endpoint.port)
                except OSError:
                    await asyncio.sleep(0.05)
                    continue
                writer.close()
                return True
    except TimeoutError:
        log.warning("API listener %s:%d not up after %.0f s; ordering certificates anyway",
                    endpoint.address, endpoint.port, timeout)
        return False


async def engine_id(haloyd: Haloyd) -> str | None:
    """Which Docker engine this is (None if it does not say): a CLI on it skips the upload.

    The engine's ID alone is not enough: dockerd derives it from /etc/docker/key.json, which
    every engine on one machine shares, so its data root is part of the identity.
    """
    try:
        async with asyncio.timeout(10):  # a wedged engine must not hold up `haloyd serve`
            info = await haloyd.runtime.info()
    except (HaloyError, TimeoutError) as exc:
        log.warning("could not read the Docker engine's ID: %s", exc)
        return None
    found, root = info.get("ID"), info.get("DockerRootDir")
    return f"{found}|{root}" if found and root else None


def public_ports(config: DaemonConfig) -> tuple[int, int | None]:
    """The proxy's HTTP and HTTPS ports from haloyd.yaml (HTTPS None when off)."""
    https = config.proxy.https_listen
    return (
        int(config.proxy.http_listen.rsplit(":", 1)[1]),
        None if https == "off" else int(https.rsplit(":", 1)[1]),
    )


def tls_hosts(snapshot: Snapshot | None, certs: CertStore, now: dt.datetime) -> frozenset[str]:
    """Routed names a stored, currently valid certificate covers."""
    if snapshot is None:
        return frozenset()
    infos = [c.info for c in certs.all() if c.info.valid_at(now)]
    names = {n for r in snapshot.routes for n in (r.domain, *r.aliases)}
    return frozenset(n for n in names if any(i.covers(n) for i in infos))


def cert_task(
    config: DaemonConfig, challenges: ChallengeStore, certs: CertStore, *, acme: bool
) -> Extra:
    """The `serve` extra keeping certificates issued (when `acme`) and routes' `tls` in step."""
    https_on = config.proxy.https_listen != "off"

    async def run(haloyd: Haloyd) -> None:
        paths = haloyd.settings.paths
        wake = asyncio.Event()

        def refresh_tls() -> None:
            if not https_on:
                return  # a tls route would redirect to an HTTPS listener that does not exist
            hosts = tls_hosts(haloyd.publisher.current, certs, dt.datetime.now(dt.UTC))
            if hosts != haloyd.extras.tls_hosts:
                haloyd.set_extras(replace(haloyd.extras, tls_hosts=hosts))

        async def on_change() -> None:
            try:
                reply = await send_control(paths.control_socket, {"op": "reload_certs"},
                                           CONTROL_TIMEOUT)
                log.info("proxy reloaded certificates: %s", reply)
            except (HaloyError, OSError, TimeoutError) as exc:
                # The proxy reads the certs dir when it (re)starts, so nothing is lost.
                log.warning("proxy did not reload certificates: %s", exc)
            refresh_tls()

        def on_event(event: CertEvent) -> None:
            level = logging.WARNING if event.kind in ("failed", "warning") else logging.INFO
            log.log(level, "certificate %s: %s %s", event.domain, event.kind, event.message)

        def wanted() -> list[WantedCert]:
            current = haloyd.publisher.current
            return wanted_from_snapshot(current, config.api.domain) if current else []

        await haloyd.ready.wait()
        if acme:
            # HTTP-01 answers come from the API listener: an order placed before it listens
            # fails validation and backs off for minutes.
            await wait_listening(Listen.parse(config.api.listen).backend, API_START_TIMEOUT_S)
        async with asyncio.TaskGroup() as tg:
            if acme:
                issuer = AcmeIssuer(config.acme, certs, challenges)
                manager = CertificateManager(certs, issuer, on_change=on_change,
                                             on_event=on_event)
                tg.create_task(manager.run(wanted, wake), name="certificates")
            generation = -1
            while True:
                current = haloyd.publisher.current
                seen = current.generation if current else 0
                if seen != generation:
                    generation = seen
                    wake.set()
                    refresh_tls()
                await asyncio.sleep(GENERATION_POLL_S)

    return run


def with_serve_tasks(
    settings: ServeSettings, config: DaemonConfig, *, acme: bool = True
) -> tuple[ServeSettings, list[Extra]]:
    """Add the API and certificate tasks to `settings`; API only when a token exists."""
    paths = settings.paths
    certs = CertStore(paths.certs_dir)
    challenges = ChallengeStore()
    if not paths.env_file.exists():
        log.warning("API off: %s does not exist (run `haloyd init`)", paths.env_file)
        if acme and acme_requested(config.acme):
            log.warning("ACME off: HTTP-01 challenges are answered by the API listener")
        return settings, [cert_task(config, challenges, certs, acme=False)]
    token = read_token(paths.env_file)
    use_acme = acme and acme_requested(config.acme)
    log.info("ACME %s", f"on ({config.acme.effective_directory_url})" if use_acme else "off")
    extras = replace(listener_extras(config, token), tls_hosts=settings.extras.tls_hosts)
    return replace(settings, extras=extras), [
        api_task(config, token, challenges, certs),
        cert_task(config, challenges, certs, acme=use_acme),
    ]
