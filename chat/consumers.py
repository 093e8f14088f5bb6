"""The chat WebSocket: parses requests, calls services, and forwards each answer's Redis stream to the socket.

Handlers return quickly; following an answer runs in its own asyncio task per message, so ``stop``, further asks and
disconnects are handled while tokens flow. A closed socket only stops the forwarding, never the answer.

Bounds (``chat.sockets``): sockets per user, answers followed per socket and per user, frames per second, the bytes
waiting for a client that does not read; and the socket closes within ``CHAT_SESSION_CHECK_SECONDS`` of its session
ending. Sources are shown as the reader may see them now (``chat.selectors.sources_for_reader``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref

import redis.asyncio
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from chat import events, relay, revisions, selectors, services, sockets, streams
from feedback.services import feedback_give
from protostar.aio import database
from protostar.i18n import language_from_scope

logger = logging.getLogger(__name__)
# Not signed in, or the session ended (logout, password change, account deactivated): sign in again.
CLOSE_UNAUTHENTICATED = 4401
# The client did not read what was sent (CHAT_SOCKET_SEND_BUFFER_BYTES waiting): reconnect and ``resume``.
CLOSE_TOO_SLOW = 4408
# The user has CHAT_MAX_SOCKETS_PER_USER sockets open already.
CLOSE_TOO_MANY_SOCKETS = 4429
# How long a client may leave more than CHAT_SOCKET_SEND_BUFFER_BYTES unread before it is closed (4408).
SEND_DRAIN_SECONDS = 5.0
SEND_DRAIN_POLL_SECONDS = 0.05
# How long a follower waits for a published entry before it reads the stream itself (and checks whether the answer
# ended without a live stream).
READ_BLOCK_MS = relay.READ_BLOCK_MS


class ChatConsumer(AsyncWebsocketConsumer):
    # Tokens arrive through Redis streams, not the channel layer, so the socket needs no channel-layer inbox (one
    # blocking Redis connection less per socket; channels-redis' 5 s BZPOPMIN also races redis-py 8's 5 s read
    # timeout and kills long-lived consumers).
    channel_layer_alias = None
    # This process's sockets per user, for the per-user cap on followed answers.
    _sockets_of: dict[int, weakref.WeakSet[ChatConsumer]] = {}

    async def connect(self) -> None:
        self.readers: dict[int, asyncio.Task] = {}
        self.user = None
        self.closing = False
        self.socket_id = sockets.new_socket_id()
        self.frames = sockets.FrameBucket(settings.CHAT_SOCKET_FRAMES_PER_SECOND)
        self.session_watch: asyncio.Task | None = None
        # Readable errors are written in the page's language, chosen once per socket like a page request.
        self.language = language_from_scope(self.scope)
        user = self.scope.get("user")
        # Accept, then close with 4401: a refused handshake reaches browsers only as an anonymous 1006.
        await self.accept()
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if not await self._register_socket(user):
            limit = settings.CHAT_MAX_SOCKETS_PER_USER
            detail = f"You have {limit} chat windows open already; close one and reconnect."
            await self.send_event(events.error(code="too_many_sockets", detail=detail))
            await self.close(code=CLOSE_TOO_MANY_SOCKETS)
            return
        self.user = user
        self._sockets_of.setdefault(user.pk, weakref.WeakSet()).add(self)
        self.session_watch = asyncio.create_task(self._watch_session())

    async def _register_socket(self, user) -> bool:
        """Count this socket against the user's cap; with Redis unreachable (restarting, a stale pooled connection)
        the socket is let in uncounted rather than failing the handshake: the cap is a bound, not a lock."""
        try:
            return await sockets.socket_register(self.redis, user_id=user.pk, socket_id=self.socket_id)
        except streams.REDIS_UNAVAILABLE:
            logger.warning("counting a chat socket failed (Redis unavailable); letting it in", exc_info=True)
            return True

    async def _watch_session(self) -> None:
        """Close the socket once its session no longer signs the user in; keep it counted while it does."""
        session_key = getattr(self.scope.get("session"), "session_key", None)
        while True:
            await asyncio.sleep(settings.CHAT_SESSION_CHECK_SECONDS)
            try:
                valid = await database(sockets.session_still_valid)(session_key=session_key, user_id=self.user.pk)
                await sockets.socket_register(self.redis, user_id=self.user.pk, socket_id=self.socket_id)
            except Exception:
                # The database or Redis is down: not a reason to sign anyone out; try again at the next check.
                logger.warning("checking the session of a chat socket failed", exc_info=True)
                continue
            if not valid:
                await self._shut(CLOSE_UNAUTHENTICATED)
                return

    async def _shut(self, code: int) -> None:
        """Stop following and close with ``code`` (once)."""
        if self.closing:
            return
        self.closing = True
        for task in list(self.readers.values()):
            if task is not asyncio.current_task():
                task.cancel()
        await self.close(code=code)

    @property
    def redis(self) -> redis.asyncio.Redis:
        # Every socket on this loop shares one client (and its connection pool).
        return streams.async_client()

    async def disconnect(self, code: int) -> None:
        self.closing = True
        tasks = list(self.readers.values())
        if self.session_watch is not None:
            tasks.append(self.session_watch)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.user is not None:
            with contextlib.suppress(Exception):  # it lapses by itself if Redis is down
                await sockets.socket_unregister(self.redis, user_id=self.user.pk, socket_id=self.socket_id)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.user is None or self.closing:
            return
        if not self.frames.take():
            # Dropped, not queued: a client flooding frames gets one refusal per frame it sends too many.
            limit = settings.CHAT_SOCKET_FRAMES_PER_SECOND
            detail = f"Too many requests on this connection (at most {limit} a second); this one was ignored."
            await self.send_event(events.error(code="rate_limited", detail=detail, retry_after=1))
            return
        with translation.override(self.language):
            await self._handle(text_data)

    async def _handle(self, text_data: str | None) -> None:
        try:
            request = events.parse_client_request(text_data, max_chars=settings.CHAT_MAX_MESSAGE_CHARS)
            if isinstance(request, events.Ask):
                await self._ask(request)
            elif isinstance(request, events.Stop):
                await database(services.message_request_stop)(user=self.user, message_id=request.message)
            elif isinstance(request, events.Resume):
                await self._resume(request)
            else:
                await self._revise(request)
        except (events.ProtocolError, services.ChatError) as exc:
            await self.send_event(
                events.error(
                    code=exc.code,
                    detail=exc.detail,
                    message=exc.message,
                    retry_after=getattr(exc, "retry_after", None),
                    reset_at=getattr(exc, "reset_at", None),
                )
            )
        except Exception:
            # A fault on our side (database or Redis unreachable…) must not close the socket: say so and stay open.
            logger.exception("chat request failed")
            await self.send_event(
                events.error(code="internal", detail=_("The request could not be processed right now; try again."))
            )

    async def _revise(self, request: events.Regenerate | events.Edit | events.Feedback) -> None:
        """Regenerate, edit and feedback: each one service call, answered like an ask (or ``feedback_saved``)."""
        if isinstance(request, events.Feedback):
            saved = await database(feedback_give)(
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
            result = await database(revisions.answer_regenerate)(
                user=self.user, message_id=request.message, client_id=request.client_id
            )
        else:
            result = await database(revisions.question_edit)(
                user=self.user, message_id=request.message, content=request.content, client_id=request.client_id
            )
        await self.send_event(
            events.accepted(
                conversation=result.conversation_id, user_message=result.user_message_id, message=result.message_id
            )
        )
        self._follow(result.message_id, after_seq=0)

    async def send_event(self, event: events.Event) -> None:
        if self.closing or not await self._room_to_send():
            return
        await self.send(text_data=json.dumps(events.validated(event), ensure_ascii=False))

    async def _room_to_send(self) -> bool:
        """Back-pressure: while more than ``CHAT_SOCKET_SEND_BUFFER_BYTES`` wait for the client, wait for it to read
        (the answers it follows wait too); a client that takes nothing for ``SEND_DRAIN_SECONDS`` is closed."""
        limit = settings.CHAT_SOCKET_SEND_BUFFER_BYTES
        waiting = sockets.pending_bytes(self.base_send) if limit else None
        if waiting is None or waiting <= limit:
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SEND_DRAIN_SECONDS
        while loop.time() < deadline and not self.closing:
            # The server gives no event when its buffer drains: look again shortly.
            await asyncio.sleep(SEND_DRAIN_POLL_SECONDS)
            waiting = sockets.pending_bytes(self.base_send) or 0
            if waiting <= limit:
                return True
        logger.info(
            "closing a chat socket of user %s: %s bytes wait for a client that does not read", self.user, waiting
        )
        await self._shut(CLOSE_TOO_SLOW)
        return False

    def _check_reader_room(self, message_id: int) -> None:
        """Refuse to follow one more answer when this socket, or this user's sockets, follow as many as allowed."""
        if message_id in self.readers:
            return  # a resume replaces the reader it already has
        per_socket, per_user = settings.CHAT_MAX_READERS_PER_SOCKET, settings.CHAT_MAX_READERS_PER_USER
        if per_socket and len(self.readers) >= per_socket:
            detail = f"This connection already follows {per_socket} answers; wait for one to finish."
            raise services.ChatError("too_many_readers", detail, message=message_id or None)
        followed = sum(len(socket.readers) for socket in self._sockets_of.get(self.user.pk, ()))
        if per_user and followed >= per_user:
            detail = f"Your connections already follow {per_user} answers; wait for one to finish."
            raise services.ChatError("too_many_readers", detail, message=message_id or None)

    async def _ask(self, request: events.Ask) -> None:
        self._check_reader_room(0)
        result = await database(services.conversation_ask)(
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
        message = await database(selectors.assistant_message_get_for_user)(message_id=request.message, user=self.user)
        if message is None:
            detail = _("Message %(id)s does not exist.") % {"id": request.message}
            raise services.ChatError("not_found", detail, message=request.message)
        self._check_reader_room(message.pk)
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
        """Follow the answer to its end (``chat.relay``: through lost Redis or database connections, retried with
        backoff from the last seq sent)."""
        # READ_BLOCK_MS is read here, at call time, so it can be tuned per process (and in tests).
        followed = relay.follow_events(message_id, after_seq, reader=self.user, read_block_ms=READ_BLOCK_MS)
        async for event in followed:
            await self.send_event(event)


snapshot_entries = relay.snapshot_entries
