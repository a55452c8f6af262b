"""haloyd's API token: 256 random bits as hex, kept as HALOY_API_TOKEN in `<config>/.env`."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from pathlib import Path

from haloy.config.envfile import read_env_file, update_env_file
from haloy.errors import ConfigError

TOKEN_ENV = "HALOY_API_TOKEN"
# 32 bytes = 256 bits, the strength of an HMAC-SHA256 key; hex keeps it shell- and URL-safe.
TOKEN_BYTES = 32
_TOKEN_RE = re.compile(r"[0-9a-f]{64}")


def new_token() -> str:
    """A fresh 256-bit token as 64 lowercase hex characters."""
    return secrets.token_hex(TOKEN_BYTES)


def is_valid_token(token: str) -> bool:
    """True if `token` looks like a token `new_token` made."""
    return _TOKEN_RE.fullmatch(token) is not None


def read_token(env_file: Path) -> str:
    """The token stored in `env_file`; ConfigError if missing or malformed."""
    token = read_env_file(env_file).get(TOKEN_ENV, "")
    if not token:
        raise ConfigError(
            f"{env_file}: no {TOKEN_ENV} set",
            hint="run `haloyd config generate-token` (or `haloyd init`) to create one",
        )
    if not is_valid_token(token):
        raise ConfigError(
            f"{env_file}: {TOKEN_ENV} is not a 64-character hex token",
            hint="run `haloyd config generate-token` to replace it",
        )
    return token


def write_token(env_file: Path, token: str) -> None:
    """Store `token` in `env_file` (0600), keeping any other lines."""
    update_env_file(env_file, {TOKEN_ENV: token})


def forward_key(token: str) -> str:
    """The key haloy-proxy shows haloyd on the requests it forwards (snapshot `api.forward_key`).

    Derived from the token so haloyd and the snapshot agree across restarts without storing
    another secret; a leaked key gives away neither the token nor API access, only the right
    to name a client in X-Forwarded-For.
    """
    return hmac.new(token.encode(), b"haloy-proxy forward key", hashlib.sha256).hexdigest()
