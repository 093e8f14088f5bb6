"""Reads for conversation memory: the latest summary, the turns it does not cover yet, token totals."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Sum
from django.utils import timezone

from chat.models import Conversation, Message
from summaries.models import ConversationSummary

# Messages that count as conversation turns: finished with some text (a stopped answer keeps what it said).
TURN_STATUSES = (Message.Status.COMPLETE, Message.Status.CANCELLED)
UNSETTLED_STATUSES = (Message.Status.PENDING, Message.Status.STREAMING)
STALE_JOB_FACTOR = 4
# How many of the newest memory versions are looked at for one the owner may still be shown.
VERSIONS_CHECKED = 20


def summary_latest(*, conversation_id: int) -> ConversationSummary | None:
    return ConversationSummary.objects.filter(conversation_id=conversation_id).order_by("-version").first()


def summary_for_owner(*, conversation_id: int, user) -> tuple[ConversationSummary | None, bool]:
    """The newest memory version ``user`` may still be shown (every document its answers cited is readable), and
    whether it is older than the latest (then the memory needs rebuilding without the answers that were lost)."""
    from knowledge.selectors import visible_document_ids

    # Versions are cumulative: looking further back than a few only finds ranges the rebuild folds again anyway.
    versions = list(
        ConversationSummary.objects.filter(conversation_id=conversation_id).order_by("-version")[:VERSIONS_CHECKED]
    )
    if not versions:
        return None, False
    visible = visible_document_ids(user=user, document_ids={pk for v in versions for pk in v.document_ids})
    for index, version in enumerate(versions):
        if set(version.document_ids) <= visible:
            return version, index > 0
    return None, True


def turns_between(
    *, conversation_id: int, after_id: int = 0, before_id: int | None = None, hidden: Collection[int] = ()
) -> list[Message]:
    """Finished turns with ``after_id < id < before_id``, oldest first, leaving out the ``hidden`` answers."""
    turns = Message.objects.filter(conversation_id=conversation_id, pk__gt=after_id, status__in=TURN_STATUSES)
    if before_id is not None:
        turns = turns.filter(pk__lt=before_id)
    if hidden:
        turns = turns.exclude(pk__in=list(hidden))
    return list(turns.exclude(content="").order_by("pk").only("pk", "role", "content", "status", "sources"))


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
    # The latest version's number: above ``previous`` when the memory is rebuilt from an older version.
    latest_version: int = 0

    @property
    def next_version(self) -> int:
        return max(self.latest_version, self.previous.version if self.previous else 0) + 1

    @property
    def document_ids(self) -> list[int]:
        """The documents the new version stands on: the previous version's and those the batch's answers cite."""
        cited = set(self.previous.document_ids if self.previous else [])
        for message in self.batch:
            cited.update(item["document_id"] for item in message.sources or [] if item.get("document_id"))
        return sorted(cited)


def fold_plan(*, conversation_id: int) -> FoldPlan | None:
    """The next fold, or ``None`` while the settled tail (minus the turns kept verbatim) is below the trigger."""
    from chat.selectors import hidden_answer_ids
    from protostar.tokens import count_tokens

    owner = Conversation.objects.filter(pk=conversation_id).select_related("owner").first()
    if owner is None:
        return None
    latest = summary_latest(conversation_id=conversation_id)
    # A version quoting a document the owner lost is set aside: the memory is folded again from the newest version
    # that is still clean, without the answers citing what the owner may no longer read.
    previous, _ = summary_for_owner(conversation_id=conversation_id, user=owner.owner)
    hidden = hidden_answer_ids(conversation_id=conversation_id, user=owner.owner)
    after_id = previous.covers_to_message_id if previous else 0
    boundary = settled_boundary(conversation_id=conversation_id, after_id=after_id)
    tail = turns_between(conversation_id=conversation_id, after_id=after_id, before_id=boundary, hidden=hidden)
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
    return FoldPlan(conversation_id, previous, batch, sum(sizes), latest.version if latest else 0)


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
