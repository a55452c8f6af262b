"""One differential run of a request stream through the proxy, and its verdict.

`exchange` sends the bytes (optionally cut into separate writes), half-closes, reads the reply
to EOF and waits for the recording backend to settle. `violations` then holds the three views
against each other, with h11 as the reference (h11_views.py):

- every response that names a backend request answers, in order, the request at the same place
  in the client's stream, and the backend saw that request with the same method, target
  (absolute-form may become origin-form), end-to-end fields and body;
- any other response is one the proxy made itself, a 4xx/5xx; after a framing error nothing
  more comes back;
- the backend got no complete request the client was not answered for; a request it got only
  the start of is one the strict parser saw the head of and never answered, on a connection the
  proxy then closed;
- what the backend got is unambiguous framing, and the forwarding fields are the proxy's own.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from tests.proxy.h11_views import Answer, Message, RequestView, parse_responses
from tests.proxy.recording_backend import BackendRequest, RecordingBackend

# Appended to every input: its Connection: close makes the proxy end the stream once it has
# answered everything, so the end of a run needs no timeout; and a request the input left
# unfinished swallows it, which is part of what is tested.
CANARY = b"GET /canary HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n"
# The client address smuggled text claims; no backend field may carry it unless the client's
# own request (as the strict parser read it) did.
SPOOF = b"6.6.6.6"
CLIENT_IP = b"127.0.0.1"
ROUTE_HOST = b"app.test"
# Answers after which a proxy cannot know where the next request starts.
FRAMING_ERRORS = frozenset({400, 408, 411, 413, 414, 431, 501, 505})
HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"upgrade",
    b"proxy-authorization", b"transfer-encoding", b"content-length",
})
# Fields a proxy sets from what it saw; a client's may be dropped or appended to.
FORWARDING = (b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-real-ip",
              b"forwarded")


@dataclass
class Run:
    sent: bytes
    reply: bytes
    ending: str  # "eof", "reset" or "timeout"
    backend: list[BackendRequest]
    backend_errors: list[str]
    unsettled: list[str]


def exchange(
    port: int, backend: RecordingBackend, run: int, data: bytes, cuts: tuple[int, ...] = (),
    timeout: float = 10.0,
) -> Run:
    """Send `data` to the proxy in pieces cut at `cuts`, and collect what happened."""
    backend.begin(run)
    points = sorted({c for c in cuts if 0 < c < len(data)} | {0, len(data)})
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(timeout)
    try:
        for i in range(len(points) - 1):
            if i:
                time.sleep(0.002)  # separate segments, so the proxy sees separate reads
            sock.sendall(data[points[i] : points[i + 1]])
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the proxy answered and closed before reading it all: its answer is still read
    reply = bytearray()
    ending = "eof"
    deadline = time.monotonic() + timeout
    try:
        while True:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    except TimeoutError:
        ending = "timeout"
    except OSError:
        ending = "reset"
    finally:
        sock.close()
    unsettled = backend.settle()
    return Run(data, bytes(reply), ending, backend.requests(run), backend.errors_in(run),
               unsettled)


def describe(m: Message) -> str:
    return f"{m.method.decode('latin-1')} {m.target.decode('latin-1')} body={m.body[:60]!r}"


def _origin(target: bytes) -> bytes | None:
    """The origin-form of an absolute-form target, None for any other form."""
    low = target.lower()
    for scheme in (b"http://", b"https://"):
        if low.startswith(scheme):
            rest = target[len(scheme) :]
            cut = min((i for i in (rest.find(b"/"), rest.find(b"?")) if i >= 0), default=-1)
            if cut < 0:
                return b"/"
            path = rest[cut:]
            return path if path.startswith(b"/") else b"/" + path
    return None


def _authority_host(target: bytes) -> bytes | None:
    if _origin(target) is None:
        return None
    rest = target.split(b"://", 1)[1]
    authority = rest.split(b"/", 1)[0].split(b"?", 1)[0]
    return authority.rsplit(b"@", 1)[-1].rsplit(b":", 1)[0].lower()


def _end_to_end(m: Message) -> list[tuple[bytes, bytes]]:
    """The fields a proxy passes on unchanged. A proxy may drop names with an underscore
    (nginx's default; see head_problems and forwarding_problems for why they matter); Host is
    checked apart (an absolute-form target's authority replaces it, RFC 9112 §3.2.2)."""
    named = m.tokens(b"connection") - {b"host"}
    return [(n, v) for n, v in m.headers if n not in HOP_BY_HOP and n not in FORWARDING
            and n != b"host" and n not in named and b"_" not in n]


def compare(k: int, ref: Message, got: BackendRequest) -> list[str]:
    """How the backend's copy of request `k` differs from the client's."""
    out = []
    where = f"request {k} ({describe(ref)})"
    if got.method != ref.method:
        out.append(f"{where}: the backend got method {got.method!r}")
    if got.target != ref.target and got.target != _origin(ref.target):
        out.append(f"{where}: the backend got target {got.target!r}")
    if got.body != ref.body:
        out.append(f"{where}: the backend got body {got.body[:120]!r}")
    if _end_to_end(got) != _end_to_end(ref):
        out.append(f"{where}: end-to-end fields differ: client {_end_to_end(ref)!r}, "
                   f"backend {_end_to_end(got)!r}")
    if got.trailers != ref.trailers:
        out.append(f"{where}: trailers differ: {ref.trailers!r} -> {got.trailers!r}")
    host = _authority_host(ref.target)
    if host is not None and host != ROUTE_HOST:
        out.append(f"{where}: absolute-form target names {host!r} but went to {ROUTE_HOST!r}'s "
                   "backend (RFC 9112 §3.2.2: the target's authority wins over Host)")
    return out


def head_problems(b: BackendRequest) -> list[str]:
    """Framing in a forwarded head that another backend's parser could read differently."""
    raw = b.raw_head.lstrip(b"\r\n")
    out = []
    where = f"backend head of {describe(b)}"
    if raw.count(b"\n") != raw.count(b"\r\n") or raw.count(b"\r") != raw.count(b"\r\n"):
        out.append(f"{where}: a bare CR or LF: {raw[:300]!r}")
    lines = raw.split(b"\r\n")[1:]
    if any(line[:1] in (b" ", b"\t") for line in lines):
        out.append(f"{where}: obs-fold (RFC 9112 §5.2): {raw[:300]!r}")
    names = [line.split(b":", 1)[0].lower() for line in lines if line]
    if names.count(b"content-length") > 1 or names.count(b"transfer-encoding") > 1:
        out.append(f"{where}: a repeated framing field: {raw[:300]!r}")
    if b"content-length" in names and b"transfer-encoding" in names:
        out.append(f"{where}: both Content-Length and Transfer-Encoding (RFC 9112 §6.3 says an "
                   f"intermediary removes Content-Length): {raw[:300]!r}")
    for name in names:
        if b"_" in name and name.replace(b"_", b"-") in (b"content-length", b"transfer-encoding"):
            out.append(f"{where}: {name!r} reaches the backend (CGI/WSGI read it as the "
                       "framing field)")
    return out


def forwarding_problems(b: BackendRequest, ref: Message | None) -> list[str]:
    """The proxy's forwarding fields are its own; smuggled values never become fields."""
    out = []
    where = f"backend request {describe(b)}"
    for n, _ in b.headers:
        if b"_" in n and n.replace(b"_", b"-") in FORWARDING:
            out.append(f"{where}: client field {n!r} reaches the backend beside the proxy's "
                       "own (CGI/WSGI servers read both as one)")
    xff = b.values(b"x-forwarded-for")
    own = ref.values(b"x-forwarded-for") if ref else []
    want = [t.strip() for v in own for t in v.split(b",")]
    got = [t.strip() for v in xff for t in v.split(b",")]
    # The client's own list may be kept (a trusted peer) or dropped; the last hop is ours.
    if len(xff) != 1 or got not in ([*want, CLIENT_IP], [CLIENT_IP]):
        out.append(f"{where}: X-Forwarded-For {xff!r}, expected {CLIENT_IP!r}, maybe after "
                   f"the client's {want!r}")
    hosts = [h.lower().rstrip(b".") for h in b.values(b"host")]
    if len(hosts) != 1 or hosts[0].rsplit(b":", 1)[0].rstrip(b".") != ROUTE_HOST:
        out.append(f"{where}: Host {b.values(b'host')!r} does not name {ROUTE_HOST!r}, the "
                   "host it was routed by")
    if b.values(b"x-forwarded-proto") != [b"http"]:
        out.append(f"{where}: X-Forwarded-Proto {b.values(b'x-forwarded-proto')!r}")
    if len(b.values(b"x-forwarded-host")) != 1:
        out.append(f"{where}: X-Forwarded-Host {b.values(b'x-forwarded-host')!r}")
    if b.values(b"x-real-ip") not in ([], [CLIENT_IP]):
        out.append(f"{where}: X-Real-IP {b.values(b'x-real-ip')!r} is not the client's address")
    spoofed = ref is not None and any(SPOOF in v for _, v in ref.headers)
    for n, v in b.headers:
        if SPOOF in v and not spoofed:
            out.append(f"{where}: field {n!r}: {v!r} comes from smuggled text")
    return out


def _partial(
    b: BackendRequest, ref: RequestView, answers: list[Answer], claimed: dict[int, BackendRequest]
) -> list[str]:
    """A request the backend got only the start of is fine when the client never finished
    it, or when the proxy refused its body (a stricter body parser); then its connection must
    be closed (settle() reports it otherwise)."""
    for j, m in enumerate(ref.requests):
        if j in claimed or m.method != b.method or not m.body.startswith(b.body):
            continue
        if b.target not in (m.target, _origin(m.target)):
            continue
        if not m.complete:
            return []
        status = answers[j].status if j < len(answers) and _proxy_made(answers[j]) else None
        if status in FRAMING_ERRORS:
            return []
        return [f"the backend got only the start of request {j} ({describe(m)}; it got "
                f"{b.body[:60]!r}), which the strict parser read whole; the client got "
                f"{status or 'no answer from the proxy'}"]
    return [f"the backend got the start of a request the strict parser never saw the head of: "
            f"{describe(b)} ({ref.error or 'no error'})"]


def _proxy_made(a: Answer) -> bool:
    return a.header(b"x-recorder") is None and a.header(b"x-recorder-error") is None


def violations(run: Run, ref: RequestView) -> list[str]:
    """Everything wrong with one run (empty: the proxy and the strict parser agree)."""
    out: list[str] = []
    if run.ending == "timeout":
        out.append("the proxy neither finished answering nor closed the connection")
    methods = [m.method for m in ref.requests]
    if ref.refused_method:
        methods.append(ref.refused_method)
    answers, err = parse_responses(run.reply, methods)
    if err and not (run.ending == "reset" and err.startswith("stream ended")):
        out.append(f"client stream: {err}; it got {run.reply[:400]!r}")
    by_rid = {b.rid: b for b in run.backend}
    claimed: dict[int, BackendRequest] = {}
    last_seq = 0
    framing_error = False
    for k, a in enumerate(answers):
        if framing_error:
            out.append(f"response {k} ({a.status}) follows a framing-error answer")
            break
        if a.header(b"x-recorder-error") is not None:
            continue  # the backend's parse-error answer: listed with run.backend_errors
        if _proxy_made(a):
            if a.status < 400:
                out.append(f"response {k} is a {a.status} the backend did not send")
            framing_error = a.status in FRAMING_ERRORS
            continue
        b = by_rid.get(a.header(b"x-recorder") or b"")
        if b is None:
            out.append(f"response {k} is not an answer to a request of this run: "
                       f"{a.status} {a.body[:200]!r}")
            continue
        claimed[k] = b
        if b.seq < last_seq:
            out.append(f"response {k} answers a request the backend got earlier: out of order")
        last_seq = b.seq
        if k >= len(ref.requests) or not ref.requests[k].complete:
            why = ref.error or ("the stream asked to close" if ref.closed else "EOF")
            out.append(f"the backend got and answered request {k} ({describe(b)}), which the "
                       f"strict parser never completed: {why}")
            continue
        out += compare(k, ref.requests[k], b)
    answered = {id(b) for b in claimed.values()}
    for b in run.backend:
        if b.complete and id(b) not in answered:
            out.append(f"the backend got a complete request the client had no answer for: "
                       f"{describe(b)} (strict parser: {len(ref.complete)} requests, "
                       f"{ref.error or 'no error'})")
        elif not b.complete:
            out += _partial(b, ref, answers, claimed)
    matched = {id(b): ref.requests[k] for k, b in claimed.items() if k < len(ref.requests)}
    for b in run.backend:
        out += head_problems(b)
        if id(b) in matched or b.complete:
            out += forwarding_problems(b, matched.get(id(b)))
    return out + run.backend_errors + run.unsettled
