"""A loopback backend that records every byte it receives and answers what h11 parses.

It runs on threads, not on the test's event loop, so that synchronous hypothesis tests can
drive a client while it serves. Every request it parses is kept (per connection, with the raw
head as received and the run it arrived in); each complete one is answered 200 with a body
naming it, unless a `Script` says otherwise. Bytes h11 rejects are answered 400 (marked with
X-Recorder-Error) and the connection is closed.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import select
import socket
import struct
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import h11

from tests.fixtures.polling import wait_until
from tests.proxy.h11_views import MAX_EVENT, Message


@dataclass
class Script:
    """A hostile answer: raw chunks written with a pause between them, then maybe a close."""

    chunks: list[bytes]
    close: bool = False


@dataclass
class BackendRequest(Message):
    conn: int = 0
    n: int = 0
    run: int = 0
    seq: int = 0  # arrival order across connections
    raw_head: bytes = b""

    @property
    def rid(self) -> bytes:
        return b"%d.%d" % (self.conn, self.n)


Responder = Callable[[BackendRequest], Script | None]


def naming_response(req: BackendRequest) -> tuple[list[tuple[str, str]], bytes]:
    """Headers and body of the default answer: it names the request it answers."""
    body = json.dumps({
        "conn": req.conn, "n": req.n, "method": req.method.decode("latin-1"),
        "target": req.target.decode("latin-1"),
        "sha256": hashlib.sha256(req.body).hexdigest(), "length": len(req.body),
    }).encode()
    return [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
            ("X-Recorder", req.rid.decode())], body


def _unread(sock: socket.socket) -> int:
    buf = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    return int(struct.unpack("i", buf)[0])


class _Conn:
    def __init__(self, cid: int, sock: socket.socket) -> None:
        self.cid = cid
        self.sock = sock
        self.raw = bytearray()
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_EVENT)
        self.requests: list[BackendRequest] = []
        self.closed = False
        self.eof = False

    @property
    def busy(self) -> bool:
        """Open with a request (or part of one) not yet answered."""
        return not self.closed and (
            self.h11.their_state is not h11.IDLE or bool(self.h11.trailing_data[0])
        )


class RecordingBackend:
    """Start with `with RecordingBackend() as be:`; `be.port` is on 127.0.0.1."""

    def __init__(self, responder: Responder | None = None) -> None:
        self.responder = responder
        self.lock = threading.Lock()
        self.run = 0
        self.conns: set[_Conn] = set()  # open ones
        self.count = 0
        self.by_run: dict[int, list[BackendRequest]] = {}  # in arrival order
        self.errors: dict[int, list[str]] = {}
        self.seq = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stopping = False
        self.threads: list[threading.Thread] = []

    def __enter__(self) -> RecordingBackend:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping = True  # every thread polls it at least every 0.1 s
        for t in self.threads:
            t.join(5)
        for c in list(self.conns):
            c.sock.close()
        self.listener.close()

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)
        self.threads.append(t)
        t.start()

    def begin(self, run: int) -> None:
        """Attribute what arrives from now on to run `run`."""
        with self.lock:
            self.run = run

    def requests(self, run: int) -> list[BackendRequest]:
        """Requests whose head arrived during `run`, in arrival order."""
        with self.lock:
            return list(self.by_run.get(run, []))

    def errors_in(self, run: int) -> list[str]:
        """What the backend's parser rejected during `run`."""
        with self.lock:
            return list(self.errors.get(run, []))

    def settle(self, timeout: float = 3.0) -> list[str]:
        """Wait until the backend has read and parsed everything sent so far and no open
        connection holds part of a request; return the connections still holding one."""
        def unsettled() -> list[str]:
            with self.lock:
                pending = select.select([self.listener], [], [], 0)[0] or any(
                    not c.closed and not c.eof and _unread(c.sock) for c in self.conns
                )
                busy = [c for c in self.conns if c.busy]
                if not pending and not busy:
                    return []
                return [f"backend connection {c.cid} is open holding an unfinished request: "
                        f"{bytes(c.raw[-200:])!r}" for c in busy] or ["backend never settled"]

        try:
            return wait_until("the backend to settle", unsettled, lambda left: not left,
                              timeout=timeout, interval=0.002)
        except AssertionError:
            return unsettled()

    # -- server threads --------------------------------------------------------------------
    def _accept(self) -> None:
        while not self.stopping:
            if not select.select([self.listener], [], [], 0.1)[0]:
                continue
            with self.lock:
                try:
                    sock, _ = self.listener.accept()
                except OSError:
                    return
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn = _Conn(self.count, sock)
                self.count += 1
                self.conns.add(conn)
            self._spawn(self._serve, conn)

    def _serve(self, conn: _Conn) -> None:
        try:
            while not self.stopping and not conn.closed:
                if not select.select([conn.sock], [], [], 0.1)[0]:
                    continue
                # Read and parse under the lock: settle() then sees no read-but-unparsed bytes.
                with self.lock:
                    try:
                        data = conn.sock.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        # An unfinished request at EOF is the proxy giving up on it, not a
                        # parse error: h11 is not told.
                        conn.eof = True
                        break
                    conn.raw += data
                    conn.h11.receive_data(data)
                    writes, close = self._process(conn)
                for chunks in writes:
                    for i, chunk in enumerate(chunks):
                        if i:
                            time.sleep(0.002)  # the proxy sees separate reads
                        conn.sock.sendall(chunk)
                if close:
                    break
        except OSError:
            pass
        finally:
            with self.lock:
                conn.closed = True
                self.conns.discard(conn)
                conn.sock.close()

    def _process(self, conn: _Conn) -> tuple[list[list[bytes]], bool]:
        """Parse what `conn` holds; the answers to write and whether to close after them."""
        h = conn.h11
        writes: list[list[bytes]] = []
        cur = conn.requests[-1] if conn.requests and not conn.requests[-1].complete else None
        while True:
            start = len(conn.raw) - len(h.trailing_data[0])
            try:
                ev = h.next_event()
            except h11.RemoteProtocolError as exc:
                self.errors.setdefault(self.run, []).append(
                    f"backend connection {conn.cid}: {exc}; it received "
                    f"{bytes(conn.raw[-300:])!r}")
                writes.append([b"HTTP/1.1 400 Bad Request\r\nX-Recorder-Error: 1\r\n"
                               b"Content-Length: 0\r\nConnection: close\r\n\r\n"])
                return writes, True
            if ev is h11.NEED_DATA or ev is h11.PAUSED or isinstance(ev, h11.ConnectionClosed):
                return writes, False
            if isinstance(ev, h11.Request):
                end = len(conn.raw) - len(h.trailing_data[0])
                self.seq += 1
                cur = BackendRequest(
                    ev.method, ev.target, ev.http_version, list(ev.headers), conn=conn.cid,
                    n=len(conn.requests), run=self.run, seq=self.seq,
                    raw_head=bytes(conn.raw[start:end]),
                )
                conn.requests.append(cur)
                self.by_run.setdefault(self.run, []).append(cur)
            elif isinstance(ev, h11.Data):
                assert cur is not None
                cur.body += bytes(ev.data)
            elif isinstance(ev, h11.EndOfMessage):
                assert cur is not None
                cur.trailers = list(ev.headers)
                cur.complete = True
                chunks, close = self._answer(conn, cur)
                writes.append(chunks)
                if close or h.our_state is h11.MUST_CLOSE:
                    return writes, True
                h.start_next_cycle()
                cur = None

    def _answer(self, conn: _Conn, req: BackendRequest) -> tuple[list[bytes], bool]:
        """The chunks answering `req` and whether to close after them."""
        h = conn.h11
        script = self.responder(req) if self.responder else None
        if script is not None:
            # h11 must still see an answer to parse the next request on this connection.
            h.send(h11.Response(status_code=200, headers=[("Content-Length", "0")]))
            h.send(h11.EndOfMessage())
            return script.chunks, script.close
        headers, body = naming_response(req)
        out = h.send(h11.Response(status_code=200, headers=headers)) or b""
        if req.method != b"HEAD":
            out += h.send(h11.Data(data=body)) or b""
        out += h.send(h11.EndOfMessage()) or b""
        return [out], False
