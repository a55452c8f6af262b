"""docs/haloy.schema.json stays in sync with the models, and every example validates."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from haloy.config.app import load_app_config
from haloy.config.schema import app_schema, render_schema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "docs" / "haloy.schema.json"
EXAMPLES = sorted(
    p
    for p in (ROOT / "examples").rglob("haloy.*")
    if p.suffix in (".yaml", ".yml", ".json", ".toml")
)


def parse(path: Path) -> Any:
    text = path.read_text()
    if path.suffix == ".json":
        return json.loads(text)
    if path.suffix == ".toml":
        return tomllib.loads(text)
    return yaml.safe_load(text)


def test_committed_schema_is_in_sync() -> None:
    assert SCHEMA_FILE.read_text() == render_schema(), (
        "regenerate with: python -m haloy.config.schema > docs/haloy.schema.json"
    )


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(app_schema())


def test_there_are_examples_in_every_format() -> None:
    assert {p.suffix for p in EXAMPLES} >= {".yaml", ".json", ".toml"}
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_example_validates_against_schema_and_loader(path: Path) -> None:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    errors = [e.message for e in validator.iter_errors(parse(path))]
    assert errors == []
    assert load_app_config(path).targets


@pytest.mark.parametrize(
    "document",
    [
        {"name": "a", "server": "s", "image": "x", "unknown": 1},
        {"name": "a", "server": "s", "image": {"repositry": "x"}},
        {"name": "a", "port": 1.5},
        {"name": "a", "deployment_strategy": "blue-green"},
    ],
)
def test_schema_rejects_what_the_loader_rejects(document: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(app_schema())
    assert not validator.is_valid(document)


def test_schema_accepts_haloy_shorthands() -> None:
    validator = jsonschema.Draft202012Validator(app_schema())
    document = {
        "name": "a", "server": "s", "image": "nginx:1.25", "port": "8080",
        "domains": ["a.example.com"], "api_token": "literal",
        "env": [{"name": "N", "value": 5432}, {"name": "B", "value": True}],
    }
    assert [e.message for e in validator.iter_errors(document)] == []
