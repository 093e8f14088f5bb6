"""Memory summaries' model tokens go on the conversation owner's ledger, once per stored version."""

from __future__ import annotations

import pytest
from django.utils import timezone

from summaries import services
from tests.summaries.conftest import english_exchange, korean_exchange, make_conversation
from usage.models import UsageDay

pytestmark = pytest.mark.django_db


def test_a_stored_summary_bills_its_model_tokens_to_the_owner_for_the_day(user, memory_llm, settings):
    settings.MEMORY_TRIGGER_TOKENS = 50
    settings.MEMORY_KEEP_RECENT_MESSAGES = 2
    memory_llm.script(reply="- 사용자: 팀별 연차 일수를 물음.\n- Team 0 gets 10 days.")
    conversation = make_conversation(user, [english_exchange(0), korean_exchange(1), english_exchange(2)])
    summary = services.memory_update(conversation_id=conversation.pk)
    assert summary is not None and summary.prompt_tokens > 0 and summary.completion_tokens > 0

    row = UsageDay.objects.get(user=user, day=timezone.localdate())
    spent = conversation.summaries.all()
    assert row.summary_prompt_tokens == sum(s.prompt_tokens for s in spent)
    assert row.summary_completion_tokens == sum(s.completion_tokens for s in spent)
    assert row.answers == 0 and row.prompt_tokens == 0  # answers are billed by the chat app
    assert services.memory_update(conversation_id=conversation.pk) is None  # nothing due: nothing billed again
    assert UsageDay.objects.get(pk=row.pk).summary_prompt_tokens == row.summary_prompt_tokens
