"""The token-budgeted prompt: every part within its budget, the whole within the total, nothing cut mid-character."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from chat.context import build_context
from protostar.tokens import count_tokens, encode, get_encoding
from summaries import services
from tests.summaries.conftest import add_exchange, english_exchange, korean_exchange, make_conversation

pytestmark = pytest.mark.django_db
LONG_ENGLISH = "The quarterly budget review covers logistics, hiring and travel for the Busan office. " * 900
LONG_KOREAN = "부산지사의분기예산검토는물류와채용과출장비를다룹니다" * 800  # one run of Hangul without a space


def hit(rank: int, text: str) -> SimpleNamespace:
    return SimpleNamespace(title=f"Doc {rank}", text=text, page_start=rank, section="")


def hits(count: int = 6, words: int = 120) -> list[SimpleNamespace]:
    return [hit(i, f"Passage {i}: " + " ".join(f"fact{i}-{w}" for w in range(words))) for i in range(1, count + 1)]


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("asker", password="pw-123456")


@pytest.fixture
def budgets(settings):
    settings.CONTEXT_BUDGET_TOTAL = 3000
    settings.CONTEXT_BUDGET_PASSAGES = 1200
    settings.CONTEXT_BUDGET_MEMORY = 300
    settings.CONTEXT_BUDGET_RECENT = 600
    settings.MEMORY_TRIGGER_TOKENS = 150
    settings.SUMMARIZER_BACKEND = "summaries.summarizers.ExtractiveSummarizer"
    return settings


def ask(conversation, question: str):
    return add_exchange(conversation, question, None)[1]


def assert_within(built, settings) -> None:
    counted = sum(count_tokens(m["content"]) for m in built.request.messages)
    assert built.context_tokens == counted <= settings.CONTEXT_BUDGET_TOTAL
    assert built.parts["passages"] <= settings.CONTEXT_BUDGET_PASSAGES
    assert built.parts["memory"] <= settings.CONTEXT_BUDGET_MEMORY + 40  # the summary block's own wording
    assert built.parts["recent"] <= settings.CONTEXT_BUDGET_RECENT


@pytest.mark.parametrize("long_text", [LONG_ENGLISH, LONG_KOREAN], ids=["english", "korean"])
def test_context_stays_under_budget_with_very_long_messages(user, budgets, long_text):
    conversation = make_conversation(user, [(long_text, long_text), english_exchange(1), (long_text, long_text)])
    message = ask(conversation, long_text)
    built = build_context(message=message, hits=[hit(1, long_text), *hits(3)])
    assert_within(built, budgets)
    history = conversation.messages.exclude(content="")
    assert built.full_history_tokens > sum(count_tokens(m.content) for m in history) > 20 * budgets.CONTEXT_BUDGET_TOTAL
    # Cut texts are prefixes of the originals that decode cleanly: no broken character or syllable.
    for sent in built.request.messages[1:]:
        assert long_text.startswith(sent["content"]) or sent["content"] in {m.content for m in history}
        assert get_encoding().decode(encode(sent["content"])) == sent["content"]


def test_passages_are_dropped_lowest_ranked_first(user, budgets):
    conversation = make_conversation(user, [])
    built = build_context(message=ask(conversation, "What do the facts say?"), hits=hits(6, words=150))
    labels = [p.label for p in built.request.passages]
    assert labels == [f"S{i}" for i in range(1, len(labels) + 1)] and 1 <= len(labels) < 6
    assert all(p.text.startswith(f"Passage {p.label[1:]}:") for p in built.request.passages)
    assert_within(built, budgets)


def test_recent_turns_are_the_messages_after_the_summary_newest_first(user, budgets):
    conversation = make_conversation(user, [english_exchange(i) for i in range(8)])
    summary = services.memory_update(conversation_id=conversation.pk)
    message = ask(conversation, "And team 7?")
    built = build_context(message=message, hits=hits(2))
    recent = built.request.messages[1:-1]
    after = conversation.messages.filter(pk__gt=summary.covers_to_message_id, pk__lt=message.reply_to_id)
    assert [m["content"] for m in recent] == [m.content for m in after.order_by("pk")]
    system = built.request.messages[0]["content"]
    assert "<conversation_summary>" in system and summary.text.splitlines()[0] in system
    assert built.memory_version == summary.version
    assert built.request.messages[-1] == {"role": "user", "content": "And team 7?"}
    assert built.full_history_tokens > built.context_tokens


def test_without_memory_the_newest_turns_fill_the_recent_budget(user, budgets):
    conversation = make_conversation(user, [korean_exchange(i) for i in range(12)])
    message = ask(conversation, "13팀은요?")
    built = build_context(message=message, hits=[])
    recent = built.request.messages[1:-1]
    earlier = conversation.messages.exclude(content="").filter(pk__lt=message.reply_to_id)
    newest = list(earlier.order_by("-pk")[: len(recent)])
    assert [m["content"] for m in recent] == [m.content for m in reversed(newest)]
    assert (
        0
        < built.parts["recent"]
        <= budgets.CONTEXT_BUDGET_RECENT
        < sum(count_tokens(m.content) for m in conversation.messages.all())
    )
    assert built.memory_version is None and "<conversation_summary>" not in built.request.messages[0]["content"]


def test_korean_and_english_are_counted_with_the_real_tokenizer(user, budgets):
    korean, english = "3월 5일 오후 2시에 출시하기로 확정했습니다.", "We agreed to launch on March 5 at 2 pm."
    assert count_tokens(korean) == len(encode(korean)) and count_tokens(english) == len(encode(english))
    # Korean costs more tokens per character than English: a character count would misjudge both.
    assert count_tokens(korean) / len(korean) > count_tokens(english) / len(english)
    conversation = make_conversation(user, [(korean, english)])
    built = build_context(message=ask(conversation, korean), hits=[])
    assert built.parts["recent"] == count_tokens(korean) + count_tokens(english)
    assert built.parts["question"] == count_tokens(korean) and built.request.language == "ko"


def test_recent_window_holds_whole_exchanges_only(user, budgets):
    question, answer = "How many days?", "Team 1 gets 11 days of paid leave per year. " * 20  # ~200 tokens
    conversation = make_conversation(user, [(question, answer)] * 3)
    budgets.CONTEXT_BUDGET_RECENT = 2 * count_tokens(answer) + count_tokens(question)  # room for Q A A, not Q A Q A
    built = build_context(message=ask(conversation, "And team 2?"), hits=[])
    recent = built.request.messages[1:-1]
    # The newest exchange only: the answer before it fits the budget but its question does not, so it is left out.
    assert [m["role"] for m in recent] == ["user", "assistant"]
    assert built.parts["recent"] == count_tokens(question) + count_tokens(answer)
