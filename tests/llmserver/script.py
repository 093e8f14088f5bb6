"""What the test server should do next: a ``Script`` and the thread-safe book that hands it to each request."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, fields
from typing import Any

DEFAULT_MODEL = "protostar-test"
# A stall never outlives this, so a forgotten stalled request cannot pin a thread for the whole session.
MAX_STALL_SECONDS = 300.0
HTTP_FAILURES = re.compile(r"^[45]\d\d$")
STREAM_FAILURES = {"stall", "cut", "abort"}


@dataclass(frozen=True)
class Script:
    """How the server answers the next requests. ``fail``: an HTTP status ("500", "429", "404"…), "stall",
    "cut" (body ends cleanly before the final chunk and ``[DONE]``) or "abort" (connection dropped mid-body)."""

    reply: str | None = None
    tokens_per_second: float | None = None
    fail: str | None = None
    retry_after: float | None = None
    stall_after_tokens: int | None = None
    cut_after_tokens: int | None = None
    times: int | None = None
    include_usage: bool | None = None  # None: as the request asks (stream_options.include_usage)
    embedding_dimensions: int | None = None  # force this size whatever the request asks

    def __post_init__(self) -> None:
        fail = self.fail
        if fail is not None and fail not in STREAM_FAILURES and not HTTP_FAILURES.match(fail):
            raise ValueError(f"fail must be an HTTP 4xx/5xx status or one of {sorted(STREAM_FAILURES)}, got {fail!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Script:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown script fields: {sorted(unknown)}")
        if data.get("fail") is not None:
            data = {**data, "fail": str(data["fail"])}
        return cls(**data)

    @property
    def failure(self) -> str | None:
        """The effective failure: a stall/cut position alone implies that failure."""
        if self.fail:
            return self.fail
        if self.stall_after_tokens is not None:
            return "stall"
        if self.cut_after_tokens is not None:
            return "cut"
        return None


class ScriptBook:
    """The current script and how many more requests it applies to; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._script = Script()
        self._remaining: int | None = None

    def set(self, script: Script) -> None:
        with self._lock:
            self._script = script
            self._remaining = script.times

    def take(self) -> Script:
        with self._lock:
            script = self._script
            if self._remaining is not None:
                self._remaining -= 1
                if self._remaining <= 0:
                    self._script, self._remaining = Script(), None
            return script
