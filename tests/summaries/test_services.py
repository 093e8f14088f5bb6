"""Folding turns into summary versions: when it happens, what each version covers, and that nothing is lost."""

from __future__ import annotations

import threading

import pytest
from django.db import close_old_connections

from chat.models import Conversation, Message
from protostar.llm.base import LLMError
from protostar.tokens import count_tokens
from summaries import selectors, services, tasks
from summaries.models import ConversationSummary
from tests.summaries.conftest import SlowSummarizer, add_exchange, english_exchange, korean_exchange, make_conversation


@pytest.fixture
def small_trigger(settings):
    settings.MEMORY_TRIGGER_TOKENS = 150
    settings.MEMORY_KEEP_RECENT_MESSAGES = 2
    settings.SUMMARIZER_BACKEND = "summaries.summarizers.ExtractiveSummarizer"
    return settings


def turn_ids(conversation: Conversation) -> list[int]:
    return list(conversation.messages.exclude(content="").order_by("pk").values_list("pk", flat=True))


def assert_contiguous(conversation: Conversation) -> list[ConversationSummary]:
    """Versions 1..n, each folding in exactly the turns right after the previous one's range."""
    versions = list(conversation.summaries.order_by("version"))
    ids = turn_ids(conversation)
    assert [s.version for s in versions] == list(range(1, len(versions) + 1))
    expected_start = ids[0]
    for summary in versions:
        assert summary.covers_from_message_id == expected_start
        assert summary.covers_to_message_id >= summary.covers_from_message_id
        covered = [pk for pk in ids if pk <= summary.covers_to_message_id]
        assert summary.message_count == len(covered)
        later = [pk for pk in ids if pk > summary.covers_to_message_id]
        expected_start = later[0] if later else None
    return versions


@pytest.mark.django_db
def test_short_tail_does_not_trigger_a_summary(user, small_trigger):
    conversation = make_conversation(user, [("Hi, what is the leave policy?", "18 days a year [S1].")] * 2)
    assert services.memory_update(conversation_id=conversation.pk) is None
    assert not ConversationSummary.objects.exists()


@pytest.mark.django_db
def test_tail_over_the_trigger_folds_everything_but_the_newest_exchange(user, small_trigger):
    conversation = make_conversation(user, [english_exchange(i) for i in range(5)])
    summary = services.memory_update(conversation_id=conversation.pk)
    ids = turn_ids(conversation)
    assert summary is not None and summary.version == 1
    assert summary.covers_from_message_id == ids[0] and summary.covers_to_message_id == ids[-3]
    assert summary.token_count == count_tokens(summary.text) <= small_trigger.CONTEXT_BUDGET_MEMORY
    assert summary.summarizer == "extractive" and summary.prompt_tokens == summary.completion_tokens == 0
    assert "Team 0 gets 10 days" in summary.text
    # Run twice: nothing new is due, so nothing changes.
    assert services.memory_update(conversation_id=conversation.pk) is None
    assert conversation.summaries.count() == 1


@pytest.mark.django_db
def test_threshold_is_configurable_in_tokens(user, small_trigger):
    conversation = make_conversation(user, [korean_exchange(i) for i in range(4)])
    foldable = conversation.messages.order_by("pk")[:6]
    tokens = sum(count_tokens(m.content) for m in foldable)
    small_trigger.MEMORY_TRIGGER_TOKENS = tokens + 1
    assert services.memory_update(conversation_id=conversation.pk) is None
    small_trigger.MEMORY_TRIGGER_TOKENS = tokens
    assert services.memory_update(conversation_id=conversation.pk).version == 1


@pytest.mark.django_db
def test_versions_advance_and_cover_contiguous_ranges(user, small_trigger):
    conversation = make_conversation(user, [english_exchange(0)])
    for i in range(1, 16):
        add_exchange(conversation, *(english_exchange(i) if i % 2 else korean_exchange(i)))
        services.memory_update(conversation_id=conversation.pk)
    versions = assert_contiguous(conversation)
    assert len(versions) >= 3
    assert all(v.token_count <= small_trigger.CONTEXT_BUDGET_MEMORY for v in versions)


@pytest.mark.django_db
def test_an_answer_still_being_written_holds_the_memory_back(user, small_trigger):
    conversation = make_conversation(user, [english_exchange(i) for i in range(4)])
    question, pending = add_exchange(conversation, "Question on hold?", None)
    for i in range(4, 8):
        add_exchange(conversation, *english_exchange(i))
    summary = services.memory_update(conversation_id=conversation.pk)
    assert summary.covers_to_message_id < question.pk
    # The answer arrives late; the next fold starts with its question, so the late answer is not skipped.
    Message.objects.filter(pk=pending.pk).update(content="The late answer: 42 days.", status="complete")
    services.memory_update(conversation_id=conversation.pk)
    versions = assert_contiguous(conversation)
    assert versions[1].covers_from_message_id <= question.pk < pending.pk <= versions[1].covers_to_message_id
    assert "42 days" in versions[1].text


