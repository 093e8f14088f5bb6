"""Staff review of feedback in the admin (filters by rating, reason, document and date; CSV export), and rated
answers turned into retrieval test cases that the evaluation harness judges against real search."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from chat.models import Conversation, Message
from feedback import evaluation, selectors, services
from feedback.models import AnswerFeedback, RetrievalCase
from knowledge.search import search_chunks

pytestmark = pytest.mark.django_db
CHANGELIST = "admin:feedback_answerfeedback_changelist"
LEAVE = [
    ("휴가 규정", "정규직 직원은 매월 1.5일의 유급휴가가 발생하며 연간 최대 18일까지 적립됩니다."),
    ("Remote work", "Employees may work remotely up to three days a week with their manager's approval."),
]
PARKING = [("Parking", "Visitors may park in lot C; the barrier opens after the reception desk registers the car.")]


@pytest.fixture
def documents():
    from tests.knowledge.factories import ready_document

    return ready_document(title="Handbook", chunks=LEAVE), ready_document(title="Parking rules", chunks=PARKING)


def rated_answer(user, document, *, question: str, rating: str, reason: str = "", comment: str = "") -> AnswerFeedback:
    conversation = Conversation.objects.create(owner=user, title=question)
    asked = Message.objects.create(conversation=conversation, role="user", content=question, status="complete")
    chunks = list(document.chunks.order_by("ordinal"))
    sources = [
        {
            "label": f"S{i}",
            "chunk_id": c.pk,
            "document_id": document.pk,
            "title": document.title,
            "page": i,
            "score": 0.9,
        }
        for i, c in enumerate(chunks, start=1)
    ]
    answer = Message.objects.create(
        conversation=conversation,
        role="assistant",
        reply_to=asked,
        content="답변 [S1]",
        status="complete",
        sources=sources,
        retrieval_query=question,
        model_name="test-model",
        prompt_version="answer_system@v3",
    )
    return services.feedback_give(user=user, message_id=answer.pk, rating=rating, reason=reason, comment=comment)


def test_feedback_keeps_sources_with_ranks_query_prompt_and_model(django_user_model, documents):
    user = django_user_model.objects.create_user("rater", password="pw-123456")
    feedback = rated_answer(user, documents[0], question="연차는 며칠?", rating="down", reason="outdated")

    assert [(s["rank"], s["label"]) for s in feedback.sources] == [(1, "S1"), (2, "S2")]
    assert feedback.sources[0]["chunk_id"] == documents[0].chunks.get(ordinal=0).pk
    assert (feedback.retrieval_query, feedback.prompt_version, feedback.model_name) == (
        "연차는 며칠?",
        "answer_system@v3",
        "test-model",
    )
    # Rating again replaces the first rating.
    again = services.feedback_give(user=user, message_id=feedback.message_id, rating="up")
    assert again.pk == feedback.pk and (again.rating, again.reason) == ("up", "")
    assert AnswerFeedback.objects.count() == 1


def test_admin_filters_by_reason_document_and_date(admin_client, django_user_model, documents):
    user = django_user_model.objects.create_user("rater", password="pw-123456")
    wrong = rated_answer(user, documents[0], question="연차 질문", rating="down", reason="wrong_source")
    parking = rated_answer(user, documents[1], question="Parking question", rating="down", reason="incomplete")
    rated_answer(user, documents[0], question="Good answer", rating="up")
    AnswerFeedback.objects.filter(pk=parking.pk).update(created_at=timezone.now() - timedelta(days=40))

    def listed(**params) -> set[str]:
        response = admin_client.get(reverse(CHANGELIST), params)
        assert response.status_code == 200
        return {row.question for row in response.context["cl"].result_list}

    assert listed() == {"연차 질문", "Parking question", "Good answer"}
    assert listed(reason="wrong_source") == {"연차 질문"}
    assert listed(rating="up") == {"Good answer"}
    assert listed(document=str(documents[1].pk)) == {"Parking question"}
    # What the admin's "Past 7 days" link sends: the day's start with its time zone.
    since = str((timezone.now() - timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0))
    assert listed(created_at__gte=since) == {"연차 질문", "Good answer"}
    detail = admin_client.get(reverse("admin:feedback_answerfeedback_change", args=[wrong.pk]))
    assert detail.status_code == 200 and "answer_system@v3" in detail.content.decode()


def test_admin_review_reads_korean_for_a_korean_browser(admin_client, django_user_model, documents):
    user = django_user_model.objects.create_user("rater", password="pw-123456")
    rated_answer(user, documents[0], question="연차 질문", rating="down", reason="wrong_source")

    page = admin_client.get(reverse(CHANGELIST), HTTP_ACCEPT_LANGUAGE="ko").content.decode()
    assert "잘못된 출처" in page and "답변 피드백" in page and "선택한 피드백을 CSV로 내보내기" in page


def test_csv_export_has_one_row_per_rating_with_sources_and_inert_formulas(admin_client, django_user_model, documents):
    user = django_user_model.objects.create_user("rater", password="pw-123456")
    first = rated_answer(
        user, documents[0], question="연차 질문", rating="down", reason="wrong", comment="=HYPERLINK()"
    )
    second = rated_answer(user, documents[1], question="Parking?", rating="up")

    response = admin_client.post(
        reverse(CHANGELIST), {"action": "export_csv", ACTION_CHECKBOX_NAME: [first.pk, second.pk]}
    )
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["question"] for row in rows] == ["연차 질문", "Parking?"]
    chunk = documents[0].chunks.get(ordinal=0)
    assert rows[0]["sources"].startswith(f"1:S1:{chunk.pk}:{documents[0].pk}")
    assert rows[0]["comment"] == "'=HYPERLINK()"
    assert rows[0]["prompt_version"] == "answer_system@v3" and rows[0]["model"] == "test-model"


def test_admin_action_turns_a_rated_answer_into_a_retrieval_case(admin_client, django_user_model, documents):
    user = django_user_model.objects.create_user("rater", password="pw-123456")
    feedback = rated_answer(user, documents[0], question="재택근무는 주 며칠?", rating="down", reason="wrong_source")
    right_chunk = documents[0].chunks.get(ordinal=1)
    url = reverse(CHANGELIST)

    form = admin_client.post(url, {"action": "make_retrieval_cases", ACTION_CHECKBOX_NAME: [feedback.pk]})
    assert form.status_code == 200 and f'name="chunk-{feedback.pk}"' in form.content.decode()
    done = admin_client.post(
        url,
        {
            "action": "make_retrieval_cases",
            ACTION_CHECKBOX_NAME: [feedback.pk],
            "apply": "1",
            f"chunk-{feedback.pk}": str(right_chunk.pk),
        },
        follow=True,
    )
    assert done.status_code == 200
    case = RetrievalCase.objects.get()
    assert (case.question, case.chunk_id, case.document_id, case.language) == (
        "재택근무는 주 며칠?",
        right_chunk.pk,
        documents[0].pk,
        "ko",
    )
    assert case.snippet in right_chunk.text and case.feedback_id == feedback.pk
    # The same case twice is one case.
    services.retrieval_case_create(feedback=feedback, chunk_id=right_chunk.pk)
    assert RetrievalCase.objects.count() == 1


def test_evaluation_finds_the_expected_chunk_of_each_case_by_document_and_snippet(django_user_model, documents):
    staff = django_user_model.objects.create_superuser("evaluator", password="pw-123456")
    feedback = rated_answer(staff, documents[0], question="How many days can I work from home?", rating="down")
    services.retrieval_case_create(feedback=feedback, chunk_id=documents[0].chunks.get(ordinal=1).pk)
    services.retrieval_case_create(feedback=feedback, chunk_id=documents[1].chunks.get().pk)  # a wrong expectation

    def search(**kwargs):
        return search_chunks(user=staff, **kwargs)

    results = evaluation.evaluate_cases(selectors.retrieval_cases(), search=search, modes=("hybrid",), k=5)
    ranks = [result.ranks["hybrid"] for result in results]
    assert ranks[0] == 1 and (ranks[1] is None or ranks[1] > 1)
    metrics = evaluation.case_metrics(results, "hybrid", 5)
    assert metrics["n"] == 2 and metrics["r@1"] == 0.5
