"""The differential verdict in memory: it passes an honest run and names each kind of desync.

Without these, a proxy could pass test_differential.py because the checker sees nothing.
"""

from __future__ import annotations

import pytest

from tests.proxy.desync_check import CANARY, Run, violations
from tests.proxy.h11_views import parse_requests, parse_responses
from tests.proxy.recording_backend import BackendRequest, naming_response
from tests.proxy.response_check import reference

FWD = [(b"x-forwarded-for", b"127.0.0.1"), (b"x-forwarded-proto", b"http"),
       (b"x-forwarded-host", b"app.test")]
GET_A = b"GET /a HTTP/1.1\r\nHost: app.test\r\n\r\n"
ERROR_400 = (b"HTTP/1.1 400 Bad Request\r\nServer: haloy\r\nContent-Length: 0\r\n"
             b"Connection: close\r\n\r\n")


def _backend(
    seq: int, method: bytes, target: bytes, body: bytes = b"", **extra: bytes
) -> BackendRequest:
    """What the recorder files for a request it got (`extra`: more fields, `_` read as `-`)."""
    fields = [(k.replace("_", "-").encode(), v) for k, v in extra.items()]
    headers = [(b"host", b"app.test"), *fields, *FWD]
    head = b"%s %s HTTP/1.1\r\n" % (method, target) + b"".join(
        n + b": " + v + b"\r\n" for n, v in headers) + b"\r\n"
    return BackendRequest(method, target, b"1.1", headers, body, complete=True, conn=0, n=seq,
                          run=1, seq=seq, raw_head=head)


def _answer(req: BackendRequest) -> bytes:
    headers, body = naming_response(req)
    return b"HTTP/1.1 200 OK\r\n" + b"".join(
        f"{k}: {v}\r\n".encode() for k, v in headers) + b"\r\n" + body


def _run(sent: bytes, backend: list[BackendRequest], reply: bytes) -> list[str]:
    return violations(Run(sent, reply, "eof", backend, [], []), parse_requests(sent))


def test_an_honest_run_passes() -> None:
    a, canary = _backend(1, b"GET", b"/a"), _backend(2, b"GET", b"/canary")
    assert _run(GET_A + CANARY, [a, canary], _answer(a) + _answer(canary)) == []


def test_a_refusal_with_nothing_forwarded_passes() -> None:
    sent = b"POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"
    assert _run(sent + CANARY, [], ERROR_400) == []


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("smuggled", "the client had no answer for"),
        ("shifted", "the backend got target b'/smuggled'"),
        ("after-framing-error", "follows a framing-error answer"),
        ("body-lost", "the backend got only the start of request 0"),
        ("spoofed", "comes from smuggled text"),
        ("underscore", "beside the proxy's own"),
        ("cl-and-te", "both Content-Length and Transfer-Encoding"),
    ],
)
def test_each_desync_is_named(case: str, expected: str) -> None:
    post = b"POST /p HTTP/1.1\r\nHost: app.test\r\nContent-Length: 3\r\n\r\nabc"
    a, canary = _backend(1, b"GET", b"/a"), _backend(3, b"GET", b"/canary")
    smuggled = _backend(2, b"GET", b"/smuggled", x_forwarded_for=b"6.6.6.6")
    if case == "smuggled":
        found = _run(GET_A + CANARY, [a, smuggled, canary], _answer(a) + _answer(canary))
    elif case == "shifted":
        found = _run(GET_A + CANARY, [a, smuggled, canary], _answer(a) + _answer(smuggled))
    elif case == "after-framing-error":
        found = _run(GET_A + CANARY, [a], ERROR_400.replace(b"Connection: close\r\n", b"")
                     + _answer(a))
    elif case == "body-lost":
        partial = _backend(1, b"POST", b"/p")
        partial.complete = False
        found = _run(post + CANARY, [partial], b"HTTP/1.1 504 Gateway Timeout\r\nServer: haloy"
                     b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    elif case == "spoofed":
        b = _backend(1, b"GET", b"/a", forwarded=b"for=6.6.6.6")
        found = _run(GET_A + CANARY, [b, canary], _answer(b) + _answer(canary))
    elif case == "underscore":
        b = _backend(1, b"GET", b"/a", x_real_ip=b"1.2.3.4")
        b.headers = [(b"x_real_ip", b"1.2.3.4"), *b.headers[1:]]
        sent = b"GET /a HTTP/1.1\r\nHost: app.test\r\nX_Real_IP: 1.2.3.4\r\n\r\n"
        found = _run(sent + CANARY, [b, canary], _answer(b) + _answer(canary))
    else:
        b = _backend(1, b"POST", b"/p", b"abc", content_length=b"3", transfer_encoding=b"chunked")
        sent = (b"POST /p HTTP/1.1\r\nHost: app.test\r\nContent-Length: 3\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        found = _run(sent + CANARY, [b, canary], _answer(b) + _answer(canary))
    assert any(expected in v for v in found), found


def test_the_response_views_see_a_second_response() -> None:
    two = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + b"HTTP/1.1 200 OK\r\n\r\n"
    ref = reference(b"GET", two, closed=False)
    assert (ref.status, ref.body, ref.error, ref.leftover) == (200, b"ok", "", True)
    answers, err = parse_responses(two, [b"HEAD", b"GET"])
    assert [a.status for a in answers] == [200] and "response 1" in err  # "ok" is no status line
