"""The pages in Korean and English (Accept-Language, then the remembered switcher), locale dates and numbers, the
Markdown export with its sources, and searching one's own conversations (Korean and English)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import formats, translation

from chat.models import Message
from tests.chat.test_views import json_script, make_conversation, make_document

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="pw-123456")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="pw-123456")


def test_sign_in_page_follows_accept_language(client):
    korean = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="ko-KR,ko;q=0.9").content.decode()
    english = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
    assert '<html lang="ko">' in korean and "로그인하면 조직의 문서에 대해 질문할 수 있습니다." in korean
    assert '<html lang="en">' in english and "Sign in to ask questions about your organisation's documents." in english


def test_chat_page_and_its_script_strings_are_korean_for_a_korean_browser(client, alice):
    client.force_login(alice)
    html = client.get(reverse("chat:home"), HTTP_ACCEPT_LANGUAGE="ko").content.decode()
    for text in ("새 대화", "질문을 입력하세요… (Enter로 보내기, Shift+Enter로 줄 바꿈)", "로그아웃", "대화 검색"):
        assert text in html
    strings = json_script(html, "chat-config")["strings"]
    assert strings["regenerate"] == "다시 생성" and strings["page"] == "%(page)s쪽"
    english = json_script(client.get(reverse("chat:home"), HTTP_ACCEPT_LANGUAGE="en").content.decode(), "chat-config")
    assert english["strings"]["regenerate"] == "Regenerate"


def test_the_switcher_sets_a_cookie_that_wins_over_accept_language(client, alice):
    client.force_login(alice)
    response = client.post(reverse("set_language"), {"language": "ko", "next": reverse("chat:home")})
    assert response.status_code == 302 and response["Location"] == reverse("chat:home")
    assert client.cookies["django_language"].value == "ko"
    html = client.get(reverse("chat:home"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="ko">' in html and "새 대화" in html
    client.post(reverse("set_language"), {"language": "en", "next": reverse("chat:home")})
    assert "New conversation" in client.get(reverse("chat:home"), HTTP_ACCEPT_LANGUAGE="ko").content.decode()


def test_document_page_shows_dates_and_sizes_in_the_locale_form(client, alice):
    document = make_document()
    client.force_login(alice)
    korean = client.get(reverse("knowledge:document", args=[document.pk]), HTTP_ACCEPT_LANGUAGE="ko").content.decode()
    english = client.get(reverse("knowledge:document", args=[document.pk]), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    created = document.created_at
    assert f"{created.year}년 {created.month}월 {created.day}일" in korean and "추가한 날" in korean
    with translation.override("en"):
        assert formats.date_format(created, "DATE_FORMAT") in english and "Added" in english
    assert "2.0\xa0KB" in english and "채팅으로 돌아가기" in korean


def test_export_is_markdown_with_the_path_and_its_sources(client, alice):
    conversation = make_conversation(alice, "연차는 며칠인가요?", answer="연간 **18일**입니다 [S1].")
    client.force_login(alice)
    response = client.get(reverse("chat:export", args=[conversation.pk]), HTTP_ACCEPT_LANGUAGE="ko")
    assert response.status_code == 200 and response["Content-Type"] == "text/markdown; charset=utf-8"
    assert "filename*=UTF-8''" in response["Content-Disposition"] and "attachment" in response["Content-Disposition"]
    text = response.content.decode()
    assert text.startswith("# 연차는 며칠인가요?\n")
    assert "## 질문\n\n연차는 며칠인가요?" in text and "### 답변\n\n연간 **18일**입니다 [S1]." in text
    assert "**출처**" in text and "- [S1] Handbook — 2쪽" in text
    english = client.get(reverse("chat:export", args=[conversation.pk]), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "## Question" in english and "- [S1] Handbook — p. 2" in english


def test_export_leaves_out_earlier_attempts_and_is_404_for_others(client, alice, bob):
    conversation = make_conversation(alice, "Leave?", answer="First attempt.")
    question = conversation.messages.get(role="user")
    conversation.messages.filter(role="assistant").update(superseded=True)
    Message.objects.create(
        conversation=conversation, role="assistant", reply_to=question, content="Second attempt.", status="complete"
    )
    client.force_login(alice)
    text = client.get(reverse("chat:export", args=[conversation.pk])).content.decode()
    assert "Second attempt." in text and "First attempt." not in text
    client.force_login(bob)
    assert client.get(reverse("chat:export", args=[conversation.pk])).status_code == 404


def test_search_finds_own_conversations_by_title_or_message_in_korean_and_english(client, alice, bob):
    leave = make_conversation(alice, "휴가 규정", answer="연차는 매월 1.5일씩 발생합니다.")
    parking = make_conversation(alice, "Parking", answer="Visitors park in lot C.")
    make_conversation(bob, "Bob's 연차 질문", answer="연차 비밀")
    client.force_login(alice)

    def found(query: str) -> list[dict]:
        response = client.get(reverse("chat:search"), {"q": query})
        assert response.status_code == 200
        return response.json()["results"]

    korean = found("1.5일씩")
    assert [item["id"] for item in korean] == [leave.pk] and "1.5일씩" in korean[0]["snippet"]
    assert [item["id"] for item in found("LOT c")] == [parking.pk]
    assert [item["id"] for item in found("휴가")] == [leave.pk]  # by title
    assert found("연차 비밀") == [] and found("   ") == []


def test_search_requires_sign_in(client):
    response = client.get(reverse("chat:search"), {"q": "x"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
