"""`haloy-proxy`: the HTTP/TLS data plane. Knows nothing of Docker."""
