"""Every file location of a server, derived from one config dir and one data dir.

Defaults are /etc/haloy and /var/lib/haloy; HALOY_CONFIG_DIR / HALOY_DATA_DIR (read only at
the CLI edge) or flags move them, so tests run the whole system in a temp dir.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CONFIG_DIR = Path("/etc/haloy")
DEFAULT_DATA_DIR = Path("/var/lib/haloy")


@dataclass(frozen=True)
class Paths:
    """Locations of haloyd's and haloy-proxy's files."""

    config_dir: Path
    data_dir: Path

    @classmethod
    def resolve(
        cls,
        config_dir: Path | str | None = None,
        data_dir: Path | str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Paths:
        """Explicit values first, then HALOY_CONFIG_DIR / HALOY_DATA_DIR, then defaults."""
        env = environ or {}
        cfg = config_dir or env.get("HALOY_CONFIG_DIR") or DEFAULT_CONFIG_DIR
        data = data_dir or env.get("HALOY_DATA_DIR") or DEFAULT_DATA_DIR
        return cls(Path(cfg).absolute(), Path(data).absolute())

    @property
    def daemon_config(self) -> Path:
        return self.config_dir / "haloyd.yaml"

    @property
    def env_file(self) -> Path:
        return self.config_dir / ".env"

    @property
    def certs_dir(self) -> Path:
        return self.data_dir / "certs"

    @property
    def db_dir(self) -> Path:
        return self.data_dir / "db"

    @property
    def db_file(self) -> Path:
        return self.db_dir / "haloy.db"

    @property
    def proxy_dir(self) -> Path:
        return self.data_dir / "proxy"

    @property
    def snapshot_file(self) -> Path:
        return self.proxy_dir / "routes.json"

    @property
    def control_socket(self) -> Path:
        return self.proxy_dir / "control.sock"

    @property
    def layers_dir(self) -> Path:
        return self.data_dir / "layers"
