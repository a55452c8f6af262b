"""Operations checks for `haloyd verify`: units, port owners, the API through its domain, DNS.

Each check returns `haloy.daemon.verify.Check`s. The parsing of /proc is pure (tested on
text); the shells read /proc, the unit dir, DNS and the network with explicit timeouts.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Callable, Iterable
from pathlib import Path

import httpx

from haloy.api_probe import HEALTH_PATH
from haloy.daemon.verify import Check, Status

UNIT_DIR = Path("/etc/systemd/system")
UNITS = ("haloy-proxy.service", "haloyd.service")
# `systemctl enable` links the unit into the wants dir of its WantedBy= target.
WANTS_DIR = "multi-user.target.wants"
PROXY_PORTS = (80, 443)
PROXY_COMMAND = "haloy-proxy"
TCP_LISTEN = "0A"  # the LISTEN state in /proc/net/tcp (include/net/tcp_states.h)
API_TIMEOUT = 5.0


def check_units(unit_dir: Path = UNIT_DIR) -> list[Check]:
    """Both unit files are installed and enabled (linked from multi-user.target.wants)."""
    checks = []
    for unit in UNITS:
        name = f"unit {unit}"
        if not (unit_dir / unit).is_file():
            checks.append(Check(name, Status.FAIL, "not installed (run scripts/install-server.sh)"))
        elif not (unit_dir / WANTS_DIR / unit).exists():
            detail = f"installed, not enabled (systemctl enable {unit})"
            checks.append(Check(name, Status.FAIL, detail))
        else:
            checks.append(Check(name, Status.PASS, "installed and enabled"))
    return checks


def listening_inodes(proc_net_tcp: str, port: int) -> set[int]:
    """Socket inodes listening on `port` in the text of /proc/net/tcp or tcp6."""
    inodes = set()
    for line in proc_net_tcp.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != TCP_LISTEN:
            continue
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port:
            inodes.add(int(fields[9]))
    return inodes


def is_proxy_command(cmdline: bytes) -> bool:
    """True if a /proc/<pid>/cmdline is haloy-proxy (the script, or `python -m haloy.proxy`)."""
    args = [a.decode(errors="replace") for a in cmdline.split(b"\0") if a]
    return any(Path(a).name == PROXY_COMMAND or a == "haloy.proxy" for a in args[:3])


def socket_owners(inodes: set[int], proc: Path = Path("/proc")) -> dict[int, bytes]:
    """pid -> cmdline of every process holding one of the socket `inodes` open."""
    wanted = {f"socket:[{i}]" for i in inodes}
    owners: dict[int, bytes] = {}
    for pid_dir in proc.iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            fds = list((pid_dir / "fd").iterdir())
            if any(_readlink(fd) in wanted for fd in fds):
                owners[int(pid_dir.name)] = (pid_dir / "cmdline").read_bytes()
        except OSError:
            continue  # the process ended, or belongs to a user we may not inspect
    return owners


def _readlink(path: Path) -> str:
    try:
        return str(path.readlink())
    except OSError:
        return ""


def check_port_owner(port: int, proc: Path = Path("/proc")) -> Check:
    """The TCP `port` is listened on, and only by haloy-proxy processes."""
    name = f"port {port}"
    inodes: set[int] = set()
    for table in ("tcp", "tcp6"):
        try:
            inodes |= listening_inodes((proc / "net" / table).read_text(), port)
        except OSError:
            continue
    if not inodes:
        return Check(name, Status.FAIL, "nothing listens (is haloy-proxy running?)")
    owners = socket_owners(inodes, proc)
    if not owners:
        # Reading another user's /proc/<pid>/fd needs root (CAP_SYS_PTRACE).
        return Check(name, Status.WARN, "listening, owner not visible (run as root)")
    strangers = {pid: cmd for pid, cmd in owners.items() if not is_proxy_command(cmd)}
    if strangers:
        pid, cmd = next(iter(strangers.items()))
        what = cmd.replace(b"\0", b" ").decode(errors="replace").strip()[:80]
        return Check(name, Status.FAIL, f"held by pid {pid} ({what}), not haloy-proxy")
    return Check(name, Status.PASS, f"haloy-proxy (pid {', '.join(map(str, sorted(owners)))})")


def check_api_domain(
    domain: str | None,
    port: int = 443,
    *,
    verify: ssl.SSLContext | bool = True,
    timeout: float = API_TIMEOUT,
) -> Check:
    """The API answers /health through the proxy at https://<domain> with a valid certificate."""
    if not domain:
        return Check("api domain", Status.WARN, "no api.domain set: the API is loopback-only")
    url = f"https://{domain}" + ("" if port == 443 else f":{port}") + HEALTH_PATH
    name = f"api {url}"
    try:
        with httpx.Client(timeout=timeout, verify=verify, follow_redirects=False) as client:
            resp = client.get(url)
    except httpx.ConnectError as exc:
        # httpx reports a failed certificate check as a ConnectError wrapping ssl's error.
        if isinstance(exc.__context__, ssl.SSLCertVerificationError) or "CERTIFICATE" in str(exc):
            return Check(name, Status.FAIL, f"certificate not valid: {exc}")
        return Check(name, Status.FAIL, f"unreachable: {exc}")
    except httpx.HTTPError as exc:
        return Check(name, Status.FAIL, f"{type(exc).__name__}: {exc}")
    if not resp.is_success:
        return Check(name, Status.FAIL, f"HTTP {resp.status_code}")
    return Check(name, Status.PASS, f"HTTP {resp.status_code}, certificate valid")


