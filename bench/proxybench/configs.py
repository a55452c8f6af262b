"""Config files of the backend and the three peer proxies (pure text rendering).

Every proxy does the same work per request: keep-alive to the client and to the backend,
the original Host kept, X-Forwarded-For appended and X-Forwarded-Proto set, no access log.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

BACKEND_BODY = b"hello from the haloy bench backend\n"
BIG_PATH = "/100k"
BIG_SIZE = 100 * 1024
# Well above the 10,000 idle connections scenario; the hard RLIMIT_NOFILE here is 20,000.
MAX_CONNECTIONS = 19000


@dataclass(frozen=True)
class Listen:
    """Where one proxy listens and what it forwards to."""

    http_port: int
    https_port: int | None
    backend_port: int
    workers: int


@dataclass(frozen=True)
class TlsFiles:
    """One certificate for every proxy: chain, key, both in one file (haproxy), and the CA."""

    fullchain: Path
    privkey: Path
    combined: Path
    ca: Path


def _nginx_common(root: Path, workers: int) -> str:
    return f"""daemon off;
user root;
worker_processes {workers};
worker_rlimit_nofile 20000;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections {MAX_CONNECTIONS}; }}
"""


def _nginx_http_common(root: Path) -> str:
    return f"""    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    # nginx closes a client connection after 1000 requests by default; the others do not.
    keepalive_requests 1000000;
    keepalive_timeout 300s;
"""


def nginx_backend_conf(root: Path, port: int, www: Path) -> str:
    """The backend: nginx with its own worker returning a short body (and a 100 KiB file)."""
    body = BACKEND_BODY.decode().replace("\n", "\\n")
    return (
        _nginx_common(root, 1)
        + "http {\n"
        + _nginx_http_common(root)
        + f"""    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = {BIG_PATH} {{ root {www}; default_type application/octet-stream; }}
        location / {{ default_type text/plain; return 200 "{body}"; }}
    }}
}}
"""
    )


def nginx_proxy_conf(root: Path, listen: Listen, tls: TlsFiles | None) -> str:
    """nginx as reverse proxy: worker_processes N, upstream keepalive."""
    ssl = ""
    if listen.https_port is not None and tls is not None:
        ssl = f"""        listen 127.0.0.1:{listen.https_port} ssl backlog=4096;
        ssl_certificate {tls.fullchain};
        ssl_certificate_key {tls.privkey};
        ssl_protocols TLSv1.2 TLSv1.3;
"""
    return (
        _nginx_common(root, listen.workers)
        + "http {\n"
        + _nginx_http_common(root)
        + f"""    upstream backend {{
        server 127.0.0.1:{listen.backend_port};
        keepalive 128;
        keepalive_requests 1000000;
        keepalive_timeout 300s;
    }}
    server {{
        listen 127.0.0.1:{listen.http_port} backlog=4096;
{ssl}        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
        }}
    }}
}}
"""
    )


def haproxy_conf(root: Path, listen: Listen, tls: TlsFiles | None) -> str:
    """haproxy: nbthread N, http-reuse always."""
    ssl = ""
    if listen.https_port is not None and tls is not None:
        ssl = f"    bind 127.0.0.1:{listen.https_port} ssl crt {tls.combined} alpn http/1.1\n"
    return f"""global
    nbthread {listen.workers}
    maxconn {MAX_CONNECTIONS}
    # The hard fd limit here (20,000) is below what haproxy computes for this maxconn;
    # idle client connections need no server socket, so a warning is enough.
    no strict-limits
    pidfile {root}/haproxy.pid

defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s
    maxconn {MAX_CONNECTIONS}

frontend fe
    bind 127.0.0.1:{listen.http_port}
{ssl}    option forwardfor
    http-request set-header X-Forwarded-Proto https if {{ ssl_fc }}
    http-request set-header X-Forwarded-Proto http if !{{ ssl_fc }}
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    default_backend be

backend be
    http-reuse always
    server s1 127.0.0.1:{listen.backend_port}
"""


def caddyfile(root: Path, listen: Listen, tls: TlsFiles | None) -> str:
    """Caddy: reverse_proxy (keep-alive to the backend is its default); GOMAXPROCS via env."""
    https = ""
    if listen.https_port is not None and tls is not None:
        https = f"""
https://bench.local:{listen.https_port} {{
    bind 127.0.0.1
    tls {tls.fullchain} {tls.privkey}
    reverse_proxy 127.0.0.1:{listen.backend_port}
}}
"""
    return f"""{{
    admin off
    auto_https off
    storage file_system {root}/data
}}

http://:{listen.http_port} {{
    bind 127.0.0.1
    reverse_proxy 127.0.0.1:{listen.backend_port}
}}
{https}"""
