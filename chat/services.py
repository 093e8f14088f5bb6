"""Writes for the chat app: asking, stopping, and the claim/finish steps of an answer job."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from chat import events, selectors, streams
from chat.models import TITLE_MAX_CHARS, Conversation, Message
from chat.tasks import ANSWER_JOB

logger = logging.getLogger(__name__)


class ChatError(Exception):
    """A request about chat data the user may not make (unknown or foreign ids); carries an ``error`` code."""

    def __init__(self, code: str, detail: str, *, message: int | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.message = message


@dataclass(frozen=True)
class AskResult:
    conversation_id: int
    user_message_id: int
    message_id: int
    created: bool


def conversation_title(content: str) -> str:
    line = " ".join(content.split())
    return line if len(line) <= TITLE_MAX_CHARS else line[: TITLE_MAX_CHARS - 1].rstrip() + "…"


def answer_enqueue(*, message_id: int) -> None:
    ANSWER_JOB.enqueue(message_id)


def conversation_ask(
    *, user: AbstractBaseUser, content: str, conversation_id: int | None = None, client_id: str = ""
) -> AskResult:
    """Store the question and a pending answer, and queue the job that writes the answer.

    Asking again with the same ``client_id`` returns the first ask's messages (a client retrying after a dropped
    connection must not get a second answer).
    """
    with transaction.atomic():
        # Serialises one user's asks so two retries of the same client_id cannot both create messages.
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        earlier = selectors.message_get_by_client_id(user=user, conversation_id=conversation_id, client_id=client_id)
        if earlier is not None:
            reply = earlier.replies.order_by("-id").first()
            return AskResult(earlier.conversation_id, earlier.pk, reply.pk, created=False)
        if conversation_id is None:
            conversation = Conversation.objects.create(owner=user, title=conversation_title(content))
        else:
            conversation = selectors.conversation_get_for_user(conversation_id=conversation_id, user=user)
            if conversation is None:
                raise ChatError("not_found", _("Conversation %(id)s does not exist.") % {"id": conversation_id})
            conversation.save(update_fields=["updated_at"])
        question = Message.objects.create(
            conversation=conversation,
            role=Message.Role.USER,
            content=content,
            status=Message.Status.COMPLETE,
            client_id=client_id,
        )
        answer = Message.objects.create(
            conversation=conversation,
            role=Message.Role.ASSISTANT,
            reply_to=question,
            status=Message.Status.PENDING,
            queued_at=timezone.now(),
        )
        # Queued when this transaction commits, so the job always finds its rows.
        answer_enqueue(message_id=answer.pk)
    return AskResult(conversation.pk, question.pk, answer.pk, created=True)


def message_request_stop(*, user: AbstractBaseUser, message_id: int) -> Message:
    """Stop an answer: a queued one is cancelled here, a streaming one by its job (well within a second)."""
    message = selectors.assistant_message_get_for_user(message_id=message_id, user=user)
    if message is None:
        raise ChatError("not_found", _("Message %(id)s does not exist.") % {"id": message_id}, message=message_id)
    if message.is_terminal:
        return message
    conn = streams.sync_client()
    streams.request_stop(conn, message_id)
    if message.status == Message.Status.PENDING:
        _cancel_pending(conn, message_id)
    return message


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    """Give a conversation its owner's title (one line; the list order, by last activity, does not change)."""
    line = " ".join((title or "").split())
    if not line:
        raise ChatError("invalid", _("A title cannot be empty."))
    limit = Conversation._meta.get_field("title").max_length
    if len(line) > limit:
        raise ChatError("too_long", _("A title can be at most %(limit)s characters long.") % {"limit": limit})
    conversation.title = line
    conversation.save(update_fields=["title"])
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    """Delete a conversation with its messages and memory. Answers still being written are stopped first, and
    their token streams dropped, so none of its text stays behind in Redis."""
    conn = streams.sync_client()
    unfinished = list(
        conversation.messages.filter(
            role=Message.Role.ASSISTANT, status__in=[Message.Status.PENDING, Message.Status.STREAMING]
        ).values_list("pk", flat=True)
    )
    for message_id in unfinished:
        streams.request_stop(conn, message_id)
    answer_ids = conversation.messages.filter(role=Message.Role.ASSISTANT).values_list("pk", flat=True)
    keys = [streams.stream_key(message_id) for message_id in answer_ids]
    conversation.delete()
    if keys:
        conn.delete(*keys)


