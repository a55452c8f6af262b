"""The name a registry login is filed under, spelled the same by the CLI and haloyd.

`haloy server registry logout <server>` puts it in the API path, haloyd files logins under it
and picks the login an image's pull uses by it; Docker Hub's several names count as one.
"""

from __future__ import annotations

# Docker Hub answers to several names; the engine's own credential store files them all here.
DOCKER_HUB = "docker.io"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io",
                          "https://index.docker.io/v1/"})


def normalize_server(server: str) -> str:
    """A registry's canonical name: no scheme, no path, Docker Hub's aliases folded together."""
    raw = server.strip()
    if raw in _HUB_ALIASES:
        return DOCKER_HUB
    host = raw.removeprefix("https://").removeprefix("http://").split("/", 1)[0].lower()
    return DOCKER_HUB if host in _HUB_ALIASES else host


def registry_of(image: str) -> str:
    """The registry an image reference pulls from (Docker's rule: a dot, a port or localhost)."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return normalize_server(first)
    return DOCKER_HUB
