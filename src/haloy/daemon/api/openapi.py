"""The OpenAPI 3.1 document, built from the endpoint table and the pydantic schemas.

`python -m haloy.daemon.api > docs/openapi.json` regenerates the committed copy;
a test keeps the two in sync.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from haloy import __version__
from haloy.daemon.api.endpoint_table import ENDPOINTS
from haloy.daemon.api.endpoints import JSON, SSE, Endpoint
from haloy.wire.api import ErrorBody

_Mode = Literal["validation", "serialization"]
_REF = "#/components/schemas/{model}"
_PARAM = re.compile(r"{(\w+)(?::\w+)?}")
_ERROR_TEXT = {
    400: "Invalid name, digest or parameter.",
    401: "Missing or wrong bearer token.",
    403: "The registry refused the credentials.",
    404: "Not found.",
    409: "A deployment of this app is running, the deployment cannot be used, or layers are "
    "missing.",
    413: "Request body too large.",
    422: "Request body does not match the schema.",
    429: "Too many requests; see Retry-After.",
    500: "haloyd failed.",
    502: "The registry could not be reached.",
    507: "Not enough disk space.",
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _operation(ep: Endpoint) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": ep.name, "summary": ep.summary}
    params = _PARAM.findall(ep.path)
    if params:
        op["parameters"] = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in params
        ]
    if ep.request is not None:
        op["requestBody"] = {"required": True, "content": {JSON: {"schema": _ref(ep.request)}}}
    elif ep.request_media_type != JSON:
        binary = {"schema": {"type": "string", "format": "binary"}}
        op["requestBody"] = {"required": True, "content": {ep.request_media_type: binary}}
    if ep.websocket:
        # OpenAPI cannot model a WebSocket; the summary describes the frames.
        ok: dict[str, Any] = {"description": "Switching Protocols to a WebSocket."}
    elif ep.response is None:
        ok = {"description": "OK", "content": {ep.media_type: {"schema": {}}}}
    elif ep.media_type == SSE:
        ok = {
            "description": "Server-sent events; each `data:` is this schema.",
            "content": {SSE: {"schema": _ref(ep.response)}},
        }
    else:
        ok = {"description": "OK", "content": {ep.media_type: {"schema": _ref(ep.response)}}}
    responses: dict[str, Any] = {str(ep.status): ok}
    codes = set(ep.errors) | {500} | (set() if ep.public else {401, 429})
    for code in sorted(codes):
        responses[str(code)] = {
            "description": _ERROR_TEXT.get(code, "Error."),
            "content": {JSON: {"schema": _ref(ErrorBody)}},
        }
    op["responses"] = responses
    if ep.public:
        op["security"] = []
    return op


def build_openapi(endpoints: Sequence[Endpoint] = ENDPOINTS) -> dict[str, Any]:
    """The OpenAPI document for `endpoints`."""
    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        path = _PARAM.sub(r"{\1}", ep.path)
        paths.setdefault(path, {})[ep.method.lower()] = _operation(ep)
    mode: dict[type[BaseModel], _Mode] = {ErrorBody: "serialization"}
    for ep in endpoints:
        if ep.response is not None:
            mode[ep.response] = "serialization"
        if ep.request is not None:
            mode[ep.request] = "validation"
    _, defs = models_json_schema(
        [(m, mode[m]) for m in sorted(mode, key=lambda m: m.__name__)],
        by_alias=True,
        ref_template=_REF,
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "haloyd API",
            "version": __version__,
            "description": "Control plane of haloy. Every endpoint but /health needs "
            "`Authorization: Bearer <token>`. Errors are `{error, detail, hint}`.",
        },
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def render(doc: dict[str, Any]) -> str:
    """The committed text form: sorted keys, two-space indent, trailing newline."""
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"
