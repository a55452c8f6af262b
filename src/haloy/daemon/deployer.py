"""The deployer: one deployment per app at a time, history, rollback, stop, crash recovery.

Concurrency: a second deploy (or rollback, or stop) of an app while one runs is **refused**
with `DeployConflict` (HTTP 409 `deploy_in_progress`); deploys of different apps run in
parallel. Refusing keeps the outcome obvious to the client that asked: it can follow the
running deployment's event stream (the conflict names its id) and retry.

A deployment: record (pending, ULID id) -> image present (pulled per pull_policy) -> digest
-> tagged `<app>:<id>` -> running -> the plan's steps (deploy_plan) -> succeeded, old
containers removed, history pruned to `history_count` (pruned deployments' tags removed).
Any failure runs the revert plan and ends failed with the reason and the failing
container's last log lines on the event stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace

from haloy.daemon.deploy_plan import plan, plan_revert
from haloy.daemon.deploy_run import DEFAULT_DRAIN_GRACE_S, DeployRun, StepFailed
from haloy.daemon.deploy_spec import DeploySpec, image_tag, spec_from_stored
from haloy.daemon.events import EventHub, EventLog
from haloy.daemon.host_claims import HostRules, check_claims, claimed_hosts
from haloy.daemon.instance import INSTANCE_LABEL, is_mine
from haloy.daemon.mount_policy import MountPolicy, check_volumes
from haloy.daemon.refusals import Conflict, NotFound
from haloy.daemon.route_control import BackendRef, RouteControl
from haloy.errors import HaloyError
from haloy.runtime.containers import STOP_GRACE_S, Containers
from haloy.runtime.docker import ContainerSummary, DockerRuntime
from haloy.runtime.label_origin import sort_labels
from haloy.runtime.labels import APP_NAME, DEPLOYMENT_ID, LabelError, decode
from haloy.store import Deployment, DeploymentStore, Status
from haloy.wire.api import EventKind

log = logging.getLogger(__name__)

# Log lines of the failing container carried by a failure event.
FAILURE_LOG_LINES = 20


class DeployConflict(Conflict):
    """A deployment of this app is already running; `running` is its id."""

    def __init__(self, app: str, running: str) -> None:
        super().__init__(
            f"a deployment of {app!r} is already running ({running})",
            hint=f"follow it with GET /v1/deployments/{running}/events, then retry",
            code="deploy_in_progress",
        )
        self.running = running


class Deployer:
    """Starts deployments as tasks it owns; each app runs at most one at a time."""

    def __init__(
        self,
        runtime: DockerRuntime,
        routes: RouteControl,
        store: DeploymentStore,
        events: EventHub,
        *,
        network: str = "haloy",
        drain_grace_s: float = DEFAULT_DRAIN_GRACE_S,
        stop_grace_s: int = STOP_GRACE_S,
        extra_labels: Mapping[str, str] | None = None,
        registry_auth: Callable[[str], Mapping[str, str] | None] | None = None,
        hosts: HostRules | None = None,
        mounts: MountPolicy | None = None,
        instance: str | None = None,
    ) -> None:
        self.runtime = runtime
        self.containers = Containers(runtime.client, network)
        self.routes = routes
        self.store = store
        self.events = events
        self.drain_grace_s = drain_grace_s
        self.stop_grace_s = stop_grace_s
        # Labels put on every container this deployer creates (e.g. a test's teardown label).
        self.extra_labels = dict(extra_labels or {})
        # Stored registry logins (image ref -> engine auth), for specs that carry none.
        self.registry_auth = registry_auth
        self.hosts = hosts or HostRules()
        self.mounts = mounts  # None: any volume (tests of the deployer alone)
        # Containers another haloyd made (on a shared engine) are never stopped or adopted.
        self.instance = instance
        if instance is not None:
            self.extra_labels[INSTANCE_LABEL] = instance
        self._busy: dict[str, str] = {}  # app -> running deployment id ("" while recording)
        self._claims: dict[str, list[str]] = {}  # app -> names its running deployment routes
        self._tasks: dict[str, asyncio.Task[Deployment]] = {}  # deployment id -> task

    def _claim(self, app: str) -> None:
        if app in self._busy:
            raise DeployConflict(app, self._busy[app] or "being recorded")
        self._busy[app] = ""

    async def submit(self, spec: DeploySpec, *, rolled_back_from: str | None = None,
                     image_ref: str | None = None) -> Deployment:
        """Record a pending deployment and start it; raise DeployConflict if one runs.

        `image_ref` is what history shows as the image (default: `spec.image`).
        """
        if self.extra_labels:
            spec = replace(spec, extra_labels={**self.extra_labels, **spec.extra_labels})
        owners = dict(self.hosts.owners())
        for app, hosts in self._claims.items():
            owners.update(dict.fromkeys(hosts, app))
        check_claims(spec.app, spec.domains, self.hosts.reserved, owners)
        if self.mounts is not None:
            check_volumes(spec.volumes, self.mounts)
        self._claim(spec.app)
        self._claims[spec.app] = claimed_hosts(spec.domains)
        try:
            dep = await self.store.record(
                spec.app, image_ref or spec.image, spec.stored(),
                rolled_back_from=rolled_back_from,
            )
            events = self.events.create(dep.id)
        except BaseException:
            del self._busy[spec.app]
            del self._claims[spec.app]
            raise
        self._busy[spec.app] = dep.id
        events.append(EventKind.INFO, f"deployment {dep.id} of {spec.app} accepted",
                      {"strategy": spec.strategy, "replicas": spec.replicas})
        task = asyncio.create_task(self._run(dep, spec, events), name=f"deploy-{dep.id}")
        self._tasks[dep.id] = task
        return dep

    async def wait(self, deployment_id: str) -> Deployment:
        """Wait for a deployment started here to end; return its final history row."""
        task = self._tasks.get(deployment_id)
        if task is not None:
            return await asyncio.shield(task)
        dep = await self.store.get(deployment_id)
        if dep is None:
            raise NotFound(f"no deployment {deployment_id}", hint="list deployments")
        return dep

    async def rollback(
        self, app: str, deployment_id: str, env: Mapping[str, str] | None = None
    ) -> Deployment:
        """Deploy a kept deployment's image digest and stored spec again, as a new deployment."""
        target = await self.store.get(deployment_id)
        if target is None or target.app != app:
            raise NotFound(f"{app!r} has no kept deployment {deployment_id}",
                           hint="list the app's deployments to see the ids kept")
        if target.status not in (Status.SUCCEEDED, Status.ROLLED_BACK) or not target.image_digest:
            raise Conflict(f"deployment {deployment_id} is {target.status}; only "
                           "deployments that succeeded can be rolled back to",
                           hint="pick a succeeded deployment from the history")
        # The digest history recorded, not the `<app>:<id>` tag: a tag can be moved.
        info = await self.runtime.images.by_digest(target.image_digest, target.image_ref)
        if info is None:
            raise Conflict(f"the image of deployment {deployment_id} "
                           f"({target.image_digest}) is no longer on this server",
                           hint="deploy that version again with `haloy deploy`",
                           code="image_missing")
        spec = spec_from_stored(target.config, info.id, env)
        return await self.submit(spec, rolled_back_from=deployment_id,
                                 image_ref=target.image_ref)

    async def stop_app(
        self, app: str, remove_containers: bool = False, remove_volumes: bool = False
    ) -> list[str]:
        """Take the app out of the routes and stop (or remove) its containers; return their ids."""
        self._claim(app)
        try:
            found = await self._app_containers(app)
            # Draining first: no new request reaches a container that is about to stop.
            await self.routes.set_draining(app, [c.id for c in found])
            await self.routes.wait_published()
            # Out of the routes before this returns: its domains are free for another app.
            await self.routes.leave(app, [c.id for c in found])
            await self.routes.forget(app)
            for c in found:
                if remove_containers:
                    await self.containers.remove(c.id, volumes=remove_volumes)
                elif c.state == "running":
                    await self.containers.stop(c.id, self.stop_grace_s)
            return [c.id for c in found]
        finally:
            del self._busy[app]

    async def recover(self) -> list[str]:
        """At start: mark interrupted deployments failed and converge each app on one version.

        Their containers are removed; old containers a rolling deploy had stopped run again
        (they are only removed after success); every running app container is routed.
        """
        interrupted = await self.store.mark_interrupted()
        for dep_id in interrupted:
            doomed = await self.runtime.list_containers(f"{DEPLOYMENT_ID}={dep_id}")
            for c in doomed:
                # Out of the route before it goes: the proxy may be sending it requests.
                app = c.labels.get(APP_NAME, "")
                await self.routes.set_draining(app, [c.id])
                await self.routes.wait_published()
                await self.routes.wait_drained(app, [c.id], self.drain_grace_s)
                await self.routes.leave(app, [c.id])
                await self.containers.remove(c.id)
        apps: set[str] = set()
        for c in await self.runtime.list_containers(APP_NAME):
            if not is_mine(c.labels, self.instance):
                continue
            try:
                labels = decode(sort_labels(c.labels, {}).own)
            except LabelError:
                continue
            apps.add(labels.app)
            if c.state == "exited" and await self._was_current(labels.app, labels.deployment_id):
                await self.containers.start(c.id)
            state = await self.containers.inspect(c.id)
            if state is not None and state.running and state.address:
                backend = BackendRef(c.id, state.address, labels.port, labels.deployment_id)
                try:
                    await self.routes.join(labels.app, labels.domains, backend)
                except HaloyError as exc:
                    log.warning("%s: container %s not routed: %s", labels.app, c.name, exc)
        for app in sorted(apps):
            await self.routes.finish(app)  # no deployment runs: the route side decides
        await self.routes.wait_published()
        return interrupted

    async def _was_current(self, app: str, deployment_id: str) -> bool:
        succeeded = [d for d in await self.store.history(app) if d.status is Status.SUCCEEDED]
        return bool(succeeded) and succeeded[0].id == deployment_id

    async def close(self) -> None:
        """Cancel running deployments (haloyd is stopping; the next start recovers them)."""
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    # -- one deployment ----------------------------------------------------------------------

    async def _run(self, dep: Deployment, spec: DeploySpec, events: EventLog) -> Deployment:
        try:
            return await self._deploy(dep, spec, events)
        except Exception as exc:  # a bug must still end the stream and free the app
            log.exception("deployment %s crashed", dep.id)
            return await self._fail(dep, events, f"internal error: {exc}", None, [])
        finally:
            task = asyncio.current_task()
            # Cancelled = haloyd stops: leave the routes as they are; the next start recovers.
            if task is None or not task.cancelling():
                try:
                    await self.routes.finish(spec.app)
                except HaloyError as exc:
                    log.error("deployment %s: handing routes back failed: %s", dep.id, exc)
            self._busy.pop(spec.app, None)
            self._claims.pop(spec.app, None)
            self._tasks.pop(dep.id, None)

    async def _deploy(self, dep: Deployment, spec: DeploySpec, events: EventLog) -> Deployment:
        try:
            digest = await self._image(spec, dep.id, events)
        except HaloyError as exc:
            return await self._fail(dep, events, exc.message, None, [])
        await self.store.update(dep.id, Status.RUNNING, image_digest=digest)
        old = await self._adopt_old(spec.app, dep.id)
        steps = plan(spec.strategy, old, spec.replicas)
        events.append(EventKind.INFO, f"{spec.strategy}: {len(old)} old, {spec.replicas} new",
                      {"digest": digest, "steps": [str(s) for s in steps]})
        run = DeployRun(spec, dep.id, image_tag(spec.app, dep.id), self.containers, self.routes,
                        events, self.drain_grace_s, self.stop_grace_s)
        try:
            await run.execute(steps)
        except StepFailed as failed:
            lines = await self.containers.logs_tail(failed.container_id, FAILURE_LOG_LINES) \
                if failed.container_id else []
            problems = await run.revert(plan_revert(run.done))
            return await self._fail(dep, events, failed.reason, failed.container_id, lines,
                                    problems)
        for c in await self._app_containers(spec.app):
            # The replaced containers, and any an earlier stop left behind.
            if c.id in old or (c.state != "running" and c.labels.get(DEPLOYMENT_ID) != dep.id):
                await self.containers.remove(c.id)
        done = await self.store.update(dep.id, Status.SUCCEEDED)
        if dep.rolled_back_from is not None:
            await self._mark_replaced(spec.app, dep.id)
        for pruned in await self.store.prune(spec.app, spec.history_count):
            await self.runtime.images.untag(image_tag(spec.app, pruned))
        events.append(EventKind.SUCCEEDED, f"{spec.app} runs deployment {dep.id}",
                      {"digest": digest, "containers": list(run.new.values())})
        return done

    async def _image(self, spec: DeploySpec, dep_id: str, events: EventLog) -> str:
        info = await self.runtime.images.inspect(spec.image)
        if spec.pull_policy == "always" or (info is None and spec.pull_policy == "if_missing"):
            events.append(EventKind.STEP, f"pull {spec.image}", {"action": "pull"})
            auth = spec.registry_auth
            if auth is None and self.registry_auth is not None:
                auth = self.registry_auth(spec.image)
            await self.runtime.images.pull(spec.image, auth)
            info = await self.runtime.images.inspect(spec.image)
        if info is None:
            raise HaloyError(f"image {spec.image} is not on the server (pull_policy "
                             f"{spec.pull_policy})", hint="upload it with `haloy deploy`")
        tag = image_tag(spec.app, dep_id)
        await self.runtime.images.tag(info.id, *tag.split(":"))
        events.append(EventKind.STEP, f"image {spec.image} is {info.digest}",
                      {"action": "image", "digest": info.digest, "tag": tag})
        return info.digest

    async def _adopt_old(self, app: str, dep_id: str) -> list[str]:
        """The app's running containers, routed (they serve until replaced)."""
        old: list[str] = []
        for c in await self._app_containers(app, all_states=False):
            try:
                labels = decode(sort_labels(c.labels, {}).own)
            except LabelError:
                continue
            state = await self.containers.inspect(c.id)
            if labels.deployment_id == dep_id or state is None or not state.address:
                continue
            backend = BackendRef(c.id, state.address, labels.port, labels.deployment_id)
            try:
                await self.routes.join(app, labels.domains, backend)
            except HaloyError as exc:
                # An unhealthy old container is still replaced; it just serves nothing now.
                log.warning("%s: old container %s not routed: %s", app, c.name, exc)
            old.append(c.id)
        return old

    async def _app_containers(self, app: str, all_states: bool = True) -> list[ContainerSummary]:
        """The app's containers on the engine that this haloyd may act on."""
        found = await self.runtime.list_containers(f"{APP_NAME}={app}", all_states=all_states)
        return [c for c in found if is_mine(c.labels, self.instance)]

    async def _mark_replaced(self, app: str, new_id: str) -> None:
        for d in await self.store.history(app):
            if d.id != new_id and d.status is Status.SUCCEEDED:
                await self.store.update(d.id, Status.ROLLED_BACK)
                return

    async def _fail(self, dep: Deployment, events: EventLog, reason: str,
                    container_id: str | None, lines: list[str],
                    problems: list[str] | None = None) -> Deployment:
        current = await self.store.get(dep.id)
        failed = replace(dep, status=Status.FAILED, reason=reason)
        if current is not None and current.status in (Status.PENDING, Status.RUNNING):
            failed = await self.store.update(dep.id, Status.FAILED, reason=reason)
        if events.closed:
            return failed
        events.append(EventKind.FAILED, reason, {
            "reason": reason, "containerId": container_id, "logs": lines,
            "revertProblems": problems or [],
        })
        return failed
