"""TLS termination on a plain TCP connection, with `ssl.MemoryBIO` instead of uvloop's SSL.

    TCP transport ──ciphertext──▶ TlsClientProtocol.data_received ──plaintext──▶ ClientProtocol
    ClientProtocol ──transport.write──▶ TlsTransport.write ──encrypt──▶ TCP transport

uvloop's `SSLProtocol` between the socket and the HTTP protocol (a write backlog, a state
machine, flow-control relays, a copy into its own buffer per read) cost ~15 % of the CPU of
a keep-alive HTTPS request over this path (paired A/B in docs/benchmarks.md). Here a read is
decrypted and handed to the parser in one call, a write is encrypted and sent in one call, and
the TCP transport's pause_writing/resume_writing reach `ClientProtocol` directly (it is the TCP
protocol). The plain HTTP listener keeps using `ClientProtocol` itself and pays nothing.

Handshake: driven from data_received; the connection is filed in the service's header-deadline
buckets, so a client stalling mid-handshake is closed at `header_timeout` as before. Until the
handshake completes the HTTP side has no transport (`transport is None`): the connection is
not a client yet (it is in `service.handshaking`, which a draining worker waits for).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any, Final

from haloy.proxy.client import ClientProtocol
from haloy.proxy.service import ProxyService

log = logging.getLogger(__name__)
# Plaintext asked for per read: above a TLS record's 16 KiB, so one call takes a whole record.
_READ: Final = 65536


class TlsTransport(asyncio.Transport):
    """The HTTP side's transport: encrypts writes onto the TCP transport; no half-close."""

    __slots__ = ("_closing", "_obj", "_out", "_sslobj", "_tcp")

    def __init__(
        self, tcp: asyncio.Transport, sslobj: ssl.SSLObject, out: ssl.MemoryBIO
    ) -> None:
        self._extra: dict[str, Any] = {}
        self._tcp = tcp
        self._sslobj = sslobj
        # The C object under the public SSLObject: one Python frame less per read and write.
        self._obj: ssl.SSLObject = getattr(sslobj, "_sslobj", sslobj)
        self._out = out
        self._closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Encrypt `data` and hand the records to TCP (a memory BIO never refuses a write)."""
        if self._closing or not data:
            return
        self._obj.write(data)
        self._tcp.write(self._out.read())

    def writelines(self, list_of_data: Any) -> None:
        """Write the pieces as one."""
        self.write(b"".join(list_of_data))

    def can_write_eof(self) -> bool:
        """TLS over TCP has no half-close we could offer (close_notify ends our side)."""
        return False

    def write_eof(self) -> None:
        """Not supported: callers check `can_write_eof()` first."""
        raise NotImplementedError("TLS connections cannot half-close")

    def close(self) -> None:
        """Send close_notify after what is queued, then close TCP (not waiting for the peer's).

        RFC 8446 §6.1 lets the closer skip waiting for the peer's close_notify; HTTP knows
        where its messages end, so nothing is lost.
        """
        if self._closing:
            return
        self._closing = True
        try:
            self._sslobj.unwrap()
        except (ssl.SSLError, ValueError):
            pass  # SSLWantReadError: the peer's close_notify is not awaited
        out = self._out.read()
        tcp = self._tcp
        if out and not tcp.is_closing():
            tcp.write(out)
        tcp.close()

    def abort(self) -> None:
        """Close TCP now, dropping what is buffered."""
        self._closing = True
        self._tcp.abort()

    def is_closing(self) -> bool:
        """True once close() or abort() was called or TCP is going."""
        return self._closing or self._tcp.is_closing()

    def pause_reading(self) -> None:
        """Stop reading from TCP (every decrypted byte was already delivered)."""
        self._tcp.pause_reading()

    def resume_reading(self) -> None:
        """Read from TCP again."""
        self._tcp.resume_reading()

    def is_reading(self) -> bool:
        """Whether TCP is being read."""
        return self._tcp.is_reading()

    def get_write_buffer_size(self) -> int:
        """Encrypted bytes waiting in TCP (nothing waits here)."""
        return self._tcp.get_write_buffer_size()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Flow-control marks of the TCP transport."""
        self._tcp.set_write_buffer_limits(high, low)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """TLS details here, socket details from TCP."""
        if name == "ssl_object":
            return self._sslobj
        if name == "sslcontext":
            return self._sslobj.context
        if name == "peercert":
            return self._sslobj.getpeercert()
        if name == "cipher":
            return self._sslobj.cipher()
        if name == "compression":
            return self._sslobj.compression()
        return self._tcp.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        """Not supported: the protocol is fixed for the connection's life."""
        raise NotImplementedError

    def get_protocol(self) -> asyncio.BaseProtocol:
        """The TCP transport's protocol (the TLS client protocol)."""
        return self._tcp.get_protocol()


class TlsClientProtocol(ClientProtocol):
    """A client connection on the HTTPS listener: TLS here, HTTP in ClientProtocol."""

    tcp: asyncio.Transport | None = None
    peer_closed = False  # close_notify or EOF seen: the HTTP side heard eof_received once

    def __init__(self, service: ProxyService, context: ssl.SSLContext) -> None:
        super().__init__(service, b"https")
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.sslobj = context.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.obj: ssl.SSLObject = getattr(self.sslobj, "_sslobj", self.sslobj)

    # -- TCP protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.tcp = transport  # type: ignore[assignment]
        service = self.service
        service.handshaking.add(self)
        now = service.clock or service.start_clock()
        # The handshake gets header_timeout, as the head after it (uvloop's handshake timeout).
        self.deadline = deadline = now + self.limits.header_timeout
        service.head_watch.add(self, deadline)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        incoming = self.incoming
        incoming.write(data)
        if self.transport is None and not self._handshake():
            return
        obj = self.obj
        first = b""
        chunks: list[bytes] | None = None
        eof = False
        while incoming.pending or obj.pending():
            try:
                chunk = obj.read(_READ)
            except ssl.SSLWantReadError:
                break  # a record continues in the next read
            except ssl.SSLError as exc:
                self._tls_failed(exc)
                return
            if not chunk:
                eof = True  # close_notify
                break
            if not first:
                first = chunk
            elif chunks is None:
                chunks = [first, chunk]
            else:
                chunks.append(chunk)
        if self.outgoing.pending:  # TLS 1.3 KeyUpdate answers, alerts
            self._send()
        if first:
            ClientProtocol.data_received(self, first if chunks is None else b"".join(chunks))
        if eof and not self.closed:
            self._peer_eof()

    def eof_received(self) -> bool | None:
        if self.transport is None:  # EOF mid-handshake
            return False
        self._peer_eof()
        return True  # _peer_eof closed the connection itself if it had to

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is None:  # never got through the handshake: not a client
            self.closed = True
            self.service.handshaking.discard(self)
            if self.watch_key:
                self.service.head_watch.discard(self)
            return
        ClientProtocol.connection_lost(self, exc)

    # -- TLS ---------------------------------------------------------------------------------
    def _handshake(self) -> bool:
        """Advance the handshake; True once it is complete and the HTTP side is attached."""
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            if self.outgoing.pending:
                self._send()
            return False
        except (ssl.SSLError, ssl.CertificateError) as exc:
            self._tls_failed(exc)
            return False
        if self.outgoing.pending:  # the last flight, TLS 1.3 session tickets
            self._send()
        service = self.service
        service.handshaking.discard(self)
        if self.watch_key:
            service.head_watch.discard(self)
        assert self.tcp is not None
        ClientProtocol.connection_made(self, TlsTransport(self.tcp, self.sslobj, self.outgoing))
        return not self.closed

    def _send(self) -> None:
        tcp = self.tcp
        if tcp is not None and not tcp.is_closing():
            tcp.write(self.outgoing.read())

    def _tls_failed(self, exc: Exception) -> None:
        """A bad handshake or record: send the alert OpenSSL produced and close."""
        if self.transport is None:
            peer = self.tcp.get_extra_info("peername") if self.tcp is not None else None
            # INFO, as nginx logs failed handshakes: a scanner's garbage is not our error.
            log.info("TLS handshake with %s failed: %s", peer, getattr(exc, "reason", exc))
        elif self.transport.is_closing():
            return  # input after our close_notify: dropping it must not cut off what we sent
        else:
            # A corrupt record mid-stream: the connection is unusable; no more writes.
            log.info("TLS error, closing: %s", getattr(exc, "reason", exc))
            self.stopped = True
            self.transport.abort()
            return
        self.closed = True  # a failed handshake no longer holds a draining worker
        self.service.handshaking.discard(self)
        if self.outgoing.pending:
            self._send()  # the alert says why
        if self.tcp is not None:
            self.tcp.close()

    def _peer_eof(self) -> None:
        """The client ended its side (close_notify or FIN): the HTTP side decides what stays."""
        if self.peer_closed:
            return
        self.peer_closed = True
        if not ClientProtocol.eof_received(self) and self.transport is not None:
            self.transport.close()

    # -- deadlines ---------------------------------------------------------------------------
    def abort_idle(self) -> None:
        """Close an idle connection; one still handshaking at its deadline is dropped."""
        if self.transport is None:
            self.closed = True
            if self.tcp is not None:
                self.tcp.abort()
            return
        ClientProtocol.abort_idle(self)
