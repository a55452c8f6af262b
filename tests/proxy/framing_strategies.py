"""Hypothesis strategies for request and response streams with hostile framing.

Mostly well-formed messages with one or two things bent: field names, values, case and
whitespace; Content-Length / Transfer-Encoding combinations and spellings; chunk sizes,
extensions and trailers; pipelining; smuggled text in bodies. Purely random bytes would
almost all die at the request line and test nothing behind it.
"""

from __future__ import annotations

import string

from hypothesis import strategies as st

from tests.proxy.smuggling_corpus import CHUNK_SIZES, CL_SPELLINGS, PREFIX, SMUGGLED, te_gadgets

TCHAR = "!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits
PATH = string.ascii_letters + string.digits + "-._~/%!$&'()*+,;=:@?"
FAKE_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED"
_TE_GADGETS = [g for _, g in te_gadgets()]


def _case(s: str, how: int) -> str:
    return (s, s.lower(), s.upper(), s.title(), s.swapcase())[how]


ows = st.sampled_from(["", "", "", " ", "  ", "\t", " \t"])
odd_byte = st.sampled_from([b"\x00", b"\x0b", b"\x0c", b"\r", b"\n", b"\x7f", b"\x85", b"\xa0",
                            b"\xff", b" ", b"\t", b",", b";", b"\"", b"_"])


@st.composite
def field_name(draw: st.DrawFn) -> bytes:
    name = draw(st.sampled_from([
        "X-Test", "Accept", "User-Agent", "Cookie", "Content-Type", "X-Forwarded-For",
        "X-Real-IP", "Forwarded", "X-Forwarded-Host", "Expect", "Trailer", "TE", "Keep-Alive",
        "Upgrade", "Proxy-Connection", "Content-Encoding",
    ]) | st.text(TCHAR, min_size=1, max_size=12))
    raw = _case(name, draw(st.integers(0, 4))).encode()
    if draw(st.integers(0, 9)) == 0:  # bent: a byte where a token has none
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(odd_byte) + raw[at:]
    return raw


@st.composite
def field_value(draw: st.DrawFn) -> bytes:
    value = draw(st.sampled_from([b"1", b"a, b", b"6.6.6.6", b"for=6.6.6.6", b"evil.test",
                                  b"100-continue", b"chunked", b"close"])
                 | st.binary(max_size=16).map(lambda b: bytes(c % 95 + 32 for c in b)))
    if draw(st.integers(0, 9)) == 0:
        at = draw(st.integers(0, len(value)))
        value = value[:at] + draw(odd_byte) + value[at:]
    return draw(ows).encode() + value + draw(ows).encode()


@st.composite
def chunked_body(draw: st.DrawFn, body: bytes) -> bytes:
    """`body` in chunks with varied size lines, extensions and trailers; sometimes bent."""
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
    parts = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True) if b > a]
    out = b""
    for part in parts:
        size = b"%x" % len(part)
        size = size.upper() if draw(st.booleans()) else size
        size = b"0" * draw(st.sampled_from([0, 0, 0, 1, 3])) + size
        ext = draw(st.sampled_from([b"", b"", b";a", b";a=b", b';a="x y"', b" ;a=b", b";"]))
        out += size + ext + b"\r\n" + part + b"\r\n"
    last = draw(st.sampled_from([b"0", b"0", b"00", b"0;e=1"]))
    trailers = b"".join(n + b":" + v + b"\r\n" for n, v in draw(
        st.lists(st.tuples(field_name(), field_value()), max_size=2)))
    out += last + b"\r\n" + trailers + b"\r\n"
    if draw(st.integers(0, 5)) == 0:  # bent: one framing token replaced
        size, data = draw(st.sampled_from(CHUNK_SIZES))
        out = draw(st.sampled_from([
            out.replace(b"\r\n", b"\n", 1), out[:-2], size + b"\r\n" + data + b"\r\n" + out,
            b"%x\r\n" % (len(body) + 3) + body + b"\r\n" + out, out + b"\r\n",
        ]))
    return out


