"""Chat over the HTTP API against a live daphne, the real chat worker and the scripted LLM: ask, follow the answer as
server-sent events (and resume it), stop, and the conversations; nobody reaches another user's messages."""

from __future__ import annotations

import json

import pytest

from chat.models import Conversation, Message
from tests.conftest import wait_until
from tests.live import api_client, api_key

pytestmark = pytest.mark.django_db(transaction=True)
REPLY = "정규직 직원은 연간 최대 18일의 유급휴가가 있습니다 [S3]. Full-time employees get up to 18 days [S1]."


def read_sse(response, lines=None) -> list[dict]:
    """Every event of a ``text/event-stream`` response (or what is left of its ``lines``), with ``event`` and ``id``."""
    received, fields = [], {}
    for line in lines if lines is not None else response.iter_lines():
        if not line:
            if fields:
                received.append({**fields, "data": json.loads(fields["data"])})
            fields = {}
            continue
        name, _, value = line.partition(":")
        fields[name] = value.removeprefix(" ")
    return received


@pytest.fixture
def asker(django_user_model):
    return django_user_model.objects.create_user("api-asker", password="pw-123456")


def ask(client, content: str, **extra) -> dict:
    response = client.post("/api/v1/ask", json={"content": content, **extra})
    assert response.status_code == 202, response.text
    return response.json()


def test_ask_returns_the_ids_at_once_and_the_events_stream_with_seq_ids(
    api_server, asker, knowledge_base, chat_worker, llm
):
    llm.script(reply=REPLY, tokens_per_second=100)
    with api_client(api_server, api_key(asker, "read", "ask")) as client:
        accepted = ask(client, "연간 유급휴가는 며칠인가요?")
        assert accepted["events_url"] == f"/api/v1/messages/{accepted['message']}/events"
        with client.stream("GET", accepted["events_url"]) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            received = read_sse(response)
    kinds = [event["event"] for event in received]
    assert kinds[0] == "sources" and kinds[-1] == "end" and set(kinds[1:-1]) == {"token"}, received[-1]
    assert all(event["id"] == str(event["data"]["seq"]) for event in received)
    assert all(event["data"]["message"] == accepted["message"] for event in received)
    assert "".join(event["data"]["text"] for event in received if event["event"] == "token") == REPLY
    assert {item["label"] for item in received[0]["data"]["items"]} >= {"S1"}
    stored = Message.objects.get(pk=accepted["message"])
    assert (stored.status, stored.content) == (Message.Status.COMPLETE, REPLY)


def test_resuming_with_last_event_id_gives_exactly_the_rest(api_server, asker, knowledge_base, chat_worker, llm):
    llm.script(reply=" ".join(f"조각{i}" for i in range(40)), tokens_per_second=200)
    with api_client(api_server, api_key(asker, "read", "ask")) as client:
        accepted = ask(client, "What is the leave policy?")
        with client.stream("GET", accepted["events_url"]) as response:
            whole = read_sse(response)
        # Cut after the fourth event, as a client that lost its connection there; it reconnects with the last id.
        cut = whole[3]["id"]
        with client.stream("GET", accepted["events_url"], headers={"Last-Event-ID": cut}) as response:
            rest = read_sse(response)
        with client.stream("GET", accepted["events_url"], params={"after_seq": cut}) as response:
            rest_by_query = read_sse(response)
    assert rest and all(int(event["id"]) > int(cut) for event in rest)
    text = "".join(event["data"]["text"] for event in whole if event["event"] == "token")
    seen = "".join(event["data"]["text"] for event in whole[:4] if event["event"] == "token")
    resumed = "".join(event["data"]["text"] for event in rest if event["event"] == "token")
    assert seen + resumed == text
    assert rest[-1]["event"] == "end" and rest[-1]["id"] == whole[-1]["id"]
    assert [event["data"] for event in rest_by_query] == [event["data"] for event in rest]


