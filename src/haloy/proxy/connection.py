"""State, flow control, timers and tunnel plumbing of one client connection.

`ClientProtocol` (client.py) adds the HTTP parsing and the exchange queue on top.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Final

import httptools

from haloy.proxy.exchange import Exchange
from haloy.proxy.wsframes import FrameTracker, close_frame

if TYPE_CHECKING:
    from haloy.proxy.service import ProxyService
    from haloy.proxy.upstream import UpstreamProtocol

INF: Final = float("inf")
# Pause reasons (a bit set: reading resumes when no reason is left).
P_UPSTREAM: Final = 1  # the backend is not reading the request body fast enough
P_QUEUE: Final = 2  # pipelined requests or a body wait behind the current exchange
# After our close frame, the backend has this long to answer it and close before both sides
# are closed hard (RFC 6455 §7.1.1 lets the server close the TCP connection first).
WS_CLOSE_FALLBACK: Final = 3.0
# After an error answer the client may still be sending (a body, pipelined requests): closing
# with unread input makes the kernel send a reset, which can destroy the answer before the
# client reads it. So the write side is shut and input is read and dropped this long (as
# nginx's lingering close), or until the client closes.
LINGER: Final = 2.0


class ClientConnection(asyncio.Protocol):
    """A client connection's transport state; one lazily re-armed timer per connection."""

    # Class-level defaults: a new connection sets only what differs (it cuts the accept cost).
    # Fields read on every request but rarely written are set in __init__ instead: CPython 3.11
    # specializes instance attribute reads, not reads that fall through to the class.
    transport: asyncio.Transport | None = None
    cur: Exchange | None = None
    client_eof = False
    upstream_eof = False
    data = b""  # the read being parsed; callbacks slice it from `pos`
    pos = 0  # offset in `data` of the first byte not yet assigned to a message
    fwd_host = b""  # the Host that `fwd_tail` (our X-Forwarded-* fields) was built for
    fwd_tail = b""
    timer: asyncio.TimerHandle | None = None
    client_ip = b"unknown"
    loopback = False
    trusted = False  # the peer is in trusted_proxies: its forwarding fields are kept
    ws: FrameTracker | None = None  # client->backend frames of a WebSocket tunnel
    ws_closing = False  # a close frame goes to the backend at the next boundary
    ws_close_sent = False
    served = False  # a response went out: drain may close it once quiet (service.py)
    lingering = False  # answered with an error and half-closed: input is dropped until EOF
    watch_key = 0  # filed in service.head_watch under this bucket (0: not filed)

    def __init__(self, service: ProxyService, scheme: bytes) -> None:
        self.service = service
        self.limits = service.limits
        self.scheme = scheme
        self.queue: deque[Exchange] = deque()
        self.closed = False
        self.stopped = False  # no more requests are read on this connection
        self.paused = 0
        self.writing_paused = False
        # Set here, not on the class: mypyc compiles only literal class-level defaults.
        self.deadline = INF
        self.timer_at = INF  # when `timer` fires (INF: not armed); cheaper than timer.when()
        self.tunnel: UpstreamProtocol | None = None
        self.pending_tunnel: list[bytes] | None = None
        self.carry = b""  # the start of a head that continues in the next read
        self.draining = False  # the worker is shutting down: every response says close
        # The request parser calls back into the subclass (client.py); created here to spare
        # a super().__init__ frame per accepted connection.
        self.parser = httptools.HttpRequestParser(self)

    def _fail(self, status: int, head_only: bool = False) -> None:
        """Answer `status` in turn, then close (the HTTP layer implements it)."""
        raise NotImplementedError

    # -- tunnels ---------------------------------------------------------------------------
    def start_tunnel(self, ex: Exchange, up: UpstreamProtocol) -> None:
        """The backend answered 101: bytes now flow raw both ways."""
        self.queue.clear()
        self.tunnel = up
        self.service.tunnel_opened(ex, up)
        if ex.upgrade is not None and ex.upgrade.lower() == b"websocket":
            self.ws = FrameTracker()
        pending, self.pending_tunnel = self.pending_tunnel or [], None
        data = b"".join(pending)
        if data:
            self.tunnel_data(data)
        self.paused &= ~P_QUEUE
        if not self.paused and self.transport is not None:
            self.transport.resume_reading()

    def tunnel_data(self, data: bytes) -> None:
        """Client bytes of an established tunnel: forward them (minding WebSocket frames)."""
        up = self.tunnel
        assert up is not None
        ws = self.ws
        if ws is None:
            up.write(data)
        elif not self.ws_closing:
            ws.feed(data)
            up.write(data)
        elif not self.ws_close_sent:
            n = ws.feed(data, stop_at_boundary=True)
            if n:
                up.write(data[:n])
            if ws.at_boundary:
                self._send_ws_close()
        # After our close frame the client's frames are dropped: the backend is closing.

    def close_tunnel_gracefully(self) -> None:
        """End the tunnel cleanly: a WebSocket gets a close frame (1001), anything else a FIN."""
        up = self.tunnel
        if up is None or self.closed:
            return
        if self.ws is None:
            up.close()  # FIN to the backend; the client side closes when the tunnel ends
            return
        if self.ws_closing:
            return
        self.ws_closing = True
        if self.ws.at_boundary:
            self._send_ws_close()
        self.service.loop.call_later(WS_CLOSE_FALLBACK, self._close_tunnel)

    def _send_ws_close(self) -> None:
        # Sent as if from the client: the backend answers with its own close frame, which
        # reaches the client through the tunnel, then closes (the client sees 1001, not 1006).
        self.ws_close_sent = True
        up = self.tunnel
        if up is None:
            return
        if self.client_eof or up.transport is None or up.transport.is_closing():
            # The backend side is half-closed (write_eof) or going: no frame can follow.
            self._close_tunnel()
            return
        up.write(close_frame())

    def begin_drain(self) -> None:
        """The worker stops: the next response says Connection: close (in-flight ones too,
        when no byte of them went out yet)."""
        self.draining = True
        if not self.queue:
            return
        # Only the last request already read closes: the pipelined ones before it are answered.
        ex = self.queue[-1]
        if ex.local is not None or ex.upgrade is not None:
            return
        up = ex.upstream
        if up is None:
            ex.keep_alive = False  # bind() holds the head back to mark it
        elif not up.final and not up.rewrite:
            ex.keep_alive = False
            up.rewrite = True

    def tunnel_eof(self) -> None:
        """The backend half-closed the tunnel."""
        self.upstream_eof = True
        if self.client_eof:
            self._close_tunnel()
        elif self.transport is not None and not self.closed:
            if self.transport.can_write_eof():
                self.transport.write_eof()
            else:
                self.transport.close()

    def _close_tunnel(self) -> None:
        """Both directions ended: close both connections."""
        if self.tunnel is not None:
            self.tunnel.close()
        if self.transport is not None and not self.closed:
            self.transport.close()

    def tunnel_closed(self) -> None:
        """The backend side of the tunnel is gone."""
        if self.transport is not None and not self.closed:
            self.transport.close()

    # -- flow control and timers -----------------------------------------------------------
    def pause_reading_for_upstream(self) -> None:
        """The backend is slow to take the request body."""
        self._pause(P_UPSTREAM)

    def resume_reading_for_upstream(self) -> None:
        """The backend caught up."""
        self._resume(P_UPSTREAM)

    def _pause(self, reason: int) -> None:
        if not self.paused and self.transport is not None and not self.closed:
            self.transport.pause_reading()
        self.paused |= reason

    def _resume(self, reason: int) -> None:
        if not self.paused & reason:
            return
        self.paused &= ~reason
        if not self.paused and self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def _arm(self, delay: float) -> None:
        self._set_deadline(self.service.now() + delay)

    def _set_deadline(self, deadline: float) -> None:
        self.deadline = deadline
        if self.timer_at > deadline:
            if self.timer is not None:
                self.timer.cancel()
            self.timer = self.service.loop.call_at(deadline, self._on_timer)
            self.timer_at = deadline

    def _on_timer(self) -> None:
        self.timer = None
        self.timer_at = INF
        if self.closed:
            return
        now = self.service.now()
        if now >= self.deadline:
            if self.lingering:
                self.transport.close()  # type: ignore[union-attr]
            elif self.cur is not None and not self.cur.request_done:
                if not self.paused:
                    self._fail(408)  # the body stopped coming (nginx client_body_timeout)
                else:  # we stopped reading it: the client is not to blame
                    self._arm(self.limits.body_timeout)
            elif self.carry and not self.queue:
                self._fail(408)  # slow head (slowloris): RFC 9110 §15.5.9
            elif not self.queue:
                self.abort_idle()
            return
        nxt = self.deadline if self.deadline != INF else now + self.limits.header_timeout
        self.timer = self.service.loop.call_at(nxt, self._on_timer)
        self.timer_at = nxt

    def linger(self) -> bool:
        """Half-close after an error answer and drop input for a while; False: cannot (TLS)."""
        transport = self.transport
        if transport is None or not transport.can_write_eof():
            return False
        self.lingering = True
        transport.write_eof()  # after what is buffered: the answer goes out first
        self._arm(LINGER)
        return True

    def abort_idle(self) -> None:
        """Close an idle keep-alive connection (timeout or shutdown)."""
        if self.transport is not None and not self.closed:
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection now (a response was cut off)."""
        self.stopped = True
        if self.transport is not None and not self.closed:
            self.transport.abort()

    @property
    def idle(self) -> bool:
        """No request in progress: safe to close at shutdown."""
        return not self.queue and self.cur is None and not self.carry and self.tunnel is None
