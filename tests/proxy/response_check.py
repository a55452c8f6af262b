"""Hostile backend responses: a corpus, a hypothesis strategy, and the verdict on one run.

The client sends the request the hostile answer is for, then two more on the same connection
(/next and the canary); afterwards a second client sends /after on a fresh connection. h11 (as
a client) reads the backend's bytes for the reference. Whatever the backend sent, the client
stream parses into at most one response per request, in order: the first is the backend's
(exactly as h11 read it), a proxy-made 5xx, or cut off by a close after a complete head (no
byte of a head that never completes reaches the client); every later one answers its own
request. Leftover backend bytes never reach anyone as a response.
"""

from __future__ import annotations

from dataclasses import dataclass

import h11
from hypothesis import strategies as st

from tests.proxy.desync_check import Run
from tests.proxy.framing_strategies import FAKE_RESPONSE, field_name, field_value, framing
from tests.proxy.h11_views import MAX_EVENT, Answer, parse_responses

MARK = b"SMUGGLED"  # the body of FAKE_RESPONSE: it never reaches a client as a response


@dataclass(frozen=True)
class Hostile:
    name: str
    method: bytes
    chunks: tuple[bytes, ...]
    close: bool  # the backend closes after writing


@dataclass
class Reference:
    """What h11 reads from the backend's bytes for one request."""

    status: int = 0
    body: bytes = b""
    error: str = ""  # "" when it read one whole response
    leftover: bool = False  # bytes followed the response


