"""Pre-flight DNS check before ordering: does the name point at this server?

Only ever a warning: CDNs and other proxies legitimately answer with their own addresses while
passing `/.well-known/acme-challenge/` through to us.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass

Resolver = Callable[[str], Awaitable[set[str]]]
RESOLVE_TIMEOUT = 5.0  # a resolver slower than this would also fail the CA's validation


@dataclass(frozen=True)
class DnsWarning:
    """Why a name may fail HTTP-01 validation, and what to do about it."""

    name: str
    message: str
    hint: str


async def system_resolve(name: str) -> set[str]:
    """Addresses of `name` from the system resolver."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    return {str(info[4][0]) for info in infos}


async def check_name(
    name: str, server_addresses: Collection[str] | None, resolve: Resolver = system_resolve
) -> DnsWarning | None:
    """A warning when `name` does not resolve, or resolves elsewhere; None when it looks right."""
    try:
        found = await asyncio.wait_for(resolve(name), RESOLVE_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        return DnsWarning(
            name,
            f"{name} does not resolve ({exc}); its certificate order will likely fail",
            f"create an A (and AAAA) record for {name} pointing to this server",
        )
    if server_addresses and not found & set(server_addresses):
        return DnsWarning(
            name,
            f"{name} resolves to {', '.join(sorted(found))}, not to this server "
            f"({', '.join(sorted(server_addresses))})",
            "fine behind a CDN or proxy that forwards /.well-known/acme-challenge/ to this "
            "server; otherwise point the DNS record here",
        )
    return None
