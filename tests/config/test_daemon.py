"""haloyd.yaml: defaults, the generated file, and errors naming file:line: field."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from haloy.config.daemon import (
    LETSENCRYPT_PRODUCTION,
    LETSENCRYPT_STAGING,
    DaemonConfig,
    default_daemon_yaml,
    load_daemon_config,
)
from haloy.errors import ConfigError


def write(tmp_path: Path, text: str, name: str = "haloyd.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_daemon_config(path)
    assert info.value.exit_code == 2
    return list(info.value.problems)


def test_empty_file_means_all_defaults(tmp_path: Path) -> None:
    config = load_daemon_config(write(tmp_path, ""))
    assert config == DaemonConfig()
    assert config.api.listen == "127.0.0.1:9922" and config.api.domain is None
    hm = config.health_monitor
    assert (hm.enabled, hm.interval, hm.fall, hm.rise, hm.timeout) == (
        True, timedelta(seconds=15), 3, 2, timedelta(seconds=5))
    assert (config.proxy.http_listen, config.proxy.https_listen, config.proxy.workers) == (
        ":80", ":443", 1)
    assert config.acme.directory_url == LETSENCRYPT_PRODUCTION


@pytest.mark.parametrize("domain", [None, "", "api.example.com"])
def test_default_yaml_round_trips(tmp_path: Path, domain: str | None) -> None:
    config = load_daemon_config(write(tmp_path, default_daemon_yaml(domain)))
    assert config.api.domain == (domain or None)
    assert config.health_monitor == DaemonConfig().health_monitor


def test_durations_serialise_as_written(tmp_path: Path) -> None:
    text = "health_monitor:\n  interval: 500ms\n  timeout: 1m30s\n"
    config = load_daemon_config(write(tmp_path, text))
    assert config.health_monitor.interval == timedelta(milliseconds=500)
    dumped = config.model_dump(mode="json")["health_monitor"]
    assert (dumped["interval"], dumped["timeout"]) == ("500ms", "90s")


def test_staging_switches_the_directory() -> None:
    config = DaemonConfig.model_validate({"acme": {"staging": True}})
    assert config.acme.effective_directory_url == LETSENCRYPT_STAGING
    custom = DaemonConfig.model_validate({"acme": {"directory_url": "https://127.0.0.1:14000/dir"}})
    assert custom.acme.effective_directory_url == "https://127.0.0.1:14000/dir"


def test_https_listen_may_be_off(tmp_path: Path) -> None:
    config = load_daemon_config(write(tmp_path, "proxy:\n  https_listen: 'off'\n"))
    assert config.proxy.https_listen == "off"


def test_every_problem_is_reported_with_file_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, (
        "api:\n"
        "  domian: x.example.com\n"
        "  listen: '127.0.0.1:99999'\n"
        "health_monitor:\n"
        "  interval: soon\n"
        "  fall: 0\n"
        "acme:\n"
        "  directory_url: ftp://x\n"
        "proxi: {}\n"
    ))
    problems = problems_of(path)
    assert problems == [
        f"{path}:2: api.domian: unknown key; did you mean 'domain'?",
        f"{path}:3: api.listen: invalid listen address '127.0.0.1:99999';"
        " use HOST:PORT, e.g. 127.0.0.1:9922",
        f"{path}:5: health_monitor.interval: invalid duration 'soon'; use e.g. 15s, 500ms or 1m30s",
        f"{path}:6: health_monitor.fall: Input should be greater than or equal to 1",
        f"{path}:8: acme.directory_url: directory_url must be an http(s) URL, got 'ftp://x'",
        f"{path}:9: proxi: unknown key; did you mean 'proxy'?",
    ]


def test_wildcard_api_domain_is_rejected(tmp_path: Path) -> None:
    [problem] = problems_of(write(tmp_path, "api:\n  domain: '*.example.com'\n"))
    assert ":2: api.domain: wildcard" in problem


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    [problem] = problems_of(write(tmp_path, "api:\n  listen: [\n"))
    assert problem.startswith(f"{tmp_path / 'haloyd.yaml'}:3: syntax:")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_daemon_config(tmp_path / "absent.yaml")


def test_trusted_proxies_reach_the_route_snapshot(tmp_path: Path) -> None:
    from haloy.daemon.route_builder import build_routes
    from haloy.daemon.services import service_extras

    config = load_daemon_config(write(tmp_path, "proxy:\n  trusted_proxies: [10.0.0.0/8]\n"))
    assert config.proxy.trusted_proxies == ("10.0.0.0/8",)
    snapshot = build_routes([], lambda _: True, extras=service_extras(config, "a-token")).snapshot
    assert snapshot.trusted_proxies == ("10.0.0.0/8",)


def test_a_bad_trusted_proxy_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "proxy:\n  trusted_proxies:\n    - 10.0.0.0/8\n    - nonsense\n")
    (problem,) = problems_of(path)
    assert "haloyd.yaml:" in problem and "trusted_proxies" in problem
    assert "'nonsense' is not an IP network" in problem
