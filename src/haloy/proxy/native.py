"""The proxy's hot path compiled with mypyc, or its Python sources when that build is unusable.

The modules below are plain, type-checked Python; `setup.py` also compiles them with mypyc (the
mypy project's compiler for annotated Python) when a C compiler is present, which halves the
interpreter's share of a proxied request (docs/proxy.md, "Compiled hot path"). The sources stay
the truth: a build records their digest, and if any of them changed since (an edit in a
checkout), or `HALOY_PROXY_PURE=1` is set, the package imports the `.py` files instead of the
stale extension modules. Nothing here may import the rest of haloy: setup.py loads this file.

Rules for the compiled modules (tests run them both ways, `scripts/test`): no weak references
to their objects (a compiled class does not clear them when an object is freed: a WeakSet of
protocols crashed the process), no wrapping or replacing their methods at run time, and
class-level attribute defaults only as literals (others are set in `__init__`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from types import ModuleType

PACKAGE = "haloy.proxy"
# Compiled together (one shared library), so calls and attribute reads between them are C.
# Only what runs per request, per read or per connection: `limits` is here because its fields
# are read several times per request; error pages, redirects (pages.py) and hold (hold.py)
# are off the per-request path and stay Python (docs/benchmarks.md measures both choices).
MODULES = (
    "chunked",
    "client",
    "connection",
    "exchange",
    "forward",
    "head_watch",
    "limits",
    "routes",
    "service",
    "tls_conn",
    "upstream",
    "wsframes",
)
DIGEST_FILE = "_native.digest"
# The one extension the modules above are compiled into (setup.py's group); each module's own
# extension is a small shim that imports it.
SHARED_LIBRARY = "haloy_proxy__mypyc"
PURE_ENV = "HALOY_PROXY_PURE"
EXTENSION_SUFFIXES = tuple(importlib.machinery.EXTENSION_SUFFIXES)


def sources_digest(package_dir: str) -> str:
    """SHA-256 over the compiled modules' sources, in `MODULES` order."""
    h = hashlib.sha256()
    for name in MODULES:
        with open(os.path.join(package_dir, name + ".py"), "rb") as f:
            data = f.read()
        h.update(b"%s %d\n" % (name.encode(), len(data)))
        h.update(data)
    return h.hexdigest()


def _compiled(package_dir: str, name: str) -> bool:
    return any(os.path.exists(os.path.join(package_dir, name + s)) for s in EXTENSION_SUFFIXES)


def inspect(package_dir: str) -> tuple[str, str]:
    """("compiled" | "pure" | "stale", why) for the package in `package_dir`."""
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        return ("pure", f"{PURE_ENV} is set")
    missing = [m for m in MODULES if not _compiled(package_dir, m)]
    if len(missing) == len(MODULES):
        return ("pure", "no compiled build (installed without a C compiler, or HALOY_NATIVE=0)")
    if missing:
        return ("stale", "the compiled build lacks " + ", ".join(missing))
    try:
        with open(os.path.join(package_dir, DIGEST_FILE), encoding="ascii") as f:
            recorded = f.read().strip()
    except OSError:
        return ("stale", f"the compiled build has no {DIGEST_FILE}")
    try:
        digest = sources_digest(package_dir)
    except OSError:  # installed without the sources: nothing to compare, nothing to fall back to
        return ("compiled", "mypyc (no sources installed)")
    if recorded != digest:
        return ("stale", "the sources changed since the compiled build; rebuild it with "
                "`pip install -e .` (scripts/test and scripts/demo do)")
    return ("compiled", "mypyc")


class _SourceFirst:
    """A meta path finder that loads the listed modules from their .py files."""

    def __init__(self, package_dir: str) -> None:
        self.paths = {f"{PACKAGE}.{m}": os.path.join(package_dir, m + ".py") for m in MODULES}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        source = self.paths.get(fullname)
        if source is None:
            return None
        return importlib.util.spec_from_file_location(fullname, source)


def select(package_dir: str) -> tuple[str, str]:
    """Called once by the package: make a stale or unwanted build fall back to the sources."""
    mode, why = inspect(package_dir)
    if mode == "compiled":
        try:  # e.g. built for another Python or C library: the sources run instead
            importlib.import_module(SHARED_LIBRARY)
        except ImportError as exc:
            mode, why = ("stale", f"the compiled build does not load: {exc}")
    if mode != "compiled" and not any(isinstance(f, _SourceFirst) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourceFirst(package_dir))
    return (mode, why)
