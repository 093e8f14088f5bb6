"""One asyncio event loop per process, on a daemon thread, shared by every model stream of that process.

A chat worker streams many answers at once. Reading each model stream on its own thread costs a thread per answer
and a GIL hand-off per token; one event loop reads them all, and ``close()`` from any thread cancels a stream at
once, even while it is still connecting or sleeping before a retry.

``database`` runs ORM work from async code (the socket consumer, the API's event stream) in the thread pool.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import os
import threading
import weakref
from collections.abc import Callable, Coroutine, MutableMapping
from concurrent.futures import Future
from typing import Any, TypeVar

from channels.db import DatabaseSyncToAsync
from django.db import close_old_connections

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None


def background_loop() -> asyncio.AbstractEventLoop:
    """The process's loop, started on first use (and again in a forked child, which does not inherit the thread)."""
    global _loop, _loop_pid
    with _lock:
        if _loop is None or _loop_pid != os.getpid() or _loop.is_closed():
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            threading.Thread(target=run, name="llm-io", daemon=True).start()
            ready.wait()
            _loop, _loop_pid = loop, os.getpid()
        return _loop


def submit(coroutine: Coroutine[Any, Any, T]) -> Future[T]:
    """Run ``coroutine`` on the process's loop; cancelling the returned future cancels the task."""
    return asyncio.run_coroutine_threadsafe(coroutine, background_loop())


def loop_cache() -> weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any]:
    """A cache for ``for_running_loop`` whose entries go away with their loop (a test's, a finished ``asyncio.run``)."""
    return weakref.WeakKeyDictionary()


def for_running_loop(cache: MutableMapping[asyncio.AbstractEventLoop, T], factory: Callable[[], T]) -> T:
    """``cache``'s object for the running loop, made by ``factory`` on first use: network clients keep connection
    pools that belong to the loop they were made on."""
    loop = asyncio.get_running_loop()
    if loop not in cache:
        cache[loop] = factory()
    return cache[loop]


def close_at_exit(close: Callable[[], Coroutine[Any, Any, Any]], timeout: float = 2.0) -> None:
    """At interpreter exit, run ``close()`` on the running loop it belongs to (if that loop still runs), so network
    clients made on the process's loop shut their connections instead of being reported as leaked."""
    loop = asyncio.get_running_loop()

    def run() -> None:
        if loop.is_running() and not loop.is_closed():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(close(), loop).result(timeout)

    atexit.register(run)


def database(func: Callable[..., T]) -> Callable[..., Coroutine[Any, Any, T]]:
    """Run ORM work in the thread pool rather than thread-sensitively: the asks of many sockets then run side by side
    (measured in the chat-streaming rounds of docs/benchmarks-log.md)."""

    @functools.wraps(func)
    def returning_the_connection(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        finally:
            # Here, inside the call's own context (a copy of the caller's, where the connection was opened): the
            # wrapper's clean-up runs outside it and does not always see the connection, and one not given back is
            # a pool slot lost for good (seen in the chat tests: one connection per answered socket).
            close_old_connections()

    return DatabaseSyncToAsync(returning_the_connection, thread_sensitive=False)
