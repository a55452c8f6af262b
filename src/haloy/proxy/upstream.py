"""The backend side of a proxied exchange: response framing, pooling rules, tunnels.

Responses are forwarded as received (one write per chunk read); httptools only tells us where
the message ends. Exactly one response goes to the client per request: bytes a backend sends
past the end of its response (a body on a HEAD, 204 or 304 answer, a second response) are cut
off (response_end.py) and that connection is closed. A connection goes back to its backend's
LIFO pool only when the response ended cleanly, both sides wanted keep-alive, no extra bytes
followed it and it is not paused. A response head is capped like a request head; once it
arrived, the backend may not stay silent longer than the read timeout.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

import httptools

from haloy.proxy.forward import close_response
from haloy.proxy.response_end import message_end
from haloy.proxy.routes import BackendState

if TYPE_CHECKING:
    from haloy.proxy.exchange import Exchange
    from haloy.proxy.service import ProxyService

_INF: Final = float("inf")
_NO_PARSER: Final = httptools.HttpResponseParser(object())  # a closed connection's


class _HeadResponseDone(Exception):
    """Raised from a parser callback: a HEAD response has no body, whatever its framing says."""


class _Excess(Exception):
    """Raised from a parser callback: a message begins after the complete response."""


class UpstreamProtocol(asyncio.Protocol):
    """One connection to a backend, serving one exchange at a time."""

    def __init__(self, service: ProxyService, backend: BackendState) -> None:
        self.service = service
        self.backend = backend
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.ex: Exchange | None = None
        self.closed = False
        self.pooled = False
        self.tunnel = False
        self.reading_paused = False
        self.writing_paused = False
        self.deadline = _INF
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = _INF  # when `timer` fires; cheaper to compare than timer.when()
        # Response bytes held until the final head is complete, for a client that asked to
        # close: the head must say Connection: close (our backend connection is keep-alive).
        # Reads of a head not yet complete, from a head boundary on (`held_from` heads of this
        # response went before them): a head is relayed only whole.
        self.held: list[bytes] | None = None
        self.held_from = 0
        self.heads = 0
        self.head_bytes = 0  # bytes read before the final head was complete (capped)
        # The final head must say what happens to the client connection: close (the client
        # or a drain asked for it), or keep-alive for an HTTP/1.0 client.
        self.rewrite = False
        self._reset()

    def _reset(self) -> None:
        self.informational = False
        self.final = False
        self.complete = False
        self.extra = False
        self.broken = False  # the parser cannot be reused (HEAD shortcut)
        self.keep_alive = True

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        ex = self.ex
        if ex is None:  # unsolicited bytes on an idle pooled connection: unusable
            self.close()
            return
        client = ex.client
        if self.tunnel:
            client.transport.write(data)  # type: ignore[union-attr]
            return
        heads = self.heads  # heads of this response complete before this read
        was_final = self.final
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if not (self.final and ex.status == 101 and ex.upgrade is not None):
                self._bad_response(ex)
                return
            ex.resp_bytes += len(data)
            client.transport.write(data)  # type: ignore[union-attr]
            self.tunnel = True
            self.deadline = _INF
            client.start_tunnel(ex, self)
            return
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, _Excess):
                self.extra = True
            elif not isinstance(cause, _HeadResponseDone):
                self._bad_response(ex)
                return
        except httptools.HttpParserError:
            if not self.complete:
                self._bad_response(ex)
                return
            self.extra = True  # garbage after a complete response
        if not self.final:
            self._hold(ex, data, heads)
            return
        held = self.held
        if held is not None:
            # The final head completes a head held from earlier reads.
            held.append(data)
            data = b"".join(held)
            self.held = None
            heads = self.held_from
        if self.complete and (self.extra or self.broken):
            # Bytes past the end of the response never reach the client.
            no_body = self.broken or ex.status == 204 or ex.status == 304
            end = message_end(data, heads, self.heads, no_body)
            if end < 0:
                self._cut_off(ex)
                return
            data = data[:end]
            self.extra = True  # never pooled
        if self.rewrite and not was_final:
            data = close_response(
                data, self.heads - heads,
                b"keep-alive" if ex.keep_alive and self.parser.should_keep_alive() else b"close",
            )
        ex.resp_bytes += len(data)
        client.transport.write(data)  # type: ignore[union-attr]
        if not self.complete:
            service = self.service  # the backend may pause this long between reads
            self.deadline = (service.clock or service.start_clock()) + service.limits.read_timeout
            return
        self._finish(ex)

    def _finish(self, ex: Exchange) -> None:
        """The response to `ex` is complete: this connection goes back to the pool or closes."""
        self.ex = None
        reusable = (
            self.keep_alive
            and not self.extra
            and not self.broken
            and ex.request_done
            and not self.reading_paused
            and not self.writing_paused
        )
        ex.client.response_done(ex, self, reusable, self.keep_alive)

    def _hold(self, ex: Exchange, data: bytes, heads: int) -> None:
        """A read before the final head is complete: keep it (capped) so that the head can be
        rewritten or refused whole; interim heads that end a read go out at once (a client
        may wait for 100 Continue before it sends the body the backend waits for)."""
        self.head_bytes += len(data)
        if self.head_bytes > self.service.limits.max_header_bytes:
            self._bad_response(ex)  # an endless head: 502, never buffered or relayed
            return
        held = self.held
        if held is None:
            self.held = held = []
            self.held_from = heads
        held.append(data)
        if self.heads > heads and data.endswith(b"\r\n\r\n"):
            out = b"".join(held)
            self.held = None
            ex.resp_bytes += len(out)
            ex.client.transport.write(out)  # type: ignore[union-attr]

    def eof_received(self) -> bool | None:
        if self.tunnel and self.ex is not None:
            self.ex.client.tunnel_eof()
            return True  # keep our write side open: half-close (RFC 9293 §3.6)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.parser = _NO_PARSER  # breaks the parser <-> protocol cycle (see ClientProtocol)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
            self.timer_at = _INF
        ex = self.ex
        if ex is None:
            return
        self.ex = None
        if self.tunnel:
            self.backend.tunnels.discard(self)
            ex.client.tunnel_closed()
        elif ex.resp_bytes == 0:
            ex.client.upstream_failed(ex, self)
        else:
            # Close-delimited end (RFC 9112 §6.3 rule 8) or a truncated response: either way
            # the client connection cannot carry another response.
            ex.client.response_done(ex, self, reusable=False, keep_alive=False)

    def pause_writing(self) -> None:
        self.writing_paused = True
        if self.ex is not None:
            self.ex.client.pause_reading_for_upstream()

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.ex is not None:
            self.ex.client.resume_reading_for_upstream()

    # -- httptools callbacks ---------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.complete:
            raise _Excess  # stop here: what follows is not relayed, nor counted

    def on_headers_complete(self) -> None:
        self.heads += 1
        status = self.parser.get_status_code()
        ex = self.ex
        assert ex is not None
        if 100 <= status < 200 and status != 101:
            self.informational = True
            return
        self.final = True
        ex.status = status
        service = self.service  # the timer armed at bind wakes in time for this (service.wake)
        self.deadline = (service.clock or service.start_clock()) + service.limits.read_timeout
        if ex.method == b"HEAD":
            self.complete = True
            self.broken = True
            self.keep_alive = self.parser.should_keep_alive()
            raise _HeadResponseDone

    def on_message_complete(self) -> None:
        if self.informational:
            self.informational = False
            return
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()

    # -- exchange lifecycle ----------------------------------------------------------------
    def bind(self, ex: Exchange) -> None:
        """Serve `ex` on this connection: send what the client buffered, arm the timeout."""
        self.ex = ex
        ex.upstream = self
        out = ex.out
        if out:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))  # type: ignore[union-attr]
            out.clear()
            ex.out_size = 0
        client = ex.client
        if client.paused or client.writing_paused:
            client.attached(self)
        self.pooled = False
        if self.broken:
            self.parser = httptools.HttpResponseParser(self)
        # Only clean, keep-alive connections are bound again (see `reusable`): informational,
        # extra and broken are already False and keep_alive True; reset the rest.
        self.final = self.complete = False
        self.heads = self.head_bytes = 0
        self.held = None
        self.rewrite = (not ex.keep_alive or ex.http10) and ex.upgrade is None
        service = self.service
        now = service.clock or service.start_clock()
        self.deadline = now + service.limits.response_header_timeout
        wake = now + service.wake  # no later than the first deadline this exchange can have
        if self.timer_at > wake:
            # Not armed, or the pooled connection's idle timer fires after this deadline.
            if self.timer is not None:
                self.timer.cancel()
            self.timer = service.loop.call_at(wake, self._on_timer)
            self.timer_at = wake

    def _cut_off(self, ex: Exchange) -> None:
        """Excess bytes whose start cannot be placed: drop both sides rather than relay them."""
        self.service.count_upstream_error("bad_response", self.backend)
        self.ex = None
        ex.upstream = None
        self.abort()
        ex.client.abort()

    def _bad_response(self, ex: Exchange) -> None:
        self.service.count_upstream_error("bad_response", self.backend)
        self.ex = None
        self.abort()
        if ex.resp_bytes == 0:
            ex.client.local_error(ex, 502, sent=True)
        else:
            ex.client.abort()

    def park(self) -> None:
        """Put this connection back in its backend's pool (or close it if the pool is full)."""
        backend = self.backend
        service = self.service
        limits = service.limits
        if len(backend.idle) >= limits.upstream_max_idle or backend.draining:
            self.close()
            return
        self.pooled = True
        now = service.clock or service.start_clock()
        self.deadline = deadline = now + limits.upstream_idle_timeout
        if self.timer is None:
            self.timer = service.loop.call_at(deadline, self._on_timer)
            self.timer_at = deadline
        backend.idle.append(self)

    def _on_timer(self) -> None:
        self.timer = None
        self.timer_at = _INF
        if self.closed:
            return
        now = self.service.now()
        if now < self.deadline:
            if self.deadline != _INF:
                self.timer = self.service.loop.call_at(self.deadline, self._on_timer)
                self.timer_at = self.deadline
            return
        ex = self.ex
        if self.pooled or ex is None:
            self.close()
            return
        self.ex = None
        self.abort()
        if ex.resp_bytes == 0:
            self.service.count_upstream_error("timeout", self.backend)
            ex.client.local_error(ex, 504, sent=True)
        else:
            ex.client.abort()

    def pause_reading(self) -> None:
        """Stop reading from the backend (the client is not keeping up)."""
        if not self.reading_paused and self.transport is not None and not self.closed:
            self.reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        """Read from the backend again."""
        if self.reading_paused and self.transport is not None and not self.closed:
            self.reading_paused = False
            self.transport.resume_reading()

    def write(self, data: bytes) -> None:
        """Send request bytes to the backend."""
        if self.transport is not None and not self.closed:
            self.transport.write(data)
            if not self.final:
                # The wait for the response head counts from the last request byte sent: an
                # upload that keeps flowing is never cut short (the client side times it).
                service = self.service
                self.deadline = (service.clock or service.start_clock()) + \
                    service.limits.response_header_timeout

    def close(self) -> None:
        """Close after flushing."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection now."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
