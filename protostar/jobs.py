"""Infrastructure jobs: a probe used by health tests and operators to prove a worker executes jobs."""

from __future__ import annotations

import os


def probe(label: str) -> tuple[int, str]:
    return os.getpid(), label
