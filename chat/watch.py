"""One thread per worker process watches every answer in flight: stop requests and lease renewal.

A thread per answer polling its own stop key costs ~100 threads and ~500 Redis calls a second at 100 answers. Here one
``BLPOP`` waits on the stop keys of all of them at once (it returns as soon as any is pushed), and one script call
renews all their leases each second.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import redis
from django.conf import settings

from chat import streams

logger = logging.getLogger(__name__)

# Bounds how late an answer that started meanwhile joins the BLPOP, hence the worst stop latency (goal: 1 s).
POLL_SECONDS = 0.2
RENEW_EVERY_SECONDS = 1.0

# KEYS: leases. ARGV: lease ms, then one attempt id per lease. Returns 1/0 per lease: still held by that attempt.
_RENEW_ALL = """
local held = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i + 1] then
    redis.call('PEXPIRE', key, ARGV[1])
    held[i] = 1
  else
    held[i] = 0
  end
end
return held
"""


class Watch:
    """What the generating thread sees of one answer: whether it was stopped or lost, and what to close then."""

    def __init__(self, owner: streams.AnswerStream) -> None:
        self.owner = owner
        self.stopped = threading.Event()
        self.lease_lost = threading.Event()
        self._tokens: Any = None
        self._lock = threading.Lock()

    @property
    def interrupted(self) -> bool:
        return self.stopped.is_set() or self.lease_lost.is_set()

    @property
    def generating(self) -> bool:
        """Whether the answer's token stream is attached: the model is generating it (or it is being saved)."""
        return self._tokens is not None

    def attach(self, tokens: Any) -> None:
        """The token stream to close when the answer is interrupted (at once if it already was)."""
        with self._lock:
            self._tokens = tokens
        if self.interrupted:
            tokens.close()

    def interrupt(self, reason: threading.Event) -> None:
        with self._lock:
            reason.set()
            tokens = self._tokens
        if tokens is not None:
            tokens.close()


class AnswerWatcher:
    def __init__(self, conn: redis.Redis) -> None:
        self.conn = conn
        self._renew_all = conn.register_script(_RENEW_ALL)
        self._watches: dict[int, Watch] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chat-watch", daemon=True)
        self._thread.start()

    def watch(self, owner: streams.AnswerStream) -> Watch:
        watch = Watch(owner)
        with self._lock:
            self._watches[owner.message_id] = watch
        self._wake.set()
        return watch

    def forget(self, watch: Watch) -> None:
        with self._lock:
            if self._watches.get(watch.owner.message_id) is watch:
                del self._watches[watch.owner.message_id]

    def generating(self) -> bool:
        """Whether any answer of this process is being generated now."""
        return any(watch.generating for watch in self._current())

    def _current(self) -> list[Watch]:
        with self._lock:
            return list(self._watches.values())

    def _run(self) -> None:
        renew_at = time.monotonic() + self._renew_interval()
        while True:
            try:
                watches = self._current()
                if not watches:
                    self._wake.wait(RENEW_EVERY_SECONDS)
                    self._wake.clear()
                    continue
                self._check_stops(watches)
                if time.monotonic() >= renew_at:
                    self._renew(self._current())
                    renew_at = time.monotonic() + self._renew_interval()
            except Exception:  # Redis away for a moment: keep watching; leases outlive a short outage
                logger.exception("watching the answers in flight failed; retrying")
                time.sleep(POLL_SECONDS)

    @staticmethod
    def _renew_interval() -> float:
        # Well inside the lease, so one slow round trip never lets a live answer's lease lapse.
        return min(RENEW_EVERY_SECONDS, settings.CHAT_LEASE_SECONDS / 3)

    def _check_stops(self, watches: list[Watch]) -> None:
        by_key = {streams.stop_key(w.owner.message_id): w for w in watches}
        popped = self.conn.blpop(list(by_key), timeout=POLL_SECONDS)
        if popped is not None:
            key = popped[0].decode() if isinstance(popped[0], bytes) else popped[0]
            by_key[key].interrupt(by_key[key].stopped)

    def _renew(self, watches: list[Watch]) -> None:
        if not watches:
            return
        lease_ms = int(settings.CHAT_LEASE_SECONDS * 1000)
        keys = [streams.lease_key(w.owner.message_id) for w in watches]
        held = self._renew_all(keys=keys, args=[lease_ms, *(w.owner.attempt_id for w in watches)])
        for watch, still_held in zip(watches, held, strict=True):
            if not still_held:
                watch.interrupt(watch.lease_lost)


_watcher: AnswerWatcher | None = None
_watcher_pid: int | None = None
_watcher_lock = threading.Lock()


def answer_watcher() -> AnswerWatcher:
    """The process's watcher (a forked child starts its own: threads do not survive a fork)."""
    global _watcher, _watcher_pid
    with _watcher_lock:
        if _watcher is None or _watcher_pid != os.getpid():
            _watcher, _watcher_pid = AnswerWatcher(streams.sync_client()), os.getpid()
        return _watcher
