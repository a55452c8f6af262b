"""Validation of names that reach the filesystem or Docker: app names and layer digests (pure).

Both end up in paths (`<layers>/sha256/<hex>`) and image references (`<app>:<deployment-id>`),
so anything that could climb out of a directory or smuggle a separator is refused.
"""

from __future__ import annotations

import re

# Docker image repository components are lowercase: [a-z0-9] runs joined by one '.', '_'
# or '-' (distribution/reference grammar, simplified). 63 keeps it usable as a DNS label.
_APP_NAME = re.compile(r"[a-z0-9](?:[a-z0-9_.-]{0,61}[a-z0-9])?")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def app_name_problem(name: str) -> str | None:
    """Why `name` is not a valid app name, or None when it is."""
    if not _APP_NAME.fullmatch(name):
        return (
            "app names are 1-63 characters of a-z, 0-9, '.', '_' and '-', "
            "starting and ending with a letter or digit"
        )
    if ".." in name:
        return "app names must not contain '..'"
    return None


def digest_problem(digest: str) -> str | None:
    """Why `digest` is not a valid layer digest (`sha256:` + 64 lowercase hex), or None."""
    if not _DIGEST.fullmatch(digest):
        return "layer digests look like sha256:<64 lowercase hex digits>"
    return None


# ULIDs: 26 characters of Crockford's base32 (no I, L, O, U).
_ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


def deployment_id_problem(deployment_id: str) -> str | None:
    """Why `deployment_id` is not a ULID, or None when it is."""
    if not _ULID.fullmatch(deployment_id):
        return "deployment ids are ULIDs: 26 characters of 0-9 and A-Z without I, L, O, U"
    return None
