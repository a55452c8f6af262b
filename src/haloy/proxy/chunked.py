"""Where a chunked request body ends in the bytes read (pure; RFC 9112 §7.1).

The proxy forwards request bodies as received, so it must know where each message ends inside
a read that may also hold the next pipelined request. llhttp validates the framing (and rejects
anything malformed before we act on it); this scanner only locates boundaries in bytes llhttp
has already accepted.
"""

from __future__ import annotations

from typing import Final

_SIZE, _DATA, _TRAILER = range(3)
_HEX: Final = b"0123456789abcdefABCDEF"
# A chunk-size or trailer line longer than this is hostile (llhttp does not bound them).
MAX_LINE: Final = 16 * 1024


class ChunkedEnd:
    """Incremental scanner state for one chunked body, fed read by read."""

    __slots__ = ("line", "mode", "need")

    def __init__(self) -> None:
        self.mode = _SIZE
        self.need = 0  # bytes of chunk data plus its CRLF still to skip
        self.line = b""  # a partial line carried over from the previous read

    def scan(self, data: bytes, pos: int) -> int:
        """The offset just past the body's end in `data`, or -1 if it continues in later reads.

        Raises ValueError when a line exceeds MAX_LINE or a chunk size is not 1-16 hex digits.
        """
        n = len(data)
        while pos < n:
            if self.mode == _DATA:
                take = min(self.need, n - pos)
                pos += take
                self.need -= take
                if self.need == 0:
                    self.mode = _SIZE
                continue
            eol = data.find(b"\n", pos)
            if eol < 0:
                self.line += data[pos:]
                if len(self.line) > MAX_LINE:
                    raise ValueError("chunk line too long")
                return -1
            line = self.line + data[pos:eol] if self.line else data[pos:eol]
            self.line = b""
            pos = eol + 1
            if len(line) > MAX_LINE:
                raise ValueError("chunk line too long")
            if self.mode == _SIZE:
                digits = line.split(b";", 1)[0].rstrip(b" \t\r")
                # Exactly what RFC 9112 §7.1 allows, and no more digits than a 64-bit size: a
                # backend's parser must read the same chunk sizes as ours ("+5" or 30 leading
                # zeros are read differently by different parsers).
                if not 0 < len(digits) <= 16 or digits.strip(_HEX):
                    raise ValueError("bad chunk size")
                size = int(digits, 16)
                if size:
                    self.mode = _DATA
                    self.need = size + 2
                else:
                    self.mode = _TRAILER
            elif line == b"\r":  # the empty line after the last chunk and its trailers
                return pos
        return -1
