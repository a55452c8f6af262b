"""What `haloy deploy` does: check every server's token, build each image once, ship, deploy.

    resolve targets → GET /v1/version on every server (auth + capabilities) → global_pre_deploy
    → docker build (each distinct build once) → per server in parallel, its targets in order:
    pre_deploy → ship (nothing on a shared engine, else missing layers) → POST /v1/deploy →
    follow events → post_deploy → global_post_deploy → summary; exit 1 if any target failed.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from haloy.cli.api_client import ApiClient
from haloy.cli.build import (
    BuildPlan,
    build_command,
    build_image,
    build_key,
    check_docker,
    local_engine_id,
    push_image,
)
from haloy.cli.client_config import client_config_dir, resolve_token
from haloy.cli.events_view import EventPrinter, Outcome, follow_events, print_summary
from haloy.cli.hooks import run_hooks
from haloy.cli.ship import is_loopback, shares_engine, ship_layers
from haloy.cli.target_options import server_url, target_label
from haloy.config.app import AppConfig, AppTarget
from haloy.config.resolve import ResolvedTarget, resolve_target
from haloy.errors import ApiError, HaloyError
from haloy.wire.api import DeployRequest, DomainIn, RegistryLogin, VersionInfo

# The capability a haloyd must have for `POST /v1/deploy`.
DEPLOY_CAPABILITY = "deployments"


@dataclass
class Job:
    """One target to deploy, with everything resolved before anything expensive starts."""

    target: AppTarget
    resolved: ResolvedTarget
    url: str
    token: str
    build: BuildPlan | None
    shared_engine: bool = False
    capabilities: list[str] = field(default_factory=list)
    engine_id: str | None = None  # the server's Docker engine

    @property
    def label(self) -> str:
        return target_label(self.target)


def deploy_request(config: AppConfig, job: Job, deadline_s: float) -> DeployRequest:
    """The POST /v1/deploy body of a target (env in plaintext; config with references)."""
    t = job.target
    # A built image shipped to the server (or on its engine) is never pulled; one pushed to
    # a registry is pulled from there per the config's pull_policy.
    pull_policy = "never" if pushes_to_server(t) else t.image.pull_policy
    registry = None
    r = job.resolved
    if t.image.registry is not None and r.registry_username and r.registry_password:
        registry = RegistryLogin(server=t.image.registry.server,
                                 username=r.registry_username, password=r.registry_password)
    return DeployRequest(
        app=t.name,
        image=t.image.ref,
        domains=[DomainIn(domain=d.domain, aliases=list(d.aliases)) for d in t.domains],
        replicas=t.replicas,
        port=t.port,
        health_check_path=t.health_check_path,
        min_ready_seconds=t.min_ready_seconds,
        env=dict(job.resolved.env),
        volumes=list(t.volumes),
        strategy=t.deployment_strategy,
        naming_strategy=t.naming_strategy,
        pull_policy=pull_policy,
        history_count=t.image.history.count or 1,
        deadline_seconds=deadline_s,
        config={"target": t.target, "file": config.stored()},
        registry=registry,
    )


def pushes_to_server(target: AppTarget) -> bool:
    """True when the image is built here and shipped to the server (not via a registry)."""
    bc = target.image.build_config
    return target.image.build and (bc is None or bc.push != "registry")


async def preflight(jobs: list[Job], forced_shared: bool) -> None:
    """GET /v1/version on every server: the token works and it can deploy, before any build."""

    async def check(url: str, token: str) -> VersionInfo:
        async with ApiClient(url, token) as api:
            info = await api.version()
        if DEPLOY_CAPABILITY not in info.capabilities:
            raise ApiError(f"{url} cannot deploy (no {DEPLOY_CAPABILITY!r} capability)",
                           hint="upgrade haloyd on the server")
        return info

    servers = sorted({(j.url, j.token) for j in jobs})
    found = await asyncio.gather(*(check(u, k) for u, k in servers))
    infos = dict(zip(servers, found, strict=True))
    local = await local_engine_id(os.environ) if any(is_loopback(j.url) for j in jobs) else None
    for job in jobs:
        info = infos[(job.url, job.token)]
        job.capabilities, job.engine_id = info.capabilities, info.engine_id
        job.shared_engine = shares_engine(job.url, job.engine_id, local, forced_shared)


class Deploy:
    """One `haloy deploy` run over its jobs."""

    def __init__(self, config: AppConfig, jobs: list[Job], env: dict[str, str],
                 console: Console, show_logs: bool, deadline_s: float) -> None:
        self.config = config
        self.jobs = jobs
        self.env = env
        self.console = console
        self.show_logs = show_logs
        self.deadline_s = deadline_s
        self.outcomes = {j.label: Outcome(j.label) for j in jobs}
        self.progress: Progress | None = None

    def echo(self, prefix: str) -> Callable[[str], None]:
        printer = EventPrinter(self.console, prefix)
        return lambda text: printer.line(text, "dim")

    async def build_all(self) -> None:
        """Build every distinct image once; each target's outcome records the build time."""
        builds: dict[tuple[str, ...], list[Job]] = {}
        for job in self.jobs:
            if job.build is not None:
                builds.setdefault(build_key(job.build), []).append(job)
        if not builds:
            return
        await check_docker(self.env)
        for same in builds.values():
            plan = same[0].build
            assert plan is not None
            self.echo("[build]")(f"docker build {plan.ref} ({plan.context})")
            started = time.monotonic()
            await build_image(plan, self.env)
            for job in same:
                self.outcomes[job.label].timings["build"] = time.monotonic() - started

    async def ship(self, job: Job, api: ApiClient) -> None:
        """Put the image on the server: nothing for a shared engine, else its missing layers."""
        if not job.target.image.build:
            return
        if not pushes_to_server(job.target):
            r, auth = job.resolved, job.target.image.registry
            self.echo(f"[{job.label}]")(f"docker push {job.target.image.ref}")
            started = time.monotonic()
            await push_image(job.target.image.ref, self.env, auth.server if auth else None,
                             r.registry_username, r.registry_password)
            self.outcomes[job.label].timings["push"] = time.monotonic() - started
            return
        if job.shared_engine:
            return
        echo = self.echo(f"[{job.label}]")
        started = time.monotonic()
        assert self.progress is not None
        task = self.progress.add_task(f"{job.label} upload", total=None)

        def advance(n: int, total: int) -> None:
            assert self.progress is not None
            self.progress.update(task, advance=n, total=total)

        try:
            shipped = await ship_layers(api, job.target.image.ref, job.capabilities, advance)
        finally:
            self.progress.remove_task(task)
        had = f"; the server already had {shipped.had}" if shipped.had else ""
        echo(f"uploaded {shipped.layers} layer(s), {shipped.sent_bytes} bytes{had}")
        self.outcomes[job.label].timings["upload"] = time.monotonic() - started

    async def one(self, job: Job) -> None:
        """pre_deploy → ship → deploy → follow → post_deploy for one target."""
        outcome = self.outcomes[job.label]
        outcome.urls = [f"https://{d.domain}" for d in job.target.domains]
        outcome.replicas = job.target.replicas
        cwd = self.config.path.parent
        try:
            await run_hooks("pre_deploy", job.target.pre_deploy, cwd, self.env,
                            self.echo(f"[{job.label}]"))
            async with ApiClient(job.url, job.token) as api:
                await self.ship(job, api)
                request = deploy_request(self.config, job, self.deadline_s)
                body = request.model_dump(mode="json", by_alias=True)
                answer = await api.post("/v1/deploy", body)
                outcome.deployment_id = answer.get("deploymentId")
                if outcome.deployment_id is None:
                    raise ApiError(f"{job.url} accepted the deploy without a deployment id")
                printer = EventPrinter(self.console, f"[{job.label}]", self.show_logs)
                await follow_events(api, outcome, printer, job.target.name)
            if outcome.succeeded:
                await run_hooks("post_deploy", job.target.post_deploy, cwd, self.env,
                                self.echo(f"[{job.label}]"))
        except HaloyError as err:
            outcome.succeeded = False
            outcome.reason = err.message + (f" (hint: {err.hint})" if err.hint else "")

    async def run(self) -> list[Outcome]:
        """The whole deploy; raises only for global problems, target failures are outcomes."""
        cwd = self.config.path.parent
        await run_hooks("global_pre_deploy", self.config.global_pre_deploy, cwd, self.env,
                        self.echo("[global]"))
        await self.build_all()
        by_server: dict[str, list[Job]] = {}
        for job in self.jobs:
            by_server.setdefault(job.url, []).append(job)

        async def in_order(jobs: list[Job]) -> None:
            for job in jobs:  # targets on one server deploy one after another
                await self.one(job)

        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), TimeRemainingColumn(), console=self.console, transient=True,
        )
        with self.progress:
            await asyncio.gather(*(in_order(jobs) for jobs in by_server.values()))
        outcomes = list(self.outcomes.values())
        if all(o.succeeded for o in outcomes):
            await run_hooks("global_post_deploy", self.config.global_post_deploy, cwd,
                            self.env, self.echo("[global]"))
        return outcomes


