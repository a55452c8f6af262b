"""The one exception tree of haloy.

    HaloyError                 message + hint, rendered by each CLI's error boundary
    ├── ConfigError            bad haloy.yaml / haloyd.yaml / flags: exit code 2
    ├── ApiError               the haloyd API answered with an error or could not be reached
    ├── RuntimeError_          the container runtime (Docker) failed or is unreachable
    │   └── EngineError        a Docker engine call failed: `reason` (the engine's words), `status`
    │       ├── EngineUnavailable  the engine cannot be reached or did not answer in time
    │       ├── EngineNotFound     no such container, image or exec (engine 404)
    │       └── EngineConflict     refused in the object's current state (engine 409)
    ├── CertificateError       certificate store or ACME issuance failed
    └── StoreError             the SQLite history store failed

Foreign exceptions are translated at the package edge with `raise X(...) from exc`.
Library code never calls `sys.exit`; the CLIs pick the exit code from `exit_code`.
"""

from __future__ import annotations

EXIT_FAILED = 1
EXIT_USAGE = 2


class HaloyError(Exception):
    """Base of every error haloy reports to a user: a message and an optional hint."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(HaloyError):
    """A configuration file, value or flag is wrong; `problems` lists every one found."""

    exit_code = EXIT_USAGE

    def __init__(
        self, message: str, *, hint: str | None = None, problems: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message, hint=hint)
        self.problems = problems


class ApiError(HaloyError):
    """The API answered with an error, or could not be reached."""

    def __init__(
        self, message: str, *, hint: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class RuntimeError_(HaloyError):  # trailing underscore: not the builtin RuntimeError
    """The container runtime failed or is unreachable."""


class EngineError(RuntimeError_):
    """A Docker engine call failed; `reason` is what the engine said, `status` its HTTP status."""

    def __init__(
        self, message: str, *, hint: str | None = None, reason: str = "",
        status: int | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason or message
        self.status = status


class EngineUnavailable(EngineError):
    """The engine cannot be reached, or did not answer in time."""


class EngineNotFound(EngineError):
    """The engine has no such container, image or exec."""


class EngineConflict(EngineError):
    """The engine refused the call in the object's current state (a stopped container, an
    image in use)."""


class CertificateError(HaloyError):
    """A certificate could not be loaded, stored or issued."""


class StoreError(HaloyError):
    """The deployment history store failed."""
