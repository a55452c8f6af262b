"""haloyd.yaml: the daemon's settings (API, health monitor, proxy listeners, ACME).

Unknown keys are rejected; every problem names file:line:field. Defaults are the constants
below, so a missing or empty file means "all defaults".
"""

from __future__ import annotations

import ipaddress
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from haloy.config.domains import normalize_domain
from haloy.config.durations import Duration
from haloy.config.problems import validate_document
from haloy.config.source import read_document
from haloy.wire.snapshot import ip_networks

DEFAULT_API_LISTEN = "127.0.0.1:9922"  # loopback only: the world reaches the API via the proxy
DEFAULT_HTTP_LISTEN = ":80"
DEFAULT_HTTPS_LISTEN = ":443"
LETSENCRYPT_PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory"
LETSENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
DEFAULT_HEALTH_INTERVAL = timedelta(seconds=15)
DEFAULT_HEALTH_TIMEOUT = timedelta(seconds=5)
# Three misses to mark a backend down and two passes to bring it back, as HAProxy's defaults
# (fall 3, rise 2): one slow probe must not flap a route.
DEFAULT_HEALTH_FALL = 3
DEFAULT_HEALTH_RISE = 2
DEFAULT_HEALTH_CONCURRENCY = 10  # probes in flight at once; bounds load on a busy server
LISTEN_OFF = "off"
# Host directories below this may be bind-mounted by any deploy; /srv is the FHS home of
# "data served by this system", and nothing of the OS or of haloy lives under it.
DEFAULT_BIND_ROOT = Path("/srv/haloy")

# RFC 4648 §5 alphabet; CAs hand EAB keys out unpadded, some with "=" padding.
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")

_HINT = "fix haloyd.yaml (see `haloyd config get`), then run `haloyd verify`"


def check_listen(value: str, *, allow_off: bool = False) -> str:
    """Validate "HOST:PORT", ":PORT" or "[v6]:PORT" (and "off" where allowed)."""
    if allow_off and value == LISTEN_OFF:
        return value
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"invalid listen address {value!r}; use HOST:PORT, e.g. 127.0.0.1:9922")
    host = host.removeprefix("[").removesuffix("]")
    if host and host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(
                f"invalid listen host {host!r}; use an IP address, localhost or leave it empty"
            ) from None
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiSettings(_Section):
    """The haloyd REST API: its public domain (served through the proxy) and loopback listener."""

    domain: str | None = Field(default=None, description="Public host name of the API.")
    listen: str = Field(default=DEFAULT_API_LISTEN, description="HOST:PORT haloyd binds.")

    @field_validator("domain", mode="before")
    @classmethod
    def _domain(cls, value: object) -> object:
        if value is None or value == "":
            return None
        if isinstance(value, str):
            return normalize_domain(value)
        return value

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        return check_listen(value)


class HealthMonitorSettings(_Section):
    """Active health checks of app containers."""

    enabled: bool = True
    interval: Duration = DEFAULT_HEALTH_INTERVAL
    fall: int = Field(default=DEFAULT_HEALTH_FALL, ge=1)
    rise: int = Field(default=DEFAULT_HEALTH_RISE, ge=1)
    timeout: Duration = DEFAULT_HEALTH_TIMEOUT
    concurrency: int = Field(default=DEFAULT_HEALTH_CONCURRENCY, ge=1)

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("interval must be greater than 0")
        return value


