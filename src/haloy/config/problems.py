"""Validation problems as `file:line: field.path: message` lines, all of a file at once.

Pydantic reports locations as field names; this module maps each location back to the key
as written in the document (snake_case in YAML/TOML, camelCase in JSON), finds its line and,
for an unknown key, suggests the closest allowed one.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo

from haloy.config.source import Document, Loc
from haloy.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

_PREFIXES = ("Value error, ", "Assertion failed, ")
_MAPPING_ERRORS = ("model_type", "model_attributes_type", "dict_type")
_KIND = {type(None): "nothing (null)", str: "a string", int: "a number", float: "a number",
         bool: "a boolean", list: "a list"}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document, located by field-name path."""

    loc: Loc
    message: str
    unknown_key: bool = False
    as_written: bool = False  # the last part of `loc` is the key exactly as the file spells it


def key_style(doc: Document) -> str:
    """How keys are spelt in this document: "camel" for JSON, "snake" otherwise."""
    return "camel" if doc.format == "json" else "snake"


def written_loc(doc: Document, loc: Loc) -> Loc:
    """`loc` with each field name replaced by the key the document actually uses."""
    node: Any = doc.data
    out: list[str | int] = []
    for part in loc:
        key: str | int = part
        if isinstance(part, str) and isinstance(node, dict):
            # The spelling the document uses: its own style first, then any that is present.
            styled = to_camel(part) if key_style(doc) == "camel" else part
            spellings = (styled, part, to_camel(part), part.rstrip("_"))
            key = next((s for s in spellings if s in node), styled)
        out.append(key)
        if isinstance(node, dict):
            node = node.get(key)
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
        else:
            node = None
    return tuple(out)


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated and Optional/Union-with-None down to the interesting type."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            parts = [a for a in get_args(annotation) if a is not type(None)]
            structured = [a for a in parts if _is_structured(a)]
            annotation = (structured or parts)[0]
        else:
            return annotation


def _is_structured(annotation: Any) -> bool:
    inner = _unwrap(annotation)
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        return True
    return get_origin(inner) in (list, dict, tuple)


def model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class that validates the mapping at `loc`, if the path leads to one."""
    current: Any = root
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        elif get_origin(current) in (list, tuple):
            current = get_args(current)[0]
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return None
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def allowed_keys(root: type[BaseModel], loc: Loc, style: str) -> list[str]:
    """The keys accepted at `loc`, spelt in the document's style."""
    model = model_at(root, loc)
    if model is None:
        return []
    names = list(model.model_fields)
    return [to_camel(n) for n in names] if style == "camel" else names


def suggestion(key: str, choices: Sequence[str]) -> str:
    """A "did you mean" phrase for an unknown key, or an empty string."""
    close = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower().replace("_", ""): c for c in choices}
        hit = lowered.get(key.lower().replace("_", "").replace("-", ""))
        close = [hit] if hit else []
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; expected one of: {', '.join(choices)}" if choices else ""


def from_validation_error(exc: ValidationError) -> list[Problem]:
    """Pydantic errors as Problems (field-name locations, cleaned messages)."""
    problems: list[Problem] = []
    seen: set[Loc] = set()
    for err in exc.errors(include_url=False):
        loc: Loc = tuple(err["loc"])
        if loc in seen:
            continue  # one message per field; unions would otherwise repeat it
        seen.add(loc)
        message = str(err["msg"])
        for prefix in _PREFIXES:
            message = message.removeprefix(prefix)
        if err["type"] == "extra_forbidden":
            problems.append(Problem(loc, "unknown key", unknown_key=True))
        elif err["type"] == "missing":
            problems.append(Problem(loc, "required field is missing"))
        elif err["type"] in _MAPPING_ERRORS:
            got = _KIND.get(type(err["input"]), type(err["input"]).__name__)
            problems.append(Problem(loc, f"expected a mapping (key: value), got {got}"))
        else:
            problems.append(Problem(loc, message))
    return problems


