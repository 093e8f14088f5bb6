"""``--patch``: experimental variants of ``chat`` code, applied in the wrapped daphne/worker processes.

The first three proposals measured with this switch (consumer ORM calls in the thread pool, the snapshot re-check,
joining queued pieces) are now part of ``chat`` and ``protostar.llm.openai`` themselves; add a new variant here as
a function in ``PATCHES`` to measure the next one against the code as it is.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

PATCHES: dict[str, Callable[[], None]] = {}


def apply_patches(names: list[str]) -> None:
    if not names:
        return
    import django

    django.setup()
    for name in names:
        PATCHES[name]()
    print(f"bench patches applied: {names}", file=sys.stderr, flush=True)
