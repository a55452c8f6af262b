"""The API's answers when the container engine fails: runtime errors mapped to HTTP, here only.

runtime/ raises `EngineError` (`reason` holds the engine's own words); a handler that must
answer something other than the generic 500 turns it into one of these problems:

    exec cannot be created or started in a container   409
    docker load refuses an image                        400 image_load_failed
    registry login refused by the registry              403 registry_unauthorized
    registry login failed otherwise                     502 registry_unreachable
    engine cannot list or inspect its images            503 engine_unavailable
"""

from __future__ import annotations

from haloy.daemon.api.problems import ApiProblem
from haloy.errors import EngineError

# What the engine says when the registry refused the credentials (it answers HTTP 500 either
# way; the text tells a refusal from an unreachable registry).
_REFUSED = ("unauthorized", "401", "incorrect username or password", "denied")


def exec_refused(container_id: str, exc: EngineError) -> ApiProblem:
    """409: the engine would not run a command in the container."""
    return ApiProblem(409, f"cannot exec in container {container_id[:12]}: {exc.reason}",
                      hint="is the container running?")


def load_refused(exc: EngineError) -> ApiProblem:
    """400: docker load refused the uploaded image."""
    return ApiProblem(400, f"docker load refused the image: {exc.reason}",
                      hint="send the tar `docker save` writes (or upload the layers again)",
                      code="image_load_failed")


def login_problem(server: str, message: str) -> ApiProblem:
    """The answer for a failed engine login: refused credentials (403) or no registry (502)."""
    if any(word in message.lower() for word in _REFUSED):
        return ApiProblem(403, f"{server} refused the credentials: {message}",
                          hint="check the username and password (or access token)",
                          code="registry_unauthorized")
    return ApiProblem(502, f"cannot log in to {server}: {message}",
                      hint="check the registry's host[:port] and that the server can reach it",
                      code="registry_unreachable")


def engine_unavailable(exc: EngineError) -> ApiProblem:
    """503: the engine could not say which images (and so layers) it has."""
    return ApiProblem(503, f"cannot list the Docker engine's images: {exc.reason}",
                      hint="check that dockerd runs on the server (haloyd status)",
                      code="engine_unavailable")
