"""Reads for conversation memory: the latest summary, the turns it does not cover yet, token totals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Sum
from django.utils import timezone

from chat.models import Message
from summaries.models import ConversationSummary

# Messages that count as conversation turns: finished with some text (a stopped answer keeps what it said).
TURN_STATUSES = (Message.Status.COMPLETE, Message.Status.CANCELLED)
UNSETTLED_STATUSES = (Message.Status.PENDING, Message.Status.STREAMING)
STALE_JOB_FACTOR = 4


def summary_latest(*, conversation_id: int) -> ConversationSummary | None:
    return ConversationSummary.objects.filter(conversation_id=conversation_id).order_by("-version").first()


def turns_between(*, conversation_id: int, after_id: int = 0, before_id: int | None = None) -> list[Message]:
    """Finished turns with ``after_id < id < before_id``, oldest first."""
    turns = Message.objects.filter(conversation_id=conversation_id, pk__gt=after_id, status__in=TURN_STATUSES)
    # Earlier attempts and edited-over questions are off the conversation's path (``chat.revisions``).
    turns = turns.filter(superseded=False)
    if before_id is not None:
        turns = turns.filter(pk__lt=before_id)
    return list(turns.exclude(content="").order_by("pk").only("pk", "role", "content", "status"))


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
class FoldPlan:
    """What the next summary version is built from: the latest version and the turns right after its range."""

    conversation_id: int
    previous: ConversationSummary | None
    batch: list[Message]
    tail_tokens: int

    @property
    def next_version(self) -> int:
        return self.previous.version + 1 if self.previous else 1


def fold_plan(*, conversation_id: int) -> FoldPlan | None:
    """The next fold, or ``None`` while the settled tail (minus the turns kept verbatim) is below the trigger."""
    from protostar.tokens import count_tokens

    previous = summary_latest(conversation_id=conversation_id)
    after_id = previous.covers_to_message_id if previous else 0
    boundary = settled_boundary(conversation_id=conversation_id, after_id=after_id)
    tail = turns_between(conversation_id=conversation_id, after_id=after_id, before_id=boundary)
    keep = settings.MEMORY_KEEP_RECENT_MESSAGES
    foldable = tail[: len(tail) - keep] if keep else tail
    sizes = [count_tokens(message.content) for message in foldable]
    if not foldable or sum(sizes) < settings.MEMORY_TRIGGER_TOKENS:
        return None
    # One summarizer call reads a bounded batch; the rest waits for the next round.
    batch, used = [], 0
    for message, size in zip(foldable, sizes, strict=True):
        if batch and used + size > settings.MEMORY_FOLD_MAX_TOKENS:
            break
        batch.append(message)
        used += size
    return FoldPlan(conversation_id, previous, batch, sum(sizes))


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
    spent = ConversationSummary.objects.filter(conversation_id=conversation_id).aggregate(
        n=Count("pk"), prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens")
    )
    return TokenTotals(
        answers=answers["n"],
        context_tokens=answers["used"] or 0,
        full_history_tokens=answers["full"] or 0,
        summaries=spent["n"],
        summary_spent_tokens=(spent["prompt"] or 0) + (spent["completion"] or 0),
    )
