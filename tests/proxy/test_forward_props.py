"""Request head rewriting (the field-by-field path): examples plus hypothesis properties."""

from __future__ import annotations

import httptools
import pytest
from hypothesis import given
from hypothesis import strategies as st

from haloy.proxy.forward import NOT_IMPLEMENTED_CODING, error_status, rewrite_request

TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-",
                min_size=1, max_size=20).map(str.encode)
VALUE = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40).map(
    str.encode
)
HOP = [b"Connection", b"Keep-Alive", b"TE", b"Trailer", b"Upgrade", b"Proxy-Connection",
       b"X-Real-IP", b"X-Forwarded-Proto", b"X-Forwarded-Host", b"Proxy-Authorization"]


class _Collect:
    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.url = b""
        self.body = b""
        self.done = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, n: bytes, v: bytes) -> None:
        self.headers.append((n, v))

    def on_body(self, b: bytes) -> None:
        self.body += b

    def on_message_complete(self) -> None:
        self.done = True


def _parse(head: bytes) -> _Collect:
    c = _Collect()
    httptools.HttpRequestParser(c).feed_data(head)
    return c


def test_example_rewrite() -> None:
    rh = rewrite_request(
        b"GET", b"/x?y", b"1.1",
        [(b"Host", b"a.com"), (b"Connection", b"close, X-Drop"), (b"X-Drop", b"1"),
         (b"X-Forwarded-For", b"1.1.1.1"), (b"x-real-ip", b"2.2.2.2"), (b"Accept", b"*/*")],
        b"9.9.9.9", b"https",
    )
    head, host, _, _, error = rh
    assert error == "" and host == b"a.com"
    # A client's forwarding fields are replaced by what the proxy saw.
    assert head == (
        b"GET /x?y HTTP/1.1\r\nHost: a.com\r\nAccept: */*\r\n"
        b"X-Forwarded-For: 9.9.9.9\r\nX-Real-IP: 9.9.9.9\r\nX-Forwarded-Proto: https\r\n"
        b"X-Forwarded-Host: a.com\r\n\r\n"
    )


def test_trusted_peer_keeps_its_forwarding_fields() -> None:
    head = rewrite_request(
        b"GET", b"/", b"1.1",
        [(b"Host", b"a.com"), (b"X-Forwarded-For", b"1.1.1.1"), (b"x-real-ip", b"1.1.1.1"),
         (b"X-Forwarded-Proto", b"https")],
        b"9.9.9.9", b"http", trusted=True,
    )[0]
    assert head == (
        b"GET / HTTP/1.1\r\nHost: a.com\r\nx-real-ip: 1.1.1.1\r\nX-Forwarded-Proto: https\r\n"
        b"X-Forwarded-For: 1.1.1.1, 9.9.9.9\r\nX-Forwarded-Host: a.com\r\n\r\n"
    )


@pytest.mark.parametrize("connection", [b"content-length", b"Keep-Alive, Content-Length",
                                        b"TRANSFER-ENCODING", b"host"])
def test_connection_never_strips_framing_or_host(connection: bytes) -> None:
    head, _, _, _, error = rewrite_request(
        b"POST", b"/", b"1.1",
        [(b"Host", b"a"), (b"Connection", connection), (b"Content-Length", b"3")],
        b"1", b"http",
    )
    assert error == ""
    assert b"\r\nHost: a\r\n" in head and b"\r\nContent-Length: 3\r\n" in head


@pytest.mark.parametrize("fields,error", [
    ([(b"Transfer-Encoding", b"chunked")], ""),
    ([(b"Transfer-Encoding", b" Chunked ")], ""),
    ([(b"Transfer-Encoding", b"gzip, chunked")], "a transfer coding other than chunked"),
    ([(b"Transfer-Encoding", b"identity")], "a transfer coding other than chunked"),
    ([(b"Transfer-Encoding", b"chunked"), (b"Transfer-Encoding", b"chunked")],
     "more than one Transfer-Encoding header"),
])
def test_transfer_encoding_is_one_chunked(fields: list[tuple[bytes, bytes]], error: str) -> None:
    got = rewrite_request(b"POST", b"/", b"1.1", [(b"Host", b"a"), *fields], b"1", b"http")
    assert got[4] == error
    assert error_status(error) == (501 if error == NOT_IMPLEMENTED_CODING else 400)


