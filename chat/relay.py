"""Following one answer, for any transport: what its Redis stream holds after a ``seq``, then what is published live.

The WebSocket consumer and the HTTP API's event stream (SSE) both read an answer through ``follow_events``, so both
see the same events with the same ``seq``s: a client resumes on either with the last ``seq`` it rendered. Both
follow through lost Redis or database connections (retried with backoff from the last ``seq`` sent).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import redis.asyncio
from django.db import InterfaceError, OperationalError
from django.utils.translation import gettext as _

from chat import events, live, selectors, streams
from chat.models import Message
from protostar.aio import database

# How long a follower waits for a published entry before it reads the stream itself (and checks whether the answer
# ended without a live stream).
READ_BLOCK_MS = 5000
# A follower that loses Redis or the database tries again after these pauses (the last repeats) until it is
# cancelled: it then goes on from its last seq, so nothing is lost or repeated. They only pace the retries.
RECONNECT_PAUSES = (0.25, 0.5, 1.0, 2.0, 4.0)
UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, OperationalError, InterfaceError)

logger = logging.getLogger(__name__)


@dataclass
class Cursor:
    """Where a reader is in one answer: the last seq it was given, and whether the stored answer looked finished
    while its stream showed no end at the previous quiet spell."""

    last: int
    ended_in_database: bool = False


async def follow_events(
    message_id: int, after_seq: int, *, reader: Any, read_block_ms: int = READ_BLOCK_MS
) -> AsyncIterator[events.Event]:
    """The answer's events after ``after_seq`` until its ``end``/``error`` (subscribed to its live entries), through
    lost Redis or database connections (retried with backoff, from the last seq given)."""
    cursor = Cursor(last=after_seq)
    for failures in itertools.count():
        try:
            feed = await live.hub().follow(message_id)
            try:
                async for event in relay_events(message_id, cursor, feed, reader=reader, read_block_ms=read_block_ms):
                    yield event
                return
            finally:
                await live.hub().unfollow(message_id, feed)
        except UNAVAILABLE as exc:
            pause = RECONNECT_PAUSES[min(failures, len(RECONNECT_PAUSES) - 1)]
            logger.warning("following message %s: %s; again in %.2f s from seq %s", message_id, exc, pause, cursor.last)
            await asyncio.sleep(pause)


async def relay_events(
    message_id: int, cursor: Cursor, feed: asyncio.Queue[bytes], *, reader: Any, read_block_ms: int = READ_BLOCK_MS
) -> AsyncIterator[events.Event]:
    """Events after ``cursor.last``: what the stream holds now, then what ``feed`` (``chat.live``) brings;
    ``sources`` as ``reader`` may see them now (access may have changed since the answer was written)."""
    redis_ = streams.async_client()
    if not await redis_.exists(streams.stream_key(message_id)):
        replay = await snapshot(message_id, reader=reader)
        if replay is not None:
            for event in replay:
                yield event
            return
    entries = await streams.read_after_async(redis_, message_id, cursor.last)
    if not entries and await _ended_by(redis_, message_id, cursor.last):
        return  # resumed at (or past) the answer's last event: nothing more will come
    while True:
        for seq, kind, data in streams.join_token_runs([entry for entry in entries if entry[0] > cursor.last]):
            if kind == events.SOURCES:
                data = await readable_sources(data, reader)
            yield events.stream_event(kind, message=message_id, seq=seq, data=data)
            cursor.last = seq
            if kind in events.FINAL_EVENT_TYPES:
                return
        entries = await _next_entries(redis_, message_id, cursor.last, feed, read_block_ms)
        if entries:
            continue
        replay = await _quiet_spell_replay(message_id, cursor, reader)
        if replay is not None:
            for event in replay:
                yield event
            return
        if await streams.last_seq_async(redis_, message_id) < cursor.last:
            # The stream was lost (a Redis restart without its data) and a new run writes it again from seq 1,
            # starting with ``reset``: follow the new one from its start. Checked before the end below, since the
            # new run may well end before the seq this reader had reached.
            cursor.last = 0
            entries = await streams.read_after_async(redis_, message_id, 0)
        elif await _ended_by(redis_, message_id, cursor.last):
            return  # the stream ends exactly where this reader is: nothing more will come


async def _quiet_spell_replay(message_id: int, cursor: Cursor, reader: Any) -> list[events.Event] | None:
    """After a spell without entries: the answer replayed from the database, because its stream expired, or because
    the stored answer has ended while its stream never got the end (Redis was lost just then) for two spells in a
    row; ``None`` while it goes on."""
    if not await streams.async_client().exists(streams.stream_key(message_id)):
        return await snapshot(message_id, reader=reader)
    message = await database(selectors.message_get)(message_id=message_id)
    if message is None:
        return await snapshot(message_id, reader=reader)
    if not message.is_terminal:
        cursor.ended_in_database = False
        return None
    if not cursor.ended_in_database:
        cursor.ended_in_database = True
        return None
    return await snapshot(message_id, reader=reader, even_if_streamed=True)


async def _ended_by(redis, message_id: int, seq: int) -> bool:
    """Whether the answer's stream ends (``end``/``error``) at or before ``seq``."""
    newest = streams.decode_entries(await redis.xrevrange(streams.stream_key(message_id), count=1))
    return bool(newest) and newest[0][1] in events.FINAL_EVENT_TYPES and newest[0][0] <= seq


