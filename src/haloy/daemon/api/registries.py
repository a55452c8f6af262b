"""Registry logins: `POST /v1/registries/login`, `GET /v1/registries`, `DELETE .../{server}`.

A login is checked by the Docker engine (`POST /auth`, the call `docker login` makes) before it
is stored, so a typo fails here and not at the next deploy's pull.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import Response

from haloy.daemon.api.engine_problems import login_problem
from haloy.daemon.api.handlers import model_response
from haloy.daemon.api.problems import ApiProblem
from haloy.daemon.registry_auth import RegistryAuthStore, RegistryCredentials
from haloy.errors import EngineError
from haloy.runtime.engine import ImageStore
from haloy.wire.api import RegistryEntry, RegistryList, RegistryLoginRequest
from haloy.wire.registries import normalize_server

log = logging.getLogger(__name__)


class RegistryHandlers:
    """The registry-login endpoints, over the credentials file and the engine's /auth."""

    def __init__(self, store: RegistryAuthStore, images: ImageStore) -> None:
        self.store = store
        self.images = images

    async def registry_login(self, request: Request) -> Response:
        """POST /v1/registries/login"""
        body = RegistryLoginRequest.model_validate_json(await request.body())
        server = normalize_server(body.server)
        if not server:
            raise ApiProblem(400, f"invalid registry server {body.server!r}",
                             hint="give the registry as host[:port], e.g. ghcr.io")
        creds = RegistryCredentials(server, body.username, body.password)
        try:
            await self.images.check_login(creds.engine_auth())
        except EngineError as exc:
            raise login_problem(server, exc.reason) from exc
        await asyncio.to_thread(self.store.put, creds)
        log.info("stored the registry login for %s (user %s)", server, body.username)
        return model_response(RegistryEntry(server=server, username=body.username))

    async def registries(self, request: Request) -> Response:
        """GET /v1/registries"""
        stored = await asyncio.to_thread(self.store.all)
        entries = [RegistryEntry(server=c.server, username=c.username)
                   for _, c in sorted(stored.items())]
        return model_response(RegistryList(registries=entries))

    async def registry_logout(self, request: Request) -> Response:
        """DELETE /v1/registries/{server}"""
        server = request.path_params["server"]
        gone = await asyncio.to_thread(self.store.delete, server)
        if gone is None:
            raise ApiProblem(404, f"no stored login for {normalize_server(server)}",
                             hint="see the stored logins with GET /v1/registries")
        log.info("removed the registry login for %s", gone.server)
        return model_response(RegistryEntry(server=gone.server, username=gone.username))
