"""Live delivery through pub/sub (``chat.live``) against the real Redis: pushed entries, and no loss when pub/sub
drops some (a lost publish, a killed connection, an unpublished last entry)."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from chat import consumers, events, live, streams
from chat.models import Conversation, Message
from tests.chat.conftest import communicator, receive, receive_until, send, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def answer(django_user_model, client):
    """A pending answer of a signed-in user, its writer (holding the lease) and the user's session cookie."""
    user = django_user_model.objects.create_user(f"live-{uuid.uuid4().hex[:8]}", password="pw-123456")
    conversation = Conversation.objects.create(owner=user, title="t")
    question = Message.objects.create(conversation=conversation, role="user", content="q", status="complete")
    message = Message.objects.create(conversation=conversation, role="assistant", reply_to=question, status="pending")
    writer = streams.AnswerStream(message.pk, uuid.uuid4().hex, streams.sync_client())
    assert writer.acquire()
    yield message, writer, session_cookie(client, user)
    writer.release()


def unpublished(writer: streams.AnswerStream, seq: int, kind: str, data: dict) -> None:
    """An entry in the stream whose publish was lost."""
    writer.conn.xadd(streams.stream_key(writer.message_id), {"type": kind, "data": json.dumps(data)}, id=f"0-{seq}")


def pubsub_clients() -> int:
    return len(streams.sync_client().client_list(_type="pubsub"))


async def follow(cookie: bytes, message_id: int):
    comm = communicator(cookie)
    assert (await comm.connect())[0]
    await send(comm, {"type": "resume", "message": message_id, "after_seq": 0})
    return comm


async def follow_from_the_first_token(writer: streams.AnswerStream, cookie: bytes, text: str):
    """A socket following the answer after its first token was written, and that token as it received it."""
    writer.append(events.TOKEN, events.token_data(text))
    comm = await follow(cookie, writer.message_id)
    return comm, await receive(comm)


def test_entries_are_pushed_as_they_are_written(answer, monkeypatch):
    # A follower that only read the stream would wait a minute per entry here: each must arrive through pub/sub.
    monkeypatch.setattr(consumers, "READ_BLOCK_MS", 60_000)
    message, writer, cookie = answer

    async def scenario():
        writer.append(events.SOURCES, events.sources_data([]))
        comm = await follow(cookie, message.pk)
        received = [await receive(comm)]
        for text in ["첫 ", "번째 ", "answer"]:
            writer.append(events.TOKEN, events.token_data(text))
            received.append(await receive(comm, timeout=5))
        writer.append(events.END, events.end_data(finish_reason="stop", prompt_tokens=1, completion_tokens=3))
        received.append(await receive(comm, timeout=5))
        await comm.disconnect()
        return received

    received = async_to_sync(scenario)()
    assert [(event["type"], event["seq"]) for event in received] == [
        ("sources", 1),
        ("token", 2),
        ("token", 3),
        ("token", 4),
        ("end", 5),
    ]
    assert "".join(event["text"] for event in received if event["type"] == "token") == "첫 번째 answer"


def test_an_entry_whose_publish_was_lost_is_read_from_the_stream(answer, monkeypatch):
    monkeypatch.setattr(consumers, "READ_BLOCK_MS", 60_000)
    message, writer, cookie = answer

    async def scenario():
        comm, first = await follow_from_the_first_token(writer, cookie, "a")
        unpublished(writer, 2, events.TOKEN, events.token_data("b"))
        writer.append(events.TOKEN, events.token_data("c"))  # published as seq 3: the gap shows
        writer.append(events.END, events.end_data(finish_reason="stop", prompt_tokens=1, completion_tokens=3))
        rest = await receive_until(comm, {"end"}, timeout=5)
        await comm.disconnect()
        return [first, *rest]

    received = async_to_sync(scenario)()
    assert "".join(event["text"] for event in received if event["type"] == "token") == "abc"
    assert (received[-1]["type"], received[-1]["seq"], received[-1]["message"]) == ("end", 4, message.pk)
    assert [event["seq"] for event in received] == sorted({event["seq"] for event in received})


def test_an_unpublished_last_entry_arrives_after_the_quiet_spell(answer, monkeypatch):
    monkeypatch.setattr(consumers, "READ_BLOCK_MS", 300)
    _, writer, cookie = answer

    async def scenario():
        comm, first = await follow_from_the_first_token(writer, cookie, "only")
        unpublished(writer, 2, events.END, events.end_data(finish_reason="stop", prompt_tokens=1, completion_tokens=1))
        last = await receive(comm, timeout=5)
        await comm.disconnect()
        return first, last

    first, last = async_to_sync(scenario)()
    assert (first["type"], first["seq"], first["text"]) == ("token", 1, "only")
    assert (last["type"], last["seq"]) == ("end", 2)


