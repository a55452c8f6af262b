"""runtime/ alone talks to dockerd: nothing else in src/haloy imports aiodocker."""

from __future__ import annotations

import ast
from pathlib import Path

import haloy

SRC = Path(haloy.__file__).parent


def imported_modules(tree: ast.AST) -> set[str]:
    """Every module an `import` or `from ... import` statement names (absolute ones)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def test_only_runtime_imports_aiodocker() -> None:
    offenders = sorted(
        str(path.relative_to(SRC.parent))
        for path in SRC.rglob("*.py")
        if SRC / "runtime" not in path.parents
        and any(m == "aiodocker" or m.startswith("aiodocker.")
                for m in imported_modules(ast.parse(path.read_text(), str(path))))
    )
    assert offenders == []


def test_the_scan_sees_an_aiodocker_import() -> None:
    tree = ast.parse("import os\nfrom aiodocker.stream import Stream\n")
    assert "aiodocker.stream" in imported_modules(tree)