def reference(method: bytes, data: bytes, closed: bool) -> Reference:
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_EVENT)
    conn.send(h11.Request(method=method, target="/", headers=[("Host", "app.test")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(data)
    if closed:
        conn.receive_data(b"")
    ref = Reference()
    try:
        while True:
            ev = conn.next_event()
            if isinstance(ev, h11.Response):
                ref.status = ev.status_code
            elif isinstance(ev, h11.Data):
                ref.body += bytes(ev.data)
            elif isinstance(ev, h11.EndOfMessage):
                ref.leftover = bool(conn.trailing_data[0])
                return ref
            elif ev is h11.NEED_DATA or isinstance(ev, h11.ConnectionClosed):
                ref.error = "incomplete"
                return ref
    except h11.RemoteProtocolError as exc:
        ref.error = str(exc)
    return ref


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


def _h(name: str, *chunks: bytes, method: bytes = b"GET", close: bool = False) -> Hostile:
    return Hostile(name, method, chunks, close)


def response_corpus() -> list[Hostile]:
    head_cl = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(FAKE_RESPONSE)
    endless = [b"HTTP/1.1 200 OK\r\n"] + [b"X-Endless: " + b"a" * 65_000 + b"\r\n"] * 32
    return [
        _h("head-answered-with-body", head_cl + FAKE_RESPONSE, method=b"HEAD"),
        _h("head-answered-with-body-split", head_cl, FAKE_RESPONSE, method=b"HEAD"),
        _h("head-chunked-with-body", CHUNKED + b"8\r\nSMUGGLED\r\n0\r\n\r\n", method=b"HEAD"),
        _h("two-responses", OK + FAKE_RESPONSE),
        _h("two-responses-split", OK, FAKE_RESPONSE),
        _h("extra-bytes-after-cl", OK + b"EXTRA GARBAGE"),
        _h("extra-crlf-after-cl", OK + b"\r\n"),
        _h("204-with-body",
           b"HTTP/1.1 204 No Content\r\nContent-Length: 8\r\n\r\n" + FAKE_RESPONSE),
        _h("204-chunked", b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"8\r\nSMUGGLED\r\n0\r\n\r\n"),
        _h("304-with-body", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 8\r\n\r\nSMUGGLED"),
        _h("304-then-fake", b"HTTP/1.1 304 Not Modified\r\n\r\n" + FAKE_RESPONSE),
        _h("100-then-final", b"HTTP/1.1 100 Continue\r\n\r\n" + OK),
        _h("103-then-final", b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + OK),
        _h("100-split-from-final", b"HTTP/1.1 100 Continue\r\n\r\n", OK),
        _h("two-100s", b"HTTP/1.1 100 Continue\r\n\r\n" * 2 + OK),
        _h("100-with-cl", b"HTTP/1.1 100 Continue\r\nContent-Length: 8\r\n\r\n" + OK),
        _h("100-to-head", b"HTTP/1.1 100 Continue\r\n\r\n" + OK[:-2], method=b"HEAD"),
        _h("101-unasked", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n"
           b"Connection: upgrade\r\n\r\n" + FAKE_RESPONSE),
        _h("chunk-size-garbage", CHUNKED + b"zz\r\nhello\r\n0\r\n\r\n", close=True),
        _h("chunk-size-negative", CHUNKED + b"-5\r\nhello\r\n0\r\n\r\n", close=True),
        _h("chunk-size-0x", CHUNKED + b"0x5\r\nhello\r\n0\r\n\r\n" + FAKE_RESPONSE),
        _h("chunk-size-overflow", CHUNKED + b"ffffffffffffffffff1\r\nx\r\n", close=True),
        _h("chunk-size-small", CHUNKED + b"2\r\nhello\r\n0\r\n\r\n", close=True),
        _h("chunk-size-big-then-close", CHUNKED + b"50\r\nhello\r\n", close=True),
        _h("chunk-data-holds-fake", CHUNKED + b"5\r\nhello\r\n0\r\n\r\n" + FAKE_RESPONSE),
        _h("chunk-bare-lf", CHUNKED + b"5\nhello\n0\n\n" + FAKE_RESPONSE),
        _h("chunk-split-late-bad", CHUNKED + b"5\r\nhello\r\n", b"zz\r\n", close=True),
        _h("endless-head", *endless),
        _h("close-delimited", b"HTTP/1.1 200 OK\r\n\r\nbody " + FAKE_RESPONSE, close=True),
        _h("close-delimited-http10", b"HTTP/1.0 200 OK\r\n\r\nbody " + FAKE_RESPONSE, close=True),
        _h("cl-and-te", b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n"
           b"\r\n5\r\nhello\r\n0\r\n\r\n" + FAKE_RESPONSE),
        _h("te-and-cl-holding-fake", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
           b"Content-Length: %d\r\n\r\n0\r\n\r\n" % (5 + len(FAKE_RESPONSE)) + FAKE_RESPONSE),
        _h("cl-twice-differing", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 10\r\n"
           b"\r\nokSMUGGLED"),
        _h("cl-list", b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok" + FAKE_RESPONSE),
        _h("cl-plus", b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok" + FAKE_RESPONSE),
        _h("cl-negative", b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n" + FAKE_RESPONSE),
        _h("te-identity", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nok",
           close=True),
        _h("te-gzip-chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
           b"2\r\nok\r\n0\r\n\r\n"),
        _h("bare-lf-head", b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok" + FAKE_RESPONSE),
        _h("obs-fold-cl", b"HTTP/1.1 200 OK\r\nContent-Length:\r\n 2\r\n\r\nok" + FAKE_RESPONSE),
        _h("status-no-reason", b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok"),
        _h("status-4-digits", b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok", close=True),
        _h("http10-keep-alive", b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
           b"Content-Length: 2\r\n\r\nok" + FAKE_RESPONSE),
        _h("truncated-cl", b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort", close=True),
        _h("nothing", close=True),
    ]


@st.composite
def hostile_response(draw: st.DrawFn) -> Hostile:
    """A generated response: framing and extras bent like generated requests."""
    method = draw(st.sampled_from([b"GET", b"GET", b"HEAD"]))
    status = draw(st.sampled_from([200, 200, 201, 204, 304, 404, 500]))
    interim = draw(st.sampled_from([b"", b"", b"", b"HTTP/1.1 100 Continue\r\n\r\n",
                                    b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"]))
    version = draw(st.sampled_from([b"HTTP/1.1"] * 5 + [b"HTTP/1.0"]))
    body = draw(st.sampled_from([b"", b"ok", FAKE_RESPONSE]) | st.binary(max_size=40))
    frame, encoded = draw(framing(body))
    fields = [n + b":" + v + b"\r\n" for n, v in draw(
        st.lists(st.tuples(field_name(), field_value()), max_size=3))]
    conn = draw(st.sampled_from([None, None, b"keep-alive", b"close"]))
    if conn is not None:
        fields.append(b"Connection: " + conn + b"\r\n")
    extra = draw(st.sampled_from([b"", b"", FAKE_RESPONSE, b"garbage", b"\r\n"]))
    raw = (interim + version + b" %d X\r\n" % status + b"".join(draw(st.permutations(
        [*fields, frame]))) + b"\r\n" + encoded + extra)
    cuts = sorted(draw(st.lists(st.integers(1, len(raw) - 1), max_size=2, unique=True)))
    chunks = tuple(raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True))
    # A response h11 does not see the end of is followed by a close: otherwise the run would
    # wait on a backend that is merely slow, which proves nothing.
    close = draw(st.booleans()) or reference(method, raw, False).error != ""
    return Hostile("generated", method, chunks, close)


def _names(a: Answer, target: bytes) -> bool:
    return a.header(b"x-recorder") is not None and b'"target": "%b"' % target in a.body


def late_leftover(h: Hostile) -> bool:
    """True when bytes follow the response in a later write than the one that ended it.

    No HTTP/1.1 proxy can attribute those: the connection went back to the pool when the
    response ended and may already carry the next request, whose answer they then appear to
    be (nginx and HAProxy alike; docs/security.md, "What it cannot stop"). Only bytes in the
    same read as the end are provably excess, and those are cut.
    """
    for i in range(1, len(h.chunks)):
        if _ended(h.method, h.chunks[:i]):
            return any(h.chunks[i:])
    return False


def _ended(method: bytes, chunks: tuple[bytes, ...]) -> bool:
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_EVENT)
    conn.send(h11.Request(method=method, target="/", headers=[("Host", "app.test")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(b"".join(chunks))
    try:
        while True:
            ev = conn.next_event()
            if isinstance(ev, h11.EndOfMessage):
                return True
            if ev is h11.NEED_DATA or isinstance(ev, h11.ConnectionClosed):
                return False
    except h11.RemoteProtocolError:
        return False


def response_violations(h: Hostile, tag: bytes, run: Run, after: Run) -> list[str]:
    """Everything wrong with one hostile-response run and the fresh connection after it."""
    out: list[str] = []
    if late_leftover(h):
        # What can be checked: the response itself reached the client whole and the client
        # stream stays parseable; who the late bytes appear to answer cannot be.
        answers, err = parse_responses(run.reply, [h.method, b"GET", b"GET"])
        ref = reference(h.method, b"".join(h.chunks), h.close)
        if run.ending == "timeout":
            out.append("the proxy neither finished answering nor closed the connection")
        if not answers or not answers[0].complete:
            # Allowed only as a cut: excess in the read that ends a body begun in an earlier
            # read cannot be placed, so both connections are closed (docs/security.md).
            if run.ending == "timeout" or len(answers) > 1:
                out.append(f"response 0 did not arrive whole: {run.reply[:200]!r} {err}")
        elif answers[0].header(b"server") != b"haloy" and answers[0].status != ref.status:
            out.append(f"response 0 is {answers[0].status}, the backend sent {ref.status}")
        return out
    ref = reference(h.method, b"".join(h.chunks), h.close)
    targets = [b"/r/" + tag, b"/next/" + tag, b"/canary"]
    answers, err = parse_responses(run.reply, [h.method, b"GET", b"GET"])
    if run.ending == "timeout":
        out.append("the proxy neither finished answering nor closed the connection")
    first = answers[0] if answers else None
    if first is not None and first.complete:
        if first.header(b"x-recorder") is not None:
            out.append(f"response 0 answers another request: {first.body[:120]!r}")
        elif first.header(b"server") == b"haloy":  # made by the proxy
            if first.status < 500:
                out.append(f"the proxy answered {first.status} for a bad backend response")
        elif ref.error:
            out.append(f"the client got a complete {first.status} {first.body[:80]!r} from "
                       f"bytes the strict parser rejects ({ref.error})")
        elif (first.status, first.body) != (ref.status, ref.body):
            out.append(f"the client got {first.status} {first.body[:80]!r}, the backend sent "
                       f"{ref.status} {ref.body[:80]!r}")
    for k, a in enumerate(answers[1:], 1):
        want = targets[k] if k < len(targets) else b"nothing"
        if not _names(a, want):
            out.append(f"response {k} is not the answer to {want!r} but {a.status} "
                       f"{a.body[:120]!r}")
        if MARK in a.body:
            out.append(f"response {k} carries the backend's leftover bytes: {a.body[:120]!r}")
    cut_first = len(answers) <= 1 and ("response 0" in err or "inside response 0" in err)
    if first is None and run.reply and b"\r\n\r\n" not in run.reply:
        # The proxy relayed head bytes it never saw the end of: nothing bounds them, and a
        # lenient client may act on them; a backend head that never completes is a 502/504.
        out.append(f"the client got {len(run.reply)} bytes of a response head that never "
                   f"completed: {run.reply[:120]!r}")
    if err and not cut_first:
        out.append(f"client stream: {err}; it got {run.reply[:300]!r}")
    later, later_err = parse_responses(after.reply, [b"GET", b"GET"])
    if not later or not _names(later[0], b"/after/" + tag) or later_err:
        got = later[0].body[:120] if later else after.reply[:120]
        out.append(f"the next client (a fresh connection) did not get its own answer: {got!r} "
                   f"{later_err}")
    return out + run.backend_errors + after.backend_errors
