"""Request targets other than origin-form (pure; RFC 9112 §3.2).

The hot path forwards heads whose target starts with "/". Everything else comes here:
- absolute-form (`GET http://app.test/p HTTP/1.1`) is what a client sends to a proxy; a server
  MUST route by the target's authority and ignore Host (RFC 9112 §3.2.2). The head is rewritten
  to origin-form with Host set to that authority, so routing, redirects and the backend all see
  one host;
- asterisk-form (`*`) only with OPTIONS (RFC 9112 §3.2.4);
- anything else (authority-form belongs to CONNECT, which is refused) is a bad request.
A request line with extra spaces around its target is a bad request too.
"""

from __future__ import annotations

import re
from typing import Final

# scheme "://" authority, then the rest of the target (path and query).
_ABSOLUTE_RE: Final = re.compile(rb"(?i)https?://([^/?#\s]*)([^\s#]*)")
_HOST_LINE_RE: Final = re.compile(rb"(?i)\r\nhost:[^\r]*")
# A host with an optional port; no userinfo ("user@host" is deprecated and a phishing vector).
_AUTHORITY_RE: Final = re.compile(
    rb"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?"
)


def origin_form(raw: bytes, le: int, method: bytes) -> bytes:
    """`raw` with its target in origin-form (b"" if the target is not acceptable).

    `le` is the offset of the request line's CRLF; the request line is "METHOD SP target SP
    HTTP/1.x" (llhttp tolerates extra spaces around the target).
    """
    target = raw[len(method) + 1 : le - 9]
    if target[:1] == b" " or target[-1:] == b" ":
        # Extra spaces around the target: llhttp tolerates them, a strict backend does not,
        # and a line two parsers split differently is how requests get smuggled (RFC 9112 §3
        # lets a recipient answer an invalid request-line with 400).
        return b""
    if target == b"*":
        return raw if method == b"OPTIONS" else b""
    if target.startswith(b"/"):
        return raw
    m = _ABSOLUTE_RE.fullmatch(target)
    if m is None:
        return b""
    authority, rest = m.group(1), m.group(2)
    if not _AUTHORITY_RE.fullmatch(authority):
        return b""
    if not rest.startswith(b"/"):
        rest = b"/" + rest  # "http://a.test?q" -> "/?q"
    line = method + b" " + rest + raw[le - 9 : le]
    fields = raw[le:]
    host_line = b"\r\nHost: " + authority
    found = _HOST_LINE_RE.search(fields)
    if found is None:
        if raw[le - 3 : le] == b"1.1":
            return b""  # HTTP/1.1 without Host is a 400 whatever the target (RFC 9112 §3.2)
        fields = host_line + fields
    else:
        fields = fields[: found.start()] + host_line + fields[found.end() :]
    return line + fields
