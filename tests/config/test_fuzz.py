"""haloy.yaml fuzzed with hypothesis: any input is a valid config or a clean ConfigError.

Random documents built from the real field names (so validation goes deep, not just "unknown
key") with random values, in YAML and JSON, and random byte-level damage to a valid file.
Every outcome must be an AppConfig or a ConfigError whose every problem reads
`<file>:<line>: <field>: <message>` with a line inside the file; any other exception fails.
`HALOY_CHAOS=long` (bench/chaos) runs ten times the examples.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from haloy.config.app import load_app_config
from haloy.config.app_models import AppFile, Domain, ImageSpec, TargetSpec
from haloy.errors import ConfigError
from tests.e2e.scale import size

EXAMPLES = int(size(150, 1500))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])

VALID = """\
name: web
server: haloy.example.com
image:
  repository: ghcr.io/acme/web
  tag: v1
env:
  - name: MODE
    value: prod
port: 8080
replicas: 2
health_check_path: /health
targets:
  prod:
    server: prod.example.com
    domains:
      - domain: web.example.com
        aliases: [www.web.example.com]
  staging:
    replicas: 1
    domains: [staging.example.com]
"""

KEYS = sorted({*AppFile.model_fields, *TargetSpec.model_fields, *ImageSpec.model_fields,
               *Domain.model_fields, "value", "from", "secret", "aliases", "dockerfile",
               "context", "args", "count", "healthCheckPath", "imageKey"})
# Text that reaches the interesting parsers: hosts, URLs, durations, interpolation, paths.
WORDS = st.sampled_from([
    "", " ", "web", "web.example.com", "https://x.example.com/", "*.example.com", "8080",
    "-1", "0", "1e9", "10s", "1m30x", "${HOME}", "${NOPE}", "${A:-b}", "$${x}", "/data:/x",
    "rel:/x", "/health", "health", "rolling", "replace", "static", "dynamic", "always",
    "never", "missing", "op://vault/item/field", "sops:secrets.yaml#key", "null", "~", "yes",
    "\u00e9\u00e8", "a" * 300, "\x00", "\t", "a\nb",
])
SCALARS = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | WORDS | st.text(max_size=20))
KEY = st.sampled_from(KEYS) | st.text(min_size=1, max_size=12)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEY, inner, max_size=5),
    max_leaves=25,
)
DOCS = st.dictionaries(KEY, VALUES, max_size=12)
BASE: dict[str, Any] = yaml.safe_load(VALID)
PROBLEM = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<field>.+?): (?P<message>.+)$", re.S)


def _check(path: Path, text: str) -> None:
    """Load `path`: an AppConfig, or a ConfigError naming file:line:field for every problem."""
    try:
        load_app_config(path)
    except ConfigError as exc:
        assert exc.problems, f"ConfigError without problems: {exc.message}"
        last = text.count("\n") + 2
        for problem in exc.problems:
            m = PROBLEM.match(problem)
            assert m, f"not file:line: field: message: {problem!r}"
            assert m["file"] == str(path), problem
            assert 1 <= int(m["line"]) <= last, (problem, last)
            assert m["message"].strip(), problem  # the field is the key as written, even "\\r"


def _write_and_check(name: str, text: str) -> None:
    with tempfile.TemporaryDirectory(prefix="haloy-fuzz-") as tmp:
        path = Path(tmp) / name
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        _check(path, text)


def test_the_base_document_is_valid() -> None:
    with tempfile.TemporaryDirectory(prefix="haloy-fuzz-") as tmp:
        path = Path(tmp) / "haloy.yaml"
        path.write_text(VALID)
        assert load_app_config(path).targets


@FUZZ
@given(DOCS)
def test_random_documents_yaml(doc: dict[str, Any]) -> None:
    _write_and_check("haloy.yaml", yaml.safe_dump(doc, allow_unicode=True))


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6), st.booleans())
def test_valid_document_with_random_fields_yaml_and_json(
    changes: dict[str, Any], as_json: bool
) -> None:
    doc = {**BASE, **changes}
    if as_json:
        text = json.dumps(doc, default=str)
        _write_and_check("haloy.json", text)
    else:
        _write_and_check("haloy.yaml", yaml.safe_dump(doc, allow_unicode=True))


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(VALID)), st.integers(0, 3),
                          st.sampled_from([*":-[]{}\t\n '\"&*!|>%@`#,?$\\", "  ", "\n  "])),
                min_size=1, max_size=6))
def test_damaged_valid_yaml(edits: list[tuple[int, int, str]]) -> None:
    text = VALID
    for at, drop, insert in edits:
        at = min(at, len(text))
        text = text[:at] + insert + text[at + drop:]
    _write_and_check("haloy.yaml", text)


def test_json_infinity_and_nan_are_located_not_crashed() -> None:
    # Found by the fuzz: json.loads takes these, and the line finder used to crash on them.
    with tempfile.TemporaryDirectory(prefix="haloy-fuzz-") as tmp:
        path = Path(tmp) / "haloy.json"
        path.write_text(json.dumps({**BASE, "replicas": float("inf"), "port": float("nan")},
                                   indent=1))
        try:
            load_app_config(path)
        except ConfigError as exc:
            fields = {p.split(": ")[1] for p in exc.problems}
            assert {"port", "replicas"} <= fields, exc.problems
        else:
            raise AssertionError("replicas: Infinity was accepted")
