"""Reads for conversation memory: the latest summary, the turns it does not cover yet, what summaries cost."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.db.models import Count, Sum

from protostar.seams import seam
from protostar.tokens import count_tokens
from summaries.models import ConversationSummary
from summaries.summarizers import Turn


class TurnSource(Protocol):
    """Where the conversation's turns come from (the app that stores messages: ``chat.memory.MessageTurns``)."""

    def settled_turns(self, *, conversation_id: int, after_id: int) -> list[Turn]:
        """Finished turns with text after message ``after_id``, oldest first, stopping before the first answer still
        being written (and its question): folding past it would put that answer behind the summary and lose it."""
        ...


get_turn_source = seam("MEMORY_TURN_SOURCE", TurnSource)


def summary_latest(*, conversation_id: int) -> ConversationSummary | None:
    return ConversationSummary.objects.filter(conversation_id=conversation_id).order_by("-version").first()


@dataclass(frozen=True)
class FoldPlan:
    """What the next summary version is built from: the latest version and the turns right after its range."""

    conversation_id: int
    previous: ConversationSummary | None
    batch: list[Turn]
    tail_tokens: int

    @property
    def next_version(self) -> int:
        return self.previous.version + 1 if self.previous else 1


def fold_plan(*, conversation_id: int) -> FoldPlan | None:
    """The next fold, or ``None`` while the settled tail (minus the turns kept verbatim) is below the trigger."""
    previous = summary_latest(conversation_id=conversation_id)
    after_id = previous.covers_to_message_id if previous else 0
    tail = get_turn_source().settled_turns(conversation_id=conversation_id, after_id=after_id)
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
class SummarySpending:
    summaries: int
    tokens: int  # prompt and completion tokens the summarizer spent, all versions


def summary_spending(*, conversation_id: int) -> SummarySpending:
    spent = ConversationSummary.objects.filter(conversation_id=conversation_id).aggregate(
        n=Count("pk"), prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens")
    )
    return SummarySpending(summaries=spent["n"], tokens=(spent["prompt"] or 0) + (spent["completion"] or 0))
