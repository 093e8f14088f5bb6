"""Writes for feedback: rating an answer, and turning a rated answer into a retrieval test case."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils.translation import gettext as _

from chat.models import Message
from chat.services import ChatError
from feedback.models import AnswerFeedback, RetrievalCase
from knowledge.models import Chunk
from protostar.text import detect_language

COMMENT_MAX_CHARS = 2000
SNIPPET_CHARS = 120


def ranked_sources(sources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The answer's sources as retrieval ranked them (the stored order), reduced to what evaluation needs."""
    keys = ("label", "chunk_id", "document_id", "title", "page", "score")
    return [{"rank": rank, **{key: item.get(key) for key in keys}} for rank, item in enumerate(sources, start=1)]


def feedback_give(
    *, user: AbstractBaseUser, message_id: int, rating: str, reason: str = "", comment: str = ""
) -> AnswerFeedback:
    """Store (or replace) the user's rating of one of their answers, with what produced the answer."""
    if rating not in AnswerFeedback.Rating.values:
        raise ChatError("invalid", _("A rating is 'up' or 'down'."), message=message_id)
    if reason and reason not in AnswerFeedback.Reason.values:
        raise ChatError("invalid", _("Unknown reason %(reason)s.") % {"reason": repr(reason)}, message=message_id)
    if reason and rating == AnswerFeedback.Rating.UP:
        raise ChatError("invalid", _("A reason goes with a thumbs down only."), message=message_id)
    comment = comment.strip()
    if len(comment) > COMMENT_MAX_CHARS:
        detail = _("A comment can be at most %(limit)s characters long.") % {"limit": COMMENT_MAX_CHARS}
        raise ChatError("too_long", detail, message=message_id)
    message = (
        Message.objects.select_related("reply_to")
        .filter(pk=message_id, role=Message.Role.ASSISTANT, conversation__owner=user)
        .first()
    )
    if message is None:
        raise ChatError("not_found", _("Message %(id)s does not exist.") % {"id": message_id}, message=message_id)
    if not message.is_terminal:
        raise ChatError("busy", _("Rate the answer once it is finished."), message=message_id)
    sources = ranked_sources(message.sources)
    feedback, _created = AnswerFeedback.objects.update_or_create(
        message=message,
        defaults={
            "user": user,
            "rating": rating,
            "reason": reason,
            "comment": comment,
            "question": message.reply_to.content if message.reply_to else "",
            "answer": message.content,
            "sources": sources,
            "document_ids": sorted({item["document_id"] for item in sources if item.get("document_id")}),
            "retrieval_query": message.retrieval_query,
            "prompt_version": message.prompt_version,
            "model_name": message.model_name,
        },
    )
    return feedback


def _snippet(text: str) -> str:
    """A stretch of the chunk's text that identifies it: its first whole words up to ``SNIPPET_CHARS``."""
    line = " ".join(text.split())
    if len(line) <= SNIPPET_CHARS:
        return line
    cut = line[:SNIPPET_CHARS]
    return cut.rsplit(" ", 1)[0] if " " in cut else cut


def retrieval_case_create(
    *, feedback: AnswerFeedback, chunk_id: int, created_by: AbstractBaseUser | None = None
) -> RetrievalCase:
    """A test case from a rated answer: its question (as typed) and the chunk retrieval should have found.

    Creating the same case twice returns the first one.
    """
    chunk = Chunk.objects.filter(pk=chunk_id).select_related("document").first()
    if chunk is None:
        raise ValueError(_("Chunk %(id)s does not exist.") % {"id": chunk_id})
    question = feedback.question.strip()
    if not question:
        raise ValueError(_("The rated answer has no question."))
    with transaction.atomic():
        case, _created = RetrievalCase.objects.get_or_create(
            question=question,
            document=chunk.document,
            snippet=_snippet(chunk.text),
            defaults={
                "chunk": chunk,
                "language": detect_language(question),
                "feedback": feedback,
                "created_by": created_by,
            },
        )
    return case
