"""haloyd's REST API: `create_api` builds the ASGI app, `make_server` + `serve_api` serve it."""

from haloy.daemon.api.app import ApiLimits, create_api
from haloy.daemon.api.deploys import DeployerProtocol
from haloy.daemon.api.layers import LayerStore
from haloy.daemon.api.server import make_server, serve_api
from haloy.daemon.api.status import StaticStatus, StatusProvider

__all__ = [
    "ApiLimits",
    "DeployerProtocol",
    "LayerStore",
    "StaticStatus",
    "StatusProvider",
    "create_api",
    "make_server",
    "serve_api",
]
