"""`haloy-proxy`: the HTTP/TLS data plane. Knows nothing of Docker."""

from haloy.proxy import native as _native

# ("compiled" | "pure" | "stale", why): which build of the hot path this process imports
# (native.py). A stale build is never used: its modules load from their sources instead.
NATIVE = _native.select(__path__[0])
