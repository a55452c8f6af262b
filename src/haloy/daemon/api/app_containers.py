"""Which containers of an app a logs, exec or tunnel request means.

Default: the newest deployment's first container; `container=ID` picks by id prefix (409 if
several match); `all` takes every one. Exec and tunnel need running containers, logs also
read stopped ones.
"""

from __future__ import annotations

from haloy.daemon.api.problems import ApiProblem
from haloy.daemon.instance import is_mine
from haloy.runtime.docker import ContainerSummary
from haloy.runtime.engine import Engine
from haloy.runtime.labels import APP_NAME, DEPLOYMENT_ID

_HINT = "see the app's containers with GET /v1/apps/{app} (haloy status)"


def pick(
    found: list[ContainerSummary], wanted: str | None, every: bool
) -> list[ContainerSummary]:
    """The chosen containers among an app's `found` ones (ids and labels only)."""
    if wanted:
        matching = [c for c in found if c.id.startswith(wanted)]
        if len(matching) > 1:  # acting on several when one was meant could do harm
            raise ApiProblem(409, f"container id prefix {wanted!r} matches {len(matching)} "
                             "containers", hint="give more of the container id")
        return matching
    if every or not found:
        return found
    # ULIDs sort by time: the newest deployment has the greatest id.
    newest = max(c.labels.get(DEPLOYMENT_ID, "") for c in found)
    return [c for c in found if c.labels.get(DEPLOYMENT_ID, "") == newest][:1]


async def app_containers(
    engine: Engine, app: str, wanted: str | None, every: bool, running: bool = False,
    instance: str | None = None,
) -> list[ContainerSummary]:
    """The app's containers a request means; 404 (with a hint) when there is none.

    With `instance`, containers another haloyd created are not the app's here.
    """
    found = await engine.list_containers(f"{APP_NAME}={app}", all_states=not running)
    found = [c for c in found if is_mine(c.labels, instance)]
    chosen = pick(found, wanted, every)
    if not chosen:
        state = "running " if running else ""
        raise ApiProblem(404, f"no {state}container of app {app!r}"
                         + (f" matches {wanted!r}" if wanted else ""), hint=_HINT)
    return chosen


def network_address(container: ContainerSummary, network: str | None) -> str | None:
    """The container's IPv4 address on `network` (else on any network it is attached to)."""
    networks = container.networks
    preferred = [networks[network]] if network is not None and network in networks else []
    return next((a for a in [*preferred, *networks.values()] if a), None)
