"""The process-wide answer watcher against real Redis: leases renewed for every answer, stops reach only theirs."""

from __future__ import annotations

import time
import uuid

import pytest
from django.test import override_settings

from chat import streams
from chat.watch import answer_watcher


class FakeTokens:
    """Stands in for a model stream: records that the watcher closed it."""

    def __init__(self) -> None:
        self.closed_at: float | None = None

    def close(self) -> None:
        self.closed_at = time.monotonic()


@pytest.fixture
def owners():
    conn = streams.sync_client()
    made: list[streams.AnswerStream] = []

    def make(message_id: int) -> streams.AnswerStream:
        owner = streams.AnswerStream(message_id=message_id, attempt_id=uuid.uuid4().hex, conn=conn)
        conn.delete(streams.stop_key(message_id), streams.lease_key(message_id))
        assert owner.acquire()
        made.append(owner)
        return owner

    yield make
    for owner in made:
        owner.release()
        conn.delete(streams.stop_key(owner.message_id))


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@override_settings(CHAT_LEASE_SECONDS=1.0)
def test_leases_of_all_watched_answers_outlive_their_ttl_until_forgotten(owners):
    first, second = owners(900_001), owners(900_002)
    watches = [answer_watcher().watch(first), answer_watcher().watch(second)]

    time.sleep(2.5)  # more than twice the lease: only renewal keeps it

    conn = streams.sync_client()
    assert conn.get(streams.lease_key(first.message_id)).decode() == first.attempt_id
    assert conn.get(streams.lease_key(second.message_id)).decode() == second.attempt_id
    assert not any(watch.interrupted for watch in watches)

    for watch in watches:
        answer_watcher().forget(watch)
    assert wait_for(lambda: conn.get(streams.lease_key(first.message_id)) is None, timeout=2.5)


def test_a_stop_interrupts_only_its_answer_and_closes_its_stream_promptly(owners):
    stopped_owner, other_owner = owners(900_003), owners(900_004)
    stopped, other = answer_watcher().watch(stopped_owner), answer_watcher().watch(other_owner)
    tokens, other_tokens = FakeTokens(), FakeTokens()
    stopped.attach(tokens)
    other.attach(other_tokens)
    try:
        requested_at = time.monotonic()
        streams.request_stop(streams.sync_client(), stopped_owner.message_id)

        assert wait_for(lambda: tokens.closed_at is not None, timeout=1.0)
        assert tokens.closed_at - requested_at < 1.0
        assert stopped.stopped.is_set() and not stopped.lease_lost.is_set()
        time.sleep(0.3)
        assert not other.interrupted and other_tokens.closed_at is None
    finally:
        answer_watcher().forget(stopped)
        answer_watcher().forget(other)


def test_a_lease_taken_over_by_another_run_interrupts_the_old_one(owners):
    owner = owners(900_005)
    watch = answer_watcher().watch(owner)
    tokens = FakeTokens()
    watch.attach(tokens)
    try:
        streams.sync_client().set(streams.lease_key(owner.message_id), "another-attempt", px=10_000)

        assert wait_for(lambda: watch.lease_lost.is_set(), timeout=2.5)
        assert tokens.closed_at is not None and not watch.stopped.is_set()
    finally:
        answer_watcher().forget(watch)
        streams.sync_client().delete(streams.lease_key(owner.message_id))


def test_a_stream_attached_after_the_stop_is_closed_at_once(owners):
    owner = owners(900_006)
    watch = answer_watcher().watch(owner)
    try:
        streams.request_stop(streams.sync_client(), owner.message_id)
        assert wait_for(lambda: watch.stopped.is_set(), timeout=1.0)

        tokens = FakeTokens()
        watch.attach(tokens)

        assert tokens.closed_at is not None
    finally:
        answer_watcher().forget(watch)
