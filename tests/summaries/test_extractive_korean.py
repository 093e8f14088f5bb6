"""What Korean speakers tell the offline memory stays in it: names with titles or roles, even in a sentence with no
number or date, and questions asked again with another number fold into one line (the 30-turn scenario)."""

from __future__ import annotations

import re

import pytest
from django.conf import settings

from summaries.extractive import parse_summary
from summaries.summarizers import ExtractiveSummarizer, Turn

pytestmark = pytest.mark.django_db

PLANTED = [
    "안녕하세요. 이번 프로젝트 코드는 PX-2024-17입니다. 환불 규정을 여쭤봐도 될까요?",
    "총예산은 4,500만 원으로 확정했습니다. 환불 기한은 며칠인가요?",
    "담당자는 한지수 대리입니다. 환불 신청은 어디서 하나요?",
    "협력업체는 한빛여행사로 정했습니다. 부분 환불도 되나요?",
    "최종 마감일은 3월 5일입니다. 환불금은 언제 들어오나요?",
]
ANSWER = "환불은 신청 후 14일 이내에 처리되며 영수증이 필요합니다 [S1]. 자세한 절차는 경비 규정을 참고하세요 [S2]."


def refund_question(turn: int) -> str:
    return f"주문 번호 {1000 + turn * 37}번의 환불은 며칠 안에 처리되나요?"


def run_conversation(turns: int) -> str:
    """One exchange folded into the memory per turn, as the summaries worker does, within the production budget."""
    memory = ""
    for turn in range(1, turns + 1):
        question = PLANTED[turn - 1] if turn <= len(PLANTED) else refund_question(turn)
        result = ExtractiveSummarizer().summarize(
            previous=memory,
            turns=[Turn("user", question), Turn("assistant", ANSWER)],
            language="ko",
            max_tokens=settings.CONTEXT_BUDGET_MEMORY,
        )
        memory = result.text
    return memory


def test_the_memory_at_turn_30_still_holds_every_planted_fact_including_the_person_in_charge():
    memory = run_conversation(30)
    for fact in ("PX-2024-17", "4,500만 원", "한빛여행사", "3월 5일", "한지수 대리"):
        assert fact in memory, f"{fact!r} was dropped:\n{memory}"


def test_twenty_five_refund_questions_differing_in_a_number_fold_into_one_line():
    memory = run_conversation(30)
    refund_lines = [line for line in memory.splitlines() if "주문 번호" in line]
    assert len(refund_lines) == 1, memory
    # The first wording is kept, with how often it was asked (the latest askings are in the recent turns).
    assert refund_question(6) in refund_lines[0] and "(×25)" in refund_lines[0]


@pytest.mark.parametrize(
    "sentence",
    [
        "담당자는 한지수 대리입니다.",
        "김민준 팀장님께 보고하면 됩니다.",
        "박서준 과장이 승인을 맡았습니다.",
        "연락은 이하늘 씨에게 하세요.",
        "책임자는 오세린입니다.",
    ],
)
def test_a_korean_name_alone_in_its_sentence_is_kept(sentence):
    result = ExtractiveSummarizer().summarize(
        previous="", turns=[Turn("user", sentence)], language="ko", max_tokens=200
    )
    assert sentence.rstrip(".") in result.text


def test_an_english_name_alone_in_its_sentence_is_still_kept():
    result = ExtractiveSummarizer().summarize(
        previous="", turns=[Turn("user", "The person in charge is Jisoo Han.")], language="en", max_tokens=200
    )
    assert "Jisoo Han" in result.text


def test_a_dealer_or_a_word_that_only_starts_like_a_title_is_not_a_name():
    result = ExtractiveSummarizer().summarize(
        previous="", turns=[Turn("user", "가까운 대리점에서 수리를 받으세요.")], language="ko", max_tokens=200
    )
    assert result.text == ""


def test_a_changed_person_in_charge_is_kept_beside_the_first_one():
    result = ExtractiveSummarizer().summarize(
        previous="U: 담당자는 한지수 대리입니다.",
        turns=[Turn("user", "담당자는 박민수 대리입니다.")],
        language="ko",
        max_tokens=200,
    )
    assert "한지수" in result.text and "박민수" in result.text


def test_a_folded_question_keeps_its_count_across_memory_versions():
    first = (
        ExtractiveSummarizer()
        .summarize(
            previous="",
            turns=[Turn("user", "주문 1번 환불은 언제 되나요?"), Turn("user", "주문 2번 환불은 언제 되나요?")],
            language="ko",
            max_tokens=200,
        )
        .text
    )
    assert first == "U: 주문 1번 환불은 언제 되나요? (×2)"
    second = (
        ExtractiveSummarizer()
        .summarize(previous=first, turns=[Turn("user", "주문 3번 환불은 언제 되나요?")], language="ko", max_tokens=200)
        .text
    )
    assert second == "U: 주문 1번 환불은 언제 되나요? (×3)"
    assert parse_summary(second)[0].repeats == 3
    assert not re.search(r"주문 [23]번", second)


def test_different_questions_with_numbers_are_not_folded():
    result = ExtractiveSummarizer().summarize(
        previous="",
        turns=[Turn("user", "3월 5일 워크숍은 몇 시에 시작하나요?"), Turn("user", "주문 12번 환불은 언제 되나요?")],
        language="ko",
        max_tokens=200,
    )
    assert len(result.text.splitlines()) == 2
