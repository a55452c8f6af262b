"""Why haloyd refuses a deploy, rollback or stop on its merits, said without HTTP.

    Refused        message + hint + an optional machine code (default: the kind's)
    ├── Conflict   clashes with what runs or was kept: a deploy in progress, a domain of
    │              another app, a deployment that cannot be rolled back to
    ├── Invalid    asks for what the server's rules forbid: a reserved domain, a host path
    └── NotFound   names a deployment the server does not have

The deploy core raises these; the API's exception handler (daemon/api/problems.py) is the one
place they become answers, with `HTTP_STATUS` of their kind.
"""

from __future__ import annotations

from typing import ClassVar, Final, Literal

from haloy.errors import HaloyError

Kind = Literal["conflict", "invalid", "not_found"]

# The status each kind answers with (RFC 9110, 15.5): 409 when retrying later or changing
# what runs can succeed, 422 when the request itself must change, 404 for an unknown id.
HTTP_STATUS: Final[dict[Kind, int]] = {"conflict": 409, "invalid": 422, "not_found": 404}


class Refused(HaloyError):
    """haloyd refuses the request; `code` names the reason for machines."""

    kind: ClassVar[Kind]

    def __init__(self, message: str, *, hint: str | None = None, code: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code

    @property
    def status(self) -> int:
        """The HTTP status the API answers this refusal with."""
        return HTTP_STATUS[self.kind]


class Conflict(Refused):
    """The request clashes with what runs or was kept."""

    kind = "conflict"


class Invalid(Refused):
    """The request asks for something the server's rules forbid."""

    kind = "invalid"


class NotFound(Refused):
    """The request names a deployment the server does not have."""

    kind = "not_found"

