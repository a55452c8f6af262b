"""The client side of the proxy: parse requests, queue them in pipeline order, forward.

Hot path rules (docs/proxy.md): no task per request; everything a read produces for the
backend goes out in one write; flow control both ways (connection.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Final

import httptools

from haloy.proxy.chunked import ChunkedEnd
from haloy.proxy.connection import INF, P_QUEUE, P_UPSTREAM, ClientConnection
from haloy.proxy.exchange import API, Exchange
from haloy.proxy.forward import error_status, forwarded_tail, rewrite_raw
from haloy.proxy.pages import error_response, with_close
from haloy.proxy.request_target import origin_form
from haloy.proxy.service import Verdict

if TYPE_CHECKING:
    from haloy.proxy.upstream import UpstreamProtocol

log = logging.getLogger(__name__)
# Buffered request bytes per connection before we stop reading from the client.
_HIGH_WATER: Final = 256 * 1024
_LINE_ENDS: Final = frozenset((b" HTTP/1.1", b" HTTP/1.0"))
_CRLF: Final = b"\r\n"
# What a closed connection's parser is replaced with (one with no callbacks into us).
_NO_PARSER: Final = httptools.HttpRequestParser(object())
# Field blocks up to this size are remembered (per connection and service-wide) to skip the
# scan of a repeat.
_FIELDS_CACHE_MAX: Final = 4096
# RFC 9110 §9.2.2: only these may be sent again when a backend closed without answering
# (the request may have reached it).
_IDEMPOTENT: Final = frozenset((b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"))


class _Reject(Exception):
    """Raised from a parser callback to stop parsing; `status` is the answer."""

    def __init__(self, status: int, head_only: bool = False) -> None:
        self.status = status
        self.head_only = head_only  # the refused request is a HEAD: no body in the answer


class ClientProtocol(ClientConnection):
    """One client connection (plain or TLS): parse, route, queue and forward requests."""

    # The previous head's field block (from its request line's CRLF on) and the verdict on
    # it; b"" never matches a real head. Class-level defaults, as in ClientConnection.
    fields = b""
    verdict: Verdict = (b"", 0, 0, 0)

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            ip = str(peer[0])
            self.client_ip = ip.encode()
            self.loopback = ip.startswith("127.") or ip in ("::1", "::ffff:127.0.0.1")
            if self.service.table.trusted_proxies:
                self.trusted = self.service.table.is_trusted(ip)
        if not self.service.client_opened(self):
            self.closed = True
            transport.abort()  # type: ignore[attr-defined]
            return
        # No timer per connection (see head_watch.py): the first slow head or keep-alive
        # deadline arms one.
        service = self.service
        now = service.clock or service.start_clock()
        self.deadline = deadline = now + self.limits.header_timeout
        service.head_watch.add(self, deadline)

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel_data(data)
            return
        if self.pending_tunnel is not None:
            # Held until the backend's 101: a refused upgrade must not smuggle a request.
            self.pending_tunnel.append(data)
            self._pause(P_QUEUE)
            return
        if self.stopped:
            return
        # Callbacks slice heads and bodies out of this read, from `pos` on.
        self.data = data
        self.pos = 0
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self.pending_tunnel = [data[exc.args[0] :]]
            self.stopped = True
            self._pause(P_QUEUE)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if not isinstance(cause, _Reject):
                log.error("request handling failed", exc_info=cause)
            self._flush()  # what complete requests before the bad one put out still goes
            if isinstance(cause, _Reject):
                self._fail(cause.status, cause.head_only)
            else:
                self._fail(400)
            return
        except httptools.HttpParserError:
            self._flush()
            self._fail(400)
            return
        finally:
            self.data = b""
        if self.pos < len(data):
            cur = self.cur
            if cur is None:
                if not self.stopped:
                    self._head_continues(data)
            elif not self._body_rest(cur, data):
                return
        if self.cur is not None and not self.stopped:
            # A body continues in a later read: it must keep coming (nginx client_body_timeout).
            self._set_deadline(self.service.now() + self.limits.body_timeout)
        self._flush()

    def _head_continues(self, data: bytes) -> None:
        """The rest of this read begins a head that ends in a later read (rare)."""
        piece = data[self.pos :] if self.pos else data
        # llhttp buffers a partial field itself: bound what a head may occupy across reads.
        if len(self.carry) + len(piece) > self.limits.max_header_bytes:
            self._fail(431)
            return
        if self.carry:
            self.carry += piece
        elif piece.strip(b"\r\n"):  # empty lines between requests start no head
            self.carry = piece
            # Slowloris guard: the head must be complete within header_timeout from now.
            self._set_deadline(self.service.now() + self.limits.header_timeout)

    def _body_rest(self, ex: Exchange, data: bytes) -> bool:
        """The rest of this read is body of `ex` (its message continues); False if malformed."""
        pos = self.pos
        if ex.body_left > 0:
            ex.body_left -= len(data) - pos
        elif ex.chunks is not None:
            try:
                end = ex.chunks.scan(data, pos)
            except ValueError:
                end = 0
            if end >= 0:  # llhttp wants more bytes, so the scanner must too
                self._fail(400)
                return False
        out = ex.out
        if out is not None:
            piece = data[pos:] if pos else data
            out.append(piece)
            ex.out_size += len(piece)
        return True

    def eof_received(self) -> bool | None:
        if self.tunnel is not None:
            self.client_eof = True
            if self.upstream_eof:
                self._close_tunnel()
            elif self.tunnel.transport is not None and self.tunnel.transport.can_write_eof():
                self.tunnel.transport.write_eof()
            return True
        self.client_eof = True
        if self.lingering:
            return False  # the client read our answer and closed: close too
        # A client may half-close after sending whole requests and still read the responses;
        # a request cut off mid-way can never complete, so the connection ends here.
        return (
            bool(self.queue) and self.cur is None and not self.carry
            and self.pending_tunnel is None
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        # The parser holds our bound callbacks: without this cycle the connection is freed
        # at once, not by a garbage collection (fewer collections per accepted connection).
        self.parser = _NO_PARSER
        if self.watch_key:
            self.service.head_watch.discard(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
            self.timer_at = INF
        for ex in self.queue:
            ex.cancelled = True
            up = ex.upstream
            if up is not None and not up.tunnel:
                up.ex = None
                up.abort()
            self.service.release(ex)
        self.queue.clear()
        if self.tunnel is not None:
            self.tunnel.close()
        self.service.client_closed(self)

    def pause_writing(self) -> None:
        self.writing_paused = True
        front = self.queue[0] if self.queue else None
        if front is not None and front.upstream is not None:
            front.upstream.pause_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        front = self.queue[0] if self.queue else None
        if front is not None and front.upstream is not None:
            front.upstream.resume_reading()

    # -- httptools callbacks ---------------------------------------------------------------
    def on_headers_complete(self) -> None:
        data = self.data
        carry = self.carry
        if carry:
            # The head began in an earlier read (rare): join, then find its end.
            self.carry = b""
            buf = carry.lstrip(b"\r\n") + data
            end = buf.find(b"\r\n\r\n") + 4
            raw = buf[:end]
            self.pos = end - (len(buf) - len(data))
        else:
            pos = self.pos
            while data[pos] in _CRLF:  # empty lines between requests (RFC 9112 §2.2)
                pos += 1
            end = data.find(b"\r\n\r\n", pos) + 4
            raw = data if pos == 0 and end == len(data) else data[pos:end]
            self.pos = end
        if end < 4:
            raise _Reject(400)  # cannot happen: llhttp saw the end of this head
        if len(raw) > self.limits.max_header_bytes:
            raise _Reject(431, raw.startswith(b"HEAD "))
        self.deadline = INF
        parser = self.parser
        # The version from the request line llhttp validated ("... HTTP/1.1"): no string
        # formatting per request as with parser.get_http_version().
        le = raw.find(b"\r\n")
        if raw[le - 9 : le] not in _LINE_ENDS:
            # HTTP/0.9 has no head to route; anything above 1.1 is not spoken here.
            raise _Reject(400 if parser.get_http_version() < "1.0" else 505,
                          raw.startswith(b"HEAD "))
        self.cur = ex = Exchange()
        ex.client = self
        ex.method = method = parser.get_method()
        ex.keep_alive = parser.should_keep_alive() and not self.draining
        if method == b"CONNECT":
            raise _Reject(405)
        upgrading = parser.should_upgrade()
        # Origin-form ("/...") is the rule; absolute-form is routed by its authority and
        # forwarded in origin-form, "*" only with OPTIONS (RFC 9112 §3.2), anything else is 400.
        odd = raw[len(method) + 1] != 47 or raw[le - 10] == 32
        if odd:
            raw = origin_form(raw, le, method)
            if not raw:
                raise _Reject(400)
            le = raw.find(b"\r\n")
        service = self.service
        # The verdict on a field block (everything from the request line's CRLF on) holds for
        # any head with the same block: Host, framing, the hop-by-hop line to cut. Keep-alive
        # clients repeat their fields (checked against this connection's last block with one
        # endswith); new connections of the same client software repeat them across
        # connections (a service-wide dict). A head with an Upgrade is never cached.
        fields = self.fields
        verdict: Verdict | None = None
        if len(raw) - le == len(fields) and raw.endswith(fields) and not upgrading and not odd:
            verdict = self.verdict
        elif not upgrading and not odd and len(raw) - le <= _FIELDS_CACHE_MAX:
            fields = raw[le:]
            verdict = service.verdicts.get(fields)
            if verdict is not None:
                self.fields = fields
                self.verdict = verdict
        if verdict is not None:
            host, body, cut, cut_end = verdict
            # llhttp checked "METHOD SP target SP HTTP/1.x" (it tolerates extra spaces).
            url = raw[len(method) + 1 : le - 9].strip(b" ")
            head = b""
            upgrade = None
        else:
            head, url, host, body, upgrade, error, span = rewrite_raw(
                raw, raw[le - 3 : le], self.client_ip, self.scheme, upgrading, le, self.trusted
            )
            if error:
                raise _Reject(error_status(error))
            if upgrading and body:
                # A body would be forwarded and then kept as tunnel data too: refuse it.
                raise _Reject(400)
            cut = cut_end = 0
            if (
                span is not None and host and not upgrading and not odd
                and len(raw) - le <= _FIELDS_CACHE_MAX
            ):
                cut, cut_end = span
                if cut_end:
                    cut -= le
                    cut_end -= le
                verdict = (host, body, cut, cut_end)
                self.fields = fields  # raw[le:], sliced above for the lookup
                self.verdict = verdict
                service.remember_verdict(fields, verdict)
                head = b""  # built below, as for a cached verdict
        if le > self.limits.max_url_bytes and len(url) > self.limits.max_url_bytes:
            raise _Reject(414)
        if raw[le - 1] == 48:  # HTTP/1.0
            if body < 0:
                # Chunked framing in HTTP/1.0 is faulty (RFC 9112 §6.1); checked here because
                # a cached verdict is shared by heads whose request lines differ.
                raise _Reject(400)
            ex.http10 = True
        if not head:
            # Forward the head as received (minus a cut line), plus our fields (built once
            # per connection and Host).
            if host != self.fwd_host or not self.fwd_tail:
                self.fwd_host = host
                self.fwd_tail = forwarded_tail(self.client_ip, self.scheme, host)
            if cut_end:
                head = raw[: le + cut] + raw[le + cut_end : -2] + self.fwd_tail
            else:
                head = raw[:-2] + self.fwd_tail
        ex.url = url
        ex.host = host
        if upgrade is not None:
            ex.upgrade = upgrade
        if body < 0:
            ex.body_left = -1
            ex.chunks = ChunkedEnd()
        elif body:
            ex.body_left = body
        service.route(ex, host, self.loopback, self.scheme)
        if ex.kind == API:
            head = head[:-2] + service.table.api_head_end  # haloyd believes our X-Forwarded-For
        queue = self.queue
        queue.append(ex)
        if ex.local is not None:
            ex.out = None
            if body and raw.lower().find(b"\r\nexpect:", le) >= 0:
                # The client waits for 100 Continue before sending its body: answer now and
                # close rather than wait for a body that will not come.
                ex.close_after = True
                ex.keep_alive = False
                ex.local = with_close(ex.local)
            if len(queue) == 1:
                if ex.request_done or ex.close_after:
                    self._send_local(ex)
            else:
                self._pause(P_QUEUE)
            return
        if not body:
            ex.head = head
        ex.out = [head]
        if len(queue) == 1:
            self._start(ex)
        else:
            ex.out_size = len(head)
            self._pause(P_QUEUE)

    def on_message_complete(self) -> None:
        ex = self.cur
        assert ex is not None
        if ex.body_left:
            # The body ends in this read: forward exactly up to its end.
            data = self.data
            pos = self.pos
            if ex.body_left > 0:
                end = pos + ex.body_left
            else:
                assert ex.chunks is not None
                try:
                    end = ex.chunks.scan(data, pos)
                except ValueError:
                    raise _Reject(400) from None
                if end < 0:
                    raise _Reject(400)  # cannot happen: llhttp saw the end of this body
            ex.body_left = 0
            ex.chunks = None
            self.pos = end
            out = ex.out
            if out is not None:
                piece = data[pos:end]
                out.append(piece)
                ex.out_size += len(piece)
        self.cur = None
        ex.request_done = True
        if not ex.keep_alive or ex.upgrade is not None:
            self.stopped = True
        if ex.local is not None and self.queue and self.queue[0] is ex:
            self._send_local(ex)

    # -- request side ----------------------------------------------------------------------
    def _flush(self) -> None:
        """Send what this read produced for the front exchange in one write."""
        if not self.queue:
            return
        ex = self.queue[0]
        up = ex.upstream
        out = ex.out
        if up is not None and out:
            up.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()
            ex.out_size = 0
        elif out is not None and ex.out_size > _HIGH_WATER:
            self._pause(P_QUEUE)

    def _start(self, ex: Exchange) -> None:
        if ex.local is not None:
            if ex.request_done or ex.close_after:
                self._send_local(ex)
            return
        self.service.dispatch(ex)

    def attached(self, up: UpstreamProtocol) -> None:
        """Flow control once a backend serves the front exchange (UpstreamProtocol.bind)."""
        if self.writing_paused:
            up.pause_reading()
        if self.paused & P_QUEUE and len(self.queue) == 1 and self.pending_tunnel is None:
            self._resume(P_QUEUE)

    def _send_local(self, ex: Exchange) -> None:
        assert ex.local is not None
        if self.transport is not None and not self.closed:
            self.transport.write(ex.local)
        ex.status = ex.status or int(ex.local[9:12])
        ex.resp_bytes = len(ex.local)
        self.done(ex, keep_alive=not ex.close_after and ex.request_done)

    def local_error(self, ex: Exchange, status: int, sent: bool = False) -> None:
        """Answer `ex` with an error page (nothing of a backend response was sent yet).

        If no byte went upstream and the body is still arriving, the page waits for the end
        of the request so the connection stays usable; otherwise it goes now and we close.
        """
        ex.upstream = None
        ex.status = status
        ex.out = None
        if self.closed or ex.cancelled:
            return
        if not sent and not ex.request_done:
            ex.local = error_response(status, not ex.keep_alive, ex.method == b"HEAD")
            return
        close = not ex.request_done or not ex.keep_alive
        ex.close_after = close
        ex.local = error_response(status, close, ex.method == b"HEAD")
        self._send_local(ex)

    def upstream_failed(self, ex: Exchange, up: UpstreamProtocol) -> None:
        """The backend closed before answering: retry a stale pooled connection once, else 502."""
        ex.upstream = None
        if (
            ex.reused and not ex.retried and ex.head and ex.request_done and not ex.cancelled
            and ex.method in _IDEMPOTENT
        ):
            ex.retried = True
            ex.out = [ex.head]
            self.service.redispatch_same(ex)
            return
        self.service.count_upstream_error("reset", up.backend)
        self.local_error(ex, 503 if ex.kind == 1 else 502, sent=True)

    def response_done(
        self, ex: Exchange, up: UpstreamProtocol, reusable: bool, keep_alive: bool
    ) -> None:
        """The backend's response to the front exchange is complete."""
        ex.upstream = None
        if reusable and not ex.cancelled:
            up.park()
        elif not up.closed:
            up.close()
        self.done(ex, keep_alive and ex.request_done and ex.upgrade is None)

    def done(self, ex: Exchange, keep_alive: bool) -> None:
        """`ex` is answered: next exchange, or the keep-alive deadline, or close."""
        queue = self.queue
        if queue and queue[0] is ex:
            queue.popleft()
        service = self.service
        service.finished(ex)  # a drain may close this connection once it is quiet (served)
        if self.closed:
            return
        if self.paused & P_UPSTREAM:
            # That backend connection is gone or parked; it will never call resume_writing.
            self._resume(P_UPSTREAM)
        if not keep_alive or not ex.keep_alive:
            self.stopped = True
            queue.clear()
            assert self.transport is not None
            if ex.local is None or ex.status < 400 or self.client_eof or not self.linger():
                self.transport.close()
            return
        if queue:
            self._start(queue[0])
            if len(queue) == 1 and self.paused & P_QUEUE:
                self._resume(P_QUEUE)
            return
        if self.paused:
            self._resume(P_QUEUE)
        self._set_deadline((service.clock or service.start_clock()) + self.limits.keepalive_timeout)

    def _fail(self, status: int, head_only: bool = False) -> None:
        """The request stream is malformed: answer `status` in turn, then close."""
        self.stopped = True
        cur, self.cur = self.cur, None
        if cur is not None:
            head_only = cur.method == b"HEAD"
        elif not head_only:  # refused inside its head: the method is the first word of it
            rest = self.carry + self.data[self.pos : self.pos + 8]
            head_only = rest.lstrip(b"\r\n").startswith(b"HEAD ")
        if cur is not None and cur in self.queue:
            if cur.upstream is not None or cur is self.queue[0]:
                # Its head already went upstream; the body is broken, so the exchange is too.
                if cur.resp_bytes:
                    self.abort()
                    return
                if cur.upstream is not None:
                    cur.upstream.ex = None
                    cur.upstream.abort()
                    cur.upstream = None
                self.service.release(cur)
            cur.cancelled = True  # a connect still under way must not send its head
            self.queue.remove(cur)
        ex = Exchange()
        ex.client = self
        ex.status = status
        ex.close_after = True
        ex.keep_alive = False
        ex.local = error_response(status, True, head_only)  # no body for HEAD (RFC 9110 §9.3.2)
        self.queue.append(ex)
        if len(self.queue) == 1:
            self._send_local(ex)
