"""Where a backend's response ends inside the read that completed it (pure; RFC 9112 §6.3).

Responses are relayed read by read, and llhttp reports that a message completed but not at
which offset. In the common case the read ends with the response. When it does not (bytes
follow the response, or the response was to HEAD and its head is all the client may get), the
end is found here, so that exactly one response per request reaches the client:
- a response with no body (to HEAD, or 204/304) ends with its head;
- any other ends where a fresh parser, fed the final head and what follows, completes it.
1xx interim heads come first and have no body.
"""

from __future__ import annotations

import httptools

_TERMINATOR = b"\r\n\r\n"


class _Done:
    """Parser callbacks that note a completed message."""

    def __init__(self) -> None:
        self.complete = False

    def on_message_complete(self) -> None:
        self.complete = True


def _completes(buf: bytes) -> bool:
    done = _Done()
    try:
        httptools.HttpResponseParser(done).feed_data(buf)
    except httptools.HttpParserError:
        pass  # what follows the end is not ours to judge
    return done.complete


def _head_ends(data: bytes, count: int) -> list[int]:
    """Offsets in `data` just past each of its first `count` head terminators."""
    ends: list[int] = []
    pos = 0
    while len(ends) < count:
        found = data.find(_TERMINATOR, pos)
        if found < 0:
            break
        pos = found + 4
        ends.append(pos)
    return ends


def message_end(data: bytes, heads_before: int, heads: int, no_body: bool) -> int:
    """The offset in `data` just past the end of the response completed in this read, or -1
    when it cannot be placed (its final head arrived in an earlier read and a body follows).

    `data` starts at a head boundary (upstream.py relays heads only whole); `heads_before`
    heads of this response were complete before it, `heads` after it.
    """
    count = heads - heads_before
    if count <= 0:
        return -1
    ends = _head_ends(data, count)
    if len(ends) < count:
        return -1  # cannot happen: llhttp saw these heads end
    if no_body:
        return ends[-1]
    start = ends[-2] if count > 1 else 0
    # The smallest prefix after `start` that completes the response (it does at full length:
    # llhttp completed it in this read).
    lo, hi = start, len(data)
    while lo < hi:
        mid = (lo + hi) // 2
        if _completes(data[start:mid]):
            hi = mid
        else:
            lo = mid + 1
    return lo
