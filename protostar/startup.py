"""What a long-running process does once it has loaded everything it keeps for its whole life."""

from __future__ import annotations

import gc
import logging

logger = logging.getLogger(__name__)


def freeze_startup_objects() -> int:
    """Leave the objects alive now (modules, Django, the models, the vendors' clients) out of every later garbage
    collection; returns how many there were.

    A full collection walks every tracked object: with the hundreds of thousands of them in a web or chat worker process
    it stopped the process for tens of milliseconds every few seconds under load, which showed up directly as a late
    token or a slow ``accepted`` (docs/benchmarks.md). What is allocated afterwards is still collected as before.
    """
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    logger.info("%d objects loaded at start-up are left out of garbage collection", frozen)
    return frozen
