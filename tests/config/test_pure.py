"""Table-driven tests of the pure pieces: durations, domains, volumes, interpolation."""

from __future__ import annotations

from datetime import timedelta

import pytest

from haloy.config.app_models import volume_problem
from haloy.config.domains import domain_problem
from haloy.config.durations import format_duration, parse_duration
from haloy.config.interpolate import InterpolationError, expand, reference_errors, references


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("15s", 15), ("500ms", 0.5), ("1m30s", 90), ("2h", 7200), ("1.5s", 1.5),
        (3, 3), (0.25, 0.25), ("10", 10), (" 5s ", 5), (timedelta(seconds=4), 4),
    ],
)
def test_durations_parse(raw: object, seconds: float) -> None:
    assert parse_duration(raw).total_seconds() == seconds


@pytest.mark.parametrize("raw", ["soon", "15 s", "-1s", -1, True, "1d", "", None, [1]])
def test_bad_durations_are_rejected(raw: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(raw)


@pytest.mark.parametrize(
    ("seconds", "text"), [(15, "15s"), (0.5, "500ms"), (120, "2m"), (90, "90s"), (0, "0s")]
)
def test_durations_format(seconds: float, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text


@pytest.mark.parametrize(
    ("domain", "fragment"),
    [
        ("example.com", None),
        ("a-b.example.co.uk", None),
        ("xn--bcher-kva.example", None),
        ("Example.COM.", None),
        ("*.example.com", "wildcard"),
        ("https://example.com", "is a URL"),
        ("example.com/path", "contains a path"),
        ("example.com:8080", "contains a port"),
        ("localhost", "not a fully qualified"),
        ("-bad.example.com", "label '-bad'"),
        ("bad-.example.com", "label 'bad-'"),
        ("under_score.example.com", "label 'under_score'"),
        ("a..b.com", "label ''"),
        ("10.0.0.1", "IP address"),
        ("a" * 64 + ".com", "label"),
        ("", "must not be empty"),
    ],
)
def test_domain_syntax(domain: str, fragment: str | None) -> None:
    problem = domain_problem(domain)
    if fragment is None:
        assert problem is None
    else:
        assert problem is not None and fragment in problem


def test_wildcards_where_allowed() -> None:
    assert domain_problem("*.example.com", allow_wildcard=True) is None


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("data:/var/lib/data", None),
        ("/srv/data:/data:ro", None),
        ("data:/data:rw", None),
        ("./data:/data", "volume name or an absolute path"),
        ("sub/data:/data", "volume name or an absolute path"),
        ("data:relative", "absolute container path"),
        ("data", "expected"),
        ("a:/b:ro:extra", "expected"),
        (":/data", "empty source"),
        ("data:/data:RO!", "invalid volume options"),
    ],
)
def test_volume_syntax(spec: str, fragment: str | None) -> None:
    problem = volume_problem(spec)
    if fragment is None:
        assert problem is None
    else:
        assert problem is not None and fragment in problem


@pytest.mark.parametrize(
    ("template", "refs"),
    [("${A}", ["A"]), ("x${A}y${B_2}", ["A", "B_2"]), ("$${A}", []), ("$A", []), ("", [])],
)
def test_references(template: str, refs: list[str]) -> None:
    assert references(template) == refs


@pytest.mark.parametrize(
    ("templates", "plain", "expected"),
    [
        ({"A": "a", "B": "${A}-b"}, {}, {"A": "a", "B": "a-b"}),
        ({"C": "${B}!", "B": "${A}${A}", "A": "x"}, {}, {"C": "xx!", "B": "xx", "A": "x"}),
        ({"S": None, "U": "u:${S}"}, {"S": "$ecret${X}"}, {"S": "$ecret${X}", "U": "u:$ecret${X}"}),
        ({"P": "cost $$5 and $${A}"}, {}, {"P": "cost $5 and ${A}"}),
    ],
)
def test_expand(
    templates: dict[str, str | None], plain: dict[str, str], expected: dict[str, str]
) -> None:
    assert expand(templates, plain) == expected


@pytest.mark.parametrize(
    ("templates", "messages"),
    [
        ({"A": "${A}"}, ["interpolation cycle: A -> A"]),
        ({"A": "${B}", "B": "${A}"}, ["interpolation cycle: A -> B -> A"]),
        ({"A": "${B}", "B": "${C}", "C": "${A}"}, ["interpolation cycle: A -> B -> C -> A"]),
        ({"A": "${NOPE}"}, ["env 'A' refers to ${NOPE}, which is not an env entry"]),
        ({"A": "${B}", "B": "ok"}, []),
    ],
)
def test_reference_errors(templates: dict[str, str | None], messages: list[str]) -> None:
    assert [str(e) for e in reference_errors(templates, set(templates))] == messages


def test_expand_refuses_cycles() -> None:
    with pytest.raises(InterpolationError, match="cycle"):
        expand({"A": "${B}", "B": "${A}"}, {})