def test_a_killed_pubsub_connection_loses_nothing_and_is_closed_when_nobody_follows(answer, monkeypatch):
    monkeypatch.setattr(consumers, "READ_BLOCK_MS", 60_000)
    _, writer, cookie = answer
    before = pubsub_clients()

    async def scenario():
        comm, first = await follow_from_the_first_token(writer, cookie, "0 ")
        received = [first]
        following = pubsub_clients()
        writer.conn.client_kill_filter(_type="pubsub")
        # Published while nobody is subscribed: lost to pub/sub, read from the stream once the hub reconnects.
        for index in (1, 2, 3):
            writer.append(events.TOKEN, events.token_data(f"{index} "))
        while "".join(event["text"] for event in received) != "0 1 2 3 ":
            received.append(await receive(comm, timeout=10))
        # Subscribed again: each entry is pushed (the stream alone would take a minute).
        for index in (4, 5):
            writer.append(events.TOKEN, events.token_data(f"{index} "))
            received.append(await receive(comm, timeout=5))
        writer.append(events.END, events.end_data(finish_reason="stop", prompt_tokens=1, completion_tokens=6))
        received.append(await receive(comm, timeout=5))
        await comm.disconnect()
        return received, following

    received, following = async_to_sync(scenario)()
    assert "".join(event.get("text", "") for event in received) == "0 1 2 3 4 5 "
    assert [event["seq"] for event in received][-3:] == [5, 6, 7]
    assert received[-1]["type"] == "end"
    assert following == before + 1
    assert pubsub_clients() == before


def test_two_sockets_on_one_answer_share_the_subscription_and_both_get_every_entry(answer, monkeypatch):
    monkeypatch.setattr(consumers, "READ_BLOCK_MS", 60_000)
    message, writer, cookie = answer
    before = pubsub_clients()

    async def scenario():
        writer.append(events.SOURCES, events.sources_data([]))
        tabs = [await follow(cookie, message.pk) for _ in range(2)]
        received = {index: [await receive(tab)] for index, tab in enumerate(tabs)}
        following = pubsub_clients()
        writer.append(events.TOKEN, events.token_data("둘 다"))
        writer.append(events.END, events.end_data(finish_reason="stop", prompt_tokens=1, completion_tokens=1))
        for index, tab in enumerate(tabs):
            received[index] += await receive_until(tab, {"end"}, timeout=5)
            await tab.disconnect()
        return received, following

    received, following = async_to_sync(scenario)()
    for events_of_tab in received.values():
        assert [event["type"] for event in events_of_tab] == ["sources", "token", "end"]
        assert events_of_tab[1]["text"] == "둘 다"
    assert following == before + 1
    assert pubsub_clients() == before


@pytest.mark.parametrize("yields", [0, 1, 2, 3, 5, 8, 10, 20])
def test_a_follow_cancelled_midway_leaves_nothing_behind(yields):
    before = pubsub_clients()
    channel = streams.live_channel(987_654)

    async def scenario():
        hub = live.LiveHub()
        task = asyncio.create_task(hub.follow(987_654))
        for _ in range(yields):  # cancelled at different points of connecting and subscribing
            await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        else:  # done before the cancel arrived
            await hub.unfollow(987_654, task.result())
        # The next socket on the same answer is subscribed for real and gets what is published.
        feed = await hub.follow(987_654)
        streams.sync_client().publish(channel, '1 token {"text": "x"}')
        async with asyncio.timeout(5):
            payload = await feed.get()
        await hub.unfollow(987_654, feed)
        await asyncio.sleep(0.05)
        return payload, pubsub_clients()  # counted while the hub (and anything it left open) is alive

    payload, after = async_to_sync(scenario)()
    assert streams.parse_published(payload) == (1, "token", {"text": "x"})
    assert after == before


def test_an_answer_deleted_while_followed_ends_the_follow_with_one_error(answer, monkeypatch):
    monkeypatch.setattr(consumers, "READ_BLOCK_MS", 300)
    message, writer, cookie = answer

    async def scenario():
        comm, first = await follow_from_the_first_token(writer, cookie, "half")
        await database_sync_to_async(message.conversation.delete)()
        writer.conn.delete(streams.stream_key(message.pk))
        gone = await receive(comm, timeout=5)
        quiet = await comm.receive_nothing(timeout=1)  # no second error: the follow is over
        await comm.disconnect()
        return first, gone, quiet

    first, gone, quiet = async_to_sync(scenario)()
    assert first["text"] == "half"
    assert (gone["type"], gone["code"], gone["message"]) == ("error", "not_found", message.pk)
    assert quiet
