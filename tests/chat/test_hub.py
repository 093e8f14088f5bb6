"""The web process's shared stream reader against real Redis: one read serves every follower, each from its own
position, and a follower that joins while the read is blocked is served at once."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from asgiref.sync import async_to_sync

from chat import events, hub, streams


@pytest.fixture
def writer():
    """Appends to answer streams the way a job does (fenced by a lease it holds)."""
    conn = streams.sync_client()
    owners: dict[int, streams.AnswerStream] = {}

    def append(message_id: int, text: str, kind: str = events.TOKEN) -> int:
        if message_id not in owners:
            conn.delete(streams.stream_key(message_id), streams.lease_key(message_id))
            owners[message_id] = streams.AnswerStream(message_id=message_id, attempt_id=uuid.uuid4().hex, conn=conn)
            assert owners[message_id].acquire()
        if kind == events.TOKEN:
            return owners[message_id].append(kind, events.token_data(text))
        end = events.end_data(finish_reason="stop", prompt_tokens=0, completion_tokens=0)
        return owners[message_id].append(kind, end)

    yield append
    for message_id, owner in owners.items():
        owner.release()
        conn.delete(streams.stream_key(message_id))


def texts(entries) -> list[str]:
    return [data.get("text", kind) for _, kind, data in entries]


def test_followers_of_one_answer_get_the_entries_after_their_own_positions(writer):
    for text in ("a", "b", "c"):
        writer(910_001, text)

    async def scenario():
        shared = hub.hub()
        from_start = await shared.follow(910_001, after_seq=0)
        resumed = await shared.follow(910_001, after_seq=2)
        first = [await from_start.next_entries(timeout=3), await resumed.next_entries(timeout=3)]
        await asyncio.to_thread(writer, 910_001, "d")
        later = [await from_start.next_entries(timeout=3), await resumed.next_entries(timeout=3)]
        shared.forget(from_start)
        shared.forget(resumed)
        return first, later

    (start, resume), (start_later, resume_later) = async_to_sync(scenario)()
    assert texts(start) == ["a", "b", "c"] and [seq for seq, _, _ in start] == [1, 2, 3]
    assert texts(resume) == ["c"]
    assert texts(start_later) == texts(resume_later) == ["d"]


def test_many_answers_share_one_reader_and_each_gets_only_its_own(writer):
    ids = list(range(910_100, 910_120))

    async def scenario():
        shared = hub.hub()
        followers = {message_id: await shared.follow(message_id, after_seq=0) for message_id in ids}
        for message_id in ids:
            await asyncio.to_thread(writer, message_id, f"m{message_id}")
            await asyncio.to_thread(writer, message_id, "", events.END)
        received: dict[int, list] = {message_id: [] for message_id in ids}
        for message_id, follower in followers.items():
            while not received[message_id] or received[message_id][-1][1] != events.END:
                batch = await follower.next_entries(timeout=3)
                assert batch, f"message {message_id}: nothing arrived"
                received[message_id] += batch
            shared.forget(follower)
        readers = {id(shared._reader)}
        return received, readers

    received, readers = async_to_sync(scenario)()
    assert len(readers) == 1
    for message_id, entries in received.items():
        assert [kind for _, kind, _ in entries] == [events.TOKEN, events.END]
        assert entries[0][2]["text"] == f"m{message_id}"


def test_a_follower_joining_while_the_read_blocks_is_served_before_the_block_ends(writer):
    writer(910_201, "waiting")

    async def scenario():
        shared = hub.hub()
        idle = await shared.follow(910_200, after_seq=0)  # nothing is written here: the read blocks
        await asyncio.sleep(0.3)
        started = time.monotonic()
        joining = await shared.follow(910_201, after_seq=0)
        entries = await joining.next_entries(timeout=hub.BLOCK_MS / 1000)
        waited = time.monotonic() - started
        shared.forget(idle)
        shared.forget(joining)
        return entries, waited

    entries, waited = async_to_sync(scenario)()
    assert texts(entries) == ["waiting"]
    # Without the wake the entry would come only when the 5 s block ends.
    assert waited < hub.BLOCK_MS / 1000 / 2


def test_a_follower_that_waits_in_vain_gets_nothing_after_its_timeout():
    async def scenario():
        shared = hub.hub()
        follower = await shared.follow(910_300, after_seq=0)
        entries = await follower.next_entries(timeout=0.2)
        shared.forget(follower)
        return entries

    assert async_to_sync(scenario)() == []