@pytest.mark.django_db
def test_a_long_backlog_is_folded_in_bounded_batches(user, small_trigger):
    small_trigger.MEMORY_FOLD_MAX_TOKENS = 300
    conversation = make_conversation(user, [english_exchange(i) for i in range(12)])
    latest = services.memory_update(conversation_id=conversation.pk)
    versions = assert_contiguous(conversation)
    assert len(versions) >= 3 and latest == versions[-1]
    for version in versions:
        folded = conversation.messages.filter(
            pk__gte=version.covers_from_message_id, pk__lte=version.covers_to_message_id
        )
        assert sum(count_tokens(m.content) for m in folded) <= 300
    # What is left is below the trigger: the job stopped because nothing more was due, not at a round limit.
    assert selectors.fold_plan(conversation_id=conversation.pk) is None


@pytest.mark.django_db(transaction=True)
def test_concurrent_jobs_never_lose_a_turn_nor_go_backwards(user, small_trigger):
    small_trigger.SUMMARIZER_BACKEND = "tests.summaries.conftest.SlowSummarizer"
    conversation = make_conversation(user, [english_exchange(0)])
    errors: list[BaseException] = []

    def job() -> None:
        try:
            tasks.update_memory(conversation.pk)
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)
        finally:
            close_old_connections()

    seen_versions: list[int] = []
    for i in range(1, 9):
        add_exchange(conversation, *english_exchange(i))
        threads = [threading.Thread(target=job) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        latest = selectors.summary_latest(conversation_id=conversation.pk)
        seen_versions.append(latest.version if latest else 0)
    assert not errors
    assert seen_versions == sorted(seen_versions) and seen_versions[-1] >= 3
    versions = assert_contiguous(conversation)
    # Every turn but the newest exchange is behind the memory: none fell between two versions.
    assert versions[-1].covers_to_message_id == turn_ids(conversation)[-3]
    assert SlowSummarizer.calls >= len(versions)


@pytest.mark.django_db
def test_deleting_a_conversation_deletes_its_summaries(user, small_trigger):
    conversation = make_conversation(user, [english_exchange(i) for i in range(5)])
    services.memory_update(conversation_id=conversation.pk)
    assert ConversationSummary.objects.filter(conversation=conversation).exists()
    conversation.delete()
    assert not ConversationSummary.objects.exists()


@pytest.mark.django_db
def test_job_for_a_deleted_conversation_returns_quietly(user, small_trigger):
    conversation = make_conversation(user, [english_exchange(i) for i in range(5)])
    conversation_id = conversation.pk
    conversation.delete()
    assert tasks.update_memory(conversation_id) is None


@pytest.mark.django_db
def test_llm_summarizer_uses_the_summarize_prompt_and_records_its_cost(user, small_trigger, memory_llm):
    small_trigger.SUMMARIZER_BACKEND = "chat.memory.LLMSummarizer"
    memory_llm.script(reply="- User: Mina Park, budget 45,000 USD.\n- Decided: Acme Corp.")
    conversation = make_conversation(user, [english_exchange(i) for i in range(5)])
    summary = services.memory_update(conversation_id=conversation.pk)
    prompt = memory_llm.requests[-1]["messages"][0]["content"]
    assert prompt.startswith("You maintain the memory of a conversation") and "Team 0 gets 10 days" in prompt
    assert summary.text.startswith("- User: Mina Park") and summary.summarizer == "llm:gpt-4o-mini"
    assert summary.prompt_tokens == count_tokens(prompt) and summary.completion_tokens > 0


@pytest.mark.django_db
def test_summarizer_failure_keeps_the_previous_memory(user, small_trigger, memory_llm):
    conversation = make_conversation(user, [english_exchange(i) for i in range(5)])
    first = services.memory_update(conversation_id=conversation.pk)  # offline: version 1
    small_trigger.SUMMARIZER_BACKEND = "chat.memory.LLMSummarizer"
    for i in range(5, 10):
        add_exchange(conversation, *english_exchange(i))
    memory_llm.script(fail="500")
    with pytest.raises(LLMError):
        tasks.update_memory(conversation.pk)
    latest = selectors.summary_latest(conversation_id=conversation.pk)
    assert latest == first and latest.text == first.text and conversation.summaries.count() == 1
    # Once the model is back, the next job folds exactly the turns after version 1.
    memory_llm.script(reply="- Teams 0-7: leave days recorded.")
    assert tasks.update_memory(conversation.pk) == 2
    assert_contiguous(conversation)


def test_turns_come_from_chat_messages_with_extractive_answers_marked_as_quoted(user, small_trigger):
    from chat.memory import MessageTurns

    conversation = make_conversation(user, [english_exchange(0), korean_exchange(1)])
    conversation.messages.filter(role="assistant", content__startswith="1팀").update(model_name="extractive")

    turns = MessageTurns().settled_turns(conversation_id=conversation.pk, after_id=0)

    assert [(turn.role, turn.quoted) for turn in turns] == [
        ("user", False),
        ("assistant", False),
        ("user", False),
        ("assistant", True),
    ]
    assert [turn.message_id for turn in turns] == sorted(conversation.messages.values_list("pk", flat=True))
