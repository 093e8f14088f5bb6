"""The offline answerer: the most relevant sentences of the retrieved passages, quoted and cited."""

from __future__ import annotations

import re

import pytest

from chat.extractive import EXTRACTIVE_MODEL_NAME, ExtractiveChatModel, build_excerpts, select_sentences
from prompts.render import render_prompt
from protostar.llm.base import ChatRequest, Passage

HANGUL = re.compile(r"[\uac00-\ud7a3]")

POLICY = Passage(
    label="S1",
    title="Store policy",
    page=3,
    text=(
        "Our stores open at 9 am every weekday. Refunds are accepted within 30 days of purchase with a receipt. "
        "Gift cards cannot be exchanged for cash."
    ),
)
SHIPPING = Passage(
    label="S2",
    title="Shipping guide",
    text="Orders ship within two business days. International delivery takes up to three weeks.",
)
KOREAN_POLICY = Passage(
    label="S1",
    title="매장 규정",
    text="매장은 평일 오전 9시에 문을 엽니다. 환불은 영수증이 있으면 구매 후 30일 이내에 가능합니다. "
    "상품권은 현금으로 교환할 수 없습니다.",
)


def ask(question: str, passages: list[Passage], language: str = "en") -> ChatRequest:
    return ChatRequest(
        messages=[{"role": "user", "content": question}], passages=passages, question=question, language=language
    )


@pytest.mark.django_db
def test_extractive_answer_quotes_the_relevant_sentence_and_cites_it():
    answer, usage = ExtractiveChatModel().complete(ask("How many days do I have to get a refund?", [SHIPPING, POLICY]))

    assert "Refunds are accepted within 30 days of purchase with a receipt." in answer
    assert "[S1]" in answer
    assert "Gift cards" not in answer and "Orders ship" not in answer
    assert "extract" in answer.lower() or "passages" in answer.lower()  # labelled as quotes, not an answer
    assert usage.completion_tokens > 0 and usage.prompt_tokens > 0


@pytest.mark.django_db
def test_a_follow_up_is_answered_from_what_its_focus_names():
    request = ask("And what about that one?", [SHIPPING, POLICY])
    request.focus = "Can gift cards be exchanged for cash?"

    answer, _ = ExtractiveChatModel().complete(request)

    assert "Gift cards cannot be exchanged for cash." in answer
    assert "Refunds are accepted" not in answer and "Orders ship" not in answer


@pytest.mark.django_db
def test_korean_question_gets_korean_framing_and_the_korean_sentence():
    answer, _ = ExtractiveChatModel().complete(ask("환불은 며칠 안에 받을 수 있나요?", [KOREAN_POLICY], "ko"))
    english, _ = ExtractiveChatModel().complete(ask("Refund window?", [POLICY], "en"))

    assert "환불은 영수증이 있으면 구매 후 30일 이내에 가능합니다." in answer
    assert "상품권" not in answer and "[S1]" in answer
    assert HANGUL.search(answer.splitlines()[0])
    assert not HANGUL.search(english)


@pytest.mark.django_db
def test_korean_question_over_english_passages_still_quotes_the_best_passage():
    # No shared terms across languages: the retrieval order decides, so the top passage's opening is quoted.
    answer, _ = ExtractiveChatModel().complete(ask("배송은 얼마나 걸리나요?", [SHIPPING, POLICY], "ko"))

    assert "Orders ship within two business days." in answer and "[S2]" in answer


@pytest.mark.django_db
def test_no_passages_says_the_documents_contain_nothing():
    answer, _ = ExtractiveChatModel().complete(ask("What is the refund window?", []))

    assert "[S" not in answer
    assert "nothing" in answer.lower() or "no " in answer.lower()


@pytest.mark.django_db
def test_stream_pieces_join_to_the_complete_answer_and_close_stops_it():
    model = ExtractiveChatModel()
    request = ask("refund receipt days", [POLICY])
    text, usage = model.complete(request)

    stream = model.stream(request)
    pieces = list(stream)
    assert "".join(pieces) == text and len(pieces) > 5
    assert stream.usage == usage

    stopped = model.stream(request)
    first = []
    for piece in stopped:
        first.append(piece)
        stopped.close()
    assert len(first) == 1


def test_answer_length_is_capped():
    sentences = [f"Refund rule number {i} says refunds need a receipt and a reason." for i in range(80)]
    passage = Passage(label="S1", title="Long", text=" ".join(sentences))
    excerpts = build_excerpts([passage], select_sentences([passage], "refund receipt"))

    words = sum(len(excerpt["text"].split()) for excerpt in excerpts)
    assert 0 < words <= 250


@pytest.mark.django_db
def test_wording_comes_from_the_answer_extractive_prompt_in_both_languages():
    english, _ = ExtractiveChatModel().complete(ask("Refund window?", [POLICY], "en"))
    korean, _ = ExtractiveChatModel().complete(ask("환불은 며칠 안에 받을 수 있나요?", [KOREAN_POLICY], "ko"))
    excerpt = {"label": "S1", "title": "Store policy", "page": 3, "text": "Refunds are accepted within 30 days."}

    assert (
        english.splitlines()[0]
        == render_prompt("answer_extractive", question="q", language="en", excerpts=[excerpt]).splitlines()[0]
    )
    assert english.startswith("_No language model is configured: these are the most relevant passages")
    assert korean.startswith("_언어 모델이 설정되어 있지 않아, 문서에서 가장 관련 있는 구절을 그대로 보여 드립니다._")
    assert "(Store policy, p. 3)" in english and "[S1]" in english
    empty, _ = ExtractiveChatModel().complete(ask("환불 기간?", [], "ko"))
    assert "문서에서" in empty and "찾지 못했습니다" in empty


def test_answers_carry_the_extractive_model_name():
    assert ExtractiveChatModel().model_name == EXTRACTIVE_MODEL_NAME == "extractive"
