"""Route builder (pure): table tests."""

from __future__ import annotations

from haloy.daemon.discovery import build_inventory
from haloy.daemon.route_builder import BuildResult, Controls, Extras, Replica, build_routes
from haloy.runtime.docker import ContainerSummary
from haloy.runtime.labels import AppLabels, Domain

A_COM = (Domain("a.com", ("www.a.com",)),)


def rep(
    cid: str,
    app: str = "web",
    dep: str = "01A",
    domains: tuple[Domain, ...] = A_COM,
    port: int = 8080,
) -> Replica:
    return Replica(cid, f"{app}-{cid}", AppLabels(app, dep, tuple(domains), port), f"10.0.0.{cid}")


def backends(result: BuildResult, domain: str) -> list[tuple[str, str]]:
    [route] = [r for r in result.snapshot.routes if r.domain == domain]
    return [(b.address, b.state) for b in route.backends]


def test_healthy_replicas_routed_with_aliases() -> None:
    result = build_routes([rep("1"), rep("2")], lambda cid: True)
    [route] = result.snapshot.routes
    assert (route.app, route.domain, route.aliases) == ("web", "a.com", ("www.a.com",))
    assert backends(result, "a.com") == [("10.0.0.1", "active"), ("10.0.0.2", "active")]
    assert result.problems == ()


def test_unhealthy_replica_left_out_but_route_kept() -> None:
    result = build_routes([rep("1"), rep("2")], lambda cid: cid == "2")
    assert backends(result, "a.com") == [("10.0.0.2", "active")]
    result = build_routes([rep("1")], lambda cid: False)
    assert backends(result, "a.com") == []


def test_newest_healthy_deployment_wins() -> None:
    old, new = rep("1", dep="01A"), rep("2", dep="01B")
    # New deployment not healthy yet: the old one keeps serving.
    assert backends(build_routes([old, new], lambda c: c == "1"), "a.com") == [
        ("10.0.0.1", "active")
    ]
    # Healthy: it takes over.
    result = build_routes([old, new], lambda c: True)
    assert backends(result, "a.com") == [("10.0.0.2", "active")]
    assert result.apps["web"].deployment_id == "01B"


def test_draining_replicas_kept_as_draining() -> None:
    old, new = rep("1", dep="01A"), rep("2", dep="01B")
    result = build_routes([old, new], lambda c: True, Controls(draining=frozenset({"1"})))
    assert backends(result, "a.com") == [("10.0.0.2", "active"), ("10.0.0.1", "draining")]


def test_multiple_domains_and_controls() -> None:
    r = rep("1", domains=(Domain("a.com"), Domain("b.com", ("c.com",))))
    result = build_routes(
        [r],
        lambda c: True,
        Controls(paused=frozenset({"web"}), hold_when_empty=frozenset({"web"})),
        Extras(tls_hosts=frozenset({"b.com"})),
    )
    got = [
        (x.domain, x.aliases, x.paused, x.hold_when_empty, x.tls) for x in result.snapshot.routes
    ]
    assert got == [("a.com", (), True, True, False), ("b.com", ("c.com",), True, True, True)]


def test_conflicting_domain_goes_to_first_app_name_and_is_reported() -> None:
    a = rep("1", app="alpha", domains=(Domain("x.com", ("www.x.com",)),))
    b = rep("2", app="beta", domains=(Domain("y.com", ("www.x.com",)), Domain("x.com")))
    for order in ([a, b], [b, a]):
        result = build_routes(order, lambda c: True)
        assert [(r.app, r.domain, r.aliases) for r in result.snapshot.routes] == [
            ("alpha", "x.com", ("www.x.com",)),
            ("beta", "y.com", ()),
        ]
        assert sorted(p.subject for p in result.problems) == ["domain www.x.com", "domain x.com"]
        assert all("routed to 'alpha'" in p.reason for p in result.problems)


def test_same_routes_same_hash_regardless_of_input_order() -> None:
    reps = [rep("1"), rep("2"), rep("3", app="api", domains=(Domain("api.a.com"),))]
    h1 = build_routes(reps, lambda c: True).snapshot.config_hash
    h2 = build_routes(list(reversed(reps)), lambda c: True).snapshot.config_hash
    assert h1 == h2


def test_inventory_from_container_list() -> None:
    good = {"dev.haloy.appName": "web", "dev.haloy.deployment-id": "01A",
            "dev.haloy.role": "app", "dev.haloy.domain.0": "a.com"}
    containers = [
        ContainerSummary("1", "ok", good, "running", {"haloy": "10.0.0.1"}),
        ContainerSummary("2", "stopped", good, "exited", {}),
        ContainerSummary("3", "paused", good, "paused", {"haloy": "10.0.0.3"}),
        ContainerSummary("4", "elsewhere", good, "running", {"bridge": "172.17.0.4"}),
        ContainerSummary("5", "badport", {**good, "dev.haloy.port": "x"}, "running", {}),
        ContainerSummary("6", "bad-but-stopped", {"dev.haloy.role": "app"}, "exited", {}),
        ContainerSummary("7", "unrelated", {"com.example": "1"}, "running", {"haloy": "10.0.0.7"}),
    ]
    inv = build_inventory(containers, "haloy")
    assert [(r.container_id, r.address) for r in inv.replicas] == [("1", "10.0.0.1")]
    assert [(p.subject, p.label) for p in inv.problems] == [
        ("badport", "dev.haloy.port"), ("elsewhere", "network"),
    ]
    assert inv.labelled == 6


def test_excluded_replicas_are_never_routed() -> None:
    result = build_routes(
        [rep("1"), rep("2")], lambda c: True, Controls(excluded=frozenset({"1"}))
    )
    assert backends(result, "a.com") == [("10.0.0.2", "active")]
    gone = build_routes([rep("1")], lambda c: True, Controls(excluded=frozenset({"1"})))
    assert gone.snapshot.routes == ()


def test_held_app_keeps_its_routes_without_containers() -> None:
    # A replace deploy stopped every old container and no new one runs yet: requests must be
    # held on the route, not answered 404 (found by tests/e2e/test_replace_hold.py).
    [route] = build_routes([rep("1")], lambda c: True).snapshot.routes
    held = Controls(paused=frozenset({"web"}), held_routes={"web": (route,)})
    [kept] = build_routes([], lambda c: True, held).snapshot.routes
    assert (kept.domain, kept.aliases, kept.backends, kept.paused) == (
        "a.com", ("www.a.com",), (), True)
    # Released: the remembered routes go; another app's claim on the name wins.
    assert build_routes([], lambda c: True, Controls(held_routes={"web": (route,)})
                        ).snapshot.routes == ()
    other = build_routes([rep("2", app="api")], lambda c: True, held).snapshot.routes
    assert [r.app for r in other] == ["api"]
