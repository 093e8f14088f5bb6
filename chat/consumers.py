"""The chat WebSocket: parses requests, calls services, and forwards each answer's Redis stream to the socket.

Handlers return quickly; following an answer runs in its own asyncio task per message, so ``stop``, further asks and
disconnects are handled while tokens flow. A closed socket only stops the forwarding, never the answer.
"""

from __future__ import annotations

import asyncio
import json
import logging

import redis.asyncio
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from chat import events, live, relay, selectors, services, streams

logger = logging.getLogger(__name__)
CLOSE_UNAUTHENTICATED = 4401
# How long a follower waits for a published entry before it reads the stream itself (and checks whether the answer
# ended without a live stream).
READ_BLOCK_MS = relay.READ_BLOCK_MS


_db = relay.database


class ChatConsumer(AsyncWebsocketConsumer):
    # Tokens arrive through Redis streams, not the channel layer, so the socket needs no channel-layer inbox (one
    # blocking Redis connection less per socket; channels-redis' 5 s BZPOPMIN also races redis-py 8's 5 s read
    # timeout and kills long-lived consumers).
    channel_layer_alias = None

    async def connect(self) -> None:
        self.readers: dict[int, asyncio.Task] = {}
        self.user = None
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
        try:
            request = events.parse_client_request(text_data, max_chars=settings.CHAT_MAX_MESSAGE_CHARS)
            if isinstance(request, events.Ask):
                await self._ask(request)
            elif isinstance(request, events.Stop):
                await _db(services.message_request_stop)(user=self.user, message_id=request.message)
            else:
                await self._resume(request)
        except (events.ProtocolError, services.ChatError) as exc:
            await self.send_event(events.error(code=exc.code, detail=exc.detail, message=exc.message))
        except Exception:
            # A fault on our side (database or Redis unreachable…) must not close the socket: say so and stay open.
            logger.exception("chat request failed")
            await self.send_event(
                events.error(code="internal", detail="The request could not be processed right now; try again.")
            )

    async def send_event(self, event: events.Event) -> None:
        await self.send(text_data=json.dumps(events.validated(event), ensure_ascii=False))

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
            raise services.ChatError("not_found", f"Message {request.message} does not exist.", message=request.message)
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
        feed = await live.hub().follow(message_id)
        try:
            await self._relay(message_id, after_seq, feed)
        finally:
            await live.hub().unfollow(message_id, feed)

    async def _relay(self, message_id: int, after_seq: int, feed: asyncio.Queue[bytes]) -> None:
        """Send the answer's entries after ``after_seq``: what the stream holds now, then what is published live."""
        # READ_BLOCK_MS is read here, at call time, so it can be tuned per process (and in tests).
        async for event in relay.relay_events(message_id, after_seq, feed, read_block_ms=READ_BLOCK_MS):
            await self.send_event(event)

    async def _send_snapshot(self, message_id: int) -> bool:
        """Replay a finished answer whose stream expired from the database; ``False`` if it is not finished.
        ``True`` for a deleted answer too, after an ``error`` event: following it is over."""
        replay = await relay.snapshot(message_id)
        if replay is None:
            return False
        for event in replay:
            await self.send_event(event)
        return True


snapshot_entries = relay.snapshot_entries
