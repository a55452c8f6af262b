"""JSON access log lines, written in batches so logging costs little on the hot path."""

from __future__ import annotations

import asyncio
import os
import time
from json.encoder import encode_basestring_ascii as _esc  # C-accelerated JSON string
from typing import IO

from haloy.proxy.exchange import Exchange

# Lines are flushed at least this often, or when this many are waiting.
FLUSH_INTERVAL = 0.25
FLUSH_LINES = 512
_LINE = (
    '{"time":%.3f,"method":%s,"host":%s,"path":%s,"status":%d,"bytes":%d,'
    '"duration":%.6f,"backend":%s,"deployment_id":%s}'
)


class AccessLog:
    """Collects one JSON object per finished exchange and writes them to `stream`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, stream: IO[str]) -> None:
        self.loop = loop
        self.stream = stream
        self.lines: list[str] = []
        self.timer: asyncio.TimerHandle | None = None

    def __call__(self, ex: Exchange) -> None:
        """Record `ex` (an observer of ProxyService)."""
        backend = ex.backend
        # A %-template with the C string escaper costs a fraction of json.dumps of a dict.
        self.lines.append(
            _LINE
            % (
                time.time(),
                _esc(ex.method.decode("latin-1")),
                _esc(ex.host.decode("latin-1")),
                _esc(ex.url.decode("latin-1")),
                ex.status,
                ex.resp_bytes,
                self.loop.time() - ex.started,
                _esc(f"{backend.address}:{backend.port}") if backend else "null",
                _esc(backend.deployment_id) if backend else "null",
            )
        )
        if len(self.lines) >= FLUSH_LINES:
            self.flush()
        elif self.timer is None:
            self.timer = self.loop.call_later(FLUSH_INTERVAL, self.flush)

    def flush(self) -> None:
        """Write what is waiting."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.lines:
            data = "\n".join(self.lines) + "\n"
            self.lines.clear()
            try:
                os.write(self.stream.fileno(), data.encode())
            except (OSError, ValueError):
                self.stream.write(data)
                self.stream.flush()
