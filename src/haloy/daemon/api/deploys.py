"""Deploy, rollback and stop endpoints, and `DeployerProtocol`: the API's view of the deployer.

A second deploy, rollback or stop of an app while a deployment of it runs is refused with
409 `deploy_in_progress`; the error's hint names the running deployment's event stream.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response

from haloy.daemon.api.handlers import check_app, model_response
from haloy.daemon.api.problems import ApiProblem
from haloy.daemon.api.validate import deployment_id_problem
from haloy.daemon.deploy_spec import DeploySpec
from haloy.daemon.history_config import kept_config
from haloy.runtime.labels import AppLabels, Domain, LabelError, decode, encode
from haloy.store import Deployment
from haloy.wire.api import (
    DeployAccepted,
    DeployRequest,
    RollbackRequest,
    StopRequest,
    StopResult,
)


class DeployerProtocol(Protocol):
    """What the API needs of the deployer (`haloy.daemon.deployer.Deployer` provides it)."""

    async def submit(
        self, spec: DeploySpec, *, rolled_back_from: str | None = None
    ) -> Deployment:
        """Record and start a deployment; raise an ApiProblem (409) if one of the app runs."""
        ...

    async def rollback(
        self, app: str, deployment_id: str, env: Mapping[str, str] | None = None
    ) -> Deployment:
        """Start a deployment of a kept deployment's digest and stored config."""
        ...

    async def stop_app(
        self, app: str, remove_containers: bool = False, remove_volumes: bool = False
    ) -> list[str]:
        """Unroute and stop (or remove) an app's containers; return their ids."""
        ...


# POSIX's portable env names: a name with '=' or NUL would set another variable than named.
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` when every name is a valid variable name, else 422 naming the bad ones."""
    bad = [name for name in env if not ENV_NAME.fullmatch(name)]
    if bad:
        raise ApiProblem(422, "invalid env names: " + ", ".join(repr(n) for n in bad),
                         hint="env names are letters, digits and '_', not starting with a "
                         "digit", code="invalid_env")
    return dict(env)


def spec_from_request(body: DeployRequest) -> DeploySpec:
    """A DeploySpec from a request; names, domains and the health path checked like labels."""
    app = check_app(body.app)
    domains = tuple(Domain(d.domain, tuple(d.aliases)) for d in body.domains)
    try:
        # The labels the containers will carry must decode, or discovery would not route them.
        decoded = decode(encode(AppLabels(app, "0", domains, body.port, body.health_check_path)))
    except LabelError as exc:
        raise ApiProblem(422, f"the deploy request is not valid: {exc}",
                         hint="domains are host names; the health check path starts with '/'",
                         ) from exc
    if body.naming_strategy == "static" and (body.strategy != "replace" or body.replicas != 1):
        # Two containers cannot hold one name: no overlap of old and new is possible.
        raise ApiProblem(422, "naming_strategy static needs strategy replace and 1 replica",
                         hint="set deployment_strategy: replace and replicas: 1 in haloy.yaml")
    return DeploySpec(
        app=app,
        image=body.image,
        domains=decoded.domains,
        replicas=body.replicas,
        port=body.port,
        health_check_path=body.health_check_path,
        min_ready_seconds=body.min_ready_seconds,
        env=check_env(body.env),
        volumes=tuple(body.volumes),
        strategy=body.strategy,
        naming=body.naming_strategy,
        pull_policy=body.pull_policy,
        history_count=body.history_count,
        deadline_s=body.deadline_seconds,
        config=kept_config(body.config),
        registry_auth=_auth(body),
    )


def _auth(body: DeployRequest) -> dict[str, str] | None:
    if body.registry is None:
        return None
    server = body.registry.server or body.image.partition("/")[0]
    return {"username": body.registry.username, "password": body.registry.password,
            "serveraddress": server}


def accepted(dep: Deployment) -> Response:
    """202 with the deployment id and where to follow it."""
    body = DeployAccepted(deployment_id=dep.id, app=dep.app,
                          events_url=f"/v1/deployments/{dep.id}/events")
    return model_response(body, status=202)


class DeployHandlers:
    """The endpoints that change what runs."""

    def __init__(self, deployer: DeployerProtocol) -> None:
        self.deployer = deployer

    async def deploy(self, request: Request) -> Response:
        """POST /v1/deploy"""
        body = DeployRequest.model_validate_json(await request.body())
        return accepted(await self.deployer.submit(spec_from_request(body)))

    async def rollback(self, request: Request) -> Response:
        """POST /v1/apps/{app}/rollback"""
        app = check_app(request.path_params["app"])
        body = RollbackRequest.model_validate_json(await request.body())
        problem = deployment_id_problem(body.deployment_id)
        if problem:
            raise ApiProblem(400, f"invalid deployment id {body.deployment_id!r}", hint=problem)
        env = check_env(body.env)
        return accepted(await self.deployer.rollback(app, body.deployment_id, env))

    async def stop(self, request: Request) -> Response:
        """POST /v1/apps/{app}/stop"""
        app = check_app(request.path_params["app"])
        raw = await request.body()
        body = StopRequest.model_validate_json(raw if raw.strip() else b"{}")
        ids = await self.deployer.stop_app(app, body.remove_containers, body.remove_volumes)
        return model_response(StopResult(app=app, containers=ids, removed=body.remove_containers))
