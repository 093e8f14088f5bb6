"""A task that the workers of one kind run every few seconds, one process at a time (reconciles).

Every worker process starts the same ``Periodic``; before each pass it takes a short Redis lock named after the task,
so with several processes a pass still runs once per interval, and with one process killed the others go on.
A pass that fails (Redis or the database away) is logged and tried again at the next interval.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.db import connections

from protostar import queues

logger = logging.getLogger(__name__)


class Periodic:
    def __init__(self, name: str, interval: float, task: Callable[[], object]) -> None:
        self.name = name
        self.interval = interval
        self.task = task
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"periodic-{name}", daemon=True)

    def start(self) -> Periodic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def run_once(self) -> bool:
        """One pass, if no other process ran one within the interval; whether it ran."""
        lock_ms = max(1, int(self.interval * 1000 * 0.9))
        if not queues.connection().set(f"protostar:periodic:{self.name}", "1", nx=True, px=lock_ms):
            return False
        try:
            self.task()
        finally:
            connections.close_all()  # this thread sleeps between passes: give the connection back
        return True

    def _run(self) -> None:
        # The first pass at once: a worker started after a crash picks up what the crash left behind.
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                logger.warning(
                    "periodic task %s failed; trying again in %.0f s", self.name, self.interval, exc_info=True
                )
            self._stop.wait(self.interval)