@st.composite
def framing(draw: st.DrawFn, body: bytes) -> tuple[bytes, bytes]:
    """(framing field lines, encoded body)."""
    cl = b"Content-Length: %d\r\n" % len(body)
    te = b"Transfer-Encoding: chunked\r\n"
    kind = draw(st.sampled_from(["none", "cl", "cl", "te", "te", "cl-off", "cl-twice",
                                 "cl-spelling", "te-gadget", "cl+te", "te+cl", "te-gadget+cl"]))
    if kind == "none":
        return b"", body
    if kind == "cl":
        return cl, body
    if kind == "cl-off":
        return b"Content-Length: %d\r\n" % max(0, len(body) + draw(st.integers(-3, 3))), body
    if kind == "cl-twice":
        other = len(body) + draw(st.integers(0, 2))
        return cl + b"Content-Length: %d\r\n" % other, body
    if kind == "cl-spelling":
        return b"Content-Length: " + draw(st.sampled_from(CL_SPELLINGS)) + b"\r\n", body
    chunks = draw(chunked_body(body))
    if kind == "te":
        return te, chunks
    gadget = draw(st.sampled_from(_TE_GADGETS)) + b"\r\n"
    if kind == "te-gadget":
        return gadget, chunks
    if kind == "cl+te":
        return b"Content-Length: %d\r\n" % len(chunks) + te, chunks
    if kind == "te+cl":
        return te + cl, chunks
    return gadget + b"Content-Length: %d\r\n" % len(chunks), chunks


@st.composite
def request(draw: st.DrawFn) -> bytes:
    method = draw(st.sampled_from([b"GET", b"POST", b"POST", b"PUT", b"HEAD", b"DELETE",
                                   b"OPTIONS", b"PATCH", b"get", b"G\x00T"]))
    path = b"/" + draw(st.text(PATH, max_size=12)).encode()
    target = draw(st.sampled_from([path, path, path, b"http://app.test" + path,
                                   b"http://evil.test" + path, b"*", path + b" x", path + b"#f"]))
    version = draw(st.sampled_from([b"HTTP/1.1"] * 6 + [b"HTTP/1.0", b"HTTP/1.2", b"http/1.1"]))
    sep = draw(st.sampled_from([b" "] * 8 + [b"  ", b"\t"]))
    body = draw(st.sampled_from([b"", b"hello", SMUGGLED, b"0\r\n\r\n" + SMUGGLED, PREFIX,
                                 FAKE_RESPONSE]) | st.binary(max_size=40))
    frame, encoded = draw(framing(body))
    host_name = draw(st.sampled_from([b"Host", b"Host", b"host", b"HOST", b"Host ", b"Host_"]))
    hosts = draw(st.sampled_from([1, 1, 1, 1, 0, 2]))
    fields = [host_name + b":" + draw(ows).encode() + b"app.test\r\n"] * hosts
    fields += [n + b":" + v + b"\r\n" for n, v in draw(
        st.lists(st.tuples(field_name(), field_value()), max_size=4))]
    conn = draw(st.sampled_from([None, None, b"keep-alive", b"close", b"content-length",
                                 b"transfer-encoding", b"host", b"keep-alive, x-test", b"upgrade"]))
    if conn is not None:
        fields.append(b"Connection: " + conn + b"\r\n")
    fields.append(frame)
    fields = draw(st.permutations(fields))
    lead = draw(st.sampled_from([b"", b"", b"", b"\r\n", b"\n"]))
    line = method + sep + target + sep + version
    return lead + line + b"\r\n" + b"".join(fields) + b"\r\n" + encoded


@st.composite
def request_stream(draw: st.DrawFn) -> tuple[bytes, tuple[int, ...]]:
    """1–3 pipelined requests and the write boundaries to deliver them with."""
    data = b"".join(draw(st.lists(request(), min_size=1, max_size=3)))
    cuts = draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=6, unique=True))
    return data, tuple(sorted(cuts))
