"""Memory fixtures: conversations built message by message, a scripted LLM server, a deliberately slow summarizer."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

import pytest

from summaries.summarizers import ExtractiveSummarizer, SummaryResult, Turn

SLOW_SECONDS = 0.3


class SlowSummarizer(ExtractiveSummarizer):
    """The offline summarizer, slowed down so concurrent jobs overlap while they summarize (the race window)."""

    name = "slow-extractive"
    calls = 0
    lock = threading.Lock()

    def summarize(self, *, previous: str, turns: Sequence[Turn], language: str, max_tokens: int) -> SummaryResult:
        with SlowSummarizer.lock:
            SlowSummarizer.calls += 1
        time.sleep(SLOW_SECONDS)
        return super().summarize(previous=previous, turns=turns, language=language, max_tokens=max_tokens)


@pytest.fixture(scope="session")
def memory_llm_server() -> Iterator:
    from tests.llmserver import LLMTestServer

    with LLMTestServer(port=0) as server:
        yield server


@pytest.fixture
def memory_llm(memory_llm_server, settings):
    """The LLM summarizer and chat model pointed at the scripted server (one attempt, short timeout)."""
    memory_llm_server.reset()
    settings.LLM_BASE_URL = memory_llm_server.base_url
    settings.LLM_MAX_RETRIES = 0
    settings.LLM_TIMEOUT = 5.0
    settings.CHAT_MODEL_BACKEND = "protostar.llm.openai.OpenAIChatModel"
    settings.SUMMARIZER_BACKEND = "chat.memory.LLMSummarizer"
    yield memory_llm_server
    memory_llm_server.reset()


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("rememberer", password="pw-123456")


def add_exchange(conversation, question: str, answer: str | None, *, status: str = "complete"):
    """A question and its answer as the chat app stores them; ``answer=None`` leaves the answer pending."""
    from chat.models import Message

    asked = Message.objects.create(
        conversation=conversation, role=Message.Role.USER, content=question, status=Message.Status.COMPLETE
    )
    reply = Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        reply_to=asked,
        content=answer or "",
        status=status if answer is not None else Message.Status.PENDING,
    )
    return asked, reply


def make_conversation(user, exchanges: Sequence[tuple[str, str]]):
    from chat.models import Conversation

    conversation = Conversation.objects.create(owner=user, title="memory test")
    for question, answer in exchanges:
        add_exchange(conversation, question, answer)
    return conversation


def english_exchange(i: int) -> tuple[str, str]:
    return (
        f"Question {i}: how many leave days does team {i} get, and who approves it?",
        f"Team {i} gets {10 + i} days of paid leave per year; requests are approved by the team lead. " * 3,
    )


def korean_exchange(i: int) -> tuple[str, str]:
    return (
        f"질문 {i}: {i}팀은 휴가를 며칠 받나요? 누가 승인하나요?",
        f"{i}팀은 연간 {10 + i}일의 유급휴가를 받으며, 휴가 신청은 팀장이 승인합니다. " * 3,
    )
