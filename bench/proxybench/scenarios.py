"""The benchmark scenarios: what wrk sends, to which port, with how many proxy workers."""

from __future__ import annotations

from dataclasses import dataclass

from .configs import BIG_PATH
from .tlsfiles import HOST

# About 700 bytes of request head, like a browser's navigation: UA, accept lists, cookies.
BROWSER_HEADERS: tuple[str, ...] = (
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
    "Accept-Language: en-US,en;q=0.9,de;q=0.8",
    "Accept-Encoding: gzip, deflate, br, zstd",
    "Cookie: _ga=GA1.1.1234567890.1732600000; "
    "session=eyJ1c2VyIjoxMjM0NSwicm9sZSI6ImFkbWluIn0.Zk3Jtw.abcdefghijklmnopqrstuvw; "
    "csrftoken=Q8s7dK2lP0xYzW3vB5nM1aR4tE6yU9iO; theme=dark",
    "Sec-Fetch-Dest: document",
    "Sec-Fetch-Mode: navigate",
    "Sec-Fetch-Site: same-origin",
    'sec-ch-ua: "Chromium";v="131", "Not_A Brand";v="24"',
    'sec-ch-ua-platform: "Linux"',
)
# wrk ignores "Connection:close" without the space.
CLOSE = "Connection: close"


@dataclass(frozen=True)
class Scenario:
    """One wrk load shape; `unit` names what CPU time is divided by."""

    key: str
    title: str
    path: str = "/"
    connections: int = 50
    threads: int = 1
    headers: tuple[str, ...] = ()
    https: bool = False
    workers: int = 1
    unit: str = "req"
    # wrk resumes TLS sessions on reconnect; True makes every handshake a full one.
    full_handshake: bool = False

    def all_headers(self) -> tuple[str, ...]:
        """Headers for wrk: the Host every proxy routes on, then the scenario's own."""
        return (f"Host: {HOST}", *self.headers)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("keepalive", "plain HTTP keep-alive, tiny body"),
    Scenario("headers", "keep-alive, browser-like request headers", headers=BROWSER_HEADERS),
    Scenario("close", "new connection per request", headers=(CLOSE,), unit="conn"),
    Scenario("c1000", "keep-alive, 1,000 connections", connections=1000),
    Scenario("big", "keep-alive, 100 KiB responses", path=BIG_PATH),
    Scenario("workers2", "keep-alive, 2 workers each", workers=2),
    Scenario("https", "HTTPS keep-alive, tiny body", https=True),
    Scenario(
        "handshake",
        "HTTPS new connection per request (full handshake)",
        headers=(CLOSE,),
        https=True,
        unit="handshake",
    ),
)
IDLE_KEY = "idle"
ALL_KEYS = (*(s.key for s in SCENARIOS), IDLE_KEY)


def head_size(scenario: Scenario) -> int:
    """Approximate request head bytes wrk sends for this scenario."""
    lines = [f"GET {scenario.path} HTTP/1.1", *scenario.all_headers()]
    return sum(len(line) + 2 for line in lines) + 2
