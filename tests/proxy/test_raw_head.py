"""The raw hot path (pure): rewrite_raw agrees with the field-by-field rewrite, and ChunkedEnd
finds exactly where llhttp ends a chunked body, whatever way the bytes are split into reads."""

from __future__ import annotations

import httptools
import pytest
from hypothesis import given
from hypothesis import strategies as st

from haloy.proxy.chunked import ChunkedEnd
from haloy.proxy.forward import close_response, forwarded_tail, rewrite_raw, rewrite_request
from tests.proxy.test_forward_props import HOP, TOKEN, VALUE, _parse

SPECIAL = [b"Host", b"Content-Length", b"Transfer-Encoding", b"X-Forwarded-For", *HOP]


def _wire_head(path: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    return b"GET " + path + b" HTTP/1.1\r\n" + b"".join(
        n + b": " + v + b"\r\n" for n, v in headers
    ) + b"\r\n"


def _forwarded(raw: bytes, upgrading: bool = False) -> bytes:
    head, _, host, _, _, error, cut = rewrite_raw(
        raw, b"1.1", b"203.0.113.9", b"https", upgrading
    )
    assert error == ""
    head = head or raw[:-2] + forwarded_tail(b"203.0.113.9", b"https", host)
    if cut is not None:
        # What the client builds from a cached verdict (client.py) is the same head.
        start, end = cut
        kept = raw[:start] + raw[end:-2] if end else raw[:-2]
        assert kept + forwarded_tail(b"203.0.113.9", b"https", host) == head
    return head


def test_plain_head_is_forwarded_as_received() -> None:
    raw = b"GET /a?b HTTP/1.1\r\nHost: a.com\r\nAccept: */*\r\nContent-Length: 3\r\n\r\n"
    got = rewrite_raw(raw, b"1.1", b"9.9.9.9", b"http", False)
    assert got == (b"", b"/a?b", b"a.com", 3, None, "", (0, 0))
    assert _forwarded(raw).startswith(raw[:-2] + b"X-Forwarded-For: 203.0.113.9\r\n")


def test_raw_errors_and_chunked() -> None:
    two = b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"
    assert rewrite_raw(two, b"1.1", b"1", b"http", False)[5]
    assert rewrite_raw(b"GET / HTTP/1.1\r\n\r\n", b"1.1", b"1", b"http", False)[5]
    assert not rewrite_raw(b"GET / HTTP/1.0\r\n\r\n", b"1.0", b"1", b"http", False)[5]
    te = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert rewrite_raw(te, b"1.1", b"1", b"http", False)[3] == -1


@pytest.mark.parametrize(
    "fields",
    [
        [(b"Connection", b"close")],
        [(b"connection", b"Keep-Alive ")],
        [(b"Accept", b"*/*"), (b"CONNECTION", b"keep-alive"), (b"X-A", b"1")],
        [(b"Connection", b"close"), (b"Connection", b"keep-alive")],
        [(b"Connection", b"close, x-a"), (b"X-A", b"1")],
        [(b"Connection", b"close"), (b"Keep-Alive", b"300")],
    ],
)
def test_plain_connection_field_is_cut_like_the_rewrite(fields: list[tuple[bytes, bytes]]) -> None:
    for pad in (b"", b"x" * 300):  # short heads scan case-insensitively, long ones lower-cased
        raw = _wire_head(b"/p", [(b"Host", b"a.com"), (b"Cookie", pad), *fields])
        expected = rewrite_request(
            b"GET", b"/p", b"1.1", _parse(raw).headers, b"203.0.113.9", b"https"
        )
        got = _forwarded(raw)
        assert b"onnection" not in got.lower().replace(b"proxy-connection", b"")
        assert _parse(got).headers == _parse(expected[0]).headers


def test_upgrade_head_is_rebuilt() -> None:
    raw = b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    head, _, _, _, upgrade, _, cut = rewrite_raw(raw, b"1.1", b"1", b"http", True)
    assert cut is None  # rebuilt: never cached
    assert upgrade == b"websocket"
    assert b"Connection: upgrade\r\nUpgrade: websocket\r\n" in head


@given(
    others=st.lists(st.tuples(TOKEN, VALUE), max_size=12),
    specials=st.lists(st.tuples(st.sampled_from(SPECIAL[3:]), VALUE), max_size=5),
    host=TOKEN,
    case=st.booleans(),
    path=st.text(alphabet="abc/?=&%09", max_size=30).map(lambda s: ("/" + s).encode()),
)
def test_raw_rewrite_matches_field_rewrite(
    others: list[tuple[bytes, bytes]], specials: list[tuple[bytes, bytes]], host: bytes,
    case: bool, path: bytes,
) -> None:
    others = [(n, v) for n, v in others if n.lower() not in {s.lower() for s in SPECIAL}]
    specials = [(n.lower() if case else n, v) for n, v in specials]
    headers = [(b"Host", host), *others, *specials]
    raw = _wire_head(path, headers)
    parsed = _parse(raw)
    assert parsed.done
    expected = rewrite_request(b"GET", path, b"1.1", parsed.headers, b"203.0.113.9", b"https")
    got = _parse(_forwarded(raw))
    assert got.done and got.url == path
    assert got.headers == _parse(expected[0]).headers


def _chunked_body(parts: list[bytes], ext: bool, trailers: list[tuple[bytes, bytes]]) -> bytes:
    e = b";x=1" if ext else b""
    return b"".join(b"%x%b\r\n%b\r\n" % (len(p), e, p) for p in parts) + b"0" + e + b"\r\n" + (
        b"".join(n + b": " + v + b"\r\n" for n, v in trailers)
    ) + b"\r\n"


@given(
    parts=st.lists(st.binary(min_size=1, max_size=40), max_size=5),
    ext=st.booleans(),
    trailers=st.lists(st.tuples(TOKEN, VALUE), max_size=2),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=6),
)
def test_chunked_end_found_across_any_split(
    parts: list[bytes], ext: bool, trailers: list[tuple[bytes, bytes]], cuts: list[int]
) -> None:
    body = _chunked_body(parts, ext, trailers)
    head = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert _parse(head + body).done  # llhttp agrees this is one whole message
    wire = body + b"GET /next HTTP/1.1\r\n"  # a pipelined request follows in the same read
    points = sorted({c % len(body) for c in cuts} | {0})
    scanner = ChunkedEnd()
    offset = 0
    for a, b in zip(points, [*points[1:], len(wire)], strict=True):
        end = scanner.scan(wire[a:b], 0)
        if end >= 0:
            offset = a + end
            break
    assert offset == len(body)


def test_chunked_line_cap() -> None:
    with pytest.raises(ValueError):
        ChunkedEnd().scan(b"5;" + b"x" * 20_000, 0)


def test_llhttp_rejects_what_the_raw_path_relies_on() -> None:
    # Forwarding heads raw is only safe because llhttp refuses these framings outright.
    bad = [
        b"GET / HTTP/1.1\nHost: a\n\n",  # bare LF
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",  # obs-fold
        b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",  # whitespace before the colon
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n",
    ]
    for raw in bad:
        with pytest.raises(httptools.HttpParserError):
            _parse(raw)


def test_close_response_rewrites_only_the_final_head() -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\n"
    final = b"HTTP/1.1 200 OK\r\nconnection: keep-alive\r\nKeep-Alive: timeout=5\r\nA: b\r\n\r\n"
    body = b"x\r\n\r\ny"
    assert close_response(interim + final + body, 2) == (
        interim + b"HTTP/1.1 200 OK\r\nA: b\r\nConnection: close\r\n\r\n" + body
    )
    assert close_response(final, 1).endswith(b"A: b\r\nConnection: close\r\n\r\n")
