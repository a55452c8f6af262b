"""Which host names a deployment may claim (pure): not the API's, not another app's.

A host belongs to the app that holds it (routes it now, or is being deployed with it). A
deploy naming a host another app holds is refused with 409 naming the owner, as kamal-proxy
answers "host in use"; moving a domain is explicit: take it out of the owner's haloy.yaml
and deploy that app (or stop it), then deploy the new owner. The API domain and `localhost`
are never an app's (422): the proxy sends their traffic, bearer token included, to haloyd.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from haloy.daemon.refusals import Conflict, Invalid
from haloy.runtime.labels import Domain


@dataclass(frozen=True)
class HostRules:
    """The names no app may take, and who holds the others now."""

    reserved: frozenset[str] = frozenset()
    owners: Callable[[], Mapping[str, str]] = field(default=dict)  # host -> app


def claimed_hosts(domains: Sequence[Domain]) -> list[str]:
    """Every name (domains and aliases) a deployment routes."""
    return list(dict.fromkeys(h for d in domains for h in (d.name, *d.aliases)))


def check_claims(
    app: str, domains: Sequence[Domain], reserved: frozenset[str], owners: Mapping[str, str]
) -> None:
    """Raise Invalid or Conflict unless `app` may route every name of `domains`."""
    hosts = claimed_hosts(domains)
    taken = [h for h in hosts if h in reserved]
    if taken:
        raise Invalid(
            f"{', '.join(taken)} is reserved for haloyd's API and cannot be an app's "
            "domain or alias",
            hint="pick another domain for the app (api.domain in haloyd.yaml names the API)",
            code="reserved_domain",
        )
    for host in hosts:
        owner = owners.get(host)
        if owner is not None and owner != app:
            raise Conflict(
                f"{host} belongs to app {owner!r}",
                hint=f"to move it, remove it from {owner!r}'s haloy.yaml and deploy {owner!r} "
                f"(or stop it with `haloy stop`), then deploy {app!r}",
                code="domain_in_use",
            )
