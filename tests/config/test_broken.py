"""The broken-config corpus: each file in broken/ fails `haloy validate-config` clearly.

Every case must exit 2 and print `file:line: field: message` with the expected fragment and no
traceback, both through click's CliRunner and through the installed `haloy` console script.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

import haloy.cli.cmd_config  # noqa: F401  (attaches validate-config to the group)
from haloy.cli.main import cli
from haloy.console import render_error
from haloy.errors import HaloyError

BROKEN = Path(__file__).parent / "broken"
HALOY = Path(sys.executable).parent / "haloy"
RESOLVE = ("--show-resolved-config",)


@dataclass(frozen=True)
class Case:
    file: str
    line: int
    field: str
    fragment: str
    args: tuple[str, ...] = ()
    problems: int = 1


CASES = [
    # syntax errors, one per format
    Case("syntax_yaml_unclosed.yaml", 6, "syntax", "expected ',' or ']'"),
    Case("syntax_yaml_tab.yaml", 4, "syntax", "'\\t' that cannot start any token"),
    Case("syntax_json_trailing_comma.json", 5, "syntax", "Expecting property name"),
    Case("syntax_toml.toml", 4, "syntax", "Invalid value"),
    Case("duplicate_key.yaml", 5, "name", "duplicate key"),
    # unknown keys at several depths, with suggestions
    Case("unknown_root_key.yaml", 4, "domians", "did you mean 'domains'?"),
    Case("unknown_image_key.yaml", 5, "image.pul_policy", "did you mean 'pull_policy'?"),
    Case("unknown_target_key.yaml", 7, "targets.prod.replica", "did you mean 'replicas'?"),
    Case("unknown_deep_key.yaml", 7, "image.build_config.dockerfil", "did you mean 'dockerfile'?"),
    Case("unknown_env_key.yaml", 6, "env.0.valeu", "did you mean 'value'?"),
    Case("unknown_json_key.json", 7, "image.histroy", "did you mean 'history'?"),
    Case("unknown_toml_key.toml", 7, "targets.prod.portt", "did you mean 'port'?"),
    # key spelling of the other format
    Case("camel_in_yaml.yaml", 4, "healthCheckPath", "write 'health_check_path'"),
    Case("snake_in_json.json", 5, "health_check_path", "write 'healthCheckPath'"),
    # wrong types
    Case("wrong_type_port.yaml", 4, "port", "valid integer"),
    Case("wrong_type_replicas.yaml", 4, "replicas", "valid integer"),
    Case("wrong_type_domains.yaml", 4, "domains", "valid list"),
    Case("wrong_type_json.json", 5, "protected", "valid boolean"),
    Case("wrong_type_toml.toml", 4, "replicas", "valid integer"),
    Case("bad_pull_policy.yaml", 5, "image.pull_policy", "'always', 'if_missing' or 'never'"),
    Case("bad_strategy.yaml", 4, "deployment_strategy", "'rolling' or 'replace'"),
    # values out of range or malformed
    Case("port_out_of_range.yaml", 4, "port", "less than or equal to 65535"),
    Case("bad_app_name.yaml", 1, "name", "invalid app name 'my app!'"),
    Case("health_path_relative.yaml", 4, "health_check_path", "must start with '/'"),
    Case("volume_relative.yaml", 6, "volumes.1", "must be a volume name or an absolute path"),
    # bad domains
    Case("bad_domain_wildcard.yaml", 5, "domains.0.domain", "wildcard domain '*.example.com'"),
    Case("bad_domain_alias.yaml", 8, "domains.0.aliases.1", "label 'bad_alias'"),
    Case("bad_domain_url.yaml", 5, "domains.0.domain", "is a URL"),
    Case("duplicate_domain_targets.yaml", 10, "targets.green.domains.1",
         "domain 'app.example.com' is already used by target 'blue'"),
    # conflicting strategies
    Case("static_with_rolling.yaml", 4, "naming_strategy",
         "requires deployment_strategy 'replace'"),
    Case("static_with_replicas.yaml", 6, "replicas", "at most 1 replica"),
    # values and references
    Case("value_and_from.yaml", 5, "env.0", "give exactly one of 'value' or 'from'"),
    Case("interpolation_cycle.yaml", 6, "env.0.value", "interpolation cycle: A -> B -> A"),
    Case("interpolation_unknown.yaml", 6, "env.0.value", "refers to ${DB_HOST}"),
    Case("unknown_secret_source.yaml", 10, "env.0.from.secret",
         "secret source 'staging' is not defined under secret_providers.onepassword"),
    Case("image_key_unknown.yaml", 5, "image_key", "unknown image_key 'wbe' (images: web)"),
    Case("missing_env_var.yaml", 9, "env.1.from.env",
         "environment variable 'HALOY_TEST_SURELY_UNSET_VAR' is not set", RESOLVE),
    Case("empty_config.yaml", 1, "server", "'server' is required", problems=3),
]


def test_every_corpus_file_has_a_case() -> None:
    assert sorted(c.file for c in CASES) == sorted(p.name for p in BROKEN.iterdir())
    assert len(CASES) >= 25


def _environ(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HALOY_")}
    env["HALOY_CLIENT_CONFIG_DIR"] = str(tmp_path)  # no user .env files leak in
    return env


def _check(case: Case, code: int, output: str) -> None:
    path = BROKEN / case.file
    assert code == 2, output
    assert "Traceback" not in output
    assert f"{path}:{case.line}: {case.field}: " in output, output
    assert case.fragment in output, output
    assert output.count(f"  {path}:") == case.problems, output
    assert "hint:" in output


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.file)
def test_corpus_through_click(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("HALOY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HALOY_CLIENT_CONFIG_DIR", str(tmp_path))
    result = CliRunner().invoke(cli, ["validate-config", "-c", str(BROKEN / case.file), *case.args])
    # run_cli is the error boundary of the real entry point; render the same way here.
    assert isinstance(result.exception, HaloyError), result.output
    buffer = io.StringIO()
    code = render_error(result.exception, Console(file=buffer, width=400, highlight=False))
    _check(case, code, result.output + buffer.getvalue())


def test_corpus_through_the_console_script(tmp_path: Path) -> None:
    env = _environ(tmp_path)

    def run(case: Case) -> tuple[Case, subprocess.CompletedProcess[str]]:
        argv = [str(HALOY), "validate-config", "-c", str(BROKEN / case.file), *case.args]
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
        return case, proc

    # Every case runs in-process above; a sample (each format, several depths) proves the real
    # console script renders the same errors, without paying interpreter start-up 38 times.
    sample = CASES[::5]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, sample))
    for case, proc in results:
        _check(case, proc.returncode, proc.stdout + proc.stderr)
