"""Bounded sockets through the real ASGI app: sockets per user, answers followed per socket and per user, frames per
second, and sockets closed once their session ends (logout, password change, deactivation)."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from chat.models import Message
from protostar import queues
from tests.chat.conftest import communicator, receive, send, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="pw-123456")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="pw-123456")


@pytest.fixture(autouse=True)
def no_chat_jobs():
    queue = queues.queue("chat")
    queue.empty()
    yield
    queue.empty()


def test_a_user_cannot_open_more_sockets_than_allowed_and_others_are_unaffected(client, alice, bob, settings):
    settings.CHAT_MAX_SOCKETS_PER_USER = 2
    alice_cookie, bob_cookie = session_cookie(client, alice), session_cookie(client.__class__(), bob)

    async def scenario():
        first, second, third = communicator(alice_cookie), communicator(alice_cookie), communicator(alice_cookie)
        assert (await first.connect())[0] and (await second.connect())[0]
        assert (await third.connect())[0]
        refusal = await receive(third)
        closed = await third.receive_output(timeout=5)
        other = communicator(bob_cookie)
        assert (await other.connect())[0]
        await send(other, {"type": "resume", "message": 999999, "after_seq": 0})
        bob_reply = await receive(other)
        await first.disconnect()
        again = communicator(alice_cookie)
        assert (await again.connect())[0]
        await send(again, {"type": "resume", "message": 999999, "after_seq": 0})
        alice_reply = await receive(again)
        for comm in (second, other, again):
            await comm.disconnect()
        return refusal, closed, bob_reply, alice_reply

    refusal, closed, bob_reply, alice_reply = async_to_sync(scenario)()
    assert refusal["type"] == "error" and refusal["code"] == "too_many_sockets"
    assert closed == {"type": "websocket.close", "code": 4429}
    assert bob_reply["code"] == "not_found" and alice_reply["code"] == "not_found"  # open and usable


def test_answers_followed_are_capped_per_socket_and_per_user(client, alice, settings):
    settings.CHAT_MAX_READERS_PER_SOCKET = 2
    settings.CHAT_MAX_READERS_PER_USER = 3
    settings.CHAT_ASKS_PER_MINUTE = 0
    cookie = session_cookie(client, alice)

    async def ask(comm, index: int) -> dict:
        content = "휴가 규정?" if index % 2 else "Leave policy?"
        await send(comm, {"type": "ask", "conversation": None, "content": content, "client_id": f"r{index}"})
        return await receive(comm)

    async def scenario():
        one, two = communicator(cookie), communicator(cookie)
        assert (await one.connect())[0] and (await two.connect())[0]
        # No worker: the answers stay pending and their readers stay open.
        replies = [await ask(one, 0), await ask(one, 1), await ask(one, 2)]
        replies += [await ask(two, 3), await ask(two, 4)]
        await one.disconnect()
        replies.append(await ask(two, 5))
        await two.disconnect()
        return replies

    replies = async_to_sync(scenario)()
    kinds = [reply["type"] if reply["type"] == "accepted" else reply["code"] for reply in replies]
    assert kinds == ["accepted", "accepted", "too_many_readers", "accepted", "too_many_readers", "accepted"]
    assert Message.objects.filter(conversation__owner=alice, role="user").count() == 4  # refused asks stored nothing


def test_frames_over_the_rate_are_refused_and_the_socket_stays_usable(client, alice, settings):
    settings.CHAT_SOCKET_FRAMES_PER_SECOND = 3
    cookie = session_cookie(client, alice)

    async def scenario():
        comm = communicator(cookie)
        assert (await comm.connect())[0]
        for _ in range(12):
            await send(comm, {"type": "stop", "message": 424242})
        replies = [await receive(comm) for _ in range(12)]
        await asyncio.sleep(1.0)  # the bucket refills with time: that is the behaviour under test
        await send(comm, {"type": "stop", "message": 424242})
        later = await receive(comm)
        await comm.disconnect()
        return replies, later

    replies, later = async_to_sync(scenario)()
    codes = [reply["code"] for reply in replies]
    assert codes.count("not_found") == 6 and codes.count("rate_limited") == 6  # a burst of twice the rate
    assert all(reply["retry_after"] == 1 for reply in replies if reply["code"] == "rate_limited")
    assert later["code"] == "not_found"


@pytest.mark.parametrize("ending", ["logout", "password change", "deactivation"])
def test_a_socket_closes_when_its_session_ends(client, alice, bob, settings, ending):
    settings.CHAT_SESSION_CHECK_SECONDS = 0.3
    cookie = session_cookie(client, alice)
    bob_cookie = session_cookie(client.__class__(), bob)

    def end_session() -> None:
        if ending == "logout":
            client.logout()
        elif ending == "password change":
            alice.set_password("새 비밀번호-123456")
            alice.save()
        else:
            alice.is_active = False
            alice.save()

    async def scenario():
        comm, other = communicator(cookie), communicator(bob_cookie)
        assert (await comm.connect())[0] and (await other.connect())[0]
        assert await comm.receive_nothing(timeout=1.0)  # still signed in: nothing happens
        await database_sync_to_async(end_session)()
        closed = await comm.receive_output(timeout=10)
        # bob's socket is untouched.
        await send(other, {"type": "resume", "message": 999999, "after_seq": 0})
        reply = await receive(other)
        await other.disconnect()
        return closed, reply

    closed, reply = async_to_sync(scenario)()
    assert closed == {"type": "websocket.close", "code": 4401}
    assert reply["code"] == "not_found"


def test_a_client_that_does_not_read_is_closed_and_can_resume_later(
    django_user_model, django_db_blocker, tmp_path, monkeypatch
):
    """Through a real daphne and a real TCP client whose receive window stays full."""
    import json
    import socket

    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    from chat.models import Conversation
    from tests.chat.test_browser import Daphne
    from tests.conftest import wait_until

    user = django_user_model.objects.create_user("slow-reader", password="pw-123456")
    from django.test import Client

    cookie = session_cookie(Client(), user).decode()
    conversation = Conversation.objects.create(owner=user, title="긴 답변")
    question = Message.objects.create(conversation=conversation, role="user", content="긴 답변?", status="complete")
    text = "연차 규정 Leave policy. " * 30_000  # ~840 KB of stored answer (daphne sends frames up to 1 MiB)
    answers = []
    for _ in range(8):  # followed at once: more than the kernel buffers of both ends hold (a few MB on loopback)
        question = Message.objects.create(conversation=conversation, role="user", content="긴 답변?", status="complete")
        answers.append(
            Message.objects.create(
                conversation=conversation, role="assistant", reply_to=question, content=text, status="complete"
            )
        )
    answer = answers[0]
    monkeypatch.setenv("CHAT_SOCKET_SEND_BUFFER_BYTES", "65536")
    server = Daphne(tmp_path / "daphne.log")
    with django_db_blocker.unblock():
        try:
            server.start()
        except AssertionError:  # a loaded machine can take longer to import and serve than its default wait
            wait_until(server._serving, timeout=90, message="daphne to serve the login page")
    url = f"ws://127.0.0.1:{server.port}/ws/chat/"
    headers = {"Cookie": cookie}
    try:
        raw = socket.create_connection(("127.0.0.1", server.port))
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        # max_queue=1: the client stops taking data off the socket as soon as one frame waits unread.
        with connect(url, sock=raw, origin=server.url, additional_headers=headers, max_size=None, max_queue=1) as slow:
            for each in answers:
                slow.send(json.dumps({"type": "resume", "message": each.pk, "after_seq": 0}))
            log = tmp_path / "daphne.log"
            wait_until(lambda: "does not read" in log.read_text(), timeout=90, message="the slow client to be closed")
            # The server closes with 4408 behind the frames the client never took; a client that does not read
            # cannot see that frame, so what it sees is the connection ending (not a timeout: the server let go).
            with pytest.raises(ConnectionClosed):
                while True:
                    slow.recv(timeout=60)

        with connect(url, origin=server.url, additional_headers=headers, max_size=None) as fresh:
            fresh.send(json.dumps({"type": "resume", "message": answer.pk, "after_seq": 0}))
            events = [json.loads(fresh.recv(timeout=60)) for _ in range(4)]
        assert [event["type"] for event in events] == ["reset", "sources", "token", "end"]
        assert events[2]["text"] == text
    finally:
        server.stop()
