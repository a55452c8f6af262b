"""Timeouts and size limits of the data plane, as named defaults with the reason for each."""

from __future__ import annotations

from dataclasses import dataclass

# A client gets this long to send a complete request head (slowloris defence); nginx's
# client_header_timeout is 60 s, but a head that needs more than 15 s on any real link is hostile.
HEADER_TIMEOUT = 15.0
# Idle keep-alive client connections are closed after this long (nginx keepalive_timeout 75 s,
# Go net/http IdleTimeout commonly 60 s).
KEEPALIVE_TIMEOUT = 60.0
# Opening a TCP connection to a container on a local bridge takes well under a millisecond.
# A replica killed a moment ago leaves an address nothing answers (no RST, ARP gives up only
# after ~3 s), so a long timeout stalls requests. 1.5 s still lets one SYN retransmission
# (initial RTO 1 s, RFC 6298) reach a backend whose accept queue overflowed for an instant;
# on timeout the request moves to the next backend (nothing was sent yet) and this one is ejected.
CONNECT_TIMEOUT = 1.5
# Time from the last request byte sent to the backend's response head (nginx
# proxy_read_timeout 60 s).
RESPONSE_HEADER_TIMEOUT = 60.0
# Once the response head arrived, the backend may be silent this long between two reads before
# the exchange is cut off (nginx proxy_read_timeout 60 s); the response-head wait counts from
# the last request byte sent, so a slow upload is not cut short.
READ_TIMEOUT = 60.0
# A request body that stops arriving for this long gets 408 (nginx client_body_timeout 60 s).
BODY_TIMEOUT = 60.0
# Idle pooled upstream connections are dropped after this long, below the 75 s keep-alive
# that common app servers (nginx, gunicorn's 2 s excepted) use, so we rarely reuse a closed one.
UPSTREAM_IDLE_TIMEOUT = 30.0
# Idle connections kept per backend. It must cover the backend's peak concurrency: a burst of
# N simultaneous requests opens N connections, and whatever the pool cannot keep is closed and
# reopened on the next burst. Measured (bench/proxy c1000, 1,000 keep-alive clients): a cap of
# 64 or 256 churned connections at 3x nginx's CPU per request, 1,024 matched nginx. Traefik keeps
# 200 per host, HAProxy's pool is unbounded; idle ones still go after UPSTREAM_IDLE_TIMEOUT.
UPSTREAM_MAX_IDLE = 1024
# Request head size cap; nginx large_client_header_buffers 4×8k, Node 16 KiB, Go 1 MiB.
MAX_HEADER_BYTES = 32 * 1024
# Request-line (URL) cap: nginx answers 414 beyond 8 KiB by default.
MAX_URL_BYTES = 8 * 1024
# Concurrent client connections per worker; far above what one core serves, a guard only.
MAX_CONNECTIONS = 20_000
# A backend that refused a connection is skipped this long (passive ejection).
EJECT_SECONDS = 5.0
# Requests held per route while it is paused or empty; beyond this they get 503 at once.
HOLD_QUEUE = 1024
# Graceful shutdown: in-flight requests get this long after SIGTERM.
SHUTDOWN_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Limits:
    """Every timeout and limit the proxy enforces."""

    header_timeout: float = HEADER_TIMEOUT
    keepalive_timeout: float = KEEPALIVE_TIMEOUT
    connect_timeout: float = CONNECT_TIMEOUT
    response_header_timeout: float = RESPONSE_HEADER_TIMEOUT
    read_timeout: float = READ_TIMEOUT
    body_timeout: float = BODY_TIMEOUT
    upstream_idle_timeout: float = UPSTREAM_IDLE_TIMEOUT
    upstream_max_idle: int = UPSTREAM_MAX_IDLE
    max_header_bytes: int = MAX_HEADER_BYTES
    max_url_bytes: int = MAX_URL_BYTES
    max_connections: int = MAX_CONNECTIONS
    eject_seconds: float = EJECT_SECONDS
    hold_queue: int = HOLD_QUEUE
    shutdown_timeout: float = SHUTDOWN_TIMEOUT
