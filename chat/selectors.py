"""Reads for the chat app. Everything a user can name by id is looked up through their own conversations."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q, Sum
from django.utils import timezone

from chat.models import Conversation, Message
from knowledge.selectors import visible_document_ids
from summaries.selectors import summary_spending

# Messages that count as conversation turns: finished with some text (a stopped answer keeps what it said).
TURN_STATUSES = (Message.Status.COMPLETE, Message.Status.CANCELLED)
UNSETTLED_STATUSES = (Message.Status.PENDING, Message.Status.STREAMING)
STALE_JOB_FACTOR = 4

# What a source the reader may no longer open shows instead of its title, snippet and link.
HIDDEN_SOURCE_TITLE = "a document you can no longer open"


def _hidden_source(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "label": item.get("label", ""),
        "hidden": True,
        "chunk_id": None,
        "document_id": None,
        "title": HIDDEN_SOURCE_TITLE,
        "page": None,
        "snippet": "",
        "score": 0,
    }


def sources_for_reader(*, source_lists: list[list[dict[str, Any]]], user: Any) -> list[list[dict[str, Any]]]:
    """Stored sources as ``user`` may see them now: a source whose document they can no longer read (restricted
    since, or deleted) keeps its label, so the answer's citations still line up, and loses everything else.
    One query for any number of lists."""
    wanted = {item.get("document_id") for items in source_lists for item in items}
    visible = visible_document_ids(user=user, document_ids=wanted)
    return [
        [item if item.get("document_id") in visible else _hidden_source(item) for item in items]
        for items in source_lists
    ]


def hidden_answer_ids(*, conversation_id: int, user: Any) -> set[int]:
    """The conversation's answers that cite a document ``user`` can no longer read (their text quotes it): left out
    of the prompts, the query rewriter's history and the memory."""
    answers = list(
        Message.objects.filter(conversation_id=conversation_id, role=Message.Role.ASSISTANT)
        .exclude(sources=[])
        .values_list("pk", "sources")
    )
    cited = {pk: {item.get("document_id") for item in sources or []} - {None} for pk, sources in answers}
    visible = visible_document_ids(user=user, document_ids=set().union(*cited.values()) if cited else set())
    return {pk for pk, documents in cited.items() if documents - visible}


def conversation_get_for_user(*, conversation_id: int, user: AbstractBaseUser) -> Conversation | None:
    return Conversation.objects.filter(pk=conversation_id, owner=user).first()


def assistant_message_get_for_user(*, message_id: int, user: AbstractBaseUser) -> Message | None:
    """An assistant message the user may stop or resume; ``None`` for other users' messages as for missing ones."""
    return (
        Message.objects.select_related("conversation")
        .filter(pk=message_id, role=Message.Role.ASSISTANT, conversation__owner=user)
        .first()
    )


def message_get(*, message_id: int) -> Message | None:
    related = ("conversation", "conversation__owner", "reply_to")
    return Message.objects.select_related(*related).filter(pk=message_id).first()


def message_get_by_client_id(*, user: AbstractBaseUser, conversation_id: int | None, client_id: str) -> Message | None:
    """The user message an earlier ask with this ``client_id`` created (for idempotent retries)."""
    if not client_id:
        return None
    messages = Message.objects.filter(role=Message.Role.USER, client_id=client_id, conversation__owner=user)
    if conversation_id is not None:
        messages = messages.filter(conversation_id=conversation_id)
    return messages.order_by("-id").first()


def recent_turns(*, message: Message, limit: int) -> list[Message]:
    """The last ``limit`` finished messages before ``message``'s question, oldest first (the chat's short memory);
    answers citing documents the owner can no longer read are left out."""
    question_id = message.reply_to_id or message.pk
    hidden = hidden_answer_ids(conversation_id=message.conversation_id, user=message.conversation.owner)
    turns = (
        Message.objects.filter(conversation_id=message.conversation_id, pk__lt=question_id, superseded=False)
        .exclude(pk__in=hidden)
        .exclude(content="")
        .filter(status__in=[Message.Status.COMPLETE, Message.Status.CANCELLED])
        .order_by("-id")[:limit]
    )
    return list(reversed(turns))


def conversations_for_user(*, user: AbstractBaseUser, limit: int = 200) -> list[Conversation]:
    """The user's conversations for the sidebar, most recently active first."""
    return list(Conversation.objects.filter(owner=user).order_by("-updated_at", "-id").only("id", "title")[:limit])


def conversation_messages(*, conversation: Conversation) -> list[Message]:
    """Every message of a conversation in the order they were written (questions before their answers)."""
    return list(Message.objects.filter(conversation=conversation).select_related("feedback").order_by("id"))


def unfinished_answers(*, pending_for_seconds: float, limit: int = 500) -> list[tuple[int, str, int]]:
    """(id, status, owner id) of the answers being streamed, and of those queued for longer than
    ``pending_for_seconds``."""
    queued_before = timezone.now() - timedelta(seconds=pending_for_seconds)
    rows = (
        Message.objects.filter(role=Message.Role.ASSISTANT)
        .filter(
            Q(status=Message.Status.STREAMING) | Q(status=Message.Status.PENDING, queued_at__lt=queued_before),
        )
        .order_by("id")
        .values_list("pk", "status", "conversation__owner_id")[:limit]
    )
    return list(rows)


