"""The deploy's pure parts (build command, deploy request) and the local docker build's errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from haloy.cli.build import build_command, build_image, check_docker, tail
from haloy.cli.deploy_flow import Job, deploy_request
from haloy.config.app import load_app_config
from haloy.config.resolve import resolve_target
from haloy.errors import ConfigError, RuntimeError_
from tests.fixtures.docker import TEST_IMAGE


def project(tmp_path: Path, image: str, extra: str = "") -> Path:
    (tmp_path / "web" / "docker").mkdir(parents=True)
    (tmp_path / "web" / "docker" / "app.Dockerfile").write_text(f"FROM {TEST_IMAGE}:v1\n")
    cfg = tmp_path / "haloy.yaml"
    cfg.write_text(
        f"name: web\nserver: api.example.com\ndomains: [web.example.com]\n{image}\n"
        "env:\n  - {name: GREETING, value: hi, build_arg: true}\n  - {name: PLAIN, value: x}\n"
        + extra
    )
    return cfg


def test_build_command_follows_build_config(tmp_path: Path) -> None:
    cfg = project(tmp_path, "image:\n  repository: web\n  tag: v3\n  build_config:\n"
                  "    context: web\n    dockerfile: docker/app.Dockerfile\n"
                  "    platform: linux/arm64\n    args: [{name: MODE, value: prod}]\n")
    config = load_app_config(cfg)
    [target] = config.targets
    resolved = resolve_target(config, target, {})
    plan = build_command(target, cfg.parent, resolved.build_args)
    context = (tmp_path / "web").resolve()
    assert plan.ref == "web:v3"
    assert plan.args == (
        "docker", "build", "--tag", "web:v3", "--file", str(context / "docker/app.Dockerfile"),
        "--platform", "linux/arm64", "--build-arg", "GREETING=hi", "--build-arg", "MODE=prod",
        str(context),
    )


def test_missing_dockerfile_is_a_config_error(tmp_path: Path) -> None:
    cfg = project(tmp_path, "image:\n  repository: web\n  build_config: {context: web}\n")
    config = load_app_config(cfg)
    with pytest.raises(ConfigError) as info:
        build_command(config.targets[0], cfg.parent, {})
    assert "no Dockerfile at" in info.value.message


def test_deploy_request_of_a_built_image(tmp_path: Path) -> None:
    cfg = project(tmp_path, "image:\n  repository: web\n  build_config: {context: web}\n",
                  "replicas: 2\nhealth_check_path: /up\n")
    config = load_app_config(cfg)
    [target] = config.targets
    resolved = resolve_target(config, target, {})
    job = Job(target, resolved, "https://api.example.com", "tok", None)
    body = deploy_request(config, job, 30.0).model_dump(mode="json", by_alias=True)
    assert body["app"] == "web" and body["image"] == "web:latest"
    assert body["pullPolicy"] == "never"  # built here: on the server already, never pulled
    assert body["domains"] == [{"domain": "web.example.com", "aliases": []}]
    assert body["env"] == {"GREETING": "hi", "PLAIN": "x"}
    assert body["replicas"] == 2 and body["healthCheckPath"] == "/up"
    assert body["deadlineSeconds"] == 30.0
    assert body["config"]["file"]["name"] == "web"


def test_tail_keeps_the_last_lines() -> None:
    assert tail("a\n\nb\nc\n", 2) == "b\nc"


async def test_failed_build_shows_the_output_tail(tmp_path: Path, test_image: str) -> None:
    cfg = project(tmp_path, "image:\n  repository: haloy-cli-broken\n  build_config:\n"
                  "    context: web\n    dockerfile: docker/app.Dockerfile\n")
    (tmp_path / "web" / "docker" / "app.Dockerfile").write_text(
        f"FROM {TEST_IMAGE}:v1\nCOPY no-such-file /x\n"
    )
    config = load_app_config(cfg)
    plan = build_command(config.targets[0], cfg.parent, {})
    with pytest.raises(RuntimeError_) as info:
        await build_image(plan)
    assert "docker build of haloy-cli-broken:latest failed" in info.value.message
    assert "no-such-file" in info.value.message  # docker's own words, from the tail


async def test_docker_missing_or_stopped(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError_) as missing:
        await check_docker({"PATH": str(tmp_path)})
    assert "not installed" in missing.value.message
    stopped = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no.sock"}
    with pytest.raises(RuntimeError_) as info:
        await check_docker(stopped)
    assert "Docker is not running locally" in info.value.message
    assert "DOCKER_HOST" in (info.value.hint or "")
