"""Whole answers through the real stack: socket → service → rq → real worker → search → openai SDK → test server."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import async_to_sync

from chat import streams
from chat.models import Message
from tests.chat.conftest import communicator, receive, receive_until, send, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)
REPLY = "Full-time employees accrue 1.5 days of paid leave per month [S1], up to 18 days a year."
LONG_REPLY = " ".join(f"word{i}" for i in range(200))


@pytest.fixture
def cookie(client, django_user_model):
    return session_cookie(client, django_user_model.objects.create_user("asker", password="pw-123456"))


def tokens_of(events: list[dict]) -> list[dict]:
    return [event for event in events if event["type"] == "token"]


def test_ask_streams_accepted_sources_tokens_end_and_stores_the_answer(cookie, knowledge_base, chat_worker, llm):
    llm.script(reply=REPLY, tokens_per_second=200)
    question = "연간 유급휴가는 며칠인가요?"

    async def scenario():
        comm = communicator(cookie)
        assert (await comm.connect())[0]
        await send(comm, {"type": "ask", "conversation": None, "content": question, "client_id": "c1"})
        events = await receive_until(comm, {"end", "error"})
        await comm.disconnect()
        return events

    events = async_to_sync(scenario)()
    accepted, sources, *tokens, end = events
    assert accepted["type"] == "accepted" and sources["type"] == "sources" and end["type"] == "end"
    message = Message.objects.get(pk=accepted["message"])
    assert {t["type"] for t in tokens} == {"token"}
    seqs = [e["seq"] for e in events[1:]]
    assert seqs[0] == 1 and seqs == sorted(set(seqs))  # pieces read together arrive joined, with the last seq
    assert "".join(t["text"] for t in tokens) == REPLY == message.content
    assert end["finish_reason"] == "stop" and end["usage"]["completion_tokens"] > 0
    labels = [item["label"] for item in sources["items"]]
    assert labels[: len(knowledge_base.chunks.all())] == ["S1", "S2", "S3"]
    assert {item["document_id"] for item in sources["items"]} == {knowledge_base.pk}
    # The Korean chunk ranks first for a Korean question, and is what the prompt shows as S1.
    assert sources["items"][0]["chunk_id"] == knowledge_base.chunks.get(ordinal=2).pk
    assert message.status == Message.Status.COMPLETE and message.sources == sources["items"]
    assert message.queued_at <= message.started_at <= message.first_token_at <= message.finished_at
    assert message.prompt_tokens > 0 and message.model_name
    sent = llm.requests[-1]["messages"]
    assert sent[0]["role"] == "system" and "정규직 직원은 매월" in sent[0]["content"] and "S1" in sent[0]["content"]
    assert sent[-1] == {"role": "user", "content": question}


def test_stop_cancels_within_a_second_and_keeps_the_partial_text(cookie, knowledge_base, chat_worker, llm):
    llm.script(reply=LONG_REPLY, tokens_per_second=20)

    async def scenario():
        comm = communicator(cookie)
        assert (await comm.connect())[0]
        await send(comm, {"type": "ask", "conversation": None, "content": "leave days?", "client_id": "s1"})
        events = [await receive(comm)]
        while len(tokens_of(events)) < 3:
            events.append(await receive(comm))
        started = time.monotonic()
        await send(comm, {"type": "stop", "message": events[0]["message"]})
        events += await receive_until(comm, {"end", "error"})
        latency = time.monotonic() - started
        await comm.disconnect()
        return events, latency

    events, latency = async_to_sync(scenario)()
    print(f"stop → end latency: {latency * 1000:.0f} ms")
    assert latency < 1.0
    assert events[-1]["type"] == "end" and events[-1]["finish_reason"] == "cancelled"
    message = Message.objects.get(pk=events[0]["message"])
    assert message.status == Message.Status.CANCELLED
    assert message.content == "".join(t["text"] for t in tokens_of(events))
    assert 0 < len(message.content) < len(LONG_REPLY)


def test_resume_after_reconnect_replays_exactly_the_missing_tokens(cookie, knowledge_base, chat_worker, llm):
    reply = " ".join(f"조각{i}" for i in range(40))
    llm.script(reply=reply, tokens_per_second=40)

    async def scenario():
        first = communicator(cookie)
        assert (await first.connect())[0]
        await send(first, {"type": "ask", "conversation": None, "content": "휴가 규정?", "client_id": "r1"})
        before = [await receive(first)]
        while len(tokens_of(before)) < 5:
            before.append(await receive(first))
        await first.disconnect()  # the answer goes on without a reader
        await asyncio.sleep(0.3)
        second = communicator(cookie)
        assert (await second.connect())[0]
        after_seq = before[-1]["seq"]
        await send(second, {"type": "resume", "message": before[0]["message"], "after_seq": after_seq})
        after = await receive_until(second, {"end", "error"})
        await second.disconnect()
        return before, after, after_seq

    before, after, after_seq = async_to_sync(scenario)()
    seqs = [event["seq"] for event in after]
    # What was missed comes first, joined into one token when several pieces waited; nothing is repeated.
    assert seqs[0] > after_seq and seqs == sorted(set(seqs))
    assert after[0]["type"] == "token"
    message = Message.objects.get(pk=before[0]["message"])
    assert message.status == Message.Status.COMPLETE
    joined = "".join(t["text"] for t in tokens_of(before) + tokens_of(after))
    assert joined == message.content == reply


def test_resume_after_the_stream_expired_replays_the_answer_from_the_database(cookie, knowledge_base, chat_worker, llm):
    llm.script(reply=REPLY, tokens_per_second=500)

    async def scenario(payload):
        comm = communicator(cookie)
        assert (await comm.connect())[0]
        await send(comm, payload)
        events = await receive_until(comm, {"end", "error"})
        await comm.disconnect()
        return events

    first = async_to_sync(scenario)({"type": "ask", "conversation": None, "content": "leave?", "client_id": "e1"})
    message_id = first[0]["message"]
    streams.sync_client().delete(streams.stream_key(message_id))
    replay = async_to_sync(scenario)({"type": "resume", "message": message_id, "after_seq": 7})
    assert [e["type"] for e in replay] == ["reset", "sources", "token", "end"]
    assert replay[2]["text"] == REPLY and replay[1]["items"] == first[1]["items"]


@pytest.mark.parametrize(
    ("script", "partial", "code"),
    [
        ({"fail": "500"}, False, None),
        ({"fail": "429", "retry_after": 0.1}, False, None),
        ({"stall_after_tokens": 3}, True, None),
        ({"cut_after_tokens": 3}, True, "stream_interrupted"),
        ({"fail": "abort", "cut_after_tokens": 3}, True, None),
    ],
    ids=["http-500", "http-429", "stall", "cut", "abort"],
)
def test_llm_faults_end_failed_with_readable_detail_and_partial_text(
    cookie, knowledge_base, chat_worker, llm, script, partial, code
):
    llm.script(reply=LONG_REPLY, tokens_per_second=50, **script)

    async def scenario():
        comm = communicator(cookie)
        assert (await comm.connect())[0]
        await send(comm, {"type": "ask", "conversation": None, "content": "leave?", "client_id": "f1"})
        events = await receive_until(comm, {"end", "error"}, timeout=30)
        await comm.disconnect()
        return events

    events = async_to_sync(scenario)()
    error = events[-1]
    assert error["type"] == "error" and error["message"] == events[0]["message"]
    assert error["detail"] and "Traceback" not in error["detail"]
    message = Message.objects.get(pk=events[0]["message"])
    assert message.status == Message.Status.FAILED
    assert message.error == error["detail"] and message.error_code == error["code"]
    assert message.content == "".join(t["text"] for t in tokens_of(events))
    assert bool(message.content) is partial
    if code:
        assert error["code"] == code
    print(f"{script}: {error['code']}: {error['detail']}")
