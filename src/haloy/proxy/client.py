"""The client side of the proxy: parse requests, queue them in pipeline order, forward.

Hot path rules (see PROXY-NOTES): no task per request; everything a read produces for the
backend goes out in one write; flow control both ways (connection.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import httptools

from haloy.proxy.connection import INF, P_QUEUE, P_UPSTREAM, ClientConnection
from haloy.proxy.exchange import Exchange
from haloy.proxy.forward import chunk, last_chunk, rewrite_request, upgrade_value
from haloy.proxy.pages import error_response

if TYPE_CHECKING:
    from haloy.proxy.service import ProxyService
    from haloy.proxy.upstream import UpstreamProtocol

log = logging.getLogger("haloy.proxy")
# Buffered request bytes per connection before we stop reading from the client.
_HIGH_WATER = 256 * 1024
_VERSIONS = {"1.1": b"1.1", "1.0": b"1.0"}


class _Reject(Exception):
    """Raised from a parser callback to stop parsing; `status` is the answer."""

    def __init__(self, status: int) -> None:
        self.status = status


class ClientProtocol(ClientConnection):
    """One client connection (plain or TLS): parse, route, queue and forward requests."""

    def __init__(self, service: ProxyService, scheme: bytes) -> None:
        super().__init__(service, scheme)
        self.parser = httptools.HttpRequestParser(self)

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            ip = str(peer[0])
            self.client_ip = ip.encode()
            self.loopback = ip.startswith("127.") or ip in ("::1", "::ffff:127.0.0.1")
        if not self.service.client_opened(self):
            self.closed = True
            transport.abort()  # type: ignore[attr-defined]
            return
        self._arm(self.limits.header_timeout)

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.write(data)
            return
        if self.pending_tunnel is not None:
            # Held until the backend's 101: a refused upgrade must not smuggle a request.
            self.pending_tunnel.append(data)
            self._pause(P_QUEUE)
            return
        if self.stopped:
            return
        cur = self.cur
        if cur is None or not cur.headers_done:
            self.head_raw += len(data)
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
            self._fail(cause.status if isinstance(cause, _Reject) else 400)
            return
        except httptools.HttpParserError:
            self._fail(400)
            return
        cur = self.cur
        # llhttp buffers a partial field itself: bound what a head may occupy across reads.
        too_big = self.head_raw > self.limits.max_header_bytes
        if too_big and cur is not None and not cur.headers_done:
            self._fail(431)
            return
        self._flush()

    def eof_received(self) -> bool | None:
        if self.tunnel is not None:
            self.client_eof = True
            if self.upstream_eof:
                self._close_tunnel()
            elif self.tunnel.transport is not None and self.tunnel.transport.can_write_eof():
                self.tunnel.transport.write_eof()
            return True
        # A client may half-close after sending whole requests and still read the responses;
        # a request cut off mid-way can never complete, so the connection ends here.
        return bool(self.queue) and self.cur is None and self.pending_tunnel is None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
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
    def on_message_begin(self) -> None:
        self.cur = Exchange(self)
        self._set_deadline(self.service.now() + self.limits.header_timeout)

    def on_url(self, url: bytes) -> None:
        ex = self.cur
        assert ex is not None
        ex.url += url
        if len(ex.url) > self.limits.max_url_bytes:
            raise _Reject(414)

    def on_header(self, name: bytes, value: bytes) -> None:
        ex = self.cur
        assert ex is not None
        if not ex.headers_done:
            ex.headers.append((name, value))
        elif ex.trailers is None:
            ex.trailers = [(name, value)]
        else:
            ex.trailers.append((name, value))

    def on_headers_complete(self) -> None:
        ex = self.cur
        assert ex is not None
        ex.headers_done = True
        if self.head_raw > self.limits.max_header_bytes:
            # The read held more than a head's worth: measure the head itself.
            size = len(ex.url) + sum(len(n) + len(v) + 4 for n, v in ex.headers)
            if size > self.limits.max_header_bytes:
                raise _Reject(431)
        self.head_raw = 0
        self.deadline = INF
        parser = self.parser
        ex.method = method = parser.get_method()
        ex.keep_alive = parser.should_keep_alive()
        version = _VERSIONS.get(parser.get_http_version())
        if version is None:
            # HTTP/0.9 has no head to route; anything above 1.1 is not spoken here.
            raise _Reject(400 if parser.get_http_version() < "1.0" else 505)
        if method == b"CONNECT":
            raise _Reject(405)
        if parser.should_upgrade():
            ex.upgrade = upgrade_value(ex.headers) or b""
        head, host, chunked, has_body, error = rewrite_request(
            method, ex.url, version, ex.headers, self.client_ip, self.scheme, ex.upgrade
        )
        ex.headers = []
        if error:
            raise _Reject(400)
        ex.host = host
        ex.chunked = chunked
        self.service.route(ex, host, self.loopback, self.scheme)
        if ex.local is not None:
            ex.out = None
        else:
            if not has_body:
                ex.head = head
            ex.out = [head]
            ex.out_size = len(head)
        self.queue.append(ex)
        if len(self.queue) == 1:
            self._start(ex)
        else:
            self._pause(P_QUEUE)

    def on_body(self, body: bytes) -> None:
        ex = self.cur
        assert ex is not None
        out = ex.out
        if out is not None:
            data = chunk(body) if ex.chunked else body
            out.append(data)
            ex.out_size += len(data)

    def on_message_complete(self) -> None:
        ex = self.cur
        assert ex is not None
        self.cur = None
        ex.request_done = True
        if ex.chunked and ex.out is not None:
            ex.out.append(last_chunk(ex.trailers or []))
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

    def attach(self, ex: Exchange, up: UpstreamProtocol) -> None:
        """Bind a connected backend to the front exchange and send what is buffered."""
        up.bind(ex)
        ex.upstream = up
        if self.writing_paused:
            up.pause_reading()
        out = ex.out
        if out:
            up.write(b"".join(out))
            out.clear()
            ex.out_size = 0
        if self.paused & P_QUEUE and len(self.queue) == 1 and self.pending_tunnel is None:
            self._resume(P_QUEUE)

    def _send_local(self, ex: Exchange) -> None:
        assert ex.local is not None
        if self.transport is not None and not self.closed:
            self.transport.write(ex.local)
        ex.status = ex.status or int(ex.local[9:12])
        ex.resp_bytes = len(ex.local)
        self._done(ex, keep_alive=not ex.close_after and ex.request_done)

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
        if ex.reused and not ex.retried and ex.head and ex.request_done and not ex.cancelled:
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
        self._done(ex, keep_alive and ex.request_done and ex.upgrade is None)

    def _done(self, ex: Exchange, keep_alive: bool) -> None:
        if self.queue and self.queue[0] is ex:
            self.queue.popleft()
        self.service.finished(ex)
        if self.closed:
            return
        if self.paused & P_UPSTREAM:
            # That backend connection is gone or parked; it will never call resume_writing.
            self._resume(P_UPSTREAM)
        if not keep_alive or not ex.keep_alive:
            self.stopped = True
            self.queue.clear()
            assert self.transport is not None
            self.transport.close()
            return
        if self.queue:
            self._start(self.queue[0])
            if len(self.queue) == 1 and self.paused & P_QUEUE:
                self._resume(P_QUEUE)
        else:
            self._resume(P_QUEUE)
            self._set_deadline(self.service.now() + self.limits.keepalive_timeout)

    def _fail(self, status: int) -> None:
        """The request stream is malformed: answer `status` in turn, then close."""
        self.stopped = True
        cur, self.cur = self.cur, None
        if cur is not None and cur.headers_done and cur in self.queue:
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
            self.queue.remove(cur)
        ex = Exchange(self)
        ex.status = status
        ex.close_after = True
        ex.keep_alive = False
        ex.local = error_response(status, True)
        self.queue.append(ex)
        if len(self.queue) == 1:
            self._send_local(ex)
