"""How the CLI's tables look: a console that keeps rows whole in a pipe, and short ages."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console


def table_console() -> Console:
    """A console for tables: the terminal's width, or 200 columns when piped."""
    console = Console(highlight=False)
    return console if console.is_terminal else Console(width=200, highlight=False)


def age(at: datetime, now: datetime | None = None) -> str:
    """A short relative age: 42s, 5m, 3h, 2d."""
    seconds = max(0, int(((now or datetime.now(UTC)) - at).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