def test_underscore_names_are_dropped() -> None:
    head = rewrite_request(b"GET", b"/", b"1.1",
                           [(b"Host", b"a"), (b"X_Real_IP", b"6"), (b"Cookie", b"a_b")],
                           b"1", b"http")[0]
    assert b"X_Real_IP" not in head and b"Cookie: a_b" in head


def test_errors() -> None:
    two = [(b"Host", b"a"), (b"host", b"b")]
    assert rewrite_request(b"GET", b"/", b"1.1", two, b"1", b"http")[4]
    assert rewrite_request(b"GET", b"/", b"1.1", [], b"1", b"http")[4]
    assert not rewrite_request(b"GET", b"/", b"1.0", [], b"1", b"http")[4]


def test_upgrade_kept_when_tunnelling() -> None:
    rh = rewrite_request(b"GET", b"/", b"1.1", [(b"Host", b"a"), (b"Upgrade", b"websocket")],
                         b"1", b"http", upgrade=b"websocket")
    assert b"Connection: upgrade\r\nUpgrade: websocket\r\n" in rh[0]


@given(
    others=st.lists(st.tuples(TOKEN, VALUE), max_size=12),
    hops=st.lists(st.tuples(st.sampled_from(HOP), VALUE), max_size=6),
    xff=st.lists(VALUE.filter(lambda v: bool(v) and b"," not in v), max_size=3),
    host=TOKEN,
    path=st.text(alphabet="abc/?=&%09", max_size=30).map(lambda s: ("/" + s).encode()),
)
def test_rewritten_head_is_valid_and_clean(
    others: list[tuple[bytes, bytes]], hops: list[tuple[bytes, bytes]], xff: list[bytes],
    host: bytes, path: bytes,
) -> None:
    others = [(n, v) for n, v in others
              if n.lower() not in {h.lower() for h in HOP}
              and n.lower() not in {b"host", b"x-forwarded-for", b"content-length",
                                    b"transfer-encoding", b"forwarded"}
              and not n.lower().startswith(b"x-forwarded-")]
    headers = [(b"Host", host), *others, *hops, *((b"X-Forwarded-For", v) for v in xff)]
    rh = rewrite_request(b"GET", path, b"1.1", headers, b"203.0.113.9", b"http")
    assert rh[4] == ""
    parsed = _parse(rh[0])  # llhttp accepts what we send, as one complete message
    assert parsed.done and parsed.url == path
    names = [n.lower() for n, _ in parsed.headers]
    for hop in HOP:
        if hop.lower() not in (b"x-forwarded-proto", b"x-forwarded-host", b"x-real-ip"):
            assert hop.lower() not in names
    assert names.count(b"host") == 1
    assert names.count(b"x-forwarded-proto") == 1 and names.count(b"x-forwarded-host") == 1
    assert names.count(b"x-real-ip") == 1
    fwd = dict((n.lower(), v) for n, v in parsed.headers)
    assert fwd[b"x-forwarded-for"] == b"203.0.113.9"  # a client's value is replaced
    assert fwd[b"x-real-ip"] == b"203.0.113.9"
    kept = [(n, v) for n, v in parsed.headers if n.lower() not in
            {b"host", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host",
             b"x-real-ip"}]
    named = {t.strip().lower() for n, v in hops if n == b"Connection" for t in v.split(b",")}
    named -= {b"close", b"keep-alive", b"upgrade", b"host", b"content-length",
              b"transfer-encoding"}
    assert kept == [(n, v) for n, v in others if n.lower() not in named]  # unchanged, in order
