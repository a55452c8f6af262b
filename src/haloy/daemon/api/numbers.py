"""Whole numbers in query strings and headers: ASCII digits only.

`str.isdigit()` also accepts superscripts and other scripts' digits ("²", "١"), some of which
`int()` then refuses: a request could turn a 400 into a 500. Only 0-9 count here.
"""

from __future__ import annotations

import re

_DIGITS = re.compile(r"[0-9]{1,18}")  # 18 digits: far beyond any limit, cheap to convert


def whole_number(raw: str | None) -> int | None:
    """`raw` as a non-negative int when it is plain ASCII digits, else None."""
    if raw is None or not _DIGITS.fullmatch(raw):
        return None
    return int(raw)
