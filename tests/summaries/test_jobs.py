"""Memory through the real job path: the chat job queues the update, a real worker folds, answers keep working."""

from __future__ import annotations

import pytest

from chat import answering
from chat.models import Message
from summaries import selectors, services
from summaries.models import ConversationSummary
from tests.conftest import wait_until
from tests.summaries.conftest import add_exchange, english_exchange, make_conversation

pytestmark = pytest.mark.django_db(transaction=True)


def answer(conversation, question: str) -> Message:
    """Ask ``question`` and run the chat job in this process (the same code the chat worker runs)."""
    _, pending = add_exchange(conversation, question, None)
    answering.answer_message(message_id=pending.pk)
    return Message.objects.get(pk=pending.pk)


def test_completed_answers_queue_a_memory_update_that_a_real_worker_applies(user, live_workers):
    # Defaults of the worker process: offline summarizer, MEMORY_TRIGGER_TOKENS=100 (its default).
    # ~1,600 tokens of history: more than the recent-turns budget (1,200), over the trigger.
    conversation = make_conversation(user, [english_exchange(i) for i in range(20)])
    message = answer(conversation, "What about team 20?")
    assert message.status == Message.Status.COMPLETE
    assert message.context_tokens > 0 and message.full_history_tokens > message.context_tokens
    summary = wait_until(
        lambda: selectors.summary_latest(conversation_id=conversation.pk), timeout=60, message="memory v1"
    )
    assert summary.summarizer == "extractive" and "Question 0: how many leave days" in summary.text
    assert summary.covers_to_message_id < message.reply_to_id


def test_summarizer_failure_leaves_memory_in_place_and_the_chat_working(user, memory_llm, settings):
    settings.MEMORY_TRIGGER_TOKENS = 150
    settings.SUMMARIZER_BACKEND = "summaries.summarizers.ExtractiveSummarizer"
    conversation = make_conversation(user, [english_exchange(i) for i in range(5)])
    first = services.memory_update(conversation_id=conversation.pk)
    settings.SUMMARIZER_BACKEND = "chat.memory.LLMSummarizer"
    for i in range(5, 10):
        add_exchange(conversation, *english_exchange(i))
    memory_llm.script(fail="500", times=1)
    with pytest.raises(Exception, match="500"):
        services.memory_update(conversation_id=conversation.pk)
    assert list(ConversationSummary.objects.filter(conversation=conversation)) == [first]
    # The next answer still works, with the memory that was there before the failure.
    memory_llm.script(reply="Team 9 gets 19 days [S1].")
    message = answer(conversation, "And team 9?")
    assert message.status == Message.Status.COMPLETE and message.content == "Team 9 gets 19 days [S1]."
    assert message.memory_version == first.version
    system = memory_llm.requests[-1]["messages"][0]["content"]
    assert first.text.splitlines()[0] in system
