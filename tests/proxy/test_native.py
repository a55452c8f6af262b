"""Which build of the proxy's hot path imports (native.py): compiled only when it matches the
sources; a stale or unwanted build falls back to the `.py` files, which behave the same."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import haloy.proxy
from haloy.proxy import native

PACKAGE_DIR = Path(haloy.proxy.__file__).parent
SUFFIX = native.EXTENSION_SUFFIXES[0]


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A copy of the compiled modules' sources, without any build."""
    for name in native.MODULES:
        shutil.copy(PACKAGE_DIR / f"{name}.py", tmp_path / f"{name}.py")
    return tmp_path


def _build(package: Path) -> None:
    for name in native.MODULES:
        (package / f"{name}{SUFFIX}").write_bytes(b"")  # only its presence is looked at
    (package / native.DIGEST_FILE).write_text(native.sources_digest(str(package)) + "\n")


def test_no_build_is_pure(package: Path) -> None:
    assert native.inspect(str(package))[0] == "pure"


def test_matching_build_is_compiled(package: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(native.PURE_ENV, raising=False)
    _build(package)
    assert native.inspect(str(package)) == ("compiled", "mypyc")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("edit", "the sources changed"),
        ("lose a module", "lacks client"),
        ("lose the digest", "no _native.digest"),
    ],
)
def test_stale_build_is_not_used(
    package: Path, monkeypatch: pytest.MonkeyPatch, change: str, reason: str
) -> None:
    monkeypatch.delenv(native.PURE_ENV, raising=False)
    _build(package)
    if change == "edit":
        with (package / "upstream.py").open("a") as f:
            f.write("# edited after the build\n")
    elif change == "lose a module":
        (package / f"client{SUFFIX}").unlink()
    else:
        (package / native.DIGEST_FILE).unlink()
    mode, why = native.inspect(str(package))
    assert mode == "stale" and reason in why


def test_a_build_that_does_not_load_falls_back(
    package: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build for another Python or C library fails to import: the sources run instead."""
    monkeypatch.delenv(native.PURE_ENV, raising=False)
    _build(package)
    monkeypatch.setattr(native, "SHARED_LIBRARY", "haloy_no_such_library__mypyc")
    before = list(sys.meta_path)
    try:
        mode, why = native.select(str(package))
    finally:
        sys.meta_path[:] = before  # the finder it adds points at the copy
    assert mode == "stale" and "does not load" in why


def test_env_forces_pure(package: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _build(package)
    monkeypatch.setenv(native.PURE_ENV, "1")
    assert native.inspect(str(package))[0] == "pure"


def _imported(env: dict[str, str]) -> list[str]:
    code = (
        "import haloy.proxy as p, haloy.proxy.client as c, haloy.proxy.service as s\n"
        "print(p.NATIVE[0]); print(c.__file__); print(s.__file__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def test_pure_env_imports_the_sources() -> None:
    mode, client, service = _imported({**os.environ, native.PURE_ENV: "1"})
    assert mode == "pure"
    assert client.endswith("client.py") and service.endswith("service.py")


def test_the_test_run_uses_the_build_it_asked_for() -> None:
    """CI (HALOY_REQUIRE_PEERS) runs on the compiled build, except in its pure-Python pass."""
    env = {k: v for k, v in os.environ.items() if k != native.PURE_ENV}
    mode, client, _ = _imported(env)
    if os.environ.get("HALOY_REQUIRE_PEERS") and not os.environ.get(native.PURE_ENV):
        assert mode == "compiled", "scripts/test installs the compiled build (setup.py)"
    if mode == "compiled":
        assert client.endswith(SUFFIX)
    assert haloy.proxy.NATIVE[0] == ("pure" if os.environ.get(native.PURE_ENV) else mode)
