"""What a strict parser (h11) sees in a byte stream: requests as a server, responses as a client.

Pure functions, no I/O: the differential tests (test_differential.py) compare these views of
the client's bytes, of what the backend received and of what the client got back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import h11

# h11's default cap on an incomplete head is 16 KiB; the proxy allows 32 KiB heads, and the
# reference must not reject what a legitimate proxy may forward.
MAX_EVENT = 1 << 20


@dataclass
class Message:
    """One request as a parser saw it; `complete` is False when its body never ended."""

    method: bytes
    target: bytes
    version: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    complete: bool = False

    def values(self, name: bytes) -> list[bytes]:
        """Every value of field `name` (lower case), in order."""
        return [v for n, v in self.headers if n == name]

    def tokens(self, name: bytes) -> set[bytes]:
        """The comma-separated tokens of every `name` field, lower-cased."""
        return {t.strip().lower() for v in self.values(name) for t in v.split(b",") if t.strip()}


@dataclass
class RequestView:
    """The requests in a client's stream; `error` says why parsing stopped ("" at clean EOF)."""

    requests: list[Message]
    error: str = ""
    # The stream asked to close after the last complete request (Connection: close, or
    # HTTP/1.0 without keep-alive): any bytes after it are not requests.
    closed: bool = False
    # The method word of a request whose head the strict parser refused: a HEAD refused with
    # an error answer gets that answer without a body (RFC 9110 §9.3.2).
    refused_method: bytes = b""

    @property
    def complete(self) -> list[Message]:
        return [m for m in self.requests if m.complete]


def _message(ev: h11.Request) -> Message:
    return Message(ev.method, ev.target, ev.http_version, list(ev.headers))


def _wants_close(m: Message) -> bool:
    conn = m.tokens(b"connection")
    return b"close" in conn or (m.version == b"1.0" and b"keep-alive" not in conn)


def parse_requests(data: bytes) -> RequestView:
    """The requests h11 (as a server) reads from `data` followed by EOF.

    One h11 connection per request: h11 does not skip empty lines before a request-line, which
    RFC 9112 §2.2 says a server SHOULD; and h11 closes after HTTP/1.0 even with keep-alive,
    which RFC 9112 §9.3 allows to persist.
    """
    view = RequestView([])
    rest = data
    while True:
        # Empty lines before a request-line (RFC 9112 §2.2; a lone LF may end a line too).
        while rest[:1] == b"\n" or rest[:2] == b"\r\n":
            rest = rest[1:] if rest[:1] == b"\n" else rest[2:]
        if not rest:
            return view
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_EVENT)
        conn.receive_data(rest)
        conn.receive_data(b"")
        cur: Message | None = None
        try:
            while True:
                ev = conn.next_event()
                if isinstance(ev, h11.Request):
                    cur = _message(ev)
                    view.requests.append(cur)
                elif isinstance(ev, h11.Data):
                    assert cur is not None
                    cur.body += bytes(ev.data)
                elif isinstance(ev, h11.EndOfMessage):
                    assert cur is not None
                    cur.trailers = list(ev.headers)
                    cur.complete = True
                    break
                else:  # ConnectionClosed (NEED_DATA cannot follow EOF)
                    return view
        except h11.RemoteProtocolError as exc:
            where = f"the body of request {len(view.requests) - 1}" if cur else (
                f"the head of request {len(view.requests)}")
            view.error = f"{exc} (in {where})"
            if cur is None and rest.startswith(b"HEAD "):
                view.refused_method = b"HEAD"
            return view
        if _wants_close(cur):
            view.closed = True
            return view
        rest = conn.trailing_data[0]


@dataclass
class Answer:
    """One response as a client saw it (1xx interim responses listed apart)."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    interim: list[int] = field(default_factory=list)
    complete: bool = False

    def header(self, name: bytes) -> bytes | None:
        for n, v in self.headers:
            if n == name:
                return v
        return None

    def values(self, name: bytes) -> list[bytes]:
        return [v for n, v in self.headers if n == name]


def _ends_connection(a: Answer, version: bytes) -> bool:
    conn = {t.strip().lower() for v in a.values(b"connection") for t in v.split(b",")}
    return b"close" in conn or (version == b"1.0" and b"keep-alive" not in conn)


def parse_responses(data: bytes, methods: list[bytes]) -> tuple[list[Answer], str]:
    """The responses h11 (as a client) reads from `data` followed by EOF; the i-th answers a
    request with method `methods[i]` (GET past the end). The string is the parse error, "" if
    the stream ended cleanly between responses. One h11 connection per response, as in
    parse_requests: an HTTP/1.0 keep-alive response may be followed by another."""
    answers: list[Answer] = []
    rest = data
    while rest:
        # Empty lines between responses: haloy-proxy relays the CR/LF bytes a backend sends
        # after a response (llhttp skips them; cutting them would cost a parser call on every
        # read that ends in one); docs/security.md says so. Any other byte is still a desync.
        rest = rest.lstrip(b"\r\n")
        if not rest:
            break
        i = len(answers)
        conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_EVENT)
        method = methods[i] if i < len(methods) else b"GET"
        conn.send(h11.Request(method=method, target="/", headers=[("Host", "app.test")]))
        conn.send(h11.EndOfMessage())
        conn.receive_data(rest)
        conn.receive_data(b"")
        interim: list[int] = []
        ans: Answer | None = None
        version = b"1.1"
        try:
            while True:
                ev = conn.next_event()
                if isinstance(ev, h11.InformationalResponse):
                    interim.append(ev.status_code)
                elif isinstance(ev, h11.Response):
                    ans = Answer(ev.status_code, list(ev.headers), interim=interim)
                    version = ev.http_version
                    answers.append(ans)
                elif isinstance(ev, h11.Data):
                    assert ans is not None
                    ans.body += bytes(ev.data)
                elif isinstance(ev, h11.EndOfMessage):
                    assert ans is not None
                    ans.complete = True
                    break
                else:
                    return answers, f"stream ended inside response {i}"
        except h11.RemoteProtocolError as exc:
            return answers, f"response {i}: {exc}"
        rest = conn.trailing_data[0]
        assert ans is not None
        if rest and _ends_connection(ans, version):
            return answers, (f"{len(rest)} bytes after response {i}, which ends the connection: "
                             f"{rest[:80]!r}")
    return answers, ""
