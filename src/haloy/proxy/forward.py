"""Request head rewriting (pure): what the proxy sends upstream for a parsed client head.

The head forwarded frames the body exactly as the proxy framed it (RFC 9112 §6.3), so:
- hop-by-hop fields (RFC 9110 §7.6.1: Connection, the fields it names, Keep-Alive, TE, Trailer,
  Upgrade unless upgrading, Proxy-*) are dropped, but Connection can never name Host,
  Content-Length or Transfer-Encoding: those stay, whatever it says;
- Transfer-Encoding is exactly one field saying `chunked` (anything else is refused: 400 for a
  second field, 501 for any other value, lists included);
- field names with an underscore are dropped (WSGI and Rack fold `X_Real_IP` onto `X-Real-IP`;
  nginx's `underscores_in_headers off`);
- forwarding fields (Forwarded, X-Forwarded-*, X-Real-IP) come from the proxy: a client's are
  dropped and X-Forwarded-For, X-Real-IP, X-Forwarded-Proto and X-Forwarded-Host are set from
  what the proxy saw. A peer in `trusted_proxies` (a load balancer or CDN in front) keeps its
  fields and X-Forwarded-For is appended to.
The rules, with their references, are listed in docs/security.md.
"""

from __future__ import annotations

import re
from typing import Final

# Hop-by-hop fields, never forwarded (Connection is handled apart: it names more).
_HOP: Final = frozenset(
    {b"keep-alive", b"proxy-connection", b"te", b"trailer", b"upgrade", b"proxy-authorization"}
)
# Connection tokens that name no field to strip.
_CONNECTION_OPTIONS: Final = frozenset({b"close", b"keep-alive", b"upgrade"})
# Fields that frame the message or route it: Connection can never nominate them for removal
# (a stripped Content-Length turns the body into a second request for the backend).
_FRAMING: Final = frozenset({b"host", b"content-length", b"transfer-encoding"})
# The forwarding fields the proxy sets itself (a trusted peer's are kept instead).
_OURS: Final = (b"x-forwarded-for", b"x-real-ip", b"x-forwarded-proto", b"x-forwarded-host")
_CANONICAL: Final = {
    b"x-real-ip": b"X-Real-IP",
    b"x-forwarded-proto": b"X-Forwarded-Proto",
    b"x-forwarded-host": b"X-Forwarded-Host",
}
_REQUEST_LINE_END: Final = {b"1.1": b" HTTP/1.1\r\n", b"1.0": b" HTTP/1.0\r\n"}
_OWS: Final = b" \t"

# Why a head is refused; `error_status` maps each to its status.
NOT_IMPLEMENTED_CODING: Final = "a transfer coding other than chunked"
_TE_TWICE: Final = "more than one Transfer-Encoding header"


def error_status(error: str) -> int:
    """The status that answers a head refused for `error` (501 or 400)."""
    return 501 if error == NOT_IMPLEMENTED_CODING else 400


def _te_error(value: bytes, fields: int) -> str:
    """Why a head with `fields` Transfer-Encoding fields, the last saying `value`, is refused,
    or "" if it is not."""
    # As nginx: a second field is a bad request; any value but `chunked` (a list included,
    # RFC 9112 §6.1 allows them but no backend needs one) is a coding not implemented.
    if fields > 1:
        return _TE_TWICE
    return "" if value.strip(_OWS).lower() == b"chunked" else NOT_IMPLEMENTED_CODING


def _is_forwarding(name: bytes) -> bool:
    return name.startswith(b"x-forwarded-") or name in (b"forwarded", b"x-real-ip")


# (head, host, chunked, has_body, error): a plain tuple; `error` is non-empty when the request
# is refused and says why (error_status gives the status).
RequestHead = tuple[bytes, bytes, bool, bool, str]


