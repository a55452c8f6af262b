"""One deployment's execution: run the plan's steps, and on any failure run the revert plan.

The plan (deploy_plan) says what happens in which order; this shell does it against Docker
(runtime.containers) and the route side (RouteControl), reporting each step on the event log.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from haloy.daemon.deploy_plan import Action, Step
from haloy.daemon.deploy_spec import DeploySpec, container_spec, set_aside_name
from haloy.daemon.events import EventLog
from haloy.daemon.health_gate import GateFailed, wait_ready
from haloy.daemon.route_control import BackendRef, RouteControl
from haloy.errors import HaloyError, RuntimeError_
from haloy.runtime.containers import STOP_GRACE_S, Containers
from haloy.runtime.label_origin import sort_labels
from haloy.runtime.labels import decode
from haloy.wire.api import EventKind

log = logging.getLogger(__name__)

# A failed deploy gets this long to bring the previous version back up.
REVERT_DEADLINE_S = 120.0
# Draining backends get this long to finish in-flight requests before they are stopped.
DEFAULT_DRAIN_GRACE_S = 30.0


@dataclass
class StepFailed(Exception):
    """A step failed: why, and which container (for its log lines)."""

    reason: str
    container_id: str | None = None


@dataclass
class DeployRun:
    """The state of one deployment while its steps run."""

    spec: DeploySpec
    deployment_id: str
    image: str  # the `<app>:<deployment-id>` tag
    containers: Containers
    routes: RouteControl
    events: EventLog
    drain_grace_s: float = DEFAULT_DRAIN_GRACE_S
    stop_grace_s: int = STOP_GRACE_S
    new: dict[int, str] = field(default_factory=dict)  # replica -> container id
    done: list[Step] = field(default_factory=list)
    set_aside: dict[str, str] = field(default_factory=dict)  # old id -> its static name

    async def execute(self, steps: tuple[Step, ...]) -> None:
        """Run every step within the deploy deadline; raise StepFailed on the first failure."""
        deadline = asyncio.get_running_loop().time() + self.spec.deadline_s
        for step in steps:
            self.done.append(step)  # before running: a half-done step is undone too
            self.events.append(EventKind.STEP, str(step), _step_data(step, self))
            # The gate keeps its own deadline so its failure names the last check's error.
            limit = None if step.action is Action.GATE else deadline
            try:
                async with asyncio.timeout_at(limit):
                    await self._do(step, deadline)
            except GateFailed as exc:
                raise StepFailed(exc.message, exc.container_id) from exc
            except TimeoutError as exc:
                cid = self.new.get(step.replica or 0)
                raise StepFailed(f"deploy deadline of {self.spec.deadline_s:g}s passed at "
                                 f"step {step}", cid) from exc
            except HaloyError as exc:
                raise StepFailed(exc.message, self.new.get(step.replica or 0)) from exc

    async def _do(self, step: Step, deadline: float) -> None:
        app, spec = self.spec.app, self.spec
        if step.action is Action.HOLD:
            await self.routes.set_hold(app, True)
        elif step.action is Action.RELEASE:
            await self.routes.set_hold(app, False)
        elif step.action is Action.START:
            assert step.replica is not None
            cspec = container_spec(
                spec, self.deployment_id, step.replica, self.image, self.containers.network
            )
            if spec.naming == "static":
                await self._free_name(cspec.name)
            self.new[step.replica] = await self.containers.run(cspec)
        elif step.action is Action.GATE:
            cid = self.new[step.replica or 0]
            await wait_ready(self.containers, cid, spec.port, spec.health_check_path,
                             spec.min_ready_seconds, deadline)
        elif step.action is Action.JOIN:
            await self._join(self.new[step.replica or 0])
        elif step.action is Action.DRAIN:
            await self.routes.set_draining(app, [step.old or ""])
        elif step.action is Action.STOP:
            old = step.old or ""
            await self.routes.wait_drained(app, [old], self.drain_grace_s)
            await self.routes.leave(app, [old])
            await self.containers.stop(old, self.stop_grace_s)
        await self.routes.wait_published()

    async def _free_name(self, name: str) -> None:
        """Rename the stopped old container that holds the static `name` (kept for a revert)."""
        holder = await self.containers.inspect(name)
        if holder is None:
            return
        stopped = {s.old for s in self.done if s.action is Action.STOP}
        if holder.id not in stopped:
            raise StepFailed(f"a container named {name} exists and is not this app's old "
                             "version", holder.id)
        await self.containers.rename(holder.id, set_aside_name(self.spec.app, self.deployment_id))
        self.set_aside[holder.id] = name

    async def _join(self, cid: str) -> None:
        state = await self.containers.inspect(cid)
        if state is None or not state.running or not state.address:
            raise GateFailed(f"container {cid[:12]} is not running on the app network", cid)
        labels = decode(sort_labels(state.labels, {}).own)
        backend = BackendRef(cid, state.address, labels.port, labels.deployment_id)
        await self.routes.join(self.spec.app, labels.domains, backend)

    async def revert(self, steps: tuple[Step, ...]) -> list[str]:
        """Run the revert plan, best effort per step; return what could not be undone."""
        problems: list[str] = []
        deadline = asyncio.get_running_loop().time() + REVERT_DEADLINE_S
        for step in steps:
            self.events.append(EventKind.STEP, f"revert: {step}", _step_data(step, self))
            try:
                async with asyncio.timeout_at(deadline):
                    await self._undo(step, deadline)
                    await self.routes.wait_published()
            except (HaloyError, TimeoutError) as exc:
                problems.append(f"{step}: {exc}")
                log.error("%s: revert step %s failed: %s", self.deployment_id, step, exc)
        for cid, name in self.set_aside.items():
            # The new container is removed by now, so the old one gets its name back.
            try:
                await self.containers.rename(cid, name)
            except HaloyError as exc:
                problems.append(f"rename {cid[:12]} back to {name}: {exc}")
        return problems

    async def _undo(self, step: Step, deadline: float) -> None:
        app = self.spec.app
        if step.action is Action.RESTART:
            old = step.old or ""
            await self.containers.start(old)
            state = await self.containers.inspect(old)
            if state is None:
                raise RuntimeError_(f"old container {old[:12]} is gone", hint="redeploy the app")
            labels = decode(sort_labels(state.labels, {}).own)
            await wait_ready(self.containers, old, labels.port, labels.health_check_path, 0,
                             deadline)
            await self._join(old)
        elif step.action is Action.UNDRAIN:
            await self.routes.undrain(app, [step.old or ""])
        elif step.action is Action.LEAVE:
            await self.routes.leave(app, [self.new[step.replica or 0]])
        elif step.action is Action.REMOVE:
            cid = self.new.get(step.replica or 0)
            if cid is not None:
                await self.containers.remove(cid)
        elif step.action is Action.RELEASE:
            await self.routes.set_hold(app, False)


def _step_data(step: Step, run: DeployRun) -> dict[str, object]:
    data: dict[str, object] = {"action": step.action.value}
    if step.replica is not None:
        data["replica"] = step.replica
        if step.replica in run.new:
            data["containerId"] = run.new[step.replica]
    if step.old is not None:
        data["oldContainerId"] = step.old
    return data
