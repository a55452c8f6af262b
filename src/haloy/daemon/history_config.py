"""What history keeps of the client's haloy.yaml (pure): the deployed target, no literals.

A deploy request carries the client's config so history can show what was deployed. It is
not needed for a rollback (the stored spec and the env the client re-resolves are), so only
the deployed target is kept, and every literal that may be a secret (`api_token`, passwords,
env and build-arg values) is masked; references (`from: {secret: ...}`, `{env: ...}`) stay.
The API masks again on the way out, for rows stored before this rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MASK = "***"
# Keys whose scalar value is a literal that may be a secret (haloy.yaml spelling).
SECRET_KEYS = frozenset({"api_token", "password", "token", "value", "registry_password"})


def redact(value: Any) -> Any:
    """`value` with every scalar under a secret-holding key replaced by MASK."""
    if isinstance(value, Mapping):
        return {
            k: MASK if k in SECRET_KEYS and not isinstance(v, Mapping | list) and v is not None
            else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def kept_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The client's `{"target", "file"}` config as history keeps it."""
    target, file = config.get("target"), config.get("file")
    if isinstance(file, Mapping) and isinstance(file.get("targets"), Mapping):
        targets = file["targets"]
        file = {**file, "targets": {target: targets[target]} if target in targets else {}}
    return dict(redact({**config, "file": file} if file is not None else config))