def rewrite_request(
    method: bytes,
    url: bytes,
    version: bytes,
    headers: list[tuple[bytes, bytes]],
    client_ip: bytes,
    scheme: bytes,
    upgrade: bytes | None = None,
    trusted: bool = False,
) -> RequestHead:
    """Build the upstream head; `upgrade` is the Upgrade value when tunnelling is requested,
    `trusted` says the peer is a trusted proxy (its forwarding fields are kept)."""
    host = b""
    hosts = 0
    tes = 0
    te = b""
    xff = b""
    chunked = False
    has_body = False
    kept: set[bytes] = set()  # a trusted peer's forwarding fields that stand
    named: set[bytes] = set()
    fields: list[tuple[bytes, bytes, bytes]] = []
    for name, value in headers:
        low = name.lower()
        if b"_" in low or low in _HOP:
            continue
        if low == b"connection":
            for token in value.lower().split(b","):
                token = token.strip(_OWS)
                if token and token not in _CONNECTION_OPTIONS and token not in _FRAMING:
                    named.add(token)
            continue
        if low == b"host":
            hosts += 1
            host = value
        elif low == b"transfer-encoding":
            tes += 1
            has_body = True
            te = value
        elif low == b"content-length":
            has_body = has_body or value.strip(_OWS) not in (b"0", b"")
        elif _is_forwarding(low):
            if not trusted:
                continue
            if low == b"x-forwarded-for":
                xff = value if not xff else xff + b", " + value
                continue
            kept.add(low)
        fields.append((low, name, value))
    if tes:
        error = _te_error(te, tes)
        if error:
            return (b"", host, chunked, has_body, error)
        chunked = True
    if hosts > 1:
        return (b"", host, chunked, has_body, "more than one Host header")
    if version == b"1.1" and hosts == 0:
        return (b"", host, chunked, has_body, "missing Host header")
    if chunked and version != b"1.1":
        # RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message is faulty framing.
        return (b"", host, chunked, has_body, "Transfer-Encoding in an HTTP/1.0 request")
    parts = [method, b" ", url, _REQUEST_LINE_END.get(version, b" HTTP/1.0\r\n")]
    for low, name, value in fields:
        if low not in named:  # never a framing field (see _FRAMING)
            parts += (name, b": ", value, b"\r\n")
    if xff:
        parts += (b"X-Forwarded-For: ", xff, b", ", client_ip, b"\r\n")
    else:
        parts += (b"X-Forwarded-For: ", client_ip, b"\r\n")
    for low, value in zip(_OURS[1:], (client_ip, scheme, host), strict=True):
        if low not in kept:
            parts += (_CANONICAL[low], b": ", value, b"\r\n")
    if upgrade is not None:
        parts += (b"Connection: upgrade\r\nUpgrade: ", upgrade, b"\r\n")
    parts.append(b"\r\n")
    return (b"".join(parts), host, chunked, has_body, "")


# Every field name the rewrite looks at, found in one pass over the raw head (a field line
# starts after CRLF; llhttp already rejected obs-fold, bare LF and whitespace before the colon).
_SPECIAL_PATTERN: Final = (
    rb"\r\n(host|content-length|transfer-encoding|x-forwarded-[^:\r]*|forwarded|x-real-ip"
    rb"|connection|keep-alive|proxy-connection|proxy-authorization|te|trailer|upgrade)"
    rb":[ \t]*([^\r]*)"
)
# Long heads are lower-cased first: sre matches case-sensitively about twice as fast, which
# outweighs the copy above a few hundred bytes.
_SPECIAL_RE: Final = re.compile(_SPECIAL_PATTERN)
_SPECIAL_I_RE: Final = re.compile(_SPECIAL_PATTERN, re.IGNORECASE)
# A field name with an underscore (a name ends at the line's first colon).
_UNDERSCORE_NAME_RE: Final = re.compile(rb"\r\n[^:\r]*_")
_LOWER_ABOVE: Final = 256
# Connection values that name no field to strip (one token; a list goes the rebuild way).
_PLAIN_CONNECTION: Final = frozenset({b"close", b"keep-alive"})

