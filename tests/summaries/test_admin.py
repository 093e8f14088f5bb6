"""The conversation admin: messages, the memory with its versions, and tokens used vs full history."""

from __future__ import annotations

import pytest
from django.urls import reverse

from chat.models import Message
from summaries import services
from tests.summaries.conftest import english_exchange, make_conversation

pytestmark = pytest.mark.django_db


def test_conversation_page_shows_messages_memory_versions_and_the_saving(admin_client, user, settings):
    settings.MEMORY_TRIGGER_TOKENS = 150
    conversation = make_conversation(user, [english_exchange(i) for i in range(12)])
    services.memory_update(conversation_id=conversation.pk)
    Message.objects.filter(conversation=conversation, role="assistant").update(
        context_tokens=1000, full_history_tokens=4000
    )
    response = admin_client.get(reverse("admin:chat_conversation_change", args=[conversation.pk]))
    text = response.content.decode().lower()
    assert response.status_code == 200
    assert "team 0 gets 10 days" in text and "memory versions" in text and "v1 by extractive" in text
    assert "12,000" in text and "48,000" in text and "36,000 (75%)" in text  # 12 answers of 1,000 vs 4,000
    listing = admin_client.get(reverse("admin:chat_conversation_changelist"))
    assert listing.status_code == 200 and "75%" in listing.content.decode()
