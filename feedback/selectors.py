"""Reads for feedback: the rows staff review and export, and the retrieval test cases evaluation reads."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from django.db.models import QuerySet

from feedback.models import AnswerFeedback, RetrievalCase

CSV_COLUMNS = (
    "id",
    "created_at",
    "user",
    "rating",
    "reason",
    "comment",
    "question",
    "retrieval_query",
    "answer",
    "sources",
    "prompt_version",
    "model",
    "message_id",
    "conversation_id",
)


def feedback_for_review() -> QuerySet[AnswerFeedback]:
    return AnswerFeedback.objects.select_related("user", "message")


def feedback_csv(rows: Iterable[AnswerFeedback]) -> str:
    """One line per rating; sources read "rank:label:chunk_id:document_id" joined by spaces (spreadsheets keep
    them in one cell). Cells that a spreadsheet would run as a formula are quoted with a leading apostrophe."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        sources = " ".join(
            f"{item.get('rank')}:{item.get('label')}:{item.get('chunk_id')}:{item.get('document_id')}"
            for item in row.sources
        )
        values = (
            row.pk,
            row.created_at.isoformat(),
            row.user.get_username(),
            row.rating,
            row.reason,
            row.comment,
            row.question,
            row.retrieval_query,
            row.answer,
            sources,
            row.prompt_version,
            row.model_name,
            row.message_id,
            row.message.conversation_id,
        )
        writer.writerow([_inert(value) for value in values])
    return out.getvalue()


def _inert(value: object) -> object:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def retrieval_cases() -> list[RetrievalCase]:
    return list(RetrievalCase.objects.select_related("document").order_by("id"))
