"""`${NAME}` interpolation between env entries, with cycle detection (pure).

Only literal values are templates: a value fetched from the environment or a secret store is
used verbatim, because secrets may legitimately contain `$`. `$${` writes a literal `${`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class InterpolationError(ValueError):
    """A reference to an unknown entry, or a cycle; `name` is the entry at fault."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def references(template: str) -> list[str]:
    """The names a template refers to, in order of appearance."""
    return [m[1] for m in _REF.finditer(template) if m[1]]


def reference_errors(
    templates: Mapping[str, str | None], known: set[str]
) -> list[InterpolationError]:
    """Every unknown reference and every cycle among `templates` (entry name -> literal or None).

    `known` is every entry name.
    """
    errors: list[InterpolationError] = []
    for name, template in templates.items():
        for ref in references(template or ""):
            if ref not in known:
                errors.append(InterpolationError(
                    name, f"env {name!r} refers to ${{{ref}}}, which is not an env entry"
                ))
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = [*path[path.index(name):], name]
            errors.append(InterpolationError(name, "interpolation cycle: " + " -> ".join(cycle)))
            return
        state[name] = 1
        for ref in references(templates.get(name) or ""):
            if ref in templates:
                visit(ref, [*path, name])
        state[name] = 2

    for name in templates:
        visit(name, [])
    return errors


def check_references(templates: Mapping[str, str | None], known: set[str]) -> None:
    """Raise the first InterpolationError `reference_errors` finds."""
    errors = reference_errors(templates, known)
    if errors:
        raise errors[0]


def expand(templates: Mapping[str, str | None], plain: Mapping[str, str]) -> dict[str, str]:
    """Every entry's final value: literal templates expanded, sourced values (`plain`) as is."""
    check_references(templates, set(templates))
    done: dict[str, str] = dict(plain)

    def value_of(name: str) -> str:
        if name not in done:
            template = templates[name] or ""
            done[name] = _REF.sub(
                lambda m: value_of(m[1]) if m[1] else "$", template
            )
        return done[name]

    return {name: value_of(name) for name in templates}