# (head, url, host, body, upgrade, error, cut) for a raw head: `head` is b"" when only the
# forwarded fields must be appended (the caller adds them), `body` is the Content-Length or -1
# (chunked). `cut` is the span of the one hop-by-hop line cut out of the head as received,
# (0, 0) if none, None if the head was rebuilt or is refused: with the same field block, any
# head gets the same verdict (the caller caches it; the request line is checked apart).
RawHead = tuple[bytes, bytes, bytes, int, "bytes | None", str, "tuple[int, int] | None"]
_NO_CUT: Final = (0, 0)


def rewrite_raw(
    raw: bytes, version: bytes, client_ip: bytes, scheme: bytes, upgrading: bool, le: int = -1,
    trusted: bool = False,
) -> RawHead:
    """Inspect a raw request head (validated by llhttp); rebuild it only when a field must go.

    `le` is the offset of the request line's CRLF when the caller already knows it.
    """
    if le < 0:
        le = raw.find(b"\r\n")
    url = raw[raw.find(b" ") + 1 : raw.rfind(b" ", 0, le)].strip(b" ")
    host = b""
    hosts = 0
    tes = 0
    te = b""
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
            tes += 1
            te = value
            body = -1
        else:
            slow = True
    if tes:
        error = _te_error(te, tes)
        if error:
            return (b"", url, host, body, None, error, None)
    if hosts > 1:
        return (b"", url, host, body, None, "more than one Host header", None)
    if hosts == 0 and version == b"1.1":
        return (b"", url, host, body, None, "missing Host header", None)
    if not slow and raw.find(b"_", le) >= 0 and _UNDERSCORE_NAME_RE.search(raw, le):
        slow = True
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
    # Rare: hop-by-hop, underscore or forwarding fields to drop or merge; rebuild the head.
    line = raw[:le]
    headers = []
    for field in raw[le + 2 : -4].split(b"\r\n"):
        name, _, value = field.partition(b":")
        headers.append((name, value.strip(_OWS)))
    upgrade = (upgrade_value(headers) or b"") if upgrading else None
    head, _, _, _, error = rewrite_request(
        line[: line.find(b" ")], url, version, headers, client_ip, scheme, upgrade, trusted
    )
    return (head, url, host, body, upgrade, error, None)


def forwarded_tail(client_ip: bytes, scheme: bytes, host: bytes) -> bytes:
    """The fields appended to a head forwarded as received, with the blank line ending it."""
    return (
        b"X-Forwarded-For: " + client_ip + b"\r\nX-Real-IP: " + client_ip
        + b"\r\nX-Forwarded-Proto: " + scheme + b"\r\nX-Forwarded-Host: " + host + b"\r\n\r\n"
    )


_RESPONSE_CONN_RE: Final = re.compile(rb"\r\n(?:connection|keep-alive):[^\r]*", re.IGNORECASE)


def close_response(buf: bytes, heads: int, connection: bytes = b"close") -> bytes:
    """Say what happens to the client connection in the final response head in `buf` (after
    `heads - 1` interim 1xx heads): the backend's Connection/Keep-Alive fields give way to
    `Connection: close`, or `keep-alive` for an HTTP/1.0 client that keeps it open.
    """
    start = 0
    end = -4
    for _ in range(heads):  # interim heads have no body, so heads follow each other
        start = end + 4
        end = buf.find(b"\r\n\r\n", start)
        if end < 0:
            return buf  # cannot happen: llhttp saw this many complete heads
    head = _RESPONSE_CONN_RE.sub(b"", buf[start:end])
    return buf[:start] + head + b"\r\nConnection: " + connection + b"\r\n\r\n" + buf[end + 4 :]


def upgrade_value(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The client's Upgrade field value, if any."""
    for name, value in headers:
        if name.lower() == b"upgrade":
            return value
    return None
