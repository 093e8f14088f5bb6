"""The browser client's HTTP side: sign-in everywhere, owners only, restricted documents hidden, CSP on every page."""

from __future__ import annotations

import json
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import Group
from django.test import override_settings
from django.urls import reverse

from chat.models import Conversation, Message
from knowledge.models import Document
from protostar.middleware import CONTENT_SECURITY_POLICY

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="pw-123456")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="pw-123456")


def make_conversation(owner, title: str, *, answer: str = "Answer [S1].") -> Conversation:
    conversation = Conversation.objects.create(owner=owner, title=title)
    question = Message.objects.create(conversation=conversation, role="user", content=title, status="complete")
    # A document every signed-in user may read: sources of documents the reader cannot open are hidden.
    handbook = make_document("Handbook")
    sources = [
        {"label": "S1", "chunk_id": 1, "document_id": handbook.pk, "title": "Handbook", "page": 2, "snippet": "…"}
    ]
    Message.objects.create(
        conversation=conversation,
        role="assistant",
        reply_to=question,
        content=answer,
        status="complete",
        sources=sources,
    )
    return conversation


def make_document(title: str = "취업규칙", *, groups: list[Group] | None = None) -> Document:
    document = Document.objects.create(
        title=title,
        original_filename="취업규칙 2024.pdf",
        file=f"documents/{uuid.uuid4().hex}",
        content_type="application/pdf",
        size=2048,
        sha256=uuid.uuid4().hex + uuid.uuid4().hex,
        status=Document.Status.READY,
        page_count=12,
        visibility=Document.Visibility.GROUPS if groups else Document.Visibility.ALL_USERS,
    )
    if groups:
        document.allowed_groups.set(groups)
    return document


def json_script(html: str, element_id: str):
    opening = f'id="{element_id}" type="application/json">'
    start = html.index(opening) + len(opening)
    return json.loads(html[start : html.index("</script>", start)])


@pytest.mark.parametrize(
    "url",
    [
        reverse("chat:home"),
        reverse("chat:conversation", args=[1]),
        reverse("chat:messages", args=[1]),
        reverse("knowledge:document", args=[1]),
        reverse("knowledge:document-file", args=[1]),
    ],
)
def test_every_page_requires_sign_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_home_lists_only_the_users_conversations_newest_first(client, alice, bob):
    older = make_conversation(alice, "Older question")
    newer = make_conversation(alice, "연차는 며칠인가요?")
    make_conversation(bob, "Bob's secret")
    client.force_login(alice)
    response = client.get(reverse("chat:home"))
    assert response.status_code == 200
    assert list(response.context["conversations"]) == [newer, older]
    html = response.content.decode()
    assert "연차는 며칠인가요?" in html and "Bob&#x27;s secret" not in html and "Bob's secret" not in html
    assert json_script(html, "chat-config")["maxChars"] > 0


def test_conversation_page_embeds_its_history(client, alice):
    conversation = make_conversation(alice, "Leave policy?", answer="Up to **18 days** [S1].")
    client.force_login(alice)
    response = client.get(reverse("chat:conversation", args=[conversation.pk]))
    assert response.status_code == 200
    history = json_script(response.content.decode(), "chat-history")
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert history[1]["content"] == "Up to **18 days** [S1]." and history[1]["sources"][0]["page"] == 2


def test_another_users_conversation_is_404_on_page_and_json(client, alice, bob):
    conversation = make_conversation(bob, "Bob's question")
    client.force_login(alice)
    assert client.get(reverse("chat:conversation", args=[conversation.pk])).status_code == 404
    assert client.get(reverse("chat:messages", args=[conversation.pk])).status_code == 404
    assert client.get(reverse("chat:messages", args=[conversation.pk + 1000])).status_code == 404


def test_messages_endpoint_returns_the_owners_messages_in_order(client, alice):
    conversation = make_conversation(alice, "First")
    client.force_login(alice)
    response = client.get(reverse("chat:messages", args=[conversation.pk]))
    assert response.status_code == 200
    data = response.json()
    assert data["conversation"] == {"id": conversation.pk, "title": "First"}
    assert [m["role"] for m in data["messages"]] == ["user", "assistant"]
    assert data["messages"][1]["status"] == "complete"


def test_chat_and_document_pages_send_a_strict_content_security_policy(client, alice):
    document = make_document()
    client.force_login(alice)
    for url in (reverse("chat:home"), reverse("knowledge:document", args=[document.pk])):
        policy = client.get(url)["Content-Security-Policy"]
        assert policy == CONTENT_SECURITY_POLICY
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "connect-src 'self' ws: wss:" in policy and "frame-ancestors 'none'" in policy


def test_chat_page_has_no_inline_script(client, alice):
    client.force_login(alice)
    html = client.get(reverse("chat:home")).content.decode()
    # Only external scripts and JSON data blocks: an inline script would need 'unsafe-inline'.
    for block in html.split("<script")[1:]:
        head = block.split(">", 1)[0]
        assert "src=" in head or 'type="application/json"' in head


@override_settings(CHAT_MAX_MESSAGE_CHARS=1234)
def test_character_limit_comes_from_settings(client, alice):
    client.force_login(alice)
    html = client.get(reverse("chat:home")).content.decode()
    assert 'maxlength="1234"' in html and json_script(html, "chat-config")["maxChars"] == 1234


