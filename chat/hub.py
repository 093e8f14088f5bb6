"""One Redis reader per web process for every answer its sockets follow.

A socket following an answer used to hold its own Redis connection and issue an ``XREAD`` per token: at 100 answers
× 30 tokens/s that is 3,000 round trips a second, each waking the event loop. Here one task per event loop reads
all followed streams with one blocking ``XREAD`` and hands each follower the entries after its own position, so a
busy second costs a few dozen round trips whatever the number of sockets. A new follower wakes the blocked read by
writing to the hub's own small stream, which the read always includes.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from typing import Any

import redis.asyncio
from django.conf import settings

from chat import streams
from protostar.llm import aio

logger = logging.getLogger(__name__)
# How long the shared read blocks when nothing is written (a follower is woken sooner by the wake stream).
BLOCK_MS = 5000
# Entries per stream per read: a follower that fell far behind catches up over a few reads.
READ_COUNT = 500
# After Redis fails, how long the reader waits before trying again (followers time out and check on their own).
RETRY_SECONDS = 0.5

Entry = tuple[int, str, dict[str, Any]]


class Follower:
    """One socket's view of one answer: the entries after ``position``, delivered in order by the hub."""

    def __init__(self, message_id: int, after_seq: int) -> None:
        self.message_id = message_id
        self.position = after_seq
        self._batches: asyncio.Queue[list[Entry]] = asyncio.Queue()

    def deliver(self, entries: list[Entry]) -> None:
        fresh = [entry for entry in entries if entry[0] > self.position]
        if fresh:
            self.position = fresh[-1][0]
            self._batches.put_nowait(fresh)

    async def next_entries(self, timeout: float) -> list[Entry]:
        """Everything delivered so far (waiting up to ``timeout`` seconds for the first batch); [] on timeout."""
        try:
            entries = await asyncio.wait_for(self._batches.get(), timeout)
        except TimeoutError:
            return []
        while not self._batches.empty():
            entries += self._batches.get_nowait()
        return entries


class StreamHub:
    """The shared reader of one event loop (``hub()``); ``client`` serves the sockets' other Redis calls too."""

    def __init__(self) -> None:
        # redis-py times reads out after 5 s by default: a blocking read waits up to BLOCK_MS on top.
        self.client = redis.asyncio.Redis.from_url(settings.REDIS_URL, socket_timeout=BLOCK_MS / 1000 + 10)
        self._followers: dict[int, set[Follower]] = defaultdict(set)
        self._wake_key = f"chat:hub:{uuid.uuid4().hex}"
        self._wake_position = "0-0"
        self._reader: asyncio.Task | None = None

    async def follow(self, message_id: int, after_seq: int) -> Follower:
        follower = Follower(message_id, after_seq)
        self._followers[message_id].add(follower)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read())
        else:
            await self._wake()
        return follower

    def forget(self, follower: Follower) -> None:
        followers = self._followers.get(follower.message_id)
        if followers is not None:
            followers.discard(follower)
            if not followers:
                del self._followers[follower.message_id]

    async def _wake(self) -> None:
        # Trimmed to one entry and expiring: a process that dies leaves nothing behind for long.
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.xadd(self._wake_key, {"w": "1"}, maxlen=1, approximate=False)
            pipe.expire(self._wake_key, 60)
            await pipe.execute()

    async def _read(self) -> None:
        while self._followers:
            try:
                reply = await self.client.xread(self._positions(), count=READ_COUNT, block=BLOCK_MS)
                for key, entries in reply or []:
                    self._dispatch(key.decode() if isinstance(key, bytes) else key, entries)
            except Exception:
                # Redis unreachable, for instance: the followers' own checks report it; the reader keeps trying.
                logger.exception("reading the answer streams failed; retrying")
                await asyncio.sleep(RETRY_SECONDS)

    def _positions(self) -> dict[str, str]:
        # One position per stream: the furthest-behind follower's (the others skip what they already have).
        positions = {
            streams.stream_key(message_id): f"0-{min(follower.position for follower in followers)}"
            for message_id, followers in self._followers.items()
        }
        positions[self._wake_key] = self._wake_position
        return positions

    def _dispatch(self, key: str, entries: list) -> None:
        if key == self._wake_key:
            last_id = entries[-1][0]
            self._wake_position = last_id.decode() if isinstance(last_id, bytes) else last_id
            return
        message_id = streams.message_id_of(key)
        decoded = streams.decode_entries(entries)
        for follower in list(self._followers.get(message_id, ())):
            follower.deliver(decoded)


_hubs = aio.loop_cache()


def hub() -> StreamHub:
    """The running event loop's hub (one per web process)."""
    return aio.for_running_loop(_hubs, StreamHub)
