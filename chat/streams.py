"""The token path: one Redis stream per answer, written by the job and read by any number of sockets.

Entry ids are ``0-<seq>``, so "everything after seq N" is a plain ``XREAD`` from ``0-N`` and a reconnecting client
resumes exactly where it stopped. Writes are fenced: only the job run holding the answer's lease (its attempt id) can
append, and Redis computes the next seq inside the same script, so two runs of one job can never interleave.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
import redis.asyncio
from django.conf import settings
from django.utils import timezone

from chat import events
from protostar import aio, metrics, queues

# KEYS: lease, stream, live channel. ARGV: attempt id, ttl seconds, event type, JSON data. Returns the seq, or -1 when
# fenced out. The entry is also published (``seq type data``) for the sockets that follow the answer live.
_APPEND = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local seq = 1
if #last > 0 then seq = tonumber(string.match(last[1][1], '%-(%d+)$')) + 1 end
redis.call('XADD', KEYS[2], '0-' .. seq, 'type', ARGV[3], 'data', ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('PUBLISH', KEYS[3], seq .. ' ' .. ARGV[3] .. ' ' .. ARGV[4])
return seq
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""


def stream_key(message_id: int) -> str:
    return f"chat:answer:{message_id}"


def stop_key(message_id: int) -> str:
    return f"chat:stop:{message_id}"


def lease_key(message_id: int) -> str:
    return f"chat:lease:{message_id}"


def live_channel(message_id: int) -> str:
    """The pub/sub channel on which each entry of the answer is published as it is appended (``chat.live``)."""
    return f"chat:live:{message_id}"


def sync_client() -> redis.Redis:
    return queues.connection("chat")


class LeaseLost(Exception):
    """Another run of the job owns the answer now, or Redis cannot tell (it is unreachable): this run must stop
    writing. The answer stays unfinished and the reconcile (``chat.recovery``) runs it again."""


# What a lost or restarting Redis raises: a run that cannot reach its stream cannot prove it still owns the answer.
REDIS_UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError)


@dataclass
class AnswerStream:
    """The writing side, owned by one job run (``attempt_id``) while it holds the lease."""

    message_id: int
    attempt_id: str
    conn: redis.Redis

    def __post_init__(self) -> None:
        self._append = self.conn.register_script(_APPEND)
        self._release = self.conn.register_script(_RELEASE)

    @property
    def _lease_ms(self) -> int:
        return int(settings.CHAT_LEASE_SECONDS * 1000)

    def acquire(self) -> bool:
        """Take the lease unless a live run holds it (NX): the one mutual exclusion between runs of a job."""
        return bool(self.conn.set(lease_key(self.message_id), self.attempt_id, nx=True, px=self._lease_ms))

    def release(self) -> None:
        self._release(keys=[lease_key(self.message_id)], args=[self.attempt_id])

    def append(self, kind: str, data: dict[str, Any]) -> int:
        try:
            return self._fenced(self._append(**self._append_call(kind, data)))
        except REDIS_UNAVAILABLE as exc:
            raise LeaseLost(f"message {self.message_id}: Redis is unavailable ({exc})") from exc

    async def append_async(self, kind: str, data: dict[str, Any]) -> int:
        """``append`` from an event loop (``redis.asyncio``, one client per loop)."""
        client, script = aio.for_running_loop(_async_clients, _async_redis)
        try:
            return self._fenced(await script(**self._append_call(kind, data), client=client))
        except REDIS_UNAVAILABLE as exc:
            raise LeaseLost(f"message {self.message_id}: Redis is unavailable ({exc})") from exc

    def _append_call(self, kind: str, data: dict[str, Any]) -> dict[str, list]:
        return {
            "keys": [lease_key(self.message_id), stream_key(self.message_id), live_channel(self.message_id)],
            "args": [self.attempt_id, settings.CHAT_STREAM_TTL, kind, json.dumps(data, ensure_ascii=False)],
        }

    def _fenced(self, seq: int) -> int:
        if seq == -1:
            raise LeaseLost(f"message {self.message_id}: attempt {self.attempt_id} lost its lease")
        return int(seq)


class AsyncAppender:
    """The answer's ``PieceSink``: appends token pieces from the model's event loop, fenced like ``append``.

    ``parts`` is exactly the text that reached the stream, so the stored answer matches what readers saw.
    """

    def __init__(self, owner: AnswerStream) -> None:
        self.owner = owner
        self.parts: list[str] = []
        self.first_written_at: datetime | None = None

    def write_now(self, text: str) -> None:
        """The same from a thread (models iterated by the job thread, such as the offline one)."""
        started = time.perf_counter()
        self.owner.append(events.TOKEN, events.token_data(text))
        self._written(text, started)

    def _written(self, text: str, started: float) -> None:
        metrics.TOKEN_RELAY.observe(time.perf_counter() - started)
        self.first_written_at = self.first_written_at or timezone.now()
        self.parts.append(text)

    async def write(self, text: str) -> None:
        started = time.perf_counter()
        await self.owner.append_async(events.TOKEN, events.token_data(text))
        self._written(text, started)


_async_clients = aio.loop_cache()


def _async_redis() -> tuple[Any, Any]:
    """A ``redis.asyncio`` client and the append script (made on, and only used from, one event loop)."""
    # Only short commands go through it (entries reach sockets through ``chat.live``): a hung Redis must not hang
    # an answer's writer or a socket's reader for good.
    client = redis.asyncio.Redis.from_url(settings.REDIS_URL, socket_timeout=10)
    return client, client.register_script(_APPEND)


def async_client() -> Any:
    """The running loop's ``redis.asyncio`` client, shared by everything on that loop (one connection pool)."""
    return aio.for_running_loop(_async_clients, _async_redis)[0]


