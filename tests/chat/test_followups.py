"""Follow-up questions are searched with their context: offline by adding the previous question, with a model by
rewriting them through the ``condense_question`` prompt (real openai SDK against the test server)."""

from __future__ import annotations

import pytest
from django.test import override_settings

from chat.answering import answer_message
from chat.models import Conversation, Message
from chat.rewriting import LLMQueryRewriter, RecentQuestionRewriter, Turn

pytestmark = pytest.mark.django_db(transaction=True)
OPENAI = {
    "CHAT_MODEL_BACKEND": "protostar.llm.openai.OpenAIChatModel",
    "CHAT_QUERY_REWRITER": "chat.rewriting.LLMQueryRewriter",
    "LLM_MAX_RETRIES": 0,
}
HISTORY = [
    Turn("user", "How many days of annual leave do new employees get?"),
    Turn("assistant", "New employees get 15 days of annual leave in their first year [S1]."),
]
LEAVE = [
    ("Annual leave", "New employees receive 15 days of annual leave in their first year of service."),
    ("Annual leave", "After three years of service the annual leave entitlement rises to 20 days."),
]
PARKING = [
    ("Parking", "Visitors may park in lot C; the barrier opens after the reception desk registers the car."),
    ("Parking", "The second garage level is reserved for electric cars and bicycles."),
]


def test_first_question_is_searched_as_typed():
    assert RecentQuestionRewriter().rewrite(question="연차는 며칠인가요?", history=[]) == "연차는 며칠인가요?"


def test_offline_follow_up_is_searched_with_the_previous_question_after_it():
    query = RecentQuestionRewriter().rewrite(question="And after three years?", history=HISTORY)

    assert query == "And after three years?\nHow many days of annual leave do new employees get?"


def test_model_rewrite_is_used_and_sees_the_conversation(llm):
    llm.script(reply="How many days of annual leave do employees get after three years?")
    with override_settings(LLM_BASE_URL=llm.base_url, **OPENAI):
        query = LLMQueryRewriter().rewrite(question="And after three years?", history=HISTORY)

    assert query == "How many days of annual leave do employees get after three years?"
    prompt = llm.requests[-1]["messages"][0]["content"]
    assert "How many days of annual leave do new employees get?" in prompt and "And after three years?" in prompt


def test_korean_follow_up_prompt_keeps_the_korean_turns(llm):
    llm.script(reply="3년 근속 후 연차 휴가는 며칠인가요?")
    history = [Turn("user", "신입 사원의 연차 휴가는 며칠인가요?"), Turn("assistant", "15일입니다 [S1].")]
    with override_settings(LLM_BASE_URL=llm.base_url, **OPENAI):
        query = LLMQueryRewriter().rewrite(question="3년 후에는요?", history=history)

    assert query == "3년 근속 후 연차 휴가는 며칠인가요?"
    assert "신입 사원의 연차 휴가는 며칠인가요?" in llm.requests[-1]["messages"][0]["content"]


@pytest.mark.parametrize(
    ("script", "why"),
    [({"fail": "500"}, "server error"), ({"reply": "word " * 400}, "an answer instead of a query")],
)
def test_model_fault_or_essay_falls_back_to_the_offline_rewrite(llm, script, why):
    llm.script(**script)
    with override_settings(LLM_BASE_URL=llm.base_url, **OPENAI):
        query = LLMQueryRewriter().rewrite(question="And after three years?", history=HISTORY)

    assert query == RecentQuestionRewriter().rewrite(question="And after three years?", history=HISTORY), why


@pytest.fixture
def follow_up(django_user_model):
    """Two documents, a finished first turn about leave, and a pending answer to a vague follow-up."""
    from tests.knowledge.factories import ready_document

    ready_document(title="Leave policy", chunks=LEAVE)
    ready_document(title="Parking rules", chunks=PARKING)
    user = django_user_model.objects.create_user("follower", password="pw-123456")
    conversation = Conversation.objects.create(owner=user, title="leave")
    first = Message.objects.create(
        conversation=conversation, role="user", content=HISTORY[0].content, status="complete"
    )
    Message.objects.create(
        conversation=conversation, role="assistant", reply_to=first, content=HISTORY[1].content, status="complete"
    )
    question = Message.objects.create(
        conversation=conversation, role="user", content="And the second level?", status="complete"
    )
    return Message.objects.create(conversation=conversation, role="assistant", reply_to=question, status="pending")


def test_chat_job_searches_with_the_rewrite_and_stores_it(follow_up, llm):
    llm.script(reply="Which cars may park on the second garage level?")
    with override_settings(LLM_BASE_URL=llm.base_url, **OPENAI):
        assert answer_message(message_id=follow_up.pk) == Message.Status.COMPLETE

    follow_up.refresh_from_db()
    assert follow_up.retrieval_query == "Which cars may park on the second garage level?"
    assert follow_up.sources[0]["title"] == "Parking rules"
    assert "second garage level" in follow_up.sources[0]["snippet"]
    # The answer itself still replies to the question as asked, with the conversation around it.
    assert llm.requests[-1]["messages"][-1] == {"role": "user", "content": "And the second level?"}


def test_offline_chat_job_stores_the_combined_query(follow_up, settings):
    settings.CHAT_QUERY_REWRITER = "chat.rewriting.RecentQuestionRewriter"

    assert answer_message(message_id=follow_up.pk) == Message.Status.COMPLETE

    follow_up.refresh_from_db()
    assert follow_up.retrieval_query == "And the second level?\nHow many days of annual leave do new employees get?"
    assert follow_up.sources
