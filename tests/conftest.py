"""Shared pytest set-up. Fixtures for real peers live in tests/fixtures/ as plugins."""

from __future__ import annotations

pytest_plugins = [
    "tests.fixtures.peers",
    "tests.fixtures.docker",
    "tests.fixtures.pebble",
    "tests.fixtures.proxy",
    "tests.fixtures.debian",
]