def render(doc: Document, root: type[BaseModel], problems: Iterable[Problem]) -> list[str]:
    """Problem lines `file:line: field.path: message`, sorted by line."""
    rows: list[tuple[int, str]] = []
    for problem in problems:
        if problem.as_written and problem.loc:
            loc = (*written_loc(doc, problem.loc[:-1]), problem.loc[-1])
        else:
            loc = written_loc(doc, problem.loc)
        line = doc.line_of(loc)
        dotted = ".".join(str(p) for p in loc) or "(root)"
        message = problem.message
        if problem.unknown_key and loc:
            choices = allowed_keys(root, problem.loc[:-1], key_style(doc))
            message += suggestion(str(loc[-1]), choices)
        rows.append((line, f"{doc.path}:{line}: {dotted}: {message}"))
    rows.sort(key=lambda row: row[0])
    # A root field inherited by several targets fails once per target: say it once.
    return list(dict.fromkeys(text for _, text in rows))


DEFAULT_HINT = "fix the fields named above; `haloy validate-config` checks a file without deploying"


def config_error(
    doc: Document, root: type[BaseModel], problems: Sequence[Problem], hint: str = DEFAULT_HINT
) -> ConfigError:
    """One ConfigError carrying every problem of a document."""
    lines = render(doc, root, problems)
    count = len(lines)
    noun = "problem" if count == 1 else "problems"
    return ConfigError(
        f"{doc.path}: {count} {noun} in configuration",
        hint=hint,
        problems=tuple(lines),
    )


def spelling(name: str, info: FieldInfo, style: str) -> str:
    """How a field is spelt in a document of `style`; an explicit alias wins in both."""
    if info.alias and info.alias_priority == 2:
        return info.alias
    return to_camel(name) if style == "camel" else name


def style_problems(model: type[BaseModel], data: Any, style: str, loc: Loc = ()) -> list[Problem]:
    """Keys spelt in the other format's style (camelCase in YAML/TOML, snake_case in JSON)."""
    problems: list[Problem] = []
    if not isinstance(data, dict):
        return problems
    fields = model.model_fields
    by_spelling: dict[str, str] = {}
    for name, info in fields.items():
        by_spelling[name] = name
        by_spelling[to_camel(name)] = name
        if info.alias:
            by_spelling[info.alias] = name
    for key, value in data.items():
        found = by_spelling.get(key) if isinstance(key, str) else None
        if found is None:
            continue  # unknown keys are pydantic's to report
        name = found
        expected = spelling(name, fields[name], style)
        if key != expected:
            kind = "camelCase keys in JSON" if style == "camel" else "snake_case keys"
            problems.append(Problem((*loc, key), f"write {expected!r} ({kind})", as_written=True))
        problems.extend(_style_in(fields[name].annotation, value, style, (*loc, name)))
    return problems


def _style_in(annotation: Any, value: Any, style: str, loc: Loc) -> list[Problem]:
    inner = _unwrap(annotation)
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        return style_problems(inner, value, style, loc)
    origin = get_origin(inner)
    out: list[Problem] = []
    if origin in (list, tuple) and isinstance(value, list):
        for i, item in enumerate(value):
            out.extend(_style_in(get_args(inner)[0], item, style, (*loc, i)))
    elif origin is dict and isinstance(value, dict):
        for key, item in value.items():
            out.extend(_style_in(get_args(inner)[1], item, style, (*loc, key)))
    return out


def validate_document(model: type[M], doc: Document, hint: str = DEFAULT_HINT) -> M:
    """Validate a document's data against `model`, raising one ConfigError with every problem.

    Both spellings validate (so one wrong key yields one clear message, not "unknown key"),
    then keys in the other format's style are reported as problems too.
    """
    data = {} if doc.data is None else doc.data
    problems = style_problems(model, data, key_style(doc))
    try:
        result = model.model_validate(data, by_alias=True, by_name=True)
    except ValidationError as exc:
        problems.extend(from_validation_error(exc))
    if problems:
        raise config_error(doc, model, problems, hint)
    return result
