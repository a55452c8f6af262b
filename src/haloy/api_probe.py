"""Asks a haloyd API whether it is up: `GET <base>/health`, with a bounded timeout."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

HEALTH_PATH = "/health"
# Any authenticated, side-effect-free endpoint tells whether a token is accepted.
TOKEN_CHECK_PATH = "/v1/version"
DEFAULT_TIMEOUT = 5.0


@dataclass(frozen=True)
class ProbeResult:
    """What `GET /health` gave: unreachable (no HTTP answer), or a status code."""

    url: str
    reachable: bool
    status: int | None
    detail: str

    @property
    def healthy(self) -> bool:
        """True when the server answered 2xx."""
        return self.status is not None and 200 <= self.status < 300


def listen_to_base_url(listen: str) -> str:
    """`127.0.0.1:9922` or `:9922` → `http://127.0.0.1:9922` (an empty host is loopback)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"  # a wildcard bind still answers on loopback
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def probe_health(
    base_url: str, timeout: float = DEFAULT_TIMEOUT, *, trust_env: bool = True
) -> ProbeResult:
    """GET `<base_url>/health`; connection and TLS failures become an unreachable result."""
    url = base_url.rstrip("/") + HEALTH_PATH
    try:
        # trust_env=False for loopback probes: an HTTP(S)_PROXY must not intercept them.
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=trust_env) as client:
            resp = client.get(url)
    except httpx.HTTPError as exc:
        return ProbeResult(url, False, None, f"{type(exc).__name__}: {exc}".rstrip(": "))
    return ProbeResult(url, True, resp.status_code, f"HTTP {resp.status_code}")


def probe_token(base_url: str, token: str, timeout: float = DEFAULT_TIMEOUT) -> ProbeResult:
    """GET an authenticated endpoint with `token`; 401/403 means the server rejects it."""
    url = base_url.rstrip("/") + TOKEN_CHECK_PATH
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            resp = client.get(url, headers=headers)
    except httpx.HTTPError as exc:
        return ProbeResult(url, False, None, f"{type(exc).__name__}: {exc}".rstrip(": "))
    return ProbeResult(url, True, resp.status_code, f"HTTP {resp.status_code}")
