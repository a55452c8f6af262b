"""Shows a deployment's event stream live (colored by kind) and sums up how it ended."""

from __future__ import annotations

import time
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape

from haloy.cli.api_client import ApiClient
from haloy.errors import HaloyError
from haloy.wire.api import DeploymentEvent

_STYLES = {
    "info": "cyan",
    "step": "blue",
    "log": "dim",
    "succeeded": "bold green",
    "failed": "bold red",
}


@dataclass
class Outcome:
    """How one target's deployment ended, and what the summary shows about it."""

    target: str
    deployment_id: str | None = None
    succeeded: bool = False
    reason: str | None = None
    logs: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    replicas: int | None = None
    timings: dict[str, float] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The outcome for `--json` output."""
        return {
            "target": self.target,
            "deploymentId": self.deployment_id,
            "status": "succeeded" if self.succeeded else "failed",
            "reason": self.reason,
            "logs": self.logs,
            "urls": self.urls,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


class EventPrinter:
    """Prints events of one target, every line prefixed by the target's name."""

    def __init__(self, console: Console, prefix: str, show_progress: bool = True) -> None:
        self.console = console
        self.prefix = prefix
        self.show_progress = show_progress

    def line(self, text: str, style: str = "") -> None:
        """Print one prefixed line (text is shown literally, never as markup)."""
        body = f"[{style}]{escape(text)}[/]" if style else escape(text)
        self.console.print(f"[bold]{escape(self.prefix)}[/] {body}", highlight=False)

    def show(self, event: DeploymentEvent) -> None:
        """Print one event; terminal ones always, the others unless progress is hidden."""
        kind = str(event.kind)
        if kind not in ("succeeded", "failed") and not self.show_progress:
            return
        stamp = event.at.astimezone().strftime("%H:%M:%S")
        self.line(f"{stamp} {kind:<9} {event.message}", _STYLES.get(kind, ""))
        if kind == "failed":
            for log_line in failure_logs(event):
                self.line(f"  | {log_line}", "red")


def failure_logs(event: DeploymentEvent) -> list[str]:
    """The container log lines a failed event carries (empty if none)."""
    logs = (event.data or {}).get("logs") or []
    return [str(x) for x in logs] if isinstance(logs, list) else []


async def follow_events(
    api: ApiClient, outcome: Outcome, printer: EventPrinter, app: str | None = None
) -> Outcome:
    """Stream a deployment's events until its terminal event; fill in `outcome`.

    With `app`, a successful outcome's URLs are the ones the server reports serving.
    """
    assert outcome.deployment_id is not None
    started = time.monotonic()
    async with aclosing(api.events(outcome.deployment_id)) as events:
        async for event in events:
            outcome.events.append(event.model_dump(mode="json", by_alias=True))
            printer.show(event)
            if event.kind == "succeeded":
                outcome.succeeded = True
            elif event.kind == "failed":
                outcome.reason = (event.data or {}).get("reason") or event.message
                outcome.logs = failure_logs(event)
    outcome.timings["rollout"] = time.monotonic() - started
    if not outcome.succeeded and outcome.reason is None:
        outcome.reason = "the event stream ended without a result"
    if outcome.succeeded and app is not None:
        outcome.urls = await served_urls(api, app, outcome.urls)
    return outcome


async def served_urls(api: ApiClient, app: str, fallback: list[str]) -> list[str]:
    """The URLs the server says it serves `app` at (http:// until a certificate exists)."""
    try:
        status = await api.app(app)
    except (HaloyError, httpx.HTTPError):
        return fallback  # the summary is still useful with the configured domains
    return [d.url for d in status.domains if d.url] or fallback


def print_summary(console: Console, outcomes: list[Outcome]) -> None:
    """One line per target: result, deployment id, URLs and the time of each phase."""
    console.print()
    for o in outcomes:
        times = ", ".join(f"{k} {v:.1f}s" for k, v in o.timings.items())
        if o.succeeded:
            urls = " ".join(o.urls) or "no domains"
            parts = [times] if times else []
            if o.replicas:
                parts.append(f"{o.replicas} replica" + ("s" if o.replicas != 1 else ""))
            console.print(
                f"[bold green]✔[/] [bold]{escape(o.target)}[/] deployed "
                f"{o.deployment_id} → {escape(urls)}"
                + (f" ({', '.join(parts)})" if parts else ""),
                highlight=False,
            )
        else:
            where = f" deployment {o.deployment_id}" if o.deployment_id else ""
            console.print(
                f"[bold red]✘[/] [bold]{escape(o.target)}[/] failed{where}: "
                f"{escape(o.reason or 'unknown reason')}",
                highlight=False,
            )
            for log_line in o.logs:
                console.print(f"    [dim]|[/] {escape(log_line)}", highlight=False)
