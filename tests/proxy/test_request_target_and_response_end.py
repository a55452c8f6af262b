"""Pure pieces of the edge rules: request targets (RFC 9112 §3.2) and where a response ends."""

from __future__ import annotations

import pytest

from haloy.proxy.chunked import ChunkedEnd
from haloy.proxy.request_target import origin_form
from haloy.proxy.response_end import message_end


def _target(line: bytes, fields: bytes = b"Host: app.test\r\n") -> bytes:
    raw = line + b"\r\n" + fields + b"\r\n"
    method = line.split(b" ", 1)[0]
    return origin_form(raw, raw.find(b"\r\n"), method)


@pytest.mark.parametrize("line,fields,expected", [
    (b"GET http://a.test/p?q HTTP/1.1", b"Host: b.test\r\n",
     b"GET /p?q HTTP/1.1\r\nHost: a.test\r\n\r\n"),
    (b"GET HTTPS://a.test:8443 HTTP/1.1", b"X: 1\r\nhost: b\r\n",
     b"GET / HTTP/1.1\r\nX: 1\r\nHost: a.test:8443\r\n\r\n"),
    (b"GET http://a.test?x HTTP/1.0", b"", b"GET /?x HTTP/1.0\r\nHost: a.test\r\n\r\n"),
    (b"GET http://a.test/ HTTP/1.1", b"", b""),  # HTTP/1.1 without Host
    (b"GET http://user@a.test/ HTTP/1.1", b"Host: a.test\r\n", b""),
    (b"GET ftp://a.test/ HTTP/1.1", b"Host: a.test\r\n", b""),
    (b"GET a.test:80 HTTP/1.1", b"Host: a.test\r\n", b""),
    (b"GET p HTTP/1.1", b"Host: a.test\r\n", b""),
    (b"OPTIONS * HTTP/1.1", b"Host: a.test\r\n", b"OPTIONS * HTTP/1.1\r\nHost: a.test\r\n\r\n"),
    (b"GET * HTTP/1.1", b"Host: a.test\r\n", b""),
    (b"GET  / HTTP/1.1", b"Host: a.test\r\n", b""),
    (b"GET /  HTTP/1.1", b"Host: a.test\r\n", b""),
])
def test_request_targets(line: bytes, fields: bytes, expected: bytes) -> None:
    assert _target(line, fields) == expected


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
NEXT = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL"


@pytest.mark.parametrize("data,before,heads,no_body,end", [
    (OK + NEXT, 0, 1, False, len(OK)),
    (CHUNKED + NEXT, 0, 1, False, len(CHUNKED)),
    (OK + b"\r\n\r\n", 0, 1, False, len(OK)),
    (b"HTTP/1.1 100 Continue\r\n\r\n" + OK + NEXT, 0, 2, False, 25 + len(OK)),
    (OK, 0, 1, True, len(OK) - 2),  # HEAD: the head is all
    (b"HTTP/1.1 204 No Content\r\n\r\n" + NEXT, 0, 1, True, 27),
    (b"ok" + NEXT, 1, 1, False, -1),  # the final head came in an earlier read
])
def test_message_end(data: bytes, before: int, heads: int, no_body: bool, end: int) -> None:
    assert message_end(data, before, heads, no_body) == end


@pytest.mark.parametrize("size", [b"+5", b"-5", b" 5", b"0x5", b"0" * 17 + b"5", b""])
def test_chunk_sizes_parsers_disagree_on_are_refused(size: bytes) -> None:
    with pytest.raises(ValueError):
        ChunkedEnd().scan(size + b"\r\nhello\r\n0\r\n\r\n", 0)


@pytest.mark.parametrize("size", [b"5", b"0005", b"5 ;ext=1", b"5;ext"])
def test_chunk_sizes_accepted(size: bytes) -> None:
    body = size + b"\r\nhello\r\n0\r\n\r\n"
    assert ChunkedEnd().scan(body, 0) == len(body)