def test_document_page_shows_details_and_the_cited_page(client, alice, knowledge_base):
    client.force_login(alice)
    response = client.get(reverse("knowledge:document", args=[knowledge_base.pk]), {"page": 2})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Employee Handbook" in html and "handbook.txt" in html and 'id="page-2"' in html
    assert "work remotely up to three days" in html  # the chunk on page 2
    assert "paid leave per month" not in html  # page 1 is not shown
    assert reverse("knowledge:document-file", args=[knowledge_base.pk]) in html


def test_restricted_document_is_404_for_outsiders_and_visible_to_members(client, alice, bob):
    hr = Group.objects.create(name="hr")
    bob.groups.add(hr)
    document = make_document("인사 기밀", groups=[hr])
    client.force_login(alice)
    assert client.get(reverse("knowledge:document", args=[document.pk])).status_code == 404
    assert client.get(reverse("knowledge:document-file", args=[document.pk])).status_code == 404
    client.force_login(bob)
    assert client.get(reverse("knowledge:document", args=[document.pk])).status_code == 200


def test_document_file_redirects_to_a_short_lived_presigned_url(client, alice):
    document = make_document()
    client.force_login(alice)
    response = client.get(reverse("knowledge:document-file", args=[document.pk]))
    assert response.status_code == 302
    query = parse_qs(urlsplit(response["Location"]).query)
    assert query["X-Amz-Expires"] == ["60"]
    assert query["response-content-disposition"][0].startswith("attachment;")
    assert "filename*=UTF-8''" in query["response-content-disposition"][0]
    inline = client.get(reverse("knowledge:document-file", args=[document.pk]), {"inline": "1"})
    assert parse_qs(urlsplit(inline["Location"]).query)["response-content-disposition"][0].startswith("inline;")


# --- rename and delete ------------------------------------------------------------------------------------------


def test_owner_renames_a_conversation_in_korean_without_reordering_the_list(client, alice):
    older, newer = make_conversation(alice, "first"), make_conversation(alice, "second")
    client.force_login(alice)

    response = client.post(reverse("chat:rename", args=[older.pk]), {"title": "  휴가   규정 \n 정리  "})

    assert response.status_code == 200
    assert response.json() == {"conversation": {"id": older.pk, "title": "휴가 규정 정리"}}
    older.refresh_from_db()
    assert older.title == "휴가 규정 정리"
    listed = [c.pk for c in Conversation.objects.filter(owner=alice).order_by("-updated_at", "-id")]
    assert listed == [newer.pk, older.pk]


@pytest.mark.parametrize(
    ("title", "code"), [("   ", "invalid"), ("", "invalid"), ("x" * 201, "too_long")], ids=["blank", "empty", "long"]
)
def test_bad_titles_are_refused_readably_and_change_nothing(client, alice, title, code):
    conversation = make_conversation(alice, "kept")
    client.force_login(alice)

    response = client.post(reverse("chat:rename", args=[conversation.pk]), {"title": title})

    assert response.status_code == 400 and response.json()["error"]["code"] == code
    assert response.json()["error"]["detail"]
    conversation.refresh_from_db()
    assert conversation.title == "kept"


def test_other_users_conversations_cannot_be_renamed_or_deleted(client, alice, bob):
    conversation = make_conversation(alice, "private")
    client.force_login(bob)

    assert client.post(reverse("chat:rename", args=[conversation.pk]), {"title": "mine"}).status_code == 404
    assert client.post(reverse("chat:delete", args=[conversation.pk])).status_code == 404
    conversation.refresh_from_db()
    assert conversation.title == "private"


def test_rename_and_delete_need_a_signed_in_post_with_a_csrf_token(client, alice):
    conversation = make_conversation(alice, "guarded")
    rename, delete = reverse("chat:rename", args=[conversation.pk]), reverse("chat:delete", args=[conversation.pk])

    assert client.post(rename, {"title": "x"}).status_code == 302  # to the sign-in page
    assert client.post(delete).status_code == 302
    client.force_login(alice)
    assert client.get(rename).status_code == 405 and client.get(delete).status_code == 405
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post(delete).status_code == 403
    assert Conversation.objects.filter(pk=conversation.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_delete_removes_messages_memory_and_stream_and_stops_an_unfinished_answer(client, alice):
    from chat import streams
    from chat.answering import answer_message
    from summaries.models import ConversationSummary

    conversation = make_conversation(alice, "to delete")
    done = conversation.messages.get(role="assistant")
    question = Message.objects.create(conversation=conversation, role="user", content="more?", status="complete")
    pending = Message.objects.create(conversation=conversation, role="assistant", reply_to=question, status="pending")
    ConversationSummary.objects.create(
        conversation=conversation, version=1, text="memory", covers_from_message_id=1, covers_to_message_id=2
    )
    conn = streams.sync_client()
    conn.xadd(streams.stream_key(done.pk), {"type": "token", "data": json.dumps({"text": "old"})}, id="0-1")
    client.force_login(alice)

    response = client.post(reverse("chat:delete", args=[conversation.pk]))

    assert response.status_code == 200 and response.json() == {"deleted": conversation.pk}
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not Message.objects.filter(pk__in=[done.pk, pending.pk]).exists()
    assert not ConversationSummary.objects.filter(conversation_id=conversation.pk).exists()
    assert not conn.exists(streams.stream_key(done.pk))
    assert conn.lrange(streams.stop_key(pending.pk), 0, -1) == [b"1"]
    # The queued job finds nothing to answer and writes nothing.
    assert answer_message(message_id=pending.pk) is None
    assert not conn.exists(streams.stream_key(pending.pk))
    conn.delete(streams.stop_key(pending.pk))
