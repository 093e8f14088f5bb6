"""Regenerate, edit and feedback over the real socket (daphne's ASGI app, the real chat worker and scripted LLM), and
readable errors in the socket's language (the language cookie, else Accept-Language)."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from chat.models import Message
from feedback.models import AnswerFeedback
from tests.chat.conftest import ORIGIN, receive, receive_until, send, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def socket(cookie: bytes, language: str = "") -> WebsocketCommunicator:
    from protostar.asgi import application

    headers = [(b"host", b"127.0.0.1"), (b"origin", ORIGIN), (b"cookie", cookie)]
    if language:
        headers.append((b"accept-language", language.encode()))
    return WebsocketCommunicator(application, "/ws/chat/", headers=headers)


@pytest.fixture
def member(django_user_model):
    return django_user_model.objects.create_user("reviser-socket", password="pw-123456")


def test_feedback_regenerate_and_edit_over_the_socket(client, member, knowledge_base, chat_worker, llm):
    cookie = session_cookie(client, member)
    llm.script(reply="매월 1.5일씩 발생합니다 [S1].", tokens_per_second=200)

    async def scenario():
        comm = socket(cookie)
        assert (await comm.connect())[0]
        await send(
            comm, {"type": "ask", "conversation": None, "content": "연차는 어떻게 발생하나요?", "client_id": "q1"}
        )
        accepted = await receive(comm)
        await receive_until(comm, {"end"})
        await send(
            comm,
            {
                "type": "feedback",
                "message": accepted["message"],
                "rating": "down",
                "reason": "wrong_source",
                "comment": "휴가 규정 3쪽이 맞습니다.",
            },
        )
        saved = await receive(comm)
        await send(comm, {"type": "regenerate", "message": accepted["message"], "client_id": "r1"})
        regenerated = await receive(comm)
        await receive_until(comm, {"end"})
        await send(
            comm,
            {
                "type": "edit",
                "message": accepted["user_message"],
                "content": "Is leave carried over?",
                "client_id": "e1",
            },
        )
        edited = await receive(comm)
        await receive_until(comm, {"end"})
        await comm.disconnect()
        return accepted, saved, regenerated, edited

    accepted, saved, regenerated, edited = async_to_sync(scenario)()
    assert saved == {
        "type": "feedback_saved",
        "message": accepted["message"],
        "rating": "down",
        "reason": "wrong_source",
    }
    feedback = AnswerFeedback.objects.get(message_id=accepted["message"])
    assert feedback.comment == "휴가 규정 3쪽이 맞습니다." and feedback.question == "연차는 어떻게 발생하나요?"
    assert feedback.sources[0]["rank"] == 1 and feedback.sources[0]["chunk_id"]
    assert feedback.document_ids == [knowledge_base.pk]
    assert feedback.retrieval_query == "연차는 어떻게 발생하나요?"
    assert feedback.prompt_version == "answer_system@shipped" and feedback.model_name

    assert regenerated["type"] == "accepted" and regenerated["user_message"] == accepted["user_message"]
    assert Message.objects.get(pk=accepted["message"]).superseded
    assert Message.objects.get(pk=regenerated["message"]).status == Message.Status.COMPLETE
    assert edited["type"] == "accepted" and edited["user_message"] not in (accepted["user_message"],)
    assert Message.objects.get(pk=edited["user_message"]).content == "Is leave carried over?"
    assert Message.objects.get(pk=accepted["user_message"]).superseded
    assert Message.objects.get(pk=regenerated["message"]).superseded


@pytest.mark.parametrize(
    ("language", "cookie_language", "expected"),
    [
        ("ko-KR,ko;q=0.9", "", "메시지 987654이(가) 없습니다."),
        ("en-US,en;q=0.9", "", "Message 987654 does not exist."),
        ("en-US,en;q=0.9", "ko", "메시지 987654이(가) 없습니다."),
    ],
)
def test_readable_errors_follow_the_language_cookie_then_accept_language(
    client, member, language, cookie_language, expected
):
    cookie = session_cookie(client, member)
    if cookie_language:
        cookie += f"; django_language={cookie_language}".encode()

    async def scenario():
        comm = socket(cookie, language)
        assert (await comm.connect())[0]
        await send(comm, {"type": "feedback", "message": 987654, "rating": "up"})
        missing = await receive(comm)
        await comm.send_to(text_data="{oops")
        bad_json = await receive(comm)
        await comm.disconnect()
        return missing, bad_json

    missing, bad_json = async_to_sync(scenario)()
    assert missing == {"type": "error", "code": "not_found", "detail": expected, "message": 987654}
    assert bad_json["code"] == "bad_json"
    korean = expected.startswith("메시지")
    assert bad_json["detail"].startswith("프레임이 올바른 JSON이 아닙니다" if korean else "The frame is not valid JSON")


def test_bad_feedback_is_refused_with_a_code_and_nothing_is_stored(client, member, knowledge_base, chat_worker, llm):
    cookie = session_cookie(client, member)
    llm.script(reply="Eighteen days [S1].", tokens_per_second=200)

    async def scenario():
        comm = socket(cookie)
        assert (await comm.connect())[0]
        await send(comm, {"type": "ask", "conversation": None, "content": "How many days?", "client_id": "q2"})
        accepted = await receive(comm)
        await receive_until(comm, {"end"})
        replies = []
        for frame in (
            {"type": "feedback", "message": accepted["message"], "rating": "sideways"},
            {"type": "feedback", "message": accepted["message"], "rating": "up", "reason": "wrong"},
            {"type": "feedback", "message": accepted["message"], "rating": "down", "reason": "boring"},
            {"type": "feedback", "message": accepted["message"], "rating": "down", "comment": "x" * 2001},
            {"type": "feedback", "message": accepted["user_message"], "rating": "up"},
        ):
            await send(comm, frame)
            replies.append(await receive(comm))
        await comm.disconnect()
        return replies

    replies = async_to_sync(scenario)()
    assert [reply["code"] for reply in replies] == ["invalid", "invalid", "invalid", "too_long", "not_found"]
    assert all(reply["type"] == "error" and reply["detail"] for reply in replies)
    assert not AnswerFeedback.objects.exists()
