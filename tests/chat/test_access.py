"""A restricted document through the whole stack, with two real users and real sockets: it never appears for a user
without access (search, sources, snippets, downloads, replay, memory) and does for one with access; access removed
later reaches what was stored (history, replay, memory and later prompts)."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Group
from django.urls import reverse

from chat import streams
from chat.models import Message
from chat.selectors import HIDDEN_SOURCE_TITLE
from knowledge.models import Document
from summaries import services as memory
from summaries.context import build_context
from summaries.models import ConversationSummary
from tests.chat.conftest import communicator, receive_until, send, session_cookie
from tests.knowledge.factories import ready_document

pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "2025년 임원 성과급은 기본급의 40퍼센트로 확정되었습니다. The executive bonus is 40 percent of base pay."
REPLY = "임원 성과급은 기본급의 40퍼센트입니다 [S1]."
PUBLIC = [
    ("Leave", "Full-time employees accrue 1.5 days of paid leave per month. 정규직은 매월 1.5일의 휴가가 발생합니다.")
]


@pytest.fixture
def setup(django_user_model):
    hr = Group.objects.create(name="인사팀")
    alice = django_user_model.objects.create_user("alice", password="pw-123456")
    alice.groups.add(hr)
    bob = django_user_model.objects.create_user("bob", password="pw-123456")
    secret = ready_document(title="임원 보수 규정", chunks=[("보수", SECRET)], visibility=Document.Visibility.GROUPS)
    secret.allowed_groups.set([hr])
    ready_document(title="Employee Handbook", chunks=PUBLIC)
    return {"group": hr, "alice": alice, "bob": bob, "secret": secret}


def ask(cookie: bytes, content: str, conversation: int | None = None) -> list[dict]:
    async def scenario():
        comm = communicator(cookie)
        assert (await comm.connect())[0]
        await send(comm, {"type": "ask", "conversation": conversation, "content": content, "client_id": content[:60]})
        events = await receive_until(comm, {"end", "error"}, timeout=60)
        await comm.disconnect()
        return events

    return async_to_sync(scenario)()


def replay(cookie: bytes, message_id: int) -> list[dict]:
    async def scenario():
        comm = communicator(cookie)
        assert (await comm.connect())[0]
        await send(comm, {"type": "resume", "message": message_id, "after_seq": 0})
        events = await receive_until(comm, {"end", "error"}, timeout=30)
        await comm.disconnect()
        return events

    return async_to_sync(scenario)()


def sources_of(events: list[dict]) -> list[dict]:
    return next(event for event in events if event["type"] == "sources")["items"]


def test_restricted_document_reaches_its_group_and_never_anyone_else(client, setup, chat_worker, llm):
    llm.script(reply=REPLY, tokens_per_second=500)
    secret = setup["secret"]
    for user, sees in ((setup["alice"], True), (setup["bob"], False)):
        cookie = session_cookie(client, user)
        for question in ("임원 성과급은 얼마인가요?", "What is the executive bonus?"):
            items = sources_of(ask(cookie, question))
            cited = [item for item in items if item["document_id"] == secret.pk]
            assert bool(cited) is sees, (user.username, question)
            if not sees:
                assert all("40퍼센트" not in item["snippet"] and "임원 보수" not in item["title"] for item in items)
        status = client.get(reverse("knowledge:document-file", args=[secret.pk])).status_code
        assert status == (302 if sees else 404)
        assert client.get(reverse("knowledge:document", args=[secret.pk])).status_code == (200 if sees else 404)
    # What bob's prompts carried: never the passage.
    bob_prompts = [r for r in llm.requests if "40퍼센트로 확정" in r["messages"][0]["content"]]
    assert len(bob_prompts) == 2  # alice's two questions only


def test_access_removed_hides_stored_sources_in_history_and_replay(client, setup, chat_worker, llm):
    llm.script(reply=REPLY, tokens_per_second=500)
    alice, secret = setup["alice"], setup["secret"]
    cookie = session_cookie(client, alice)
    events = ask(cookie, "임원 성과급은 얼마인가요?")
    message_id = events[0]["message"]
    assert any(item["document_id"] == secret.pk for item in sources_of(events))

    alice.groups.remove(setup["group"])
    # Replay from the live stream, then from the database once the stream expired.
    for expired in (False, True):
        if expired:
            streams.sync_client().delete(streams.stream_key(message_id))
        items = sources_of(replay(cookie, message_id))
        hidden = [item for item in items if item.get("hidden")]
        assert hidden and all(item["title"] == HIDDEN_SOURCE_TITLE for item in hidden)
        assert all(item["document_id"] != secret.pk and "40퍼센트" not in item["snippet"] for item in items)
        assert [item["label"] for item in items] == [item["label"] for item in sources_of(events)]
    conversation_id = Message.objects.get(pk=message_id).conversation_id
    history = client.get(reverse("chat:messages", args=[conversation_id])).json()["messages"]
    shown = history[1]["sources"]
    assert any(item.get("hidden") for item in shown) and secret.pk not in [item["document_id"] for item in shown]
    assert "임원 보수" not in str(shown)

    # Given back: shown again.
    alice.groups.add(setup["group"])
    assert any(item["document_id"] == secret.pk for item in sources_of(replay(cookie, message_id)))


def test_memory_is_rebuilt_without_the_answers_of_a_document_the_owner_lost(client, setup, chat_worker, llm, settings):
    settings.MEMORY_TRIGGER_TOKENS = 1
    settings.MEMORY_KEEP_RECENT_MESSAGES = 0
    settings.SUMMARIZER_BACKEND = "summaries.summarizers.ExtractiveSummarizer"
    alice, secret = setup["alice"], setup["secret"]
    cookie = session_cookie(client, alice)
    llm.script(reply=REPLY, tokens_per_second=500)
    first = ask(cookie, "임원 성과급은 얼마인가요?")
    conversation_id = Message.objects.get(pk=first[0]["message"]).conversation_id
    llm.script(reply="Employees accrue 1.5 days of leave a month [S1].", tokens_per_second=500)
    ask(cookie, "How many leave days a month?", conversation=conversation_id)
    memory.memory_update(conversation_id=conversation_id)
    tainted = ConversationSummary.objects.filter(conversation_id=conversation_id).order_by("-version").first()
    assert secret.pk in tainted.document_ids and ("40퍼센트" in tainted.text or "임원 성과급" in tainted.text)

    alice.groups.remove(setup["group"])
    # The next prompt carries neither the memory that quotes it nor the answer itself.
    asked_before = len(llm.requests)
    follow_up = ask(cookie, "그럼 휴가는요?", conversation=conversation_id)
    sent = [message for request in llm.requests[asked_before:] for message in request["messages"]]
    assert sent and all("40퍼센트" not in message["content"] for message in sent)  # rewriter and answer
    assert secret.pk not in [item["document_id"] for item in sources_of(follow_up)]
    answer = Message.objects.get(pk=follow_up[0]["message"])
    assert answer.memory_version != tainted.version
    built = build_context(message=answer, hits=[])
    assert all("40퍼센트" not in m["content"] for m in built.request.messages)

    memory.memory_update(conversation_id=conversation_id)
    rebuilt = ConversationSummary.objects.filter(conversation_id=conversation_id).order_by("-version").first()
    assert rebuilt.version > tainted.version
    assert secret.pk not in rebuilt.document_ids and "40퍼센트" not in rebuilt.text
    assert "1.5" in rebuilt.text  # what alice may still read stays remembered
