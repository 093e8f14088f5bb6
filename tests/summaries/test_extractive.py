"""The offline summarizer keeps names, numbers, dates, decisions and questions, in Korean and English, bounded."""

from __future__ import annotations

import pytest

from protostar.tokens import count_tokens
from summaries.summarizers import ExtractiveSummarizer, Turn

pytestmark = pytest.mark.django_db


def summarize(turns: list[tuple[str, str]], previous: str = "", max_tokens: int = 800) -> str:
    result = ExtractiveSummarizer().summarize(
        previous=previous, turns=[Turn(r, c) for r, c in turns], language="en", max_tokens=max_tokens
    )
    assert result.prompt_tokens == result.completion_tokens == 0
    return result.text


def test_keeps_korean_facts_and_drops_small_talk():
    text = summarize(
        [
            ("user", "안녕하세요. 제 이름은 김서연이고 마케팅팀 소속입니다. 출시일은 3월 5일 오후 2시로 확정했습니다."),
            ("user", "예산은 3,200만 원이고 할인율은 15%입니다. 정말 감사합니다. 휴가 이월이 되나요?"),
        ]
    )
    for fact in ("김서연", "3월 5일 오후 2시", "3,200만 원", "15%", "이월이 되나요?"):
        assert fact in text
    assert "안녕하세요" not in text and "감사합니다" not in text


def test_keeps_english_names_numbers_decisions_and_questions():
    text = summarize(
        [
            ("user", "Hello there. I'm Mina Park from the Busan logistics team. The budget is $45,000."),
            ("assistant", "Sounds good. We agreed to go with Acme Corp on June 3. Anything else?"),
            ("user", "Great, thanks. Can unused leave carry over?"),
        ]
    )
    for fact in ("Mina Park", "$45,000", "Acme Corp on June 3", "Can unused leave carry over?"):
        assert fact in text
    assert "Hello there" not in text and "Sounds good" not in text and "thanks" not in text


def test_summary_stays_within_its_budget_and_keeps_user_facts_over_quotes():
    planted = ("user", "Decision: we approved vendor Acme Corp for 120,000 USD on March 5.")
    quotes = [("assistant", f"> Section {i}: employees accrue {i}.5 days per month [S{i}].") for i in range(200)]
    text = summarize([planted, *quotes], max_tokens=200)
    assert count_tokens(text) <= 200 and "Acme Corp for 120,000 USD on March 5" in text


def test_rolling_update_keeps_previous_facts_without_duplicates():
    first = summarize([("user", "The launch is on March 5 at 2 pm.")])
    second = summarize([("user", "The launch is on March 5 at 2 pm."), ("user", "Budget: 300 USD.")], previous=first)
    assert second.count("March 5") == 1 and "300 USD" in second and second.startswith(first)
