"""The chat workers' reconcile and the bound on runs, in-process against the real Redis and PostgreSQL (the fault
suite, ``tests/faults``, kills real workers)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from chat import events, streams
from chat.answering import answer_message
from chat.models import Conversation, Message
from chat.recovery import answers_reconcile, rescue_key
from chat.tasks import ANSWER_JOB
from protostar import queues

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def answer(django_user_model):
    user = django_user_model.objects.create_user("recovery-user", password="pw-123456")
    conversation = Conversation.objects.create(owner=user, title="t")
    question = Message.objects.create(conversation=conversation, role="user", content="연차는?", status="complete")
    message = Message.objects.create(
        conversation=conversation,
        role="assistant",
        reply_to=question,
        status="streaming",
        attempt_id="dead-run",
        attempt_count=1,
        queued_at=timezone.now(),
    )
    yield message
    conn = streams.sync_client()
    conn.delete(rescue_key(message.pk), streams.lease_key(message.pk), streams.stream_key(message.pk))


def test_a_streaming_answer_without_a_lease_is_queued_again_once(answer):
    assert answers_reconcile() == [answer.pk]
    job = ANSWER_JOB.queued_job(answer.pk) or streams.sync_client().exists(f"rq:job:chat-answer-{answer.pk}")
    assert job, "its job was queued (or already taken by a live chat worker)"
    assert answer.pk not in answers_reconcile(), "the next pass does not queue it a second time"


def test_an_answer_whose_run_holds_its_lease_is_left_alone(answer):
    owner = streams.AnswerStream(message_id=answer.pk, attempt_id="live-run", conn=streams.sync_client())
    assert owner.acquire()
    try:
        assert answer.pk not in answers_reconcile()
    finally:
        owner.release()


def test_a_pending_answer_whose_job_is_still_to_run_is_left_alone(answer):
    Message.objects.filter(pk=answer.pk).update(status="pending", queued_at=timezone.now() - timedelta(hours=1))
    # Scheduled an hour ahead, the job is not taken by a chat worker while the test runs, yet it will run.
    job = queues.queue("chat").enqueue_in(
        timedelta(hours=1), ANSWER_JOB.function, answer.pk, job_id=ANSWER_JOB.job_id(answer.pk)
    )
    try:
        assert ANSWER_JOB.queued_job(answer.pk) is not None
        assert answer.pk not in answers_reconcile()
    finally:
        job.delete()
    assert answer.pk in answers_reconcile(), "once the job is gone, the answer is queued again"


def test_an_answer_past_its_last_run_ends_failed_with_what_its_readers_were_shown(answer, settings):
    settings.CHAT_ANSWER_MAX_ATTEMPTS = 1
    dead = streams.AnswerStream(message_id=answer.pk, attempt_id="dead-run", conn=streams.sync_client())
    assert dead.acquire()
    dead.append(events.SOURCES, events.sources_data([]))
    dead.append(events.TOKEN, events.token_data("연차는 최대 "))
    dead.append(events.TOKEN, events.token_data("18일 (half an answer"))
    dead.conn.delete(streams.lease_key(answer.pk))  # its worker died

    assert answer_message(message_id=answer.pk) == Message.Status.FAILED
    answer.refresh_from_db()
    assert answer.content == "연차는 최대 18일 (half an answer" and answer.error_code == "interrupted"
    assert answer.error == events.failure_sentence("interrupted") and "interrupted" in answer.error_detail
    _, kind, data = streams.read_all_sync(dead.conn, answer.pk)[-1]
    assert kind == "error" and data == {"code": "interrupted", "detail": answer.error}