def request_stop(conn: redis.Redis, message_id: int) -> None:
    """Ask whichever run owns the answer to stop; the key outlives a job that has not started yet."""
    with conn.pipeline() as pipe:
        pipe.rpush(stop_key(message_id), "1")
        pipe.expire(stop_key(message_id), settings.CHAT_JOB_TIMEOUT)
        pipe.execute()


def decode_entries(entries: list) -> list[tuple[int, str, dict[str, Any]]]:
    """``XREAD``/``XRANGE`` entries as (seq, type, data)."""
    decoded = []
    for entry_id, fields in entries:
        entry_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        fields = {(k.decode() if isinstance(k, bytes) else k): v for k, v in fields.items()}
        kind = fields["type"].decode() if isinstance(fields["type"], bytes) else fields["type"]
        decoded.append((int(entry_id.split("-", 1)[1]), kind, json.loads(fields["data"])))
    return decoded


def join_token_runs(entries: list[tuple[int, str, dict[str, Any]]]) -> list[tuple[int, str, dict[str, Any]]]:
    """Consecutive ``token`` entries as one, carrying the seq of the last: a reader that fell behind (a busy server,
    a resume) catches up in one frame instead of one per piece. A reader that keeps up reads one entry at a time,
    so nothing is ever held back to be joined."""
    joined: list[tuple[int, str, dict[str, Any]]] = []
    for seq, kind, data in entries:
        if kind == events.TOKEN and joined and joined[-1][1] == events.TOKEN:
            joined[-1] = (seq, events.TOKEN, {**data, "text": joined[-1][2]["text"] + data["text"]})
        else:
            joined.append((seq, kind, data))
    return joined


def parse_published(payload: bytes) -> tuple[int, str, dict[str, Any]]:
    """A published entry (``seq type data``, see ``_APPEND``) as (seq, type, data)."""
    seq, kind, data = payload.split(b" ", 2)
    return int(seq), kind.decode(), json.loads(data)


async def read_after_async(client, message_id: int, after_seq: int) -> list[tuple[int, str, dict]]:
    """Entries after ``after_seq`` that are in the stream now (``redis.asyncio`` client)."""
    return decode_entries(await client.xrange(stream_key(message_id), min=f"(0-{after_seq}", max="+"))


def read_all_sync(conn: redis.Redis, message_id: int, after_seq: int = 0) -> list[tuple[int, str, dict]]:
    return decode_entries(conn.xrange(stream_key(message_id), min=f"(0-{after_seq}", max="+"))


def text_since_reset(entries: list[tuple[int, str, dict]]) -> str:
    """The answer text a reader of ``entries`` shows: the tokens after the last ``reset``."""
    text: list[str] = []
    for _, kind, data in entries:
        if kind == events.RESET:
            text.clear()
        elif kind == events.TOKEN:
            text.append(data["text"])
    return "".join(text)


async def last_seq_async(client, message_id: int) -> int:
    """The seq of the stream's last entry (0 when the stream is empty or gone)."""
    last = await client.xrevrange(stream_key(message_id), count=1)
    return decode_entries(last)[0][0] if last else 0


def follow_sync(conn: redis.Redis, message_id: int, after_seq: int = 0, *, block_ms: int = 5000):
    """Yield (seq, type, data) as the answer is written, up to and including its ``end``/``error`` entry."""
    last = after_seq
    while True:
        reply = conn.xread({stream_key(message_id): f"0-{last}"}, count=500, block=block_ms)
        for seq, kind, data in decode_entries(reply[0][1]) if reply else []:
            yield seq, kind, data
            last = seq
            if kind in events.FINAL_EVENT_TYPES:
                return