def turns_between(
    *, conversation_id: int, after_id: int = 0, before_id: int | None = None, hidden: Collection[int] = ()
) -> list[Message]:
    """Finished turns with ``after_id < id < before_id``, oldest first, leaving out the ``hidden`` answers."""
    turns = Message.objects.filter(conversation_id=conversation_id, pk__gt=after_id, status__in=TURN_STATUSES)
    # Earlier attempts and edited-over questions are off the conversation's path (``chat.revisions``).
    turns = turns.filter(superseded=False)
    if before_id is not None:
        turns = turns.filter(pk__lt=before_id)
    if hidden:
        turns = turns.exclude(pk__in=list(hidden))
    fields = ("pk", "role", "content", "status", "model_name", "sources")
    return list(turns.exclude(content="").order_by("pk").only(*fields))


def settled_boundary(*, conversation_id: int, after_id: int) -> int | None:
    """The first message id the memory must not reach yet: an answer still being written, or its question.

    Folding past it would put the answer's range behind the summary before the answer exists, and lose it.
    """
    # An answer left unfinished far longer than any job may run (its worker is gone for good) no longer holds the
    # memory back, or one lost job would stop the conversation's memory forever.
    stale_before = timezone.now() - timedelta(seconds=settings.CHAT_JOB_TIMEOUT * STALE_JOB_FACTOR)
    unsettled = Message.objects.filter(
        conversation_id=conversation_id, pk__gt=after_id, status__in=UNSETTLED_STATUSES, created_at__gte=stale_before
    )
    ids = [reply_to or pk for pk, reply_to in unsettled.values_list("pk", "reply_to_id")]
    return min(ids) if ids else None


@dataclass(frozen=True)
class TokenTotals:
    answers: int
    context_tokens: int
    full_history_tokens: int
    summaries: int
    summary_spent_tokens: int

    @property
    def saved_tokens(self) -> int:
        return self.full_history_tokens - self.context_tokens

    @property
    def net_saved_tokens(self) -> int:
        return self.saved_tokens - self.summary_spent_tokens

    def share(self, tokens: int) -> float | None:
        return tokens / self.full_history_tokens if self.full_history_tokens else None


def conversation_token_totals(*, conversation_id: int) -> TokenTotals:
    """Prompt tokens the conversation's answers used vs what full history would have cost, and the memory's cost."""
    answers = Message.objects.filter(
        conversation_id=conversation_id, role=Message.Role.ASSISTANT, full_history_tokens__gt=0
    ).aggregate(n=Count("pk"), used=Sum("context_tokens"), full=Sum("full_history_tokens"))
    spent = summary_spending(conversation_id=conversation_id)
    return TokenTotals(
        answers=answers["n"],
        context_tokens=answers["used"] or 0,
        full_history_tokens=answers["full"] or 0,
        summaries=spent.summaries,
        summary_spent_tokens=spent.tokens,
    )


def message_get_for_user(*, message_id: int, user: AbstractBaseUser) -> Message | None:
    """A message (question or answer) of one of the user's conversations; ``None`` for others' as for missing ones."""
    return Message.objects.filter(pk=message_id, conversation__owner=user).first()


def conversations_page(*, user: AbstractBaseUser):
    """All the user's conversations, most recently active first (for paginated listings)."""
    return Conversation.objects.filter(owner=user).order_by("-updated_at", "-id")


def message_owner_id(*, message_id: int) -> int | None:
    """Whose conversation a message is in (for the ids a job's log lines carry)."""
    return Message.objects.filter(pk=message_id).values_list("conversation__owner_id", flat=True).first()


def conversation_owner_id(*, conversation_id: int) -> int | None:
    return Conversation.objects.filter(pk=conversation_id).values_list("owner_id", flat=True).first()


SEARCH_MAX_CHARS = 200
SNIPPET_RADIUS = 60


def _snippet(text: str, query: str) -> str:
    line = " ".join(text.split())
    at = line.lower().find(query.lower())
    if at < 0:
        return line[: SNIPPET_RADIUS * 2]
    start = max(0, at - SNIPPET_RADIUS)
    end = min(len(line), at + len(query) + SNIPPET_RADIUS)
    return ("…" if start else "") + line[start:end] + ("…" if end < len(line) else "")


def conversations_search(*, user: AbstractBaseUser, query: str, limit: int = 20) -> list[dict[str, object]]:
    """The user's conversations whose title or messages (on the path) contain ``query``, newest first, each with
    a snippet around the first match. Case-insensitive substring search: Korean needs no word splitting."""
    query = " ".join(query.split())[:SEARCH_MAX_CHARS]
    if not query:
        return []
    matching = Message.objects.filter(conversation__owner=user, superseded=False, content__icontains=query).values_list(
        "conversation_id", "content"
    )
    found: dict[int, str] = {}
    for conversation_id, content in matching.order_by("id")[: limit * 20]:
        found.setdefault(conversation_id, content)
    conversations = (
        Conversation.objects.filter(owner=user)
        .filter(Q(title__icontains=query) | Q(pk__in=list(found)))
        .order_by("-updated_at", "-id")
        .only("id", "title")[:limit]
    )
    return [
        {
            "id": conversation.pk,
            "title": str(conversation),
            "snippet": _snippet(found.get(conversation.pk, conversation.title), query),
        }
        for conversation in conversations
    ]


def conversation_path(*, conversation: Conversation) -> list[Message]:
    """The messages the conversation continues from (no earlier attempts, no edited-over questions), in order."""
    return list(Message.objects.filter(conversation=conversation, superseded=False).order_by("id"))