def plan_jobs(config: AppConfig, targets: tuple[AppTarget, ...],
              env: dict[str, str]) -> list[Job]:
    """Resolve every target's values and token, and its build command (no I/O to servers)."""
    jobs = []
    for t in targets:
        resolved = resolve_target(config, t, env, client_config_dir(env))
        token = resolve_token(resolved.api_token, t.server, env)
        plan = (build_command(t, config.path.parent, resolved.build_args)
                if t.image.build else None)
        jobs.append(Job(t, resolved, server_url(t), token, plan))
    return jobs


def run_deploy(config: AppConfig, targets: tuple[AppTarget, ...], env: dict[str, str],
               *, show_logs: bool, as_json: bool, shared_engine: bool,
               deadline_s: float) -> list[Outcome]:
    """The whole `haloy deploy`; raises HaloyError naming the targets that failed."""
    jobs = plan_jobs(config, targets, env)
    # With --json the progress goes to stderr so stdout holds only the JSON document.
    console = Console(stderr=as_json, highlight=False)
    run = Deploy(config, jobs, env, console, show_logs=show_logs, deadline_s=deadline_s)

    async def main() -> list[Outcome]:
        await preflight(jobs, shared_engine)
        return await run.run()

    outcomes = asyncio.run(main())
    if as_json:
        click.echo(json.dumps([o.as_json() for o in outcomes], indent=2))
    else:
        print_summary(console, outcomes)
    failed = [o.target for o in outcomes if not o.succeeded]
    if failed:
        raise HaloyError(
            f"deploy failed for {', '.join(failed)}",
            hint="see the reason and container logs above; `haloy status` shows what runs now",
        )
    return outcomes