def _cancel_pending(conn: Any, message_id: int) -> None:
    # Holding the lease makes this an ordinary owner of the answer: a job that starts meanwhile backs off.
    owner = streams.AnswerStream(message_id=message_id, attempt_id=f"stop-{uuid.uuid4().hex[:26]}", conn=conn)
    if not owner.acquire():
        return
    try:
        cancelled = Message.objects.filter(pk=message_id, status=Message.Status.PENDING).update(
            status=Message.Status.CANCELLED, finished_at=timezone.now(), attempt_id=owner.attempt_id
        )
        if cancelled:
            data = events.end_data(finish_reason="cancelled", prompt_tokens=0, completion_tokens=0)
            owner.append(events.END, data)
    finally:
        owner.release()


def message_claim(*, message_id: int, attempt_id: str) -> Message | None:
    """Make ``attempt_id`` the owner of an unfinished answer (the caller already holds the Redis lease)."""
    claimed = Message.objects.filter(
        pk=message_id, role=Message.Role.ASSISTANT, status__in=[Message.Status.PENDING, Message.Status.STREAMING]
    ).update(
        status=Message.Status.STREAMING,
        attempt_id=attempt_id,
        attempt_count=F("attempt_count") + 1,
        started_at=timezone.now(),
        content="",
        error="",
        error_detail="",
        error_code="",
    )
    return selectors.message_get(message_id=message_id) if claimed else None


@dataclass
class AnswerOutcome:
    status: str
    content: str = ""
    error_code: str = ""
    error: str = ""
    error_detail: str = ""
    sources: list[dict[str, Any]] = field(default_factory=list)
    retrieval_query: str = ""
    model_name: str = ""
    prompt_version: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    first_token_at: datetime | None = None


def message_finish(*, message_id: int, attempt_id: str, outcome: AnswerOutcome) -> bool:
    """Store the answer's end state; ``False`` when another attempt owns the message (nothing is written)."""
    saved = Message.objects.filter(pk=message_id, attempt_id=attempt_id, status=Message.Status.STREAMING).update(
        status=outcome.status,
        content=outcome.content,
        error_code=outcome.error_code,
        error=outcome.error,
        error_detail=outcome.error_detail,
        sources=outcome.sources,
        retrieval_query=outcome.retrieval_query,
        model_name=outcome.model_name,
        prompt_version=outcome.prompt_version,
        prompt_tokens=outcome.prompt_tokens,
        completion_tokens=outcome.completion_tokens,
        first_token_at=outcome.first_token_at,
        finished_at=timezone.now(),
    )
    if saved:
        Conversation.objects.filter(messages__pk=message_id).update(updated_at=timezone.now())
    return bool(saved)


def memory_update_request(*, conversation_id: int) -> None:
    """Let the summaries app fold the new turn into the conversation's memory, once it exists."""
    try:
        from summaries.tasks import enqueue_memory_update
    except ImportError:
        return
    try:
        enqueue_memory_update(conversation_id)
    except Exception:
        # The answer is already stored; a memory update that cannot be queued must not turn it into a failure.
        logger.exception("could not queue the memory update of conversation %s", conversation_id)


def message_context_record(
    *, message_id: int, attempt_id: str, context_tokens: int, full_history_tokens: int, memory_version: int | None
) -> bool:
    """Store what the answer's prompt cost and what the full history would have cost; fenced by the attempt."""
    return bool(
        Message.objects.filter(pk=message_id, attempt_id=attempt_id).update(
            context_tokens=context_tokens, full_history_tokens=full_history_tokens, memory_version=memory_version
        )
    )
