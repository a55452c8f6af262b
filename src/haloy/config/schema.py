"""JSON Schema of haloy.yaml, generated from the models: `python -m haloy.config.schema`.

One file serves every format: the root is `anyOf` a snake_case variant (YAML, TOML) and a
camelCase variant (JSON). The models accept a few shorthands through before-validators
(a bare string for an image, domain or value; numbers for string values; a numeric string
for the port); the schema states those too, so editors accept what haloy accepts.
"""

from __future__ import annotations

import json
from typing import Any

from haloy.config.app_models import AppFile

SCHEMA_ID = "https://haloy.dev/schema/haloy.schema.json"
_STRING_SHORTHAND = ("ImageSpec", "Domain", "ValueSource")
_SCALAR_VALUE_DEFS = ("EnvVar", "BuildArg", "ValueSource")
_SCALARS = [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]


def _variant(style: str) -> dict[str, Any]:
    schema = AppFile.model_json_schema(by_alias=style == "camel", mode="validation")
    defs: dict[str, Any] = schema.pop("$defs")
    defs["AppFile"] = schema
    for name, body in defs.items():
        props = body.get("properties", {})
        if "from_" in props:  # an explicit alias is the spelling in every format
            props["from"] = props.pop("from_")
            body["required"] = [("from" if r == "from_" else r) for r in body.get("required", [])]
        if name in _SCALAR_VALUE_DEFS and "value" in props:
            props["value"] = {"anyOf": [*_SCALARS, {"type": "null"}], "default": None}
        if name in ("TargetSpec", "AppFile") and "port" in props:
            props["port"]["anyOf"].insert(1, {"type": "string", "pattern": "^[0-9]{1,5}$"})
    for name in _STRING_SHORTHAND:
        body = defs[name]
        defs[name] = {
            "description": body.get("description", ""),
            "anyOf": [{"type": "string"}, {k: v for k, v in body.items() if k != "description"}],
        }
    text = json.dumps(defs).replace('"#/$defs/', f'"#/$defs/{style}_')
    return {f"{style}_{k}": v for k, v in json.loads(text).items()}


def app_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of haloy.yaml in all its formats."""
    defs = {**_variant("snake"), **_variant("camel")}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "haloy.yaml",
        "description": "haloy app config: snake_case keys in YAML/TOML, camelCase in JSON.",
        "anyOf": [{"$ref": "#/$defs/snake_AppFile"}, {"$ref": "#/$defs/camel_AppFile"}],
        "$defs": defs,
    }


def render_schema() -> str:
    """The committed text of docs/haloy.schema.json."""
    return json.dumps(app_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(render_schema(), end="")
