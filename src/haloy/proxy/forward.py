"""Request head rewriting (pure): what the proxy sends upstream for a parsed client head.

RFC 9110 §7.6.1: hop-by-hop fields (Connection, the fields it names, Keep-Alive, TE, Upgrade
unless upgrading, Proxy-*) are not forwarded. X-Forwarded-For is appended to, X-Forwarded-Proto
and X-Forwarded-Host are set by us, a client-supplied X-Real-IP is dropped (apps trust it).
Transfer-Encoding and Content-Length stay: the body is forwarded with the framing it came in.
"""

from __future__ import annotations

import re
from typing import Final

_DROP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"upgrade",
        b"proxy-authorization",
        b"x-real-ip",
        b"x-forwarded-proto",
        b"x-forwarded-host",
    }
)
# Connection tokens that name no header to strip.
_CONNECTION_OPTIONS: Final = frozenset({b"close", b"keep-alive", b"upgrade"})


# Field names the rewrite looks at; every other field is forwarded untouched.
_HOST, _XFF, _TE, _CL, _CONN, _DROPPED = range(6)
_SPECIAL: Final = {
    b"host": _HOST,
    b"x-forwarded-for": _XFF,
    b"transfer-encoding": _TE,
    b"content-length": _CL,
    b"connection": _CONN,
    **{name: _DROPPED for name in _DROP if name != b"connection"},
}
_REQUEST_LINE_END: Final = {b"1.1": b" HTTP/1.1\r\n", b"1.0": b" HTTP/1.0\r\n"}


# (head, host, chunked, has_body, error): a plain tuple, built once per request on the hot path;
# `error` is non-empty when the request is malformed (400) and says why.
RequestHead = tuple[bytes, bytes, bool, bool, str]


def rewrite_request(
    method: bytes,
    url: bytes,
    version: bytes,
    headers: list[tuple[bytes, bytes]],
    client_ip: bytes,
    scheme: bytes,
    upgrade: bytes | None = None,
) -> RequestHead:
    """Build the upstream head; `upgrade` is the Upgrade value when tunnelling is requested."""
    host = b""
    hosts = 0
    xff = b""
    chunked = False
    has_body = False
    named: set[bytes] | None = None
    parts = [method, b" ", url, _REQUEST_LINE_END.get(version, b" HTTP/1.0\r\n")]
    special = _SPECIAL.get
    # One pass (this is the hot path): most fields are not special and are copied as they are.
    for name, value in headers:
        kind = special(name.lower())
        if kind is None:
            parts += (name, b": ", value, b"\r\n")
            continue
        if kind == _HOST:
            hosts += 1
            host = value
        elif kind == _XFF:
            xff = value if not xff else xff + b", " + value
            continue
        elif kind == _TE:
            has_body = True
            chunked = value.lower().rstrip().endswith(b"chunked")
        elif kind == _CL:
            has_body = has_body or value.strip() not in (b"0", b"")
        elif kind == _CONN:
            for token in value.lower().split(b","):
                token = token.strip()
                if token and token not in _CONNECTION_OPTIONS:
                    named = named or set()
                    named.add(token)
            continue
        else:
            continue
        parts += (name, b": ", value, b"\r\n")
    if hosts > 1:
        return (b"", host, chunked, has_body, "more than one Host header")
    if version == b"1.1" and hosts == 0:
        return (b"", host, chunked, has_body, "missing Host header")
    if named:
        # Rare: Connection names more fields to strip (RFC 9110 §7.6.1); filter the copies.
        parts = parts[:4] + [
            p
            for name, value in headers
            if name.lower() not in named and special(name.lower()) in (None, _HOST, _TE, _CL)
            for p in (name, b": ", value, b"\r\n")
        ]
    parts += (
        b"X-Forwarded-For: ",
        xff + b", " + client_ip if xff else client_ip,
        b"\r\nX-Forwarded-Proto: ",
        scheme,
        b"\r\nX-Forwarded-Host: ",
        host,
        b"\r\n",
    )
    if upgrade is not None:
        parts += (b"Connection: upgrade\r\nUpgrade: ", upgrade, b"\r\n")
    parts.append(b"\r\n")
    return (b"".join(parts), host, chunked, has_body, "")


# Every field name the rewrite cares about, found in one pass over the raw head (a field line
# starts after CRLF; llhttp already rejected obs-fold, bare LF and whitespace before the colon).
_SPECIAL_PATTERN: Final = (
    rb"\r\n(host|content-length|transfer-encoding|x-forwarded-for|x-forwarded-proto"
    rb"|x-forwarded-host|x-real-ip|connection|keep-alive|proxy-connection|proxy-authorization"
    rb"|te|trailer|upgrade):[ \t]*([^\r]*)"
)
# Long heads are lower-cased first: sre matches case-sensitively about twice as fast, which
# outweighs the copy above a few hundred bytes.
_SPECIAL_RE: Final = re.compile(_SPECIAL_PATTERN)
_SPECIAL_I_RE: Final = re.compile(_SPECIAL_PATTERN, re.IGNORECASE)
_LOWER_ABOVE: Final = 256
# Connection values that name no field to strip (one token; a list goes the rebuild way).
_PLAIN_CONNECTION: Final = frozenset({b"close", b"keep-alive"})
_FRAMING: Final = frozenset({b"host", b"content-length", b"transfer-encoding"})
_OWS: Final = b" \t"

