"""Who may ask now, through real sockets and two real users: asks per minute, answers in flight, quotas (before any
model call), and the fair queue that keeps one user's flood from standing in front of another user's question."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Group
from django.utils import timezone

from chat import dispatch, streams
from chat.answering import answer_message
from chat.models import Conversation, Message
from protostar import queues
from tests.chat.conftest import communicator, receive, receive_until, send, session_cookie
from tests.conftest import wait_until
from usage.models import QuotaLimit, UsageDay

pytestmark = pytest.mark.django_db(transaction=True)
QUESTIONS = ["연차는 며칠인가요?", "How many leave days do I get?"]


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="pw-123456")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="pw-123456")


@pytest.fixture
def no_chat_jobs():
    """The chat queue emptied before and after: these tests look at what is queued, with no worker taking it."""
    queue = queues.queue("chat")
    queue.empty()
    yield queue
    queue.empty()


def ask_many(cookie: bytes, count: int, prefix: str) -> list[dict]:
    """Send ``count`` asks on one socket and return the reply to each (``accepted`` or ``error``)."""

    async def scenario():
        comm = communicator(cookie)
        assert (await comm.connect())[0]
        replies = []
        for index in range(count):
            content = f"{QUESTIONS[index % 2]} ({prefix} {index})"
            await send(comm, {"type": "ask", "conversation": None, "content": content, "client_id": f"{prefix}{index}"})
            reply = await receive(comm)
            while reply["type"] not in ("accepted", "error") or (reply["type"] == "error" and "message" in reply):
                reply = await receive(comm)  # stream events of answers asked before
            replies.append(reply)
        await comm.disconnect()
        return replies

    return async_to_sync(scenario)()


def test_asks_over_the_rate_are_refused_with_retry_after_and_other_users_still_ask(
    client, alice, bob, settings, no_chat_jobs
):
    settings.CHAT_ASKS_PER_MINUTE = 3
    replies = ask_many(session_cookie(client, alice), 4, "a")
    assert [reply["type"] for reply in replies] == ["accepted", "accepted", "accepted", "error"]
    refused = replies[-1]
    assert refused["code"] == "rate_limited" and 1 <= refused["retry_after"] <= 60 and refused["detail"]
    assert Message.objects.filter(conversation__owner=alice, role="user").count() == 3
    assert [reply["type"] for reply in ask_many(session_cookie(client, bob), 1, "b")] == ["accepted"]


def test_a_retried_ask_is_not_refused_by_the_rate(client, alice, settings, no_chat_jobs):
    settings.CHAT_ASKS_PER_MINUTE = 1
    cookie = session_cookie(client, alice)

    async def scenario():
        comm = communicator(cookie)
        assert (await comm.connect())[0]
        replies = []
        for _ in range(2):
            await send(comm, {"type": "ask", "conversation": None, "content": "휴가 규정?", "client_id": "same"})
            replies.append(await receive(comm))
        await comm.disconnect()
        return replies

    first, again = async_to_sync(scenario)()
    assert first["type"] == again["type"] == "accepted" and first["message"] == again["message"]


def test_open_answers_are_capped_per_user_and_a_stop_makes_room(client, alice, bob, settings, no_chat_jobs):
    settings.CHAT_MAX_OPEN_ANSWERS = 2
    settings.CHAT_ASKS_PER_MINUTE = 0
    replies = ask_many(session_cookie(client, alice), 3, "o")
    assert [reply["type"] for reply in replies] == ["accepted", "accepted", "error"]
    assert replies[2]["code"] == "too_many_open_answers" and replies[2]["retry_after"] > 0
    assert [reply["type"] for reply in ask_many(session_cookie(client, bob), 2, "p")] == ["accepted", "accepted"]

    async def stop_then_ask(cookie):
        comm = communicator(cookie)
        assert (await comm.connect())[0]
        await send(comm, {"type": "stop", "message": replies[0]["message"]})
        await send(comm, {"type": "resume", "message": replies[0]["message"], "after_seq": 0})
        await receive_until(comm, {"end"})
        await send(comm, {"type": "ask", "conversation": None, "content": "Remote work?", "client_id": "after"})
        reply = await receive(comm)
        await comm.disconnect()
        return reply

    assert async_to_sync(stop_then_ask)(session_cookie(client, alice))["type"] == "accepted"


def test_quota_refuses_before_any_model_call_with_the_reset_time(client, alice, bob, settings, no_chat_jobs):
    QuotaLimit.objects.create(user=alice, period="day", max_answers=2)
    UsageDay.objects.create(user=alice, day=timezone.localdate(), answers=2, prompt_tokens=900, completion_tokens=40)
    replies = ask_many(session_cookie(client, alice), 1, "q")
    refused = replies[0]
    assert refused["type"] == "error" and refused["code"] == "quota_exceeded"
    tomorrow = timezone.localdate() + timedelta(days=1)
    assert refused["reset_at"].startswith(tomorrow.isoformat())
    assert 0 < refused["retry_after"] <= 86400 and tomorrow.isoformat() in refused["detail"]
    assert not Message.objects.filter(conversation__owner=alice).exists()
    assert ask_many(session_cookie(client, bob), 1, "r")[0]["type"] == "accepted"


def test_group_quota_counts_its_members_together_and_monthly_tokens(client, alice, bob, django_user_model):
    team = Group.objects.create(name="마케팅")
    carol = django_user_model.objects.create_user("carol", password="pw-123456")
    for member in (alice, carol):
        member.groups.add(team)
    QuotaLimit.objects.create(group=team, period="month", max_tokens=1000)
    UsageDay.objects.create(user=carol, day=timezone.localdate(), answers=3, prompt_tokens=700, completion_tokens=200)
    assert ask_many(session_cookie(client, alice), 1, "g")[0]["type"] == "accepted"
    UsageDay.objects.filter(user=carol).update(summary_prompt_tokens=100)
    refused = ask_many(session_cookie(client, alice), 1, "h")[0]
    assert refused["code"] == "quota_exceeded" and "group" in refused["detail"]
    next_month = (timezone.localdate().replace(day=1) + timedelta(days=32)).replace(day=1)
    assert refused["reset_at"].startswith(next_month.isoformat())
    assert ask_many(session_cookie(client, bob), 1, "i")[0]["type"] == "accepted"  # not in the group


def test_a_queued_answer_over_the_quota_fails_before_retrieval_and_the_model(alice, no_chat_jobs):
    conversation = Conversation.objects.create(owner=alice, title="q")
    question = Message.objects.create(conversation=conversation, role="user", content="연차?", status="complete")
    pending = Message.objects.create(conversation=conversation, role="assistant", reply_to=question)
    QuotaLimit.objects.create(user=alice, period="day", max_tokens=100)
    UsageDay.objects.create(user=alice, day=timezone.localdate(), completion_tokens=100)

    assert answer_message(message_id=pending.pk) == Message.Status.FAILED
    pending.refresh_from_db()
    assert pending.error_code == "quota_exceeded" and pending.content == "" and pending.sources == []
    kinds = [kind for _, kind, _ in streams.read_all_sync(streams.sync_client(), pending.pk)]
    assert kinds == ["error"]  # no sources: nothing was retrieved, no model was asked


def test_one_users_flood_waits_in_their_backlog_behind_another_users_question(alice, bob, settings, monkeypatch):
    settings.CHAT_USER_ACTIVE_ANSWERS = 2
    # What the dispatch hands to the shared queue, in order (the session's chat worker would take real jobs).
    handed: list[int] = []
    monkeypatch.setattr(dispatch, "_enqueue", lambda message_ids, user_id: handed.extend(message_ids))
    flood = [dispatch_one(alice, f"flood {i}") for i in range(6)]
    assert dispatch.backlog_length(user_id=alice.pk) == 4
    single = dispatch_one(bob, "한 가지 질문")

    def queued() -> list[int]:
        return list(handed)

    assert queued() == [flood[0], flood[1], single]
    # One of alice's answers ends: her next question takes its slot, behind bob's.
    dispatch.answer_done(message_id=flood[0], user_id=alice.pk)
    assert queued() == [flood[0], flood[1], single, flood[2]]
    dispatch.answer_done(message_id=flood[0], user_id=alice.pk)  # a job run twice frees nothing more
    assert queued()[-1] == flood[2] and dispatch.backlog_length(user_id=alice.pk) == 3


def dispatch_one(user, content: str) -> int:
    conversation = Conversation.objects.create(owner=user, title=content)
    question = Message.objects.create(conversation=conversation, role="user", content=content, status="complete")
    answer = Message.objects.create(conversation=conversation, role="assistant", reply_to=question)
    dispatch.answer_submit(message_id=answer.pk, user_id=user.pk)
    return answer.pk


def test_every_question_of_a_backlog_is_answered_by_the_real_worker(
    client, alice, bob, settings, knowledge_base, chat_worker, llm
):
    settings.CHAT_ASKS_PER_MINUTE = 0
    settings.CHAT_MAX_OPEN_ANSWERS = 0
    settings.CHAT_USER_ACTIVE_ANSWERS = 2
    llm.script(reply="1.5 days a month [S1].", tokens_per_second=500)
    replies = ask_many(session_cookie(client, alice), 8, "w") + ask_many(session_cookie(client, bob), 1, "x")
    ids = [reply["message"] for reply in replies]

    def all_done() -> bool:
        return Message.objects.filter(pk__in=ids, status=Message.Status.COMPLETE).count() == len(ids)

    wait_until(all_done, timeout=120, message="every queued answer")
    assert dispatch.backlog_length(user_id=alice.pk) == 0
    assert UsageDay.objects.get(user=alice).answers == 8 and UsageDay.objects.get(user=bob).answers == 1
