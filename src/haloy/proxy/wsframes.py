"""WebSocket frame boundaries on one tunnel direction (RFC 6455 §5.2), and the close frame.

The proxy never decodes payloads: it counts header and payload bytes so that, when a draining
backend's grace ends, a close frame can be injected between two frames and never inside one.
Control frames may be injected between the fragments of a message (RFC 6455 §5.4).
"""

from __future__ import annotations

import os
import struct

GOING_AWAY = 1001  # RFC 6455 §7.4.1: the endpoint is going away (server shutting down)
_OP_CLOSE = 0x8


class FrameTracker:
    """Follows frame headers and payload lengths across reads of one direction."""

    __slots__ = ("frames", "head", "payload_left")

    def __init__(self) -> None:
        self.head = b""  # the bytes of a frame header split across reads
        self.payload_left = 0
        self.frames = 0  # complete frames seen (for tests and status)

    @property
    def at_boundary(self) -> bool:
        """True between two frames: a whole frame may be injected here."""
        return not self.head and self.payload_left == 0

    def feed(self, data: bytes, stop_at_boundary: bool = False) -> int:
        """Account for `data`; return how many bytes were consumed.

        With `stop_at_boundary`, stop at the first frame boundary reached (0 if already at one),
        so the caller can forward `data[:n]`, inject a frame, and hold back the rest.
        """
        pos, end = 0, len(data)
        while pos < end:
            if stop_at_boundary and self.at_boundary:
                return pos
            if self.payload_left:
                take = min(self.payload_left, end - pos)
                self.payload_left -= take
                pos += take
                if not self.payload_left:
                    self.frames += 1
                continue
            if len(self.head) < 2:
                piece = data[pos : pos + 2 - len(self.head)]
                self.head += piece
                pos += len(piece)
                if len(self.head) < 2:
                    continue
            size = header_size(self.head)
            piece = data[pos : pos + size - len(self.head)]
            self.head += piece
            pos += len(piece)
            if len(self.head) < size:
                continue
            self.payload_left = payload_length(self.head)
            self.head = b""
            if not self.payload_left:
                self.frames += 1
        return pos


def header_size(head: bytes) -> int:
    """Bytes in the frame header that `head` begins (2 if fewer than 2 bytes are known)."""
    if len(head) < 2:
        return 2
    b1 = head[1]
    size = 2 + (4 if b1 & 0x80 else 0)
    n = b1 & 0x7F
    return size + (2 if n == 126 else 8 if n == 127 else 0)


def payload_length(head: bytes) -> int:
    """The payload length a complete frame header declares."""
    n = head[1] & 0x7F
    if n == 126:
        return int(struct.unpack_from("!H", head, 2)[0])
    if n == 127:
        return int(struct.unpack_from("!Q", head, 2)[0])
    return n


def close_frame(code: int = GOING_AWAY, reason: bytes = b"", masked: bool = True) -> bytes:
    """A close frame; client-to-server frames must be masked (RFC 6455 §5.3)."""
    payload = struct.pack("!H", code) + reason[:123]
    if not masked:
        return bytes((0x80 | _OP_CLOSE, len(payload))) + payload
    key = os.urandom(4)
    body = bytes([b ^ key[i % 4] for i, b in enumerate(payload)])
    return bytes((0x80 | _OP_CLOSE, 0x80 | len(payload))) + key + body
