"""Route snapshot validation: names that reach status replies and metric labels."""

from __future__ import annotations

from typing import Any

import pytest

from haloy.wire.snapshot import SnapshotError, parse_snapshot

HOSTILE = 'x"} 1\nfake_metric{a="1'


def _snap(app: str = "web", deployment_id: str = "01J00000000000000000000001") -> dict[str, Any]:
    backend = {"address": "127.0.0.1", "port": 8080, "deployment_id": deployment_id}
    return {"schema_version": 1, "routes": [{"app": app, "domain": "web.test",
                                             "backends": [backend]}]}


@pytest.mark.parametrize(
    ("snap", "field"),
    [
        (_snap(deployment_id=HOSTILE), "routes.0.backends.0.deployment_id"),
        (_snap(deployment_id="01J 2"), "routes.0.backends.0.deployment_id"),
        (_snap(deployment_id="0" * 65), "routes.0.backends.0.deployment_id"),
        (_snap(app=HOSTILE), "routes.0.app"),
        (_snap(app="web\\"), "routes.0.app"),
        (_snap(app="-web"), "routes.0.app"),
    ],
    ids=["id-hostile", "id-space", "id-long", "app-hostile", "app-backslash", "app-dash"],
)
def test_unsafe_names_are_rejected_naming_the_field(snap: dict[str, Any], field: str) -> None:
    with pytest.raises(SnapshotError) as info:
        parse_snapshot(snap)
    assert f"{field}: " in str(info.value)


@pytest.mark.parametrize(
    ("app", "deployment_id"),
    [("web", "01J00000000000000000000001"), ("my_app-2", "01jabc"), ("A", ""), ("w", "d1")],
)
def test_names_haloyd_generates_are_accepted(app: str, deployment_id: str) -> None:
    (route,) = parse_snapshot(_snap(app, deployment_id)).routes
    assert (route.app, route.backends[0].deployment_id) == (app, deployment_id)
