"""``--patch``: experimental variants of ``chat`` code, applied in the wrapped daphne/worker processes.

The first three proposals measured with this switch (consumer ORM calls in the thread pool, the snapshot re-check,
joining queued pieces) are now part of ``chat`` and ``protostar.llm.openai`` themselves; add a new variant here as
a function in ``PATCHES`` to measure the next one against the code as it is.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


def serial_query_passes() -> None:
    """A query's dense and sparse passes one after the other in the asking thread (before they ran at once)."""
    from knowledge import query_embedding, search

    def one_after_the_other(query: str, *, dense: bool, sparse: bool):
        vector = query_embedding.get_embedder().embed_query(query) if dense else None
        return vector, (query_embedding.sparse_literal(query) if sparse else None)

    search.query_embeddings = one_after_the_other


def time_job_steps() -> None:
    """Log how long each step of an answer job takes (diagnosis: where the job → model time goes)."""
    import logging
    import time

    from chat import answering

    log = logging.getLogger("bench.steps")

    def timed(name: str, func):
        def run(*args, **kwargs):
            started = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                log.warning("step %s %.1f ms", name, (time.perf_counter() - started) * 1000)

        return run

    for name in ("answer_message", "retrieval_query", "retrieve", "build_messages", "generate"):
        setattr(answering, name, timed(name, getattr(answering, name)))
    answering.services.message_claim = timed("message_claim", answering.services.message_claim)


def xread_follow() -> None:
    """Each socket follows its answer with its own blocking ``XREAD`` loop (before entries were pushed through
    pub/sub, ``chat.live``)."""
    from chat import consumers, events, streams

    async def forward(self, message_id: int, after_seq: int) -> None:
        last = after_seq
        if not await self.redis.exists(streams.stream_key(message_id)) and await self._send_snapshot(message_id):
            return
        while True:
            key = streams.stream_key(message_id)
            reply = await self.redis.xread({key: f"0-{last}"}, count=500, block=consumers.READ_BLOCK_MS)
            entries = streams.decode_entries(reply[0][1]) if reply else []
            for seq, kind, data in streams.join_token_runs(entries):
                await self.send_event(events.stream_event(kind, message=message_id, seq=seq, data=data))
                last = seq
                if kind in events.FINAL_EVENT_TYPES:
                    return
            expired = not entries and not await self.redis.exists(key)
            if expired and await self._send_snapshot(message_id):
                return

    consumers.ChatConsumer._forward = forward


PATCHES: dict[str, Callable[[], None]] = {
    "xread-follow": xread_follow,
    "serial-query-passes": serial_query_passes,
    "time-job-steps": time_job_steps,
}


def apply_patches(names: list[str]) -> None:
    if not names:
        return
    import django

    django.setup()
    for name in names:
        PATCHES[name]()
    print(f"bench patches applied: {names}", file=sys.stderr, flush=True)
