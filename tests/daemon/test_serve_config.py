"""`haloyd serve` reads haloyd.yaml: health monitor, API route, ACME challenge backend."""

from __future__ import annotations

from pathlib import Path

from haloy.config.daemon import default_daemon_yaml
from haloy.config.paths import Paths
from haloy.daemon.cmd_serve import load_settings
from haloy.health.monitor import HealthSettings
from haloy.wire.snapshot import ApiRoute, Endpoint


def test_defaults_without_a_config_file(tmp_path: Path) -> None:
    settings = load_settings(Paths(tmp_path / "etc", tmp_path / "data"), None, "haloy")
    assert settings.health == HealthSettings(
        enabled=True, interval=15.0, fall=3, rise=2, timeout=5.0, concurrency=10
    )
    assert settings.extras.api is None
    assert settings.extras.acme_challenge_backend == Endpoint(address="127.0.0.1", port=9922)


def test_config_file_is_applied(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "etc", tmp_path / "data")
    paths.config_dir.mkdir()
    text = default_daemon_yaml("api.example.com")
    text = text.replace("interval: 15s", "interval: 500ms").replace("fall: 3", "fall: 1")
    text = text.replace('listen: "127.0.0.1:9922"', 'listen: "127.0.0.1:9000"')
    paths.daemon_config.write_text(text)
    settings = load_settings(paths, "unix:///x.sock", "apps")
    assert (settings.health.interval, settings.health.fall) == (0.5, 1)
    backend = Endpoint(address="127.0.0.1", port=9000)
    assert settings.extras.api == ApiRoute(domain="api.example.com", backend=backend)
    assert settings.extras.acme_challenge_backend == backend
    assert (settings.network, settings.docker_host) == ("apps", "unix:///x.sock")