def test_another_user_cannot_read_stop_or_stream_a_message(
    api_server, asker, django_user_model, knowledge_base, chat_worker, llm
):
    llm.script(reply=REPLY, tokens_per_second=100)
    other = django_user_model.objects.create_user("api-other", password="pw-123456")
    with api_client(api_server, api_key(asker, "read", "ask")) as owner:
        accepted = ask(owner, "Leave policy?")
    missing = accepted["message"] + 10_000
    with api_client(api_server, api_key(other, "read", "ask")) as client:
        for message_id in (accepted["message"], missing):
            answers = [
                client.get(f"/api/v1/messages/{message_id}"),
                client.post(f"/api/v1/messages/{message_id}/stop"),
                client.get(f"/api/v1/messages/{message_id}/events"),
                client.get(f"/api/v1/conversations/{accepted['conversation']}"),
            ]
            assert [response.status_code for response in answers] == [404, 404, 404, 404]
            assert all(response.json()["code"] == "not_found" for response in answers)
        # Not yours and not there read alike, apart from the id they name.
        foreign = client.get(f"/api/v1/messages/{accepted['message']}").json()["detail"]
        absent = client.get(f"/api/v1/messages/{missing}").json()["detail"]
        assert foreign.replace(str(accepted["message"]), "N") == absent.replace(str(missing), "N")
        assert client.get("/api/v1/conversations").json() == {"items": [], "count": 0}
    wait_until(lambda: Message.objects.get(pk=accepted["message"]).is_terminal, timeout=30)
    assert Message.objects.get(pk=accepted["message"]).status == Message.Status.COMPLETE


def test_stop_ends_a_streaming_answer_as_cancelled(api_server, asker, knowledge_base, chat_worker, llm):
    llm.script(reply=" ".join(f"word{i}" for i in range(400)), tokens_per_second=40)
    with api_client(api_server, api_key(asker, "read", "ask")) as client:
        accepted = ask(client, "Tell me everything about remote work")
        with client.stream("GET", accepted["events_url"]) as response:
            lines = response.iter_lines()
            for line in lines:
                if line.startswith("event: token"):
                    stop = client.post(f"/api/v1/messages/{accepted['message']}/stop")
                    assert stop.status_code == 202
                    break
            received = read_sse(response, lines)
    assert received[-1]["event"] == "end"
    assert received[-1]["data"]["finish_reason"] == "cancelled"
    assert Message.objects.get(pk=accepted["message"]).status == Message.Status.CANCELLED


def test_conversations_are_listed_read_renamed_and_deleted(api_server, asker, knowledge_base, chat_worker, llm):
    llm.script(reply=REPLY, tokens_per_second=200)
    with api_client(api_server, api_key(asker, "read", "ask")) as client:
        accepted = ask(client, "휴가 규정을 알려 주세요")
        with client.stream("GET", accepted["events_url"]) as response:
            read_sse(response)
        url = f"/api/v1/conversations/{accepted['conversation']}"
        listing = client.get("/api/v1/conversations", params={"limit": 10}).json()
        assert listing["count"] == 1 and listing["items"][0]["title"] == "휴가 규정을 알려 주세요"
        detail = client.get(url).json()
        assert [m["role"] for m in detail["messages"]] == ["user", "assistant"]
        assert detail["messages"][1]["content"] == REPLY and detail["messages"][1]["sources"]
        renamed = client.patch(url, json={"title": "  연차   문의 "})
        assert renamed.status_code == 200 and renamed.json()["title"] == "연차 문의"
        empty = client.patch(url, json={"title": "   "})
        assert (empty.status_code, empty.json()["code"]) == (422, "invalid")
        assert client.delete(url).status_code == 204
        assert client.get(url).status_code == 404
    assert not Conversation.objects.filter(pk=accepted["conversation"]).exists()


