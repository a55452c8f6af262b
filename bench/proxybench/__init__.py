"""Harness for `bench/proxy`: haloy-proxy against nginx, haproxy and Caddy on loopback."""
