"""``--patch``: experimental variants of ``chat`` code, applied in the wrapped daphne/worker processes.

The first three proposals measured with this switch (consumer ORM calls in the thread pool, the snapshot re-check,
joining queued pieces) are now part of ``chat`` and ``protostar.llm.openai`` themselves; add a new variant here as
a function in ``PATCHES`` to measure the next one against the code as it is.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable


def _logged_duration(log: logging.Logger, label: str, func: Callable) -> Callable:
    """``func`` logging how long each call took, as ``<label> <ms>`` at warning level (worker logs keep it)."""

    def run(*args, **kwargs):
        began = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            log.warning("%s %.2f", label, (time.perf_counter() - began) * 1000)

    return run


def serial_query_passes() -> None:
    """A query's dense and sparse passes one after the other in the asking thread (before they ran at once)."""
    from knowledge import query_embedding, search

    def one_after_the_other(query: str, *, dense: bool, sparse: bool):
        vector = query_embedding.get_embedder().embed_query(query) if dense else None
        return vector, (query_embedding.sparse_literal(query) if sparse else None)

    search.query_embeddings = one_after_the_other


def canned_query_passes() -> None:
    """Diagnosis: each question's dense and sparse passes are replaced by the first question's (computed once), so
    answers start without the embedder's CPU; everything else (search SQL, prompts, streaming) stays real."""
    import threading

    from knowledge import query_embedding, search

    canned: dict[tuple[bool, bool], object] = {}
    lock = threading.Lock()
    real = query_embedding.query_embeddings

    def first_question_passes(query: str, *, dense: bool, sparse: bool):
        with lock:
            if (dense, sparse) not in canned:
                canned[dense, sparse] = real(query, dense=dense, sparse=sparse)
        return canned[dense, sparse]

    search.query_embeddings = first_question_passes


def httpx_transport() -> None:
    """Model streams read over the openai SDK's default transport (h11 over anyio), as before its aiohttp one."""
    import openai

    from protostar.llm.openai import OpenAIChatModel

    def default_transport_client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key or "not-needed", max_retries=0)

    OpenAIChatModel._new_async_client = default_transport_client


def switch_interval_1ms() -> None:
    """The worker's GIL switch interval at 1 ms instead of 5 ms: a thread back from a Redis or database round trip
    waits at most that long for the GIL while other threads run Python."""
    if sys.argv[3:4] != ["daphne"]:  # argv: entry wrapped -- daphne|rqworker …
        sys.setswitchinterval(0.001)


def trace_job_start() -> None:
    """Log, per chat job, how long after its enqueue it was dequeued and began in its thread, and how long the
    dequeue loop's steps and the claim took (``start …`` lines in the worker log; diagnosis of row → job start)."""
    from datetime import UTC, datetime

    from chat import answering, worker

    log = logging.getLogger("bench.start")
    threaded = worker.ThreadedWorker

    def since_enqueue(label: str, method):
        def run(self, job, *args):
            waited = (datetime.now(UTC) - job.enqueued_at.replace(tzinfo=UTC)).total_seconds() * 1000
            log.warning("start %s %.1f", label, waited)
            return method(self, job, *args)

        return run

    for name in ("prepare_execution", "set_state", "dequeue_job_and_maintain_ttl"):
        setattr(threaded, name, _logged_duration(log, f"start step {name}", getattr(threaded, name)))
    threaded.execute_job = since_enqueue("dequeued", threaded.execute_job)
    threaded._perform = since_enqueue("thread", threaded._perform)
    answering.services.message_claim = _logged_duration(log, "start claim", answering.services.message_claim)


def log_gc_pauses() -> None:
    """Log each full garbage collection, and any other over 2 ms, with its pause (``gc genN <ms>`` lines in the
    daphne and worker logs; diagnosis of late tokens)."""
    import gc

    log = logging.getLogger("bench.gc")
    began = [0.0]

    def note(phase: str, info: dict) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
            return
        pause = (time.perf_counter() - began[0]) * 1000
        if info["generation"] == 2 or pause > 2:
            log.warning("gc gen%d %.1f", info["generation"], pause)

    gc.callbacks.append(note)


def no_gc_freeze() -> None:
    """Start-up objects stay in every garbage collection, as before ``protostar.startup.freeze_startup_objects``."""
    import protostar.startup

    protostar.startup.freeze_startup_objects = lambda: 0


def minimal_warm_up() -> None:
    """The chat worker warms only the tokenizer, the model object and the embedder (as before the model client, the
    prompts and the search statistics were loaded too)."""
    from chat import answering

    def warm_up() -> None:
        from protostar.llm.base import get_embedder
        from protostar.tokens import count_tokens

        count_tokens("warm up")
        answering._chat_model()
        get_embedder().embed_query("warm up")

    answering.warm_up = warm_up


def time_job_steps() -> None:
    """Log how long each step of an answer job takes (diagnosis: where the job → model time goes)."""
    from chat import answering

    log = logging.getLogger("bench.steps")
    from knowledge import search

    for name in ("answer_message", "retrieval_query", "retrieve", "build_messages", "generate"):
        setattr(answering, name, _logged_duration(log, f"step {name}", getattr(answering, name)))
    for name in ("query_embeddings", "_build_sql", "_language_groups", "_distinctive", "_hit"):
        setattr(search, name, _logged_duration(log, f"step search.{name}", getattr(search, name)))
    answering.services.message_claim = _logged_duration(log, "step message_claim", answering.services.message_claim)


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
    "canned-query-passes": canned_query_passes,
    "httpx-transport": httpx_transport,
    "switch-interval-1ms": switch_interval_1ms,
    "trace-job-start": trace_job_start,
    "log-gc-pauses": log_gc_pauses,
    "no-gc-freeze": no_gc_freeze,
    "minimal-warm-up": minimal_warm_up,
}


def apply_patches(names: list[str]) -> None:
    if not names:
        return
    import django

    django.setup()
    for name in names:
        PATCHES[name]()
    print(f"bench patches applied: {names}", file=sys.stderr, flush=True)
