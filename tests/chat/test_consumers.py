"""The chat socket's door and its protocol errors, through the real ASGI app (origin check, session auth)."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.test import override_settings

from chat.models import Conversation, Message
from tests.chat.conftest import communicator, receive, send, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def test_anonymous_connection_is_closed_with_4401():
    async def scenario():
        comm = communicator(cookie=None)
        connected, _ = await comm.connect()
        closed = await comm.receive_output(timeout=5)
        await comm.wait()
        return connected, closed

    connected, closed = async_to_sync(scenario)()
    assert connected  # accepted first so a browser can read the close code
    assert closed == {"type": "websocket.close", "code": 4401}


def test_foreign_origin_is_refused_even_with_a_valid_session(client, django_user_model):
    user = django_user_model.objects.create_user("origin-user", password="pw-123456")
    cookie = session_cookie(client, user)

    async def scenario(origin):
        comm = communicator(cookie, origin=origin)
        connected, _ = await comm.connect()
        await comm.disconnect()
        return connected

    assert async_to_sync(scenario)(b"https://evil.example") is False
    assert async_to_sync(scenario)(b"http://127.0.0.1") is True


def test_protocol_errors_answer_error_and_keep_the_socket_usable(client, django_user_model):
    user = django_user_model.objects.create_user("proto-user", password="pw-123456")
    cookie = session_cookie(client, user)

    async def scenario():
        comm = communicator(cookie)
        assert (await comm.connect())[0]
        replies = []
        await comm.send_to(text_data="{not json")
        replies.append(await receive(comm))
        await comm.send_to(text_data="[1, 2]")
        replies.append(await receive(comm))
        await send(comm, {"type": "dance"})
        replies.append(await receive(comm))
        await send(comm, {"type": "ask", "conversation": None, "content": "x" * 51, "client_id": "a"})
        replies.append(await receive(comm))
        await send(comm, {"type": "ask", "conversation": None, "content": "   ", "client_id": "b"})
        replies.append(await receive(comm))
        await send(comm, {"type": "stop", "message": "7"})
        replies.append(await receive(comm))
        await send(comm, {"type": "resume", "message": 999999, "after_seq": 0})
        replies.append(await receive(comm))
        # Still usable: a valid ask is accepted on the same socket.
        await send(comm, {"type": "ask", "conversation": None, "content": "휴가는 며칠인가요?", "client_id": "c"})
        replies.append(await receive(comm))
        await comm.disconnect()
        return replies

    with override_settings(CHAT_MAX_MESSAGE_CHARS=50):
        replies = async_to_sync(scenario)()
    codes = [reply.get("code") for reply in replies[:-1]]
    assert codes == ["bad_json", "bad_json", "unknown_type", "too_long", "invalid", "invalid", "not_found"]
    assert all(reply["type"] == "error" and reply["detail"] for reply in replies[:-1])
    assert "51" in replies[3]["detail"] and "50" in replies[3]["detail"]
    assert replies[-1]["type"] == "accepted"
    conversation = Conversation.objects.get(pk=replies[-1]["conversation"])
    assert conversation.owner == user and conversation.title == "휴가는 며칠인가요?"
    answer = Message.objects.get(pk=replies[-1]["message"])
    assert answer.role == "assistant" and answer.reply_to_id == replies[-1]["user_message"]
    assert answer.reply_to.content == "휴가는 며칠인가요?"


def test_user_cannot_ask_stop_or_resume_in_another_users_conversation(client, django_user_model):
    owner = django_user_model.objects.create_user("owner", password="pw-123456")
    intruder = django_user_model.objects.create_user("intruder", password="pw-123456")
    conversation = Conversation.objects.create(owner=owner, title="private")
    question = Message.objects.create(conversation=conversation, role="user", content="q", status="complete")
    answer = Message.objects.create(conversation=conversation, role="assistant", reply_to=question, status="pending")
    cookie = session_cookie(client, intruder)

    async def scenario():
        comm = communicator(cookie)
        assert (await comm.connect())[0]
        replies = []
        for payload in (
            {"type": "ask", "conversation": conversation.pk, "content": "let me in", "client_id": "x"},
            {"type": "stop", "message": answer.pk},
            {"type": "resume", "message": answer.pk, "after_seq": 0},
        ):
            await send(comm, payload)
            replies.append(await receive(comm))
        await comm.disconnect()
        return replies

    replies = async_to_sync(scenario)()
    assert [(r["type"], r["code"]) for r in replies] == [("error", "not_found")] * 3
    assert conversation.messages.count() == 2  # nothing was added
    answer.refresh_from_db()
    assert answer.status == Message.Status.PENDING  # the stop did not reach it


def test_same_client_id_returns_the_first_ask_instead_of_a_second_answer(client, django_user_model):
    user = django_user_model.objects.create_user("retry-user", password="pw-123456")
    cookie = session_cookie(client, user)
    ask = {"type": "ask", "conversation": None, "content": "How many leave days?", "client_id": "same-id"}

    async def scenario():
        comm = communicator(cookie)
        assert (await comm.connect())[0]
        await send(comm, ask)
        first = await receive(comm)
        await send(comm, ask)
        second = await receive(comm)
        await comm.disconnect()
        return first, second

    first, second = async_to_sync(scenario)()
    assert first == second and first["type"] == "accepted"
    assert Message.objects.filter(conversation__owner=user).count() == 2


def test_a_fault_on_our_side_answers_error_and_keeps_the_socket_open(client, django_user_model, monkeypatch):
    from chat import services

    user = django_user_model.objects.create_user("fault-user", password="pw-123456")
    cookie = session_cookie(client, user)

    def broken(**kwargs):
        raise RuntimeError("database unreachable")

    monkeypatch.setattr(services, "conversation_ask", broken)

    async def scenario():
        comm = communicator(cookie)
        assert (await comm.connect())[0]
        await send(comm, {"type": "ask", "conversation": None, "content": "hello", "client_id": "f1"})
        first = await receive(comm)
        await send(comm, {"type": "resume", "message": 999999, "after_seq": 0})
        second = await receive(comm)
        await comm.disconnect()
        return first, second

    first, second = async_to_sync(scenario)()
    assert first["type"] == "error" and first["code"] == "internal"
    assert "database" not in first["detail"], "internal details are not sent to the browser"
    assert second["type"] == "error" and second["code"] == "not_found", "the socket still answers"
