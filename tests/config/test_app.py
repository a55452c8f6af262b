"""haloy.yaml: merging targets over the root, defaults, formats, rules, and the stored config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from haloy.config.app import (
    AppConfig,
    app_config_from_document,
    find_config_file,
    load_app_config,
)
from haloy.config.app_models import AppFile, ImageSpec
from haloy.config.merge import merge_env, merge_image
from haloy.config.source import parse_text
from haloy.config.values import EnvVar
from haloy.errors import ConfigError

BASE: dict[str, Any] = {"name": "app", "server": "api.example.com", "image": "web:v1"}


def load(data: dict[str, Any], fmt: str = "yaml") -> AppConfig:
    text = json.dumps(data) if fmt == "json" else yaml.safe_dump(data, sort_keys=False)
    return app_config_from_document(parse_text(text, Path(f"haloy.{fmt}"), fmt))  # type: ignore[arg-type]


def problems(data: dict[str, Any], fmt: str = "yaml") -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(data, fmt)
    assert info.value.exit_code == 2
    return [p.split(": ", 1)[1] for p in info.value.problems]


def test_defaults_are_haloys() -> None:
    [t] = load(BASE).targets
    assert (t.name, t.server, t.target) == ("app", "api.example.com", None)
    assert (t.port, t.health_check_path, t.replicas) == (8080, "/", 1)
    assert (t.deployment_strategy, t.naming_strategy, t.protected) == ("rolling", "dynamic", False)
    assert (t.image.repository, t.image.tag, t.image.ref) == ("web", "v1", "web:v1")
    assert (t.image.history.strategy, t.image.history.count) == ("local", 6)
    assert t.image.build is False and t.image.build_config is None


def test_build_defaults() -> None:
    [t] = load({**BASE, "image": {"repository": "web", "build_config": {"context": "app"}}}).targets
    bc = t.image.build_config
    assert t.image.build and bc is not None and t.image.tag == "latest"
    assert (bc.context, bc.dockerfile, bc.platform, bc.push) == (
        "app", "Dockerfile", "linux/amd64", "server")


@pytest.mark.parametrize(
    ("image", "ref"),
    [
        ("nginx", "nginx:latest"),
        ("nginx:1.25", "nginx:1.25"),
        ("localhost:5000/app", "localhost:5000/app:latest"),
        ("localhost:5000/app:v2", "localhost:5000/app:v2"),
        ({"repository": "ghcr.io/a/b", "tag": "v3"}, "ghcr.io/a/b:v3"),
    ],
)
def test_image_refs(image: Any, ref: str) -> None:
    [t] = load({**BASE, "image": image}).targets
    assert t.image.ref == ref


MERGE_ENV_CASES = [
    # root names, target names -> merged (name, origin index) pairs
    (["A", "B"], [], ["A:root", "B:root"]),
    (["A", "B"], ["B"], ["A:root", "B:target"]),
    (["A"], ["C", "A"], ["A:target", "C:target"]),
    ([], ["C"], ["C:target"]),
]


@pytest.mark.parametrize(("root", "over", "expected"), MERGE_ENV_CASES)
def test_env_merges_by_name(root: list[str], over: list[str], expected: list[str]) -> None:
    r = [EnvVar(name=n, value="root") for n in root]
    o = [EnvVar(name=n, value="target") for n in over]
    merged, origins = merge_env(r, ("env",), o, ("targets", "t", "env"))
    assert [f"{e.name}:{e.value}" for e in merged] == expected
    assert all(loc[0] == ("env" if e.value == "root" else "targets")
               for e, loc in zip(merged, origins, strict=True))


@pytest.mark.parametrize(
    ("base", "over", "expected"),
    [
        ({"repository": "a", "tag": "1"}, {"tag": "2"}, {"repository": "a", "tag": "2"}),
        ({"repository": "a"}, {"pull_policy": "never"},
         {"repository": "a", "pull_policy": "never"}),
        (None, {"repository": "b"}, {"repository": "b"}),
        ({"repository": "a"}, None, {"repository": "a"}),
    ],
)
def test_image_merges_field_by_field(
    base: dict[str, Any] | None, over: dict[str, Any] | None, expected: dict[str, Any]
) -> None:
    merged = merge_image(
        ImageSpec.model_validate(base) if base else None,
        ImageSpec.model_validate(over) if over else None,
    )
    assert merged is not None and merged.model_dump(exclude_unset=True) == expected


def test_targets_inherit_and_override() -> None:
    config = load({
        **BASE,
        "replicas": 2,
        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
        "domains": ["root.example.com"],
        "targets": {
            "prod": {"server": "prod.example.com"},
            "staging": {
                "name": "app-staging", "replicas": 1, "image": {"tag": "v2"},
                "env": [{"name": "B", "value": "staging"}], "domains": ["s.example.com"],
            },
        },
    })
    prod, staging = config.targets
    assert (prod.target, prod.name, prod.server, prod.replicas) == (
        "prod", "prod", "prod.example.com", 2)
    assert [d.domain for d in prod.domains] == ["root.example.com"]
    assert (staging.name, staging.server, staging.replicas) == ("app-staging", "api.example.com", 1)
    assert staging.image.ref == "web:v2"
    assert [(e.name, e.value) for e in staging.env] == [("A", "1"), ("B", "staging")]
    assert config.select(("staging",)) == (staging,)
    with pytest.raises(ConfigError, match="unknown target"):
        config.select(("nope",))


def test_shared_images_by_key() -> None:
    [t] = load({
        "name": "app", "server": "s.example.com",
        "images": {"web": {"repository": "web", "tag": "v9"}},
        "targets": {"app": {"image_key": "web"}},
    }).targets
    assert t.image.ref == "web:v9"


def test_database_preset() -> None:
    [t] = load({**BASE, "preset": "database"}).targets
    assert (t.deployment_strategy, t.naming_strategy, t.protected, t.replicas) == (
        "replace", "static", True, 1)
    assert t.image.history.strategy == "none"


def test_json_uses_camel_case_and_matches_yaml() -> None:
    data = {**BASE, "healthCheckPath": "/up", "minReadySeconds": 3,
            "env": [{"name": "A", "value": "1", "buildArg": True}]}
    [j] = load(data, "json").targets
    snake = {**BASE, "health_check_path": "/up", "min_ready_seconds": 3,
             "env": [{"name": "A", "value": "1", "build_arg": True}]}
    [y] = load(snake).targets
    assert j == y and j.env[0].build_arg


@pytest.mark.parametrize(
    ("data", "fmt", "expected"),
    [
        ({**BASE, "healthCheckPath": "/"}, "yaml", "write 'health_check_path' (snake_case keys)"),
        ({**BASE, "health_check_path": "/"}, "json",
         "write 'healthCheckPath' (camelCase keys in JSON)"),
        ({**BASE, "naming_strategy": "static"}, "yaml",
         "naming_strategy 'static' requires deployment_strategy 'replace'"),
        ({**BASE, "naming_strategy": "static", "deployment_strategy": "replace", "replicas": 2},
         "yaml", "naming_strategy 'static' allows at most 1 replica"),
        ({**BASE, "name": "bad name"}, "yaml", "invalid app name 'bad name'"),
        ({**BASE, "port": 0}, "yaml", "greater than or equal to 1"),
        ({**BASE, "port": "http"}, "yaml", "valid integer"),
        ({k: v for k, v in BASE.items() if k != "server"}, "yaml", "'server' is required"),
        ({k: v for k, v in BASE.items() if k != "image"}, "yaml", "'image' (or 'image_key')"),
        ({**BASE, "targets": {"a": {}, "b": {"name": "a"}}}, "yaml", "app name 'a' is used by"),
        ({**BASE, "domains": ["a.example.com"], "targets": {"a": {}, "b": {}}}, "yaml",
         "domain 'a.example.com' is already used by target 'a'"),
        ({**BASE, "domains": [{"domain": "a.example.com", "aliases": ["a.example.com"]}]},
         "yaml", "domain 'a.example.com' is listed twice"),
        ({**BASE, "image": {"tag": "v1"}}, "yaml", "image.repository is required"),
        ({**BASE, "image_key": "nope"}, "yaml", "give either 'image' or 'image_key'"),
        ({**BASE, "env": [{"name": "A", "value": "${A}"}]}, "yaml", "interpolation cycle: A -> A"),
        ({**BASE, "env": [{"name": "A", "from": {"secret": "sops:x:y"}}]}, "yaml",
         "secret source 'x' is not defined under secret_providers.sops"),
        ({**BASE, "env": [{"name": "A", "from": {"secret": "vault:x:y"}}]}, "yaml",
         "unknown secret provider 'vault'"),
        ({**BASE, "env": [{"name": "A"}]}, "yaml", "give exactly one of 'value' or 'from'"),
        ({**BASE, "image": {"repository": "a", "history": {"strategy": "registry"}}}, "yaml",
         "needs an immutable image tag"),
        ({**BASE, "image": {"repository": "a", "build_config": {"push": "registry"}}},
         "yaml", "push 'registry' needs image.registry credentials"),
        ({**BASE, "targets": {}}, "yaml", "targets is empty"),
    ],
)
def test_rules(data: dict[str, Any], fmt: str, expected: str) -> None:
    found = problems(data, fmt)
    assert any(expected in p for p in found), found


def test_every_problem_is_reported_at_once() -> None:
    found = problems({**BASE, "naming_strategy": "static", "replicas": 3,
                      "env": [{"name": "A", "value": "${B}"}, {"name": "B", "value": "${A}"}]})
    assert len(found) == 3, found


def test_stored_config_keeps_references_only() -> None:
    config = load({**BASE, "api_token": {"from": {"env": "TOKEN"}},
                   "env": [{"name": "P", "from": {"secret": "onepassword:prod:pw"}}],
                   "secret_providers": {"onepassword": {"prod": {"vault": "v", "item": "i"}}}})
    stored = config.stored()
    assert stored["api_token"] == {"from": {"env": "TOKEN"}}
    assert stored["env"] == [{"name": "P", "from": {"secret": "onepassword:prod:pw"}}]
    assert AppFile.model_validate(stored) == config.file


def test_find_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no haloy config"):
        find_config_file(tmp_path)
    (tmp_path / "haloy.toml").write_text('name = "a"\n')
    assert find_config_file(tmp_path) == tmp_path / "haloy.toml"
    (tmp_path / "haloy.yml").write_text("name: a\n")
    with pytest.raises(ConfigError, match="several haloy configs"):
        find_config_file(tmp_path)
    assert find_config_file(tmp_path / "haloy.yml") == tmp_path / "haloy.yml"
    with pytest.raises(ConfigError, match="no such file"):
        find_config_file(tmp_path / "absent")


def test_load_app_config_from_a_directory(tmp_path: Path) -> None:
    (tmp_path / "haloy.yaml").write_text(yaml.safe_dump(BASE))
    assert load_app_config(tmp_path).targets[0].name == "app"


KEYS = ["name", "server", "image", "image_key", "images", "targets", "env", "domains", "port",
        "replicas", "repository", "tag", "value", "from", "secret", "volumes", "aliases",
        "domain", "naming_strategy", "static", "history", "build_config", "secret_providers",
        "sops", "onepassword", "prod", "A", "healthCheckPath", "<<"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 70000), st.sampled_from(KEYS),
    st.sampled_from(["web:v1", "a.example.com", "${A}", "/x:/y", "sops:prod:k", "static"]),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(documents)
def test_any_document_loads_or_fails_with_a_config_error(data: Any) -> None:
    for fmt in ("yaml", "json"):
        text = json.dumps(data) if fmt == "json" else yaml.safe_dump(data)
        try:
            app_config_from_document(parse_text(text, Path(f"h.{fmt}"), fmt))
        except ConfigError as err:
            assert err.problems
            assert all(p.startswith(f"h.{fmt}:") for p in err.problems)