def test_invalid_asks_are_422_naming_the_field_and_store_nothing(api_server, asker, settings):
    with api_client(api_server, api_key(asker, "read", "ask")) as client:
        blank = client.post("/api/v1/ask", json={"content": "   "})
        missing = client.post("/api/v1/ask", json={"conversation": 1})
        too_long = client.post("/api/v1/ask", json={"content": "가" * (settings.CHAT_MAX_MESSAGE_CHARS + 1)})
        wrong_type = client.post("/api/v1/ask", json={"content": "hi", "conversation": "abc"})
        nul = client.post("/api/v1/ask", json={"content": "연차\u0000는?"})
        foreign = client.post("/api/v1/ask", json={"content": "hi", "conversation": 987654})
    for response, field in (
        (blank, "content"),
        (missing, "content"),
        (too_long, "content"),
        (wrong_type, "conversation"),
        (nul, "content"),
    ):
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["code"] == "invalid" and body["errors"][0]["field"] == field and field in body["detail"]
    assert (foreign.status_code, foreign.json()["code"]) == (404, "not_found")
    assert not Message.objects.exists()


def test_a_key_without_the_ask_scope_cannot_ask_or_stop(api_server, asker):
    with api_client(api_server, api_key(asker, "read")) as client:
        refused = client.post("/api/v1/ask", json={"content": "hello"})
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
        assert "ask" in refused.json()["detail"]
        assert client.get("/api/v1/conversations").status_code == 200
    assert not Message.objects.exists()


def test_the_browser_session_needs_its_csrf_token_for_writes(
    api_server, asker, client, knowledge_base, chat_worker, llm
):
    import httpx

    llm.script(reply=REPLY, tokens_per_second=200)
    client.force_login(asker)
    cookies = {"sessionid": client.cookies["sessionid"].value}
    with httpx.Client(base_url=api_server.url, cookies=cookies, timeout=30) as browser:
        assert browser.get("/api/v1/conversations").status_code == 200
        refused = browser.post("/api/v1/ask", json={"content": "hello"})
        assert refused.status_code == 403
        page = browser.get("/accounts/")
        token = page.cookies.get("csrftoken") or browser.cookies.get("csrftoken")
        allowed = browser.post(
            "/api/v1/ask",
            json={"content": "hello"},
            headers={"X-CSRFToken": token, "Referer": api_server.url + "/"},
        )
        assert allowed.status_code == 202, allowed.text
    # The answer is written before the test ends (its rows are flushed then).
    wait_until(lambda: Message.objects.get(pk=allowed.json()["message"]).is_terminal, timeout=30)


def test_resuming_after_the_last_event_ends_the_stream_at_once(api_server, asker, knowledge_base, chat_worker, llm):
    llm.script(reply=REPLY, tokens_per_second=200)
    with api_client(api_server, api_key(asker, "read", "ask"), timeout=10) as client:
        accepted = ask(client, "Leave?")
        with client.stream("GET", accepted["events_url"]) as response:
            last = read_sse(response)[-1]["id"]
        for after in (last, str(int(last) + 1000)):
            with client.stream("GET", accepted["events_url"], headers={"Last-Event-ID": after}) as response:
                assert response.status_code == 200 and read_sse(response) == []
        bad = client.get(accepted["events_url"], headers={"Last-Event-ID": "last"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "Last-Event-ID"


def test_the_ask_paths_admission_rules_answer_429_with_retry_after(
    api_server, asker, knowledge_base, chat_worker, llm, settings
):
    import openai

    from chat.services import conversation_delete

    # Slow answers stay open, so the open-answers rule of the ask path (shared with the socket) is reached.
    llm.script(reply=" ".join(f"word{i}" for i in range(200)), tokens_per_second=2)
    key = api_key(asker, "read", "ask")
    with api_client(api_server, key) as client:
        for _ in range(settings.CHAT_MAX_OPEN_ANSWERS):
            ask(client, "Leave policy?")
        refused = client.post("/api/v1/ask", json={"content": "And remote work?"})
    assert refused.status_code == 429
    assert refused.json()["code"] == "too_many_open_answers"
    assert int(refused.headers["Retry-After"]) >= 1
    sdk = openai.OpenAI(base_url=f"{api_server.url}/v1", api_key=key, max_retries=0)
    with pytest.raises(openai.RateLimitError) as raised:
        sdk.chat.completions.create(model="protostar", messages=[{"role": "user", "content": "연차?"}])
    assert raised.value.response.headers["Retry-After"] and raised.value.body["code"] == "too_many_open_answers"
    for conversation in Conversation.objects.filter(owner=asker):
        conversation_delete(conversation=conversation)