async def _next_entries(redis, message_id: int, last: int, feed: asyncio.Queue[bytes], read_block_ms: int) -> list:
    """The entries after ``last``: those published since, all that are queued (a reader that fell behind catches up
    in one event); from the stream after a quiet spell, a gap or a lost connection."""
    if feed.empty():
        try:
            async with asyncio.timeout(read_block_ms / 1000):
                first = await feed.get()
        except TimeoutError:
            return await streams.read_after_async(redis, message_id, last)
    else:
        first = feed.get_nowait()
    payloads = [first, *(feed.get_nowait() for _ in range(feed.qsize()))]
    if live.RESYNC in payloads:
        return await streams.read_after_async(redis, message_id, last)
    entries = [entry for entry in map(streams.parse_published, payloads) if entry[0] > last]
    # Published in order, so a gap shows at the start or as a span longer than the entries.
    if entries and (entries[0][0] != last + 1 or entries[-1][0] - last != len(entries)):
        return await streams.read_after_async(redis, message_id, last)
    return entries


async def readable_sources(data: dict, reader: Any) -> dict:
    """The ``sources`` of an answer as ``reader`` may see them now (``chat.selectors.sources_for_reader``)."""
    [items] = await database(selectors.sources_for_reader)(source_lists=[data.get("items", [])], user=reader)
    return {**data, "items": items}


async def snapshot(message_id: int, *, reader: Any, even_if_streamed: bool = False) -> list[events.Event] | None:
    """A finished answer whose stream expired, replayed from the database; ``None`` when it is not finished.
    A deleted answer gives one ``error`` event (``not_found``): following it is over."""
    message = await database(selectors.message_get)(message_id=message_id)
    if message is None:
        # Deleted (with its conversation) while followed: nothing more will come; say so once and stop.
        detail = _("Message %(id)s no longer exists.") % {"id": message_id}
        return [events.error(code="not_found", detail=detail, message=message_id)]
    if not message.is_terminal:
        return None
    if not even_if_streamed and await streams.async_client().exists(streams.stream_key(message_id)):
        # The answer streamed and finished while the row was read: the live stream is complete, use it.
        return None
    replay = []
    for seq, kind, data in snapshot_entries(message):
        if kind == events.SOURCES:
            data = await readable_sources(data, reader)
        replay.append(events.stream_event(kind, message=message_id, seq=seq, data=data))
    return replay


def snapshot_entries(message: Message) -> list[tuple[int, str, dict]]:
    """The stored answer as stream entries: ``reset``, ``sources``, all text as one ``token``, ``end``/``error``."""
    entries: list[tuple[str, dict]] = [
        (events.RESET, events.reset_data(reason="expired")),
        (events.SOURCES, events.sources_data(message.sources)),
    ]
    if message.content:
        entries.append((events.TOKEN, events.token_data(message.content)))
    if message.status == Message.Status.FAILED:
        entries.append((events.ERROR, events.error_data(code=message.error_code or "llm_error", detail=message.error)))
    else:
        reason = "stop" if message.status == Message.Status.COMPLETE else "cancelled"
        usage = {"prompt_tokens": message.prompt_tokens, "completion_tokens": message.completion_tokens}
        entries.append((events.END, events.end_data(finish_reason=reason, **usage)))
    return [(seq, kind, data) for seq, (kind, data) in enumerate(entries, start=1)]
