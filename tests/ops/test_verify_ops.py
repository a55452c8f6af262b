"""Operations checks for `haloyd verify`: pure parsing in memory, the rest on real sockets."""

from __future__ import annotations

import http.server
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from haloy.daemon.verify import Status
from haloy.daemon.verify_ops import (
    UNITS,
    WANTS_DIR,
    check_api_domain,
    check_port_owner,
    check_units,
    dns_verdict,
    is_local_address,
    is_proxy_command,
    listening_inodes,
    resolve,
)
from tests.fixtures.proxy import ProxyProcess

PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 4242 1
   1: 0100007F:26C2 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1
   2: 0100007F:0050 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000   999        0 0 1
"""


def test_listening_inodes_takes_only_listeners_on_the_port() -> None:
    assert listening_inodes(PROC_NET_TCP, 80) == {4242}
    assert listening_inodes(PROC_NET_TCP, 9922) == {77}
    assert listening_inodes(PROC_NET_TCP, 443) == set()


@pytest.mark.parametrize(
    ("cmdline", "expected"),
    [
        (b"/opt/haloy/0.1.0/bin/python\0/usr/local/bin/haloy-proxy\0serve\0", True),
        (b"/opt/haloy/current/bin/python\0-m\0haloy.proxy\0serve\0--reuse-port\0", True),
        (b"nginx: master process /usr/sbin/nginx\0", False),
        (b"/usr/bin/python3\0-m\0http.server\0haloy-proxy\0", False),
    ],
)
def test_is_proxy_command(cmdline: bytes, expected: bool) -> None:
    assert is_proxy_command(cmdline) is expected


def test_units_installed_then_enabled(tmp_path: Path) -> None:
    assert [c.status for c in check_units(tmp_path)] == [Status.FAIL, Status.FAIL]
    for unit in UNITS:
        (tmp_path / unit).write_text("[Service]\n")
    checks = check_units(tmp_path)
    assert all(c.status is Status.FAIL and "not enabled" in c.detail for c in checks)
    (tmp_path / WANTS_DIR).mkdir()
    for unit in UNITS:
        (tmp_path / WANTS_DIR / unit).symlink_to(tmp_path / unit)
    assert [c.status for c in check_units(tmp_path)] == [Status.PASS, Status.PASS]


def test_port_owned_by_a_real_haloy_proxy(haloy_proxy: ProxyProcess) -> None:
    check = check_port_owner(haloy_proxy.http_port)
    assert check.status is Status.PASS, check
    assert str(haloy_proxy.proc.pid) in check.detail


def test_port_held_by_another_process_fails() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        check = check_port_owner(server.getsockname()[1])
    assert check.status is Status.FAIL
    assert f"pid {os.getpid()}" in check.detail


def test_port_nobody_listens_on_fails() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    check = check_port_owner(port)
    assert (check.status, check.detail.split(" (")[0]) == (Status.FAIL, "nothing listens")


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_api(ca: trustme.CA) -> Iterator[int]:
    """A real HTTPS server for `localhost` answering /health; yields its port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(ctx)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_api_domain_with_a_valid_certificate(ca: trustme.CA, tls_api: int) -> None:
    client = ssl.create_default_context()
    ca.configure_trust(client)
    check = check_api_domain("localhost", tls_api, verify=client)
    assert check.status is Status.PASS, check


def test_api_domain_with_an_untrusted_certificate_fails(tls_api: int) -> None:
    check = check_api_domain("localhost", tls_api, verify=ssl.create_default_context())
    assert check.status is Status.FAIL
    assert "certificate not valid" in check.detail


def test_api_domain_unset_is_a_warning() -> None:
    assert check_api_domain(None).status is Status.WARN


def test_dns_verdicts() -> None:
    assert dns_verdict("a.example", [], is_local_address).status is Status.WARN
    assert dns_verdict("a.example", ["127.0.0.1"], is_local_address).status is Status.PASS
    # 203.0.113.0/24 is TEST-NET-3 (RFC 5737): never an address of this machine.
    far = dns_verdict("a.example", ["127.0.0.1", "203.0.113.5"], is_local_address)
    assert far.status is Status.WARN and "203.0.113.5" in far.detail


def test_resolve_and_local_address_for_real() -> None:
    assert "127.0.0.1" in resolve("localhost")
    assert is_local_address("127.0.0.1")
    assert not is_local_address("203.0.113.5")
