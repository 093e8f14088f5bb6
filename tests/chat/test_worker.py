"""One ``ThreadedWorker`` process streams many answers at once instead of one after another."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import connections

from chat.models import Message
from tests.chat.conftest import communicator, receive_until, send, session_cookie
from tests.conftest import frozen_startup_objects

pytestmark = pytest.mark.django_db(transaction=True)
PARALLEL = 20
TOKENS_PER_SECOND = 20
REPLY = " ".join(f"t{i}" for i in range(40))  # ~2 s per answer at 20 tokens/s


class StreamingCounter(threading.Thread):
    """Samples how many answers are ``streaming`` at the same moment."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        try:
            while not self.done.is_set():
                self.peak = max(self.peak, Message.objects.filter(status=Message.Status.STREAMING).count())
                time.sleep(0.05)
        finally:
            connections.close_all()


def test_twenty_parallel_asks_stream_concurrently(client, django_user_model, knowledge_base, chat_worker, llm):
    llm.script(reply=REPLY, tokens_per_second=TOKENS_PER_SECOND)
    cookie = session_cookie(client, django_user_model.objects.create_user("many", password="pw-123456"))

    async def one(index: int) -> list[dict]:
        comm = communicator(cookie)
        assert (await comm.connect())[0]
        ask = {"type": "ask", "conversation": None, "content": f"leave days {index}?", "client_id": str(index)}
        await send(comm, ask)
        events = await receive_until(comm, {"end", "error"}, timeout=60)
        await comm.disconnect()
        return events

    async def scenario() -> list[list[dict]]:
        return await asyncio.gather(*(one(i) for i in range(PARALLEL)))

    counter = StreamingCounter()
    counter.start()
    started = time.monotonic()
    results = async_to_sync(scenario)()
    elapsed = time.monotonic() - started
    counter.done.set()
    counter.join(5)

    single = len(REPLY.split()) / TOKENS_PER_SECOND
    arrivals = sorted(request["received_at"] for request in llm.requests)
    spread = arrivals[-1] - arrivals[0]
    print(
        f"{PARALLEL} asks: peak {counter.peak} streaming at once, all done in {elapsed:.2f} s "
        f"(one answer ≈ {single:.1f} s, one at a time ≈ {PARALLEL * single:.0f} s); "
        f"LLM requests spread over {spread:.2f} s"
    )
    assert all(events[-1]["type"] == "end" for events in results)
    assert Message.objects.filter(role="assistant", status=Message.Status.COMPLETE).count() == PARALLEL
    assert counter.peak >= PARALLEL * 3 // 4
    assert elapsed < PARALLEL * single / 4


def test_a_question_asked_while_an_answer_streams_is_embedded_at_the_lower_priority(
    client, django_user_model, knowledge_base, chat_worker, llm
):
    llm.script(reply=REPLY, tokens_per_second=TOKENS_PER_SECOND)
    cookie = session_cookie(client, django_user_model.objects.create_user("nice", password="pw-123456"))

    async def scenario() -> tuple[list[dict], list[dict]]:
        first, second = communicator(cookie), communicator(cookie)
        assert (await first.connect())[0] and (await second.connect())[0]
        await send(first, {"type": "ask", "conversation": None, "content": "leave days?", "client_id": "a"})
        await receive_until(first, {"token"}, timeout=30)
        await send(second, {"type": "ask", "conversation": None, "content": "remote work?", "client_id": "b"})
        ends = await asyncio.gather(
            receive_until(first, {"end", "error"}, timeout=60), receive_until(second, {"end", "error"}, timeout=60)
        )
        await first.disconnect()
        await second.disconnect()
        return ends

    first_events, second_events = async_to_sync(scenario)()
    assert first_events[-1]["type"] == second_events[-1]["type"] == "end"
    # The second question's passes ran on the two lowered threads; the rest of the worker kept its own priority
    # (which questions asked into a quiet worker use: tests/knowledge/test_query_embedding.py).
    niceness = thread_niceness(chat_worker.process.pid)
    assert niceness.count(settings.CHAT_QUERY_NICENESS) == 2, niceness
    assert niceness.count(0) == len(niceness) - 2


def thread_niceness(pid: int) -> list[int]:
    """The nice value of each thread of a process (field 19 of /proc/<pid>/task/<tid>/stat)."""
    values = []
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        fields = stat.read_text().rsplit(")", 1)[1].split()
        values.append(int(fields[16]))
    return values


def test_plain_heartbeats_are_sent_at_most_once_a_second_and_job_beats_always():
    import django_rq

    from chat.worker import HEARTBEAT_INTERVAL_SECONDS, ThreadedWorker

    conn = django_rq.get_connection("chat")
    worker = ThreadedWorker(["chat"], connection=conn, threads=2)
    try:
        worker.heartbeat()
        first = conn.hget(worker.key, "last_heartbeat")
        assert first is not None and 0 < conn.ttl(worker.key) <= worker.worker_ttl + 60
        for _ in range(5):  # rq beats around every dequeue: these add no Redis round trip
            worker.heartbeat()
        assert conn.hget(worker.key, "last_heartbeat") == first
        worker.heartbeat(timeout=600)  # rq extending the key for a long job: always sent
        extended = conn.hget(worker.key, "last_heartbeat")
        assert extended != first and conn.ttl(worker.key) > worker.worker_ttl + 60
        time.sleep(HEARTBEAT_INTERVAL_SECONDS + 0.05)
        worker.heartbeat()
        assert conn.hget(worker.key, "last_heartbeat") != extended
    finally:
        conn.delete(worker.key)
        worker._pool.shutdown()


def test_an_answer_counts_as_generating_from_its_token_stream_until_it_is_forgotten():
    from chat import answering, streams
    from chat.watch import answer_watcher

    class Tokens:
        def close(self) -> None:
            pass

    owner = streams.AnswerStream(message_id=987_654, attempt_id="a", conn=streams.sync_client())
    watch = answer_watcher().watch(owner)
    try:
        assert not answering.answers_streaming()  # claimed and retrieving: not generating yet
        watch.attach(Tokens())
        assert answering.answers_streaming()
    finally:
        answer_watcher().forget(watch)
    assert not answering.answers_streaming()


def test_the_worker_leaves_its_start_up_objects_out_of_garbage_collection(chat_worker):
    # Full collections over them paused the process for 30–120 ms under load (docs/benchmarks.md).
    assert frozen_startup_objects(chat_worker) > 100_000


def test_warm_up_survives_a_part_that_fails_and_says_which(monkeypatch, caplog):
    from chat import answering

    def unavailable():
        raise RuntimeError("statistics unavailable")

    monkeypatch.setattr("chat.answering.load_statistics", unavailable)
    with caplog.at_level(logging.WARNING, logger="chat.answering"):
        answering.warm_up()
    assert "the search statistics could not be loaded ahead of the first job" in caplog.text
    assert "statistics unavailable" in caplog.text
