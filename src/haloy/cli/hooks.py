"""Deploy hooks: shell commands from haloy.yaml run in the config file's directory."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from haloy.errors import HaloyError

# Lines of a failing hook's output shown in the error.
HOOK_TAIL_LINES = 40


async def run_hooks(
    kind: str,
    commands: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    echo: Callable[[str], None],
) -> None:
    """Run each command with `sh -c` in `cwd`, echoing its output; stop at the first failure."""
    for command in commands:
        echo(f"{kind}: {command}")
        proc = await asyncio.create_subprocess_exec(
            "sh", "-c", command, cwd=cwd, env=dict(env), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        text = out.decode("utf-8", "replace").rstrip()
        lines = text.splitlines()
        if proc.returncode != 0:
            shown = "\n".join(lines[-HOOK_TAIL_LINES:])
            raise HaloyError(
                f"{kind} hook failed (exit {proc.returncode}): {command}"
                + (f"\n{shown}" if shown else ""),
                hint=f"the hook runs with `sh -c` in {cwd}; fix it or remove it from haloy.yaml",
            )
        for line in lines:
            echo(f"  {line}")
