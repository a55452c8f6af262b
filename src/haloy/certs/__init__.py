"""Certificates: store, ACME issuer, HTTP-01 challenge store, renewal policy."""
