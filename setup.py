"""Build hooks (metadata is in pyproject.toml): compile haloy-proxy's hot path with mypyc.

The modules listed in src/haloy/proxy/native.py are compiled when a C compiler and the Python
headers are present and HALOY_NATIVE is not 0; otherwise, or if compiling fails, haloy installs
as pure Python, which behaves the same and is slower (the proxy logs which one it runs).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import sysconfig
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
PACKAGE_DIR = ROOT / "src" / "haloy" / "proxy"
GROUP = "haloy_proxy"  # the shared library: haloy_proxy__mypyc (native.SHARED_LIBRARY)


def _native():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("_haloy_native", PACKAGE_DIR / "native.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


native = _native()


def _why_not() -> str:
    if os.environ.get("HALOY_NATIVE", "") == "0":
        return "HALOY_NATIVE=0"
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        return f"no C compiler ({cc})"
    if not Path(sysconfig.get_paths()["include"], "Python.h").exists():
        return "no Python headers (python3-dev)"
    if importlib.util.find_spec("mypyc") is None:
        return "mypyc is not installed"
    return ""


def ext_modules() -> list:  # type: ignore[type-arg]
    why = _why_not()
    if why:
        print(f"haloy: building haloy-proxy as pure Python: {why}", file=sys.stderr)
        return []
    from mypyc.build import mypycify

    try:
        return _mypycify(mypycify)
    except BaseException as exc:  # mypyc exits (SystemExit) on a type error: stay installable
        print(f"haloy: compiling haloy-proxy failed, pure Python: {exc!r}", file=sys.stderr)
        return []


def _mypycify(mypycify):  # type: ignore[no-untyped-def]
    return mypycify(
        [
            # The build environment may lack haloy's runtime dependencies; their types are
            # not needed to compile the proxy (and `mypy` in CI checks them all).
            "--ignore-missing-imports",
            "--follow-imports=silent",
            "--config-file=" + os.devnull,
            *(f"src/haloy/proxy/{m}.py" for m in native.MODULES),
        ],
        opt_level="3",
        debug_level="0",
        group_name=GROUP,
        target_dir="build/mypyc",
    )


class BuildExt(build_ext):
    """Compile with mypyc, record the sources' digest beside the result; pure on failure."""

    def finalize_options(self) -> None:
        # mypycify type-checks and writes the C code (~15 s): only here, when extensions are
        # built, not for each metadata query pip makes (those see the placeholder below).
        self.distribution.ext_modules = ext_modules()
        super().finalize_options()

    def run(self) -> None:
        target = PACKAGE_DIR if self.inplace else Path(self.build_lib, "haloy", "proxy")
        # A skipped or failed build must not leave an earlier one looking current.
        (target / native.DIGEST_FILE).unlink(missing_ok=True)
        if not self.extensions:
            return
        try:
            super().run()
        except Exception as exc:  # a broken toolchain must not make haloy uninstallable
            print(f"haloy: compiling haloy-proxy failed, pure Python: {exc}", file=sys.stderr)
            return
        target.mkdir(parents=True, exist_ok=True)
        (target / native.DIGEST_FILE).write_text(native.sources_digest(str(PACKAGE_DIR)) + "\n")


# A placeholder so that setuptools runs build_ext (and tags the wheel for this platform).
setup(
    ext_modules=[Extension("haloy_proxy__native", sources=[])],
    cmdclass={"build_ext": BuildExt},
)
