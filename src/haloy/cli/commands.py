"""Registers every command module on the `haloy` group (import for side effects)."""

from __future__ import annotations

import importlib
import pkgutil

import haloy.cli as _pkg

# Each module named `cmd_*.py` in haloy.cli attaches its commands to `haloy.cli.main.cli`.
for _mod in pkgutil.iter_modules(_pkg.__path__):
    if _mod.name.startswith("cmd_"):
        importlib.import_module(f"haloy.cli.{_mod.name}")
