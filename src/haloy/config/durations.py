"""Durations in config files: Go-style strings ("15s", "500ms", "1m30s") or plain seconds."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h))+")


def parse_duration(value: Any) -> timedelta:
    """A non-negative duration from "15s" / "500ms" / "1m30s", a number of seconds, or timedelta."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError("expected a duration like 15s or 500ms, got a boolean")
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if _WHOLE.fullmatch(text):
            seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text))
        else:
            try:
                seconds = float(text)
            except ValueError:
                raise ValueError(
                    f"invalid duration {value!r}; use e.g. 15s, 500ms or 1m30s"
                ) from None
    else:
        raise ValueError(f"expected a duration like 15s or 500ms, got {type(value).__name__}")
    if seconds < 0:
        raise ValueError(f"duration must not be negative, got {value!r}")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest config spelling of a duration: 15s, 500ms, 2m, 1.5s."""
    seconds = value.total_seconds()
    if seconds and seconds < 1:
        return f"{seconds * 1000:g}ms"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^(\d+(\.\d+)?(ms|s|m|h))+$"},
                {"type": "number", "minimum": 0},
            ],
            "description": 'A duration: "15s", "500ms", "1m30s", or a number of seconds.',
        }
    ),
]
