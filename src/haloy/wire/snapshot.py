"""The route snapshot: the versioned JSON contract between haloyd and haloy-proxy.

haloyd builds a `Snapshot`, writes it to `Paths.snapshot_file` (atomically), then pushes it
over the proxy's control socket. The proxy validates it, compiles it into its immutable route
table and swaps that in; an invalid snapshot is rejected with a reason and the old one kept.

    {
      "schema_version": 1,
      "generation": 42,                       # monotonically increasing per publisher
      "api": {"domain": "api.example.com",    # optional; API domain and its backend
              "backend": {"address": "127.0.0.1", "port": 9922},
              "forward_key": "9f2c..."},      # optional; sent as X-Haloy-Forward-Key
      "acme_challenge_backend": {"address": "127.0.0.1", "port": 9922},   # optional
      "trusted_proxies": ["10.0.0.0/8"],      # optional; peers whose X-Forwarded-* are kept
      "routes": [
        {"app": "web",
         "domain": "example.com",             # canonical domain
         "aliases": ["www.example.com"],      # 301 to the canonical domain
         "backends": [
            {"address": "172.18.0.5", "port": 8080, "deployment_id": "01J...",
             "state": "active"},              # active | draining
         ],
         "paused": false,                     # hold requests (replace deploys)
         "hold_when_empty": false,            # hold instead of 502 when no active backend
         "hold_timeout": 30.0,                # seconds a held request waits at most
         "drain_grace": 30.0,                 # seconds before draining tunnels are closed
         "tls": true}                         # redirect plain HTTP to HTTPS when TLS is on
      ]
    }

`config_hash` is the SHA-256 of the canonical JSON (sorted keys, no spaces) so haloyd can tell
whether the proxy runs what it last published.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from haloy.wire.names import APP_NAME_RULE, DEPLOYMENT_ID_RULE, is_app_name, is_deployment_id

SCHEMA_VERSION: Final = 1
# A held request waits at most this long by default: long enough for a replace deploy of a
# small app to start and pass its first health check, short of typical client timeouts (60 s).
DEFAULT_HOLD_TIMEOUT = 30.0
# Draining WebSocket tunnels get this long to finish before a clean close.
DEFAULT_DRAIN_GRACE = 30.0

_HOST_RE = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$")


class SnapshotError(ValueError):
    """The snapshot is invalid; the message says why."""


def ip_networks(cidrs: tuple[str, ...]) -> tuple[str, ...]:
    """`cidrs` unchanged if each is an IP network (a bare address too); ValueError naming the
    first that is not."""
    for cidr in cidrs:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ValueError(f"{cidr!r} is not an IP network (e.g. 10.0.0.0/8)") from None
    return cidrs


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Endpoint(_Model):
    address: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)


class Backend(Endpoint):
    deployment_id: str = ""  # "" for a backend haloyd did not deploy
    state: Literal["active", "draining"] = "active"

    @field_validator("deployment_id")
    @classmethod
    def _deployment_id(cls, v: str) -> str:
        # It becomes a status field and a Prometheus label value: only the names haloyd makes.
        if v and not is_deployment_id(v):
            raise ValueError(f"invalid deployment id {v!r}; use {DEPLOYMENT_ID_RULE}")
        return v


# The field haloy-proxy adds to every request it forwards to haloyd's API, carrying
# `ApiRoute.forward_key`: haloyd believes the X-Forwarded-For of a request only with it, so a
# local process cannot pose as many clients to dodge the API's rate limit.
FORWARD_KEY_HEADER: Final = "X-Haloy-Forward-Key"


class ApiRoute(_Model):
    domain: str | None = None
    backend: Endpoint
    forward_key: str = Field(default="", pattern=r"^[0-9a-f]*$", max_length=128)


def _host(value: str) -> str:
    host = value.strip().lower().rstrip(".")
    if not _HOST_RE.match(host):
        raise ValueError(f"invalid host name {value!r}")
    return host


class Route(_Model):
    app: str
    domain: str
    aliases: tuple[str, ...] = ()
    backends: tuple[Backend, ...] = ()
    paused: bool = False
    hold_when_empty: bool = False
    hold_timeout: float = Field(default=DEFAULT_HOLD_TIMEOUT, gt=0, le=600)
    drain_grace: float = Field(default=DEFAULT_DRAIN_GRACE, ge=0, le=3600)
    tls: bool = False

    @field_validator("app")
    @classmethod
    def _app(cls, v: str) -> str:
        if not is_app_name(v):
            raise ValueError(f"invalid app name {v!r}; use {APP_NAME_RULE}")
        return v

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        return _host(v)

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_host(a) for a in v)


class Snapshot(_Model):
    schema_version: Literal[1] = SCHEMA_VERSION
    generation: int = Field(default=0, ge=0)
    api: ApiRoute | None = None
    acme_challenge_backend: Endpoint | None = None
    routes: tuple[Route, ...] = ()
    # Peers (CIDRs) whose forwarding fields are kept and appended to: a load balancer or CDN in
    # front of haloy-proxy (haloyd.yaml proxy.trusted_proxies). Everyone else's are replaced.
    trusted_proxies: tuple[str, ...] = ()

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return ip_networks(v)

    def canonical_json(self) -> bytes:
        """Canonical bytes: what is hashed, written and pushed."""
        return json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":")
        ).encode()

    @property
    def config_hash(self) -> str:
        return hashlib.sha256(self.canonical_json()).hexdigest()


def parse_snapshot(data: bytes | str | dict[str, object]) -> Snapshot:
    """Validate a snapshot; raise SnapshotError naming the first problems."""
    try:
        if isinstance(data, dict):
            snap = Snapshot.model_validate(data)
        else:
            snap = Snapshot.model_validate_json(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
            for e in exc.errors()[:5]
        )
        raise SnapshotError(f"invalid route snapshot: {problems}") from exc
    seen: dict[str, str] = {}
    for route in snap.routes:
        for host in (route.domain, *route.aliases):
            if host in seen:
                raise SnapshotError(
                    f"invalid route snapshot: host {host!r} claimed by {seen[host]!r} "
                    f"and {route.app!r}"
                )
            seen[host] = route.app
    return snap


def write_snapshot(path: Path, snap: Snapshot) -> None:
    """Write atomically (temp file + fsync + rename), mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, snap.canonical_json())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_snapshot(path: Path) -> Snapshot | None:
    """The last snapshot on disk, or None when there is none yet."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    return parse_snapshot(raw)
