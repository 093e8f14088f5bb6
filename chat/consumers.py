"""The chat WebSocket: parses requests, calls services, and forwards each answer's Redis stream to the socket.

Handlers return quickly; following an answer runs in its own asyncio task per message, so ``stop``, further asks and
disconnects are handled while tokens flow. A closed socket only stops the forwarding, never the answer.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import logging
from dataclasses import dataclass

import redis.asyncio
from channels.db import DatabaseSyncToAsync
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections
from django.utils import translation
from django.utils.translation import gettext as _

from chat import events, live, revisions, selectors, services, streams
from chat.models import Message
from feedback.services import feedback_give
from protostar.i18n import language_from_scope

logger = logging.getLogger(__name__)
CLOSE_UNAUTHENTICATED = 4401
# How long a follower waits for a published entry before it reads the stream itself (and checks whether the answer
# ended without a live stream).
READ_BLOCK_MS = 5000
# A follower that loses Redis or the database tries again after these pauses (the last repeats) until the socket
# closes: it then goes on from its last seq, so nothing is lost or repeated. They only pace the retries.
RECONNECT_PAUSES = (0.25, 0.5, 1.0, 2.0, 4.0)
UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, OperationalError, InterfaceError)


@dataclass
class _Cursor:
    """Where a socket is in one answer: the last seq it was sent, and whether the stored answer looked finished
    while its stream showed no end at the previous quiet spell."""

    last: int
    ended_in_database: bool = False


def _db(func):
    """Run ORM work in the thread pool, not on the one shared thread: asks from many sockets then proceed in parallel
    (at 100 concurrent asks, ``accepted`` came several times sooner: docs/benchmarks.md)."""

    @functools.wraps(func)
    def returning_the_connection(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        finally:
            # Here, inside the call's own context (a copy of the socket's, where the connection was opened): the
            # wrapper's clean-up runs outside it and does not always see the connection, and one not given back is
            # a pool slot lost for good (seen in the chat tests: one connection per answered socket).
            close_old_connections()

    return DatabaseSyncToAsync(returning_the_connection, thread_sensitive=False)


class ChatConsumer(AsyncWebsocketConsumer):
    # Tokens arrive through Redis streams, not the channel layer, so the socket needs no channel-layer inbox (one
    # blocking Redis connection less per socket; channels-redis' 5 s BZPOPMIN also races redis-py 8's 5 s read
    # timeout and kills long-lived consumers).
    channel_layer_alias = None

    async def connect(self) -> None:
        self.readers: dict[int, asyncio.Task] = {}
        self.user = None
        # Readable errors are written in the page's language, chosen once per socket like a page request.
        self.language = language_from_scope(self.scope)
        user = self.scope.get("user")
        # Accept, then close with 4401: a refused handshake reaches browsers only as an anonymous 1006.
        await self.accept()
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user = user

    @property
    def redis(self) -> redis.asyncio.Redis:
        # Every socket on this loop shares one client (and its connection pool).
        return streams.async_client()

    async def disconnect(self, code: int) -> None:
        readers = list(self.readers.values())
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.user is None:
            return
        with translation.override(self.language):
            await self._handle(text_data)

    async def _handle(self, text_data: str | None) -> None:
        try:
            request = events.parse_client_request(text_data, max_chars=settings.CHAT_MAX_MESSAGE_CHARS)
            if isinstance(request, events.Ask):
                await self._ask(request)
            elif isinstance(request, events.Stop):
                await _db(services.message_request_stop)(user=self.user, message_id=request.message)
            elif isinstance(request, events.Resume):
                await self._resume(request)
            else:
                await self._revise(request)
        except (events.ProtocolError, services.ChatError) as exc:
            await self.send_event(events.error(code=exc.code, detail=exc.detail, message=exc.message))
        except Exception:
            # A fault on our side (database or Redis unreachable…) must not close the socket: say so and stay open.
            logger.exception("chat request failed")
            await self.send_event(
                events.error(code="internal", detail=_("The request could not be processed right now; try again."))
            )

    async def _revise(self, request: events.Regenerate | events.Edit | events.Feedback) -> None:
        """Regenerate, edit and feedback: each one service call, answered like an ask (or ``feedback_saved``)."""
        if isinstance(request, events.Feedback):
            saved = await _db(feedback_give)(
                user=self.user,
                message_id=request.message,
                rating=request.rating,
                reason=request.reason,
                comment=request.comment,
            )
            await self.send_event(
                events.feedback_saved(message=saved.message_id, rating=saved.rating, reason=saved.reason)
            )
            return
        if isinstance(request, events.Regenerate):
            result = await _db(revisions.answer_regenerate)(
                user=self.user, message_id=request.message, client_id=request.client_id
            )
        else:
            result = await _db(revisions.question_edit)(
                user=self.user, message_id=request.message, content=request.content, client_id=request.client_id
            )
        await self.send_event(
            events.accepted(
                conversation=result.conversation_id, user_message=result.user_message_id, message=result.message_id
            )
        )
        self._follow(result.message_id, after_seq=0)

    async def send_event(self, event: events.Event) -> None:
        await self.send(text_data=json.dumps(event, ensure_ascii=False))

    async def _ask(self, request: events.Ask) -> None:
        result = await _db(services.conversation_ask)(
            user=self.user,
            content=request.content,
            conversation_id=request.conversation,
            client_id=request.client_id,
        )
        await self.send_event(
            events.accepted(
                conversation=result.conversation_id, user_message=result.user_message_id, message=result.message_id
            )
        )
        self._follow(result.message_id, after_seq=0)

    async def _resume(self, request: events.Resume) -> None:
        message = await _db(selectors.assistant_message_get_for_user)(message_id=request.message, user=self.user)
        if message is None:
            detail = _("Message %(id)s does not exist.") % {"id": request.message}
            raise services.ChatError("not_found", detail, message=request.message)
        self._follow(message.pk, after_seq=request.after_seq)

    def _follow(self, message_id: int, *, after_seq: int) -> None:
        previous = self.readers.pop(message_id, None)
        if previous is not None:
            previous.cancel()
        task = asyncio.create_task(self._forward(message_id, after_seq))
        self.readers[message_id] = task
        task.add_done_callback(lambda done: self._reader_done(message_id, done))

    def _reader_done(self, message_id: int, task: asyncio.Task) -> None:
        if self.readers.get(message_id) is task:
            del self.readers[message_id]
        if not task.cancelled() and task.exception() is not None:
            logger.error("forwarding message %s failed", message_id, exc_info=task.exception())

    async def _forward(self, message_id: int, after_seq: int) -> None:
        """Follow the answer to its end, through lost Redis or database connections (retried with backoff)."""
        cursor = _Cursor(last=after_seq)
        for failures in itertools.count():
            try:
                feed = await live.hub().follow(message_id)
                try:
                    await self._relay(message_id, cursor, feed)
                    return
                finally:
                    await live.hub().unfollow(message_id, feed)
            except UNAVAILABLE as exc:
                pause = RECONNECT_PAUSES[min(failures, len(RECONNECT_PAUSES) - 1)]
                logger.warning(
                    "following message %s: %s; again in %.2f s from seq %s", message_id, exc, pause, cursor.last
                )
                await asyncio.sleep(pause)

    async def _relay(self, message_id: int, cursor: _Cursor, feed: asyncio.Queue[bytes]) -> None:
        """Send the answer's entries after ``cursor.last``: what the stream holds now, then what is published."""
        if not await self.redis.exists(streams.stream_key(message_id)) and await self._send_snapshot(message_id):
            return
        entries = await streams.read_after_async(self.redis, message_id, cursor.last)
        while True:
            for seq, kind, data in streams.join_token_runs([entry for entry in entries if entry[0] > cursor.last]):
                await self.send_event(events.stream_event(kind, message=message_id, seq=seq, data=data))
                cursor.last = seq
                if kind in events.FINAL_EVENT_TYPES:
                    return
            entries = await self._next_entries(message_id, cursor.last, feed)
            if not entries and await self._quiet_spell_ends(message_id, cursor):
                return
            if not entries and await streams.last_seq_async(self.redis, message_id) < cursor.last:
                # The stream was lost (a Redis restart without its data) and a new run writes it again from seq 1,
                # starting with ``reset``: follow the new one from its start.
                cursor.last = 0
                entries = await streams.read_after_async(self.redis, message_id, 0)

    async def _quiet_spell_ends(self, message_id: int, cursor: _Cursor) -> bool:
        """After a spell without entries: whether the answer was sent from the database instead, because its stream
        expired, or because the stored answer has ended while its stream never got the end (Redis was lost just
        then) for two spells in a row."""
        if not await self.redis.exists(streams.stream_key(message_id)):
            return await self._send_snapshot(message_id)
        message = await _db(selectors.message_get)(message_id=message_id)
        if message is None:
            return await self._send_snapshot(message_id)
        if not message.is_terminal:
            cursor.ended_in_database = False
            return False
        if not cursor.ended_in_database:
            cursor.ended_in_database = True
            return False
        return await self._send_snapshot(message_id, even_if_streamed=True)

    async def _next_entries(self, message_id: int, last: int, feed: asyncio.Queue[bytes]) -> list:
        """The entries after ``last``: those published since, all that are queued (a socket that fell behind
        catches up in one frame); from the stream after a quiet spell, a gap or a lost connection."""
        if feed.empty():
            try:
                async with asyncio.timeout(READ_BLOCK_MS / 1000):
                    first = await feed.get()
            except TimeoutError:
                return await streams.read_after_async(self.redis, message_id, last)
        else:
            first = feed.get_nowait()
        payloads = [first, *(feed.get_nowait() for _ in range(feed.qsize()))]
        if live.RESYNC in payloads:
            return await streams.read_after_async(self.redis, message_id, last)
        entries = [entry for entry in map(streams.parse_published, payloads) if entry[0] > last]
        # Published in order, so a gap shows at the start or as a span longer than the entries.
        if entries and (entries[0][0] != last + 1 or entries[-1][0] - last != len(entries)):
            return await streams.read_after_async(self.redis, message_id, last)
        return entries

    async def _send_snapshot(self, message_id: int, *, even_if_streamed: bool = False) -> bool:
        """Replay a finished answer whose stream expired from the database; ``False`` if it is not finished.
        ``True`` for a deleted answer too, after an ``error`` event: following it is over."""
        message = await _db(selectors.message_get)(message_id=message_id)
        if message is None:
            # Deleted (with its conversation) while followed: nothing more will come; say so once and stop.
            detail = _("Message %(id)s no longer exists.") % {"id": message_id}
            await self.send_event(events.error(code="not_found", detail=detail, message=message_id))
            return True
        if not message.is_terminal:
            return False
        if not even_if_streamed and await self.redis.exists(streams.stream_key(message_id)):
            # The answer streamed and finished while the row was read: the live stream is complete, use it.
            return False
        for seq, kind, data in snapshot_entries(message):
            await self.send_event(events.stream_event(kind, message=message_id, seq=seq, data=data))
        return True


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
