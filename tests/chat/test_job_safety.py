"""The answer job run in-process (real Redis, PostgreSQL, search, openai SDK): re-runs never duplicate or interleave."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections
from django.test import override_settings

from chat import events, services, streams
from chat.answering import answer_message
from chat.models import Conversation, Message

pytestmark = pytest.mark.django_db(transaction=True)
OPENAI_BACKEND = "protostar.llm.openai.OpenAIChatModel"
REPLY = "Employees accrue 1.5 days of leave per month [S1]."


@pytest.fixture
def openai_settings(llm):
    with override_settings(LLM_BASE_URL=llm.base_url, CHAT_MODEL_BACKEND=OPENAI_BACKEND, LLM_MAX_RETRIES=0):
        yield llm


@pytest.fixture
def pending(django_user_model, knowledge_base):
    """A question and its pending answer, created without queueing a job (the test runs the job itself)."""
    user = django_user_model.objects.create_user("job-user", password="pw-123456")
    conversation = Conversation.objects.create(owner=user, title="t")
    question = Message.objects.create(conversation=conversation, role="user", content="leave days?", status="complete")
    return Message.objects.create(conversation=conversation, role="assistant", reply_to=question, status="pending")


def entries(message_id: int) -> list[tuple[int, str, dict]]:
    return streams.read_all_sync(streams.sync_client(), message_id)


def run_in_threads(count: int, message_id: int) -> list[str | None]:
    results: list[str | None] = []
    barrier = threading.Barrier(count)

    def run() -> None:
        barrier.wait()
        try:
            results.append(answer_message(message_id=message_id))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_two_runs_at_once_produce_one_answer(openai_settings, pending):
    openai_settings.script(reply=REPLY, tokens_per_second=100)
    results = run_in_threads(2, pending.pk)
    assert sorted(results, key=lambda result: result or "") == [None, "complete"]
    stream = entries(pending.pk)
    kinds = [kind for _, kind, _ in stream]
    assert kinds.count("sources") == 1 and kinds.count("end") == 1 and kinds[-1] == "end"
    assert [seq for seq, _, _ in stream] == list(range(1, len(stream) + 1))
    pending.refresh_from_db()
    assert pending.content == REPLY == "".join(data["text"] for _, kind, data in stream if kind == "token")
    assert len(openai_settings.requests) == 1 and pending.attempt_count == 1
    # A third run after the end does nothing at all.
    assert answer_message(message_id=pending.pk) is None
    assert len(entries(pending.pk)) == len(stream)


def test_rerun_after_a_dead_run_resets_the_stream_and_fences_the_dead_run_out(openai_settings, pending):
    openai_settings.script(reply=REPLY, tokens_per_second=500)
    conn = streams.sync_client()
    dead = streams.AnswerStream(message_id=pending.pk, attempt_id="dead-run", conn=conn)
    assert dead.acquire()
    Message.objects.filter(pk=pending.pk).update(status="streaming", attempt_id="dead-run", attempt_count=1)
    dead.append(events.SOURCES, events.sources_data([]))
    dead.append(events.TOKEN, events.token_data("half an ans"))
    conn.delete(streams.lease_key(pending.pk))  # its worker died: the lease lapses

    assert answer_message(message_id=pending.pk) == "complete"
    stream = entries(pending.pk)
    kinds = [kind for _, kind, _ in stream]
    assert kinds[:4] == ["sources", "token", "reset", "sources"] and kinds[-1] == "end"
    assert [seq for seq, _, _ in stream] == list(range(1, len(stream) + 1))
    after_reset = [data["text"] for _, kind, data in stream[3:] if kind == "token"]
    pending.refresh_from_db()
    assert "".join(after_reset) == pending.content == REPLY and pending.attempt_count == 2
    # The dead run waking up can neither append nor overwrite the stored answer.
    with pytest.raises(streams.LeaseLost):
        dead.append(events.TOKEN, events.token_data("late"))
    outcome = services.AnswerOutcome(status="failed", content="stale")
    assert services.message_finish(message_id=pending.pk, attempt_id="dead-run", outcome=outcome) is False
    pending.refresh_from_db()
    assert pending.content == REPLY and pending.status == Message.Status.COMPLETE


def test_a_run_whose_lease_is_taken_mid_stream_stops_writing_at_once(openai_settings, pending):
    openai_settings.script(reply=" ".join(f"w{i}" for i in range(200)), tokens_per_second=40)
    conn = streams.sync_client()
    results: list[str | None] = []

    def answer() -> None:
        try:
            results.append(answer_message(message_id=pending.pk))
        finally:
            connections.close_all()  # a thread's pooled connection goes back before the thread ends

    run = threading.Thread(target=answer)
    run.start()
    deadline = time.monotonic() + 10
    while sum(kind == "token" for _, kind, _ in entries(pending.pk)) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)

    conn.set(streams.lease_key(pending.pk), "another-run", px=30_000)  # another run owns the answer now
    taken_at = time.monotonic()
    run.join(5)
    written = len(entries(pending.pk))
    time.sleep(0.3)

    assert not run.is_alive() and results == [None]  # superseded: it neither finished nor failed the answer
    assert time.monotonic() - taken_at < 5
    assert len(entries(pending.pk)) == written  # and it wrote nothing after the takeover was seen
    pending.refresh_from_db()
    assert pending.status == Message.Status.STREAMING and pending.content == ""
    conn.delete(streams.lease_key(pending.pk))


def test_job_for_a_deleted_message_returns_quietly(openai_settings, pending):
    message_id = pending.pk
    pending.conversation.delete()
    assert answer_message(message_id=message_id) is None
    assert entries(message_id) == [] and openai_settings.requests == []


def test_stop_before_the_job_starts_cancels_and_the_job_then_does_nothing(openai_settings, pending):
    services.message_request_stop(user=pending.conversation.owner, message_id=pending.pk)
    pending.refresh_from_db()
    assert pending.status == Message.Status.CANCELLED
    assert [(kind, data["finish_reason"]) for _, kind, data in entries(pending.pk)] == [("end", "cancelled")]
    assert answer_message(message_id=pending.pk) is None
    assert openai_settings.requests == []


def test_connection_refused_fails_with_a_readable_detail(pending):
    closed_port = "http://127.0.0.1:9/v1"
    with override_settings(LLM_BASE_URL=closed_port, CHAT_MODEL_BACKEND=OPENAI_BACKEND, LLM_MAX_RETRIES=0):
        assert answer_message(message_id=pending.pk) == "failed"
    pending.refresh_from_db()
    # The address is for staff (error_detail, the log); the user reads a sentence that names no server.
    assert pending.status == Message.Status.FAILED and "127.0.0.1:9" in pending.error_detail
    assert "127.0.0.1" not in pending.error and pending.error
    _, kind, data = entries(pending.pk)[-1]
    assert kind == "error" and data == {"code": pending.error_code, "detail": pending.error}
    print(f"connection refused: {pending.error_code}: {pending.error} ({pending.error_detail})")
