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


def test_answered_questions_are_dropped_unless_they_carry_a_fact():
    text = summarize(
        [
            ("user", "How many leave days do we get a year?"),
            ("assistant", "Full-time employees get 18 days a year [S1]."),
            ("user", "Does team 7 get the same?"),
            ("assistant", "Yes, 18 days [S1]."),
            ("user", "Who approves a course longer than five days?"),
        ]
    )
    assert "How many leave days" not in text  # answered, and nothing in it a later turn could not find again
    assert "Does team 7 get the same?" in text  # answered, but it names team 7
    assert "Who approves a course longer than five days?" in text  # still open
    assert "18 days a year" in text and "[S1]" not in text


def test_only_the_strongest_sentences_of_an_answer_are_kept():
    answer = (
        "The answer is in the Travel policy [S1]. Economy class is the default for flights under 6 hours [S1]. "
        "Hotel costs are reimbursed up to 180 USD per night [S1]. Business class needs a director's approval [S1]. "
        "It helps to share the same rule with everyone."
    )
    text = summarize([("user", "What does the travel policy say?"), ("assistant", answer)])
    lines = text.splitlines()
    assert len(lines) == 2 and all(line.startswith("A: ") for line in lines)
    assert "Hotel costs are reimbursed up to 180 USD per night." in text and "share the same rule" not in text


def test_restated_facts_are_kept_once_but_a_new_number_is_a_new_fact():
    text = summarize(
        [
            ("user", "Our offsite is on March 5 at 2 pm in Jeju."),
            ("user", "So, our offsite is on March 5 at 2 pm in Jeju!"),
            ("user", "팀원은 12명입니다."),
            ("user", "팀원은 14명입니다."),
        ]
    )
    assert text.count("March 5") == 1 and "12명" in text and "14명" in text


def test_reads_the_earlier_line_format_and_evicts_answers_before_what_the_user_said():
    previous = "- U: The project code is PX-2024-17.\n- A: Claims over 500 USD need the cost-centre owner's approval."
    quotes = [
        ("assistant", f"Section {i} says employees accrue {i}.5 days per month on March {i} [S1].") for i in range(40)
    ]
    text = summarize(quotes, previous=previous, max_tokens=60)
    assert text.startswith("U: The project code is PX-2024-17.") and count_tokens(text) <= 60
    assert "500 USD" not in text  # the assistant's lines went first, the oldest of equal weight first


@pytest.mark.parametrize(
    ("question", "quoted_answer"),
    [
        (
            "How many leave days does the Busan team get?",
            "_No language model is configured: these are the most relevant passages._\n\n"
            "> Team Busan gets 15 days of paid leave from March 2024.\n\n[S1] (Handbook, p. 3)",
        ),
        (
            "부산팀은 휴가를 며칠 받나요?",
            "_언어 모델이 설정되어 있지 않아, 문서에서 가장 관련 있는 구절을 그대로 보여 드립니다._\n\n"
            "> 부산팀은 2024년 3월부터 연간 15일의 유급휴가를 받습니다.\n\n[S1] (취업규칙, 3쪽)",
        ),
    ],
    ids=["english", "korean"],
)
def test_quoted_answers_add_no_facts_and_still_settle_their_question(question, quoted_answer):
    turns = [Turn("user", question), Turn("assistant", quoted_answer, quoted=True)]
    text = ExtractiveSummarizer().summarize(previous="", turns=turns, language="en", max_tokens=800).text

    assert "15" not in text and "_" not in text  # neither the quote nor the label line
    written = [Turn("user", question), Turn("assistant", quoted_answer)]
    assert "15" in ExtractiveSummarizer().summarize(previous="", turns=written, language="en", max_tokens=800).text
