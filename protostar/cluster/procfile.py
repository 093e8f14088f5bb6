"""The process commands of ``Procfile``: the one place that says how each kind of process starts.

The cluster starts these commands (only the web port changes per node), and ``compose.yaml`` is tested against them,
so the topology a test proves is the one that ships.
"""

from __future__ import annotations

import shlex
from pathlib import Path

KINDS = ("web", "chat", "knowledge", "summaries")


def read_procfile(path: Path) -> dict[str, list[str]]:
    """``{kind: argv}`` from a Procfile (``kind: [exec] command …``)."""
    commands: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        kind, command = line.split(":", 1)
        argv = shlex.split(command)
        commands[kind.strip()] = argv[1:] if argv[:1] == ["exec"] else argv
    missing = [kind for kind in KINDS if kind not in commands]
    if missing:
        raise ValueError(f"{path} has no command for {', '.join(missing)}")
    return commands


def with_option(argv: list[str], option: str, value: str) -> list[str]:
    """``argv`` with ``option``'s value replaced (or the option added before the last argument)."""
    argv = list(argv)
    if option in argv:
        argv[argv.index(option) + 1] = value
        return argv
    return [*argv[:-1], option, value, argv[-1]]