class ProxySettings(_Section):
    """Where haloy-proxy listens."""

    http_listen: str = DEFAULT_HTTP_LISTEN
    https_listen: str = Field(default=DEFAULT_HTTPS_LISTEN, description='HOST:PORT or "off".')
    workers: int = Field(default=1, ge=1, le=256)
    trusted_proxies: tuple[str, ...] = Field(
        default=(),
        description="CIDRs of load balancers or CDNs in front of haloy-proxy: their "
        "X-Forwarded-* fields are kept (everyone else's are replaced).",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return ip_networks(value)

    @field_validator("http_listen")
    @classmethod
    def _http(cls, value: str) -> str:
        return check_listen(value)

    @field_validator("https_listen")
    @classmethod
    def _https(cls, value: str) -> str:
        return check_listen(value, allow_off=True)


class AcmeSettings(_Section):
    """Certificate issuance through ACME (Let's Encrypt by default)."""

    directory_url: str = LETSENCRYPT_PRODUCTION
    staging: bool = Field(default=False, description="Use Let's Encrypt staging instead.")
    email: str | None = None
    ca_bundle: Path | None = Field(default=None, description="CA file to trust the ACME server.")
    eab_kid: str | None = Field(
        default=None, description="External account binding: the key id the CA gave you."
    )
    # validate_default: a kid without a key must fail even when the key line is absent.
    eab_hmac_key: str | None = Field(
        default=None, validate_default=True,
        description="External account binding: the HMAC key the CA gave you (base64url).",
    )

    @field_validator("directory_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"directory_url must be an http(s) URL, got {value!r}")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and (value.count("@") != 1 or value.startswith("@")):
            raise ValueError(f"invalid email address {value!r}")
        return value or None

    @field_validator("eab_kid")
    @classmethod
    def _eab_kid(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("eab_hmac_key")
    @classmethod
    def _eab_hmac_key(cls, value: str | None, info: ValidationInfo) -> str | None:
        # RFC 8555 §7.3.4: the binding needs both; one alone is a half-pasted credential.
        # The key is a secret: messages never repeat it.
        value = value.strip() or None if value is not None else None
        kid = info.data.get("eab_kid")
        if value is None:
            if kid:
                raise ValueError("eab_kid is set but eab_hmac_key is missing; "
                                 "external account binding needs both")
            return None
        if not kid and "eab_kid" in info.data:
            raise ValueError("eab_hmac_key is set but eab_kid is missing; "
                             "external account binding needs both")
        if not _BASE64URL.fullmatch(value) or len(value.rstrip("=")) % 4 == 1:
            raise ValueError("eab_hmac_key must be base64url (A-Z a-z 0-9 - _), "
                             "as the CA gives it")
        return value

    @property
    def effective_directory_url(self) -> str:
        """The directory to use: LE staging when `staging` is set and no custom URL is given."""
        if self.staging and self.directory_url == LETSENCRYPT_PRODUCTION:
            return LETSENCRYPT_STAGING
        return self.directory_url


class ContainerSettings(_Section):
    """What a deploy request may ask of the host (the API token is not root on the host)."""

    bind_root: Path = Field(
        default=DEFAULT_BIND_ROOT,
        description="Host paths below this may be bind-mounted (not the OS's or haloy's own).",
    )
    allowed_host_paths: tuple[Path, ...] = Field(
        default=(),
        description="More host paths (each with what is below it) a deploy may bind-mount; "
        "the only way to allow /, /etc, the Docker socket or haloy's own directories.",
    )

    @field_validator("bind_root")
    @classmethod
    def _root(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError(f"bind_root must be an absolute path, got {str(value)!r}")
        return value

    @field_validator("allowed_host_paths")
    @classmethod
    def _paths(cls, value: tuple[Path, ...]) -> tuple[Path, ...]:
        relative = [str(p) for p in value if not p.is_absolute()]
        if relative:
            raise ValueError(f"host paths must be absolute: {', '.join(relative)}")
        return value


class DaemonConfig(_Section):
    """The whole of haloyd.yaml."""

    api: ApiSettings = ApiSettings()
    health_monitor: HealthMonitorSettings = HealthMonitorSettings()
    proxy: ProxySettings = ProxySettings()
    acme: AcmeSettings = AcmeSettings()
    containers: ContainerSettings = ContainerSettings()

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        # `api:` with every line commented out parses as None; treat it as "all defaults".
        if isinstance(data, dict):
            return {k: ({} if v is None and k in cls.model_fields else v) for k, v in data.items()}
        return data


def load_daemon_config(path: Path) -> DaemonConfig:
    """Read and validate haloyd.yaml; ConfigError lists every problem as file:line: field."""
    doc = read_document(Path(path))
    return validate_document(DaemonConfig, doc, hint=_HINT)


def default_daemon_yaml(api_domain: str | None = None) -> str:
    """The commented haloyd.yaml `haloyd init` writes (the value is quoted, not validated)."""
    domain_line = (
        f"  domain: {json.dumps(api_domain)}"
        if api_domain
        else "  # domain: api.example.com   # set to serve the API over HTTPS"
    )
    return f"""\
# haloyd.yaml: settings of the haloy daemon. Durations: 15s, 500ms, 1m.
api:
{domain_line}
  listen: "{DEFAULT_API_LISTEN}"
health_monitor:
  enabled: true
  interval: 15s
  fall: {DEFAULT_HEALTH_FALL}
  rise: {DEFAULT_HEALTH_RISE}
  timeout: 5s
  concurrency: {DEFAULT_HEALTH_CONCURRENCY}
proxy:
  http_listen: "{DEFAULT_HTTP_LISTEN}"
  https_listen: "{DEFAULT_HTTPS_LISTEN}"
  workers: 1
  trusted_proxies: []   # CIDRs of a load balancer or CDN in front, e.g. ["10.0.0.0/8"]
acme:
  directory_url: "{LETSENCRYPT_PRODUCTION}"
  staging: false
  # email: you@example.com
  # ca_bundle: /path/to/ca.pem
  # CAs that require external account binding (ZeroSSL, Google Trust Services) give both:
  # eab_kid: "..."
  # eab_hmac_key: "..."
containers:
  # Deploys may bind-mount host paths below bind_root, and named volumes; never the OS's
  # or haloy's own directories unless listed in allowed_host_paths.
  bind_root: "{DEFAULT_BIND_ROOT}"
  allowed_host_paths: []
"""