def resolve(domain: str) -> list[str]:
    """Every address `domain` resolves to (empty if it does not resolve)."""
    try:
        infos = socket.getaddrinfo(domain, None, type=socket.SOCK_STREAM)
    except OSError:
        return []
    return sorted({str(info[4][0]) for info in infos})


def is_local_address(address: str) -> bool:
    """True if this machine holds `address`: binding to it succeeds only then."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((address, 0))
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                return False
            raise
    return True


def dns_verdict(
    domain: str, addresses: Iterable[str], is_local: Callable[[str], bool]
) -> Check:
    """Warn unless every address of `domain` is one of this machine's (never a failure)."""
    name = f"dns {domain}"
    addresses = list(addresses)
    if not addresses:
        return Check(name, Status.WARN, "does not resolve; point an A/AAAA record here")
    foreign = [a for a in addresses if not is_local(a)]
    if foreign:
        # Behind NAT or a load balancer this is expected; say what we saw, do not fail.
        return Check(name, Status.WARN, f"{', '.join(foreign)} not on this machine (NAT?)")
    return Check(name, Status.PASS, f"resolves here ({', '.join(addresses)})")


def check_dns(domain: str | None) -> Check | None:
    """DNS of the API domain points at this machine (a warning at worst); None if no domain."""
    if not domain:
        return None
    return dns_verdict(domain, resolve(domain), is_local_address)


def listen_port(listen: str) -> int | None:
    """The port of a `HOST:PORT` / `:PORT` listen value; None for "off"."""
    if listen == "off":
        return None
    return int(listen.rsplit(":", 1)[1])


def installed(unit_dir: Path = UNIT_DIR) -> bool:
    """True when this machine runs haloy from systemd units (install-server.sh was run)."""
    return any((unit_dir / unit).is_file() for unit in UNITS)


def run_ops_checks(
    api_domain: str | None,
    *,
    unit_dir: Path = UNIT_DIR,
    ports: Iterable[int] = PROXY_PORTS,
    https_port: int = 443,
) -> list[Check]:
    """Every operations check, in the order a person would fix them."""
    checks = check_units(unit_dir)
    checks.extend(check_port_owner(port) for port in ports)
    dns = check_dns(api_domain)
    if dns is not None:
        checks.append(dns)
    checks.append(check_api_domain(api_domain, https_port))
    return checks
