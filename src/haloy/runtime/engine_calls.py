"""How runtime/ calls the Docker engine: time limits, and failures translated once.

Everything foreign (aiodocker's DockerError, aiohttp's connection errors, timeouts) becomes
one of haloy's engine errors here, keeping the cause:

    engine answered 404          EngineNotFound
    engine answered 409          EngineConflict
    engine answered another code EngineError (status kept)
    no answer / cannot connect   EngineUnavailable
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import aiodocker
import aiohttp

from haloy.errors import EngineConflict, EngineError, EngineNotFound, EngineUnavailable

# Short calls (ping, list, inspect, create) that take longer than this mean dockerd is wedged.
CALL_TIMEOUT = 30.0
# A call that waits this long for a free pooled connection fails instead of hanging.
POOL_WAIT_S = 30.0
# aiodocker reports connection failures as DockerError with this pseudo status.
_AIODOCKER_UNREACHABLE = 900
START_HINT = (
    "is dockerd running? start it with `dockerd --iptables=false --ip-masq=false &` "
    "(or `systemctl start docker`), or point DOCKER_HOST at it"
)
_LOG_HINT = "check the engine's log (journalctl -u docker or dockerd's stderr)"
_BY_STATUS: dict[int, type[EngineError]] = {404: EngineNotFound, 409: EngineConflict}


@contextmanager
def translate_errors(action: str) -> Iterator[None]:
    """Turn aiodocker/aiohttp/OS errors into engine errors naming what we were doing."""
    try:
        yield
    except aiodocker.DockerError as exc:
        said = str(exc.message)
        if exc.status == _AIODOCKER_UNREACHABLE:
            raise EngineUnavailable(
                f"docker: {action} failed: cannot reach the engine ({said})",
                hint=START_HINT, reason=said,
            ) from exc
        raise _BY_STATUS.get(exc.status, EngineError)(
            f"docker: {action} failed: {said} (HTTP {exc.status})",
            hint=_LOG_HINT, reason=said, status=exc.status,
        ) from exc
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
        said = str(exc) or type(exc).__name__
        raise EngineUnavailable(
            f"docker: {action} failed: cannot reach the engine ({said})",
            hint=START_HINT, reason=said,
        ) from exc