# (head, url, host, body, upgrade, error, cut) for a raw head: `head` is b"" when only the
# forwarded fields must be appended (the caller adds them), `body` is the Content-Length or -1
# (chunked). `cut` is the span of the one hop-by-hop line cut out of the head as received,
# (0, 0) if none, None if the head was rebuilt or is malformed: with the same field block,
# any head gets the same verdict (the caller caches it).
RawHead = tuple[bytes, bytes, bytes, int, "bytes | None", str, "tuple[int, int] | None"]
_NO_CUT: Final = (0, 0)


def rewrite_raw(
    raw: bytes, version: bytes, client_ip: bytes, scheme: bytes, upgrading: bool, le: int = -1
) -> RawHead:
    """Inspect a raw request head (validated by llhttp); rebuild it only when a field must go.

    `le` is the offset of the request line's CRLF when the caller already knows it.
    """
    if le < 0:
        le = raw.find(b"\r\n")
    url = raw[raw.find(b" ") + 1 : raw.rfind(b" ", 0, le)].strip(b" ")
    host = b""
    hosts = 0
    body = 0
    slow = upgrading
    conns = 0  # Connection fields that only say close/keep-alive: cut out, not rebuilt
    low = raw.lower() if len(raw) > _LOWER_ABOVE else b""
    for name, value in _SPECIAL_RE.findall(low, le) if low else _SPECIAL_I_RE.findall(raw, le):
        if not low:
            name = name.lower()
        if name == b"connection" and value.lower().rstrip(_OWS) in _PLAIN_CONNECTION:
            conns += 1
        elif name == b"host":
            hosts += 1
            if hosts == 1 and low:  # the value as sent (X-Forwarded-Host keeps its case)
                start = low.find(b"\r\nhost:", le) + 7  # bytes.lower() keeps offsets
                value = raw[start : raw.find(b"\r", start)]
            host = value.strip(_OWS)
        elif name == b"content-length":
            body = int(value.rstrip(_OWS))
        elif name == b"transfer-encoding":
            body = -1  # llhttp rejects a request whose final coding is not chunked
        else:
            slow = True
    if hosts > 1:
        return (b"", url, host, body, None, "more than one Host header", None)
    if hosts == 0 and version == b"1.1":
        return (b"", url, host, body, None, "missing Host header", None)
    if not slow:
        if conns == 0:
            return (b"", url, host, body, None, "", _NO_CUT)
        if conns == 1:
            # Common (browsers send "Connection: keep-alive", wrk/curl "close"): the one
            # hop-by-hop line is cut out of the head as received, the rest stays byte for byte.
            start = (low or raw.lower()).find(b"\r\nconnection:", le)
            end = raw.find(b"\r\n", start + 2)
            return (
                raw[:start] + raw[end:-2] + forwarded_tail(client_ip, scheme, host),
                url, host, body, None, "", (start, end),
            )
    # Rare: hop-by-hop or forwarding fields to drop or merge; rebuild from the field lines.
    line = raw[:le]
    headers = []
    for field in raw[le + 2 : -4].split(b"\r\n"):
        name, _, value = field.partition(b":")
        headers.append((name, value.strip(_OWS)))
    upgrade = (upgrade_value(headers) or b"") if upgrading else None
    head = rewrite_request(
        line[: line.find(b" ")], url, version, headers, client_ip, scheme, upgrade
    )[0]
    return (head, url, host, body, upgrade, "", None)


def forwarded_tail(client_ip: bytes, scheme: bytes, host: bytes) -> bytes:
    """The fields appended to a head forwarded as received, with the blank line ending it."""
    return (
        b"X-Forwarded-For: " + client_ip + b"\r\nX-Forwarded-Proto: " + scheme
        + b"\r\nX-Forwarded-Host: " + host + b"\r\n\r\n"
    )


_RESPONSE_CONN_RE: Final = re.compile(rb"\r\n(?:connection|keep-alive):[^\r]*", re.IGNORECASE)


def close_response(buf: bytes, heads: int) -> bytes:
    """Mark the final response head in `buf` (after `heads - 1` interim 1xx heads) as the last
    on its connection: the backend's Connection/Keep-Alive fields give way to Connection: close.
    """
    start = 0
    end = -4
    for _ in range(heads):  # interim heads have no body, so heads follow each other
        start = end + 4
        end = buf.find(b"\r\n\r\n", start)
        if end < 0:
            return buf  # cannot happen: llhttp saw this many complete heads
    head = _RESPONSE_CONN_RE.sub(b"", buf[start:end])
    return buf[:start] + head + b"\r\nConnection: close\r\n\r\n" + buf[end + 4 :]


def upgrade_value(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The client's Upgrade field value, if any."""
    for name, value in headers:
        if name.lower() == b"upgrade":
            return value
    return None
