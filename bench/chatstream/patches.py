"""``--patch``: experimental variants of ``chat`` code, applied in the wrapped daphne/worker processes."""

from __future__ import annotations

import sys

PATCHES = {
    "db-threads": "the consumer's ORM calls on the default executor (thread_sensitive=False) instead of one thread",
    "snapshot-recheck": "the consumer replays a stored answer only if the live stream is still absent after the read",
    "coalesce": "the job appends every piece already queued by the model reader in one stream entry",
}


def apply_patches(names: list[str]) -> None:
    """Experimental variants of ``chat.consumers`` for measuring proposals (the code in ``chat/`` is unchanged)."""
    if not names:
        return
    import django

    django.setup()
    from channels.db import DatabaseSyncToAsync

    from chat import consumers, streams

    if "db-threads" in names:
        consumers.database_sync_to_async = lambda func: DatabaseSyncToAsync(func, thread_sensitive=False)
    if "snapshot-recheck" in names:
        original = consumers.ChatConsumer._send_snapshot

        async def _send_snapshot(self, message_id: int) -> bool:
            message = await consumers.database_sync_to_async(consumers.selectors.message_get)(message_id=message_id)
            if message is None or not message.is_terminal:
                return False
            if await self.redis.exists(streams.stream_key(message_id)):
                return False  # the answer was written while the row was read: follow the live stream
            return await original(self, message_id)

        consumers.ChatConsumer._send_snapshot = _send_snapshot
    if "coalesce" in names:
        import queue

        from protostar.llm.openai import OpenAITokenStream

        def __iter__(self):
            pending = None
            while not self._done:
                kind, value = pending or self._queue.get()
                pending = None
                if self._closed.is_set():
                    break
                if kind == "piece":
                    parts = [value]
                    while True:  # a backlog becomes one append (one Redis entry, one frame) instead of one each
                        try:
                            item = self._queue.get_nowait()
                        except queue.Empty:
                            break
                        if item[0] != "piece":
                            pending = item
                            break
                        parts.append(item[1])
                    yield "".join(parts)
                elif kind == "error":
                    self._done = True
                    raise value
                else:
                    break
            self._done = True

        OpenAITokenStream.__iter__ = __iter__
    print(f"bench patches applied: {names}", file=sys.stderr, flush=True)
