"""The client's list of haloyd servers and their API tokens.

    <dir>/client.yaml   servers: {<url>: {token_env: HALOY_API_TOKEN_<HOST>}}   (0600)
    <dir>/.env          HALOY_API_TOKEN_<HOST>=<token>                          (0600)

<dir> is HALOY_CLIENT_CONFIG_DIR, else $XDG_CONFIG_HOME/haloy, else ~/.config/haloy. The
layout follows Haloy's client config, so a server entry names an environment variable and the
token itself lives only in the private dotenv file (or the real environment, which wins).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from haloy.config.envfile import read_env_file, update_env_file, write_private_file
from haloy.errors import ConfigError

CLIENT_FILE = "client.yaml"
TOKEN_FILE = ".env"
GLOBAL_TOKEN_ENV = "HALOY_API_TOKEN"


class _ServerModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    token_env: str


class _ClientFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    servers: dict[str, _ServerModel] = {}


@dataclass(frozen=True)
class ServerEntry:
    """One configured server: its canonical URL and the variable that holds its token."""

    url: str
    token_env: str


def client_config_dir(environ: Mapping[str, str]) -> Path:
    """HALOY_CLIENT_CONFIG_DIR, else $XDG_CONFIG_HOME/haloy, else ~/.config/haloy."""
    if explicit := environ.get("HALOY_CLIENT_CONFIG_DIR"):
        return Path(explicit)
    if xdg := environ.get("XDG_CONFIG_HOME"):
        return Path(xdg) / "haloy"
    home = environ.get("HOME")
    return (Path(home) if home else Path.home()) / ".config" / "haloy"


def normalize_server_url(url: str) -> str:
    """Canonical `scheme://host[:port]`; a bare host means https (as in haloy.yaml `server`)."""
    raw = url.strip()
    if "://" not in raw:
        raw = f"https://{raw}"
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"not a server URL: {url!r}",
            hint="use https://api.example.com (or http://127.0.0.1:9922 on the server itself)",
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(
            f"server URL must not have a path: {url!r}",
            hint="give only the scheme, host and port, e.g. https://api.example.com",
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"bad port in server URL {url!r}", hint=str(exc)) from exc
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def token_env_name(url: str) -> str:
    """The variable holding a server's token, e.g. HALOY_API_TOKEN_API_EXAMPLE_COM."""
    netloc = urlsplit(normalize_server_url(url)).netloc
    return f"{GLOBAL_TOKEN_ENV}_" + re.sub(r"[^A-Z0-9]+", "_", netloc.upper()).strip("_")


class ClientConfig:
    """Reads and edits the client's server list and token file in one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.servers_file = directory / CLIENT_FILE
        self.token_file = directory / TOKEN_FILE

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ClientConfig:
        """The client config in the directory `environ` selects."""
        return cls(client_config_dir(environ))

    def servers(self) -> dict[str, ServerEntry]:
        """Configured servers by canonical URL; empty when nothing is configured."""
        try:
            text = self.servers_file.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError):
            return {}
        try:
            parsed = _ClientFile.model_validate(yaml.safe_load(text) or {})
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"{self.servers_file}: not valid YAML: {exc}",
                hint="fix the file, or delete it and run `haloy server add` again",
            ) from exc
        except ValidationError as exc:
            problems = tuple(
                f"{self.servers_file}: {'.'.join(map(str, e['loc']))}: {e['msg']}"
                for e in exc.errors()
            )
            raise ConfigError(
                f"{self.servers_file}: invalid client config",
                hint="fix the file, or delete it and run `haloy server add` again",
                problems=problems,
            ) from exc
        return {
            normalize_server_url(url): ServerEntry(normalize_server_url(url), s.token_env)
            for url, s in parsed.servers.items()
        }

    def token_for(self, entry: ServerEntry, environ: Mapping[str, str]) -> str | None:
        """The entry's token: its variable in the environment first, then the token file."""
        return environ.get(entry.token_env) or read_env_file(self.token_file).get(entry.token_env)

    def add(self, url: str, token: str) -> ServerEntry:
        """Add or replace a server and store its token (both files 0600, dir 0700)."""
        entry = ServerEntry(normalize_server_url(url), token_env_name(url))
        servers = self.servers()
        servers[entry.url] = entry
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise ConfigError(
                f"cannot create {self.directory}: {exc.strerror or exc}",
                hint="set HALOY_CLIENT_CONFIG_DIR to a writable directory",
            ) from exc
        update_env_file(self.token_file, {entry.token_env: token})
        self._write(servers)
        return entry

    def delete(self, url: str) -> ServerEntry | None:
        """Remove a server and its token; None if it was not configured."""
        servers = self.servers()
        entry = servers.pop(normalize_server_url(url), None)
        if entry is None:
            return None
        self._write(servers)
        if not any(s.token_env == entry.token_env for s in servers.values()):
            update_env_file(self.token_file, {entry.token_env: None})
        return entry

    def _write(self, servers: Mapping[str, ServerEntry]) -> None:
        doc = {"servers": {u: {"token_env": s.token_env} for u, s in sorted(servers.items())}}
        write_private_file(self.servers_file, yaml.safe_dump(doc, sort_keys=False))


def resolve_token(
    target_api_token: str | None, server_url: str | None, environ: Mapping[str, str]
) -> str:
    """The API token to use: target `api_token`, the server entry, HALOY_API_TOKEN, else error."""
    if target_api_token:
        return target_api_token
    if server_url:
        client = ClientConfig.from_environ(environ)
        entry = client.servers().get(normalize_server_url(server_url))
        if entry is not None and (token := client.token_for(entry, environ)):
            return token
    if token := environ.get(GLOBAL_TOKEN_ENV):
        return token
    where = normalize_server_url(server_url) if server_url else "<server-url>"
    raise ConfigError(
        f"no API token for {where}",
        hint=(
            f"run `haloy server add {where} <token>` (the token is printed by `haloyd init` "
            f"on the server), set {GLOBAL_TOKEN_ENV}, or set api_token in haloy.yaml"
        ),
    )
