"""Live entries for the sockets of one process: one Redis pub/sub connection carries every followed answer.

An answer's Redis stream stays the record (resume, replay, catching up). The append script also publishes each entry
on the answer's channel, so a socket that keeps up gets every entry pushed to it instead of asking Redis for the next
one (one blocking ``XREAD`` round trip per token and socket). Measured with 100 answers × 200 tokens at 30 tokens/s:
the reading side spent 1.9–2.8 CPU-s on pub/sub against 4.0–7.2 CPU-s for per-socket ``XREAD`` loops.

Pub/sub delivers at most once (nothing while a connection is down), so a follower never trusts it alone: entries
carry their seq, a gap or a quiet spell makes the follower read the stream (``chat.consumers``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import redis.asyncio
from django.conf import settings

from chat import streams
from protostar.llm import aio

logger = logging.getLogger(__name__)
# Put in every feed when the connection dropped: whatever was published meanwhile is lost, read the stream.
RESYNC = b""
# How long ``follow`` waits for Redis to confirm a subscription before relying on the follower's stream checks.
SUBSCRIBE_WAIT_SECONDS = 2.0
# Pauses between attempts to reconnect a lost pub/sub connection (the last repeats); they only pace the retries.
RECONNECT_PAUSES = (0.25, 0.5, 1.0, 2.0, 4.0)


@dataclass
class LiveHub:
    """The pub/sub connection of one event loop, open while at least one socket follows an answer."""

    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _client: redis.asyncio.Redis | None = None
    _pubsub: redis.asyncio.client.PubSub | None = None
    _pump: asyncio.Task | None = None
    _feeds: dict[bytes, set[asyncio.Queue[bytes]]] = field(default_factory=dict)
    _subscribed: dict[bytes, asyncio.Future[None]] = field(default_factory=dict)

    async def follow(self, message_id: int) -> asyncio.Queue[bytes]:
        """A feed of the answer's published entries (raw payloads, see ``streams.parse_published``), subscribed
        before it is returned, so an entry written after this call is either in the feed or noticed as a gap."""
        channel = streams.live_channel(message_id).encode()
        feed: asyncio.Queue[bytes] = asyncio.Queue()
        async with self._lock:
            if self._pubsub is None:
                self._open()
            self._feeds.setdefault(channel, set()).add(feed)
            try:
                confirmed = await self._subscribe(channel)
            except BaseException:  # also a socket closed meanwhile (cancelled): leave nothing subscribed behind
                await self._leave(channel, feed)
                raise
        try:
            await asyncio.wait_for(asyncio.shield(confirmed), SUBSCRIBE_WAIT_SECONDS)
        except TimeoutError:
            logger.warning("no confirmation of the subscription to %s yet; following the stream alone", channel)
        except BaseException:
            await self.unfollow(message_id, feed)
            raise
        return feed

    async def _subscribe(self, channel: bytes) -> asyncio.Future[None]:
        if channel not in self._subscribed:
            self._subscribed[channel] = asyncio.get_running_loop().create_future()
            await self._pubsub.subscribe(channel)
            if self._pump is None:  # reading needs the connection that the first subscription opens
                # redis-py reconnects a dropped connection on its own (and subscribes again) before it calls this.
                self._pubsub.connection.register_connect_callback(self._reconnected)
                self._pump = asyncio.create_task(self._deliver(self._pubsub))
        return self._subscribed[channel]

    async def unfollow(self, message_id: int, feed: asyncio.Queue[bytes]) -> None:
        async with self._lock:
            await self._leave(streams.live_channel(message_id).encode(), feed)

    async def _leave(self, channel: bytes, feed: asyncio.Queue[bytes]) -> None:
        feeds = self._feeds.get(channel, set())
        feeds.discard(feed)
        if feeds:
            return
        self._feeds.pop(channel, None)
        self._subscribed.pop(channel, None)
        if self._feeds:
            try:
                await self._pubsub.unsubscribe(channel)
            except Exception:  # the connection is down: nothing to leave; the reconnect resubscribes only the rest
                logger.warning("unsubscribing from %s failed", channel, exc_info=True)
        else:
            await self._close()

    def _reconnected(self, connection: object) -> None:
        self._resync_all()

    def _resync_all(self) -> None:
        for feeds in self._feeds.values():
            for feed in feeds:
                feed.put_nowait(RESYNC)

    def _open(self) -> None:
        # No read timeout: a quiet subscription is normal.
        self._client = redis.asyncio.Redis.from_url(settings.REDIS_URL, socket_keepalive=True)
        self._pubsub = self._client.pubsub()

    async def _close(self) -> None:
        pump, pubsub, client = self._pump, self._pubsub, self._client
        self._pump = self._pubsub = self._client = None
        if pump is not None:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
        for closable in (pubsub, client):
            if closable is not None:
                try:
                    await closable.aclose()
                except Exception:
                    logger.debug("closing the pub/sub connection failed", exc_info=True)

    async def _deliver(self, pubsub: redis.asyncio.client.PubSub) -> None:
        failures = 0
        while True:
            try:
                message = await pubsub.get_message(timeout=None)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Reconnecting failed too: try again shortly; meanwhile the followers read their streams.
                logger.warning("pub/sub connection lost", exc_info=True)
                self._resync_all()
                await asyncio.sleep(RECONNECT_PAUSES[min(failures, len(RECONNECT_PAUSES) - 1)])
                failures += 1
                continue
            failures = 0
            if message is None:
                continue
            if message["type"] == "message":
                for feed in self._feeds.get(message["channel"], ()):
                    feed.put_nowait(message["data"])
            elif message["type"] == "subscribe":
                confirmed = self._subscribed.get(message["channel"])
                if confirmed is not None and not confirmed.done():
                    confirmed.set_result(None)


_hubs = aio.loop_cache()


def hub() -> LiveHub:
    """The running loop's hub (daphne has one loop; tests make several)."""
    return aio.for_running_loop(_hubs, LiveHub)
