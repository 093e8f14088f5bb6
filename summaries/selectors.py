"""Reads for conversation memory: the latest summary, the turns it does not cover yet, what summaries cost."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.db.models import Count, Sum

from protostar.seams import seam
from protostar.tokens import count_tokens
from summaries.models import ConversationSummary
from summaries.summarizers import Turn


class TurnSource(Protocol):
    """Where the conversation's turns come from (the app that stores messages: ``chat.memory.MessageTurns``), and
    what its owner may still read (memory must not keep text from documents the owner lost)."""

    def settled_turns(self, *, conversation_id: int, after_id: int) -> list[Turn]:
        """Finished turns with text after message ``after_id``, oldest first, stopping before the first answer still
        being written (and its question): folding past it would put that answer behind the summary and lose it.
        Answers citing a document the owner can no longer read are left out; each answer carries the documents it
        cites (``Turn.document_ids``)."""
        ...

    def readable_document_ids(self, *, conversation_id: int, document_ids: Collection[int]) -> set[int]:
        """Which of ``document_ids`` the conversation's owner may read now (none when the conversation is gone)."""
        ...


get_turn_source = seam("MEMORY_TURN_SOURCE", TurnSource)
# How many of the newest memory versions are looked at for one the owner may still be shown.
VERSIONS_CHECKED = 20


def summary_latest(*, conversation_id: int) -> ConversationSummary | None:
    return ConversationSummary.objects.filter(conversation_id=conversation_id).order_by("-version").first()


def summary_for_owner(*, conversation_id: int) -> tuple[ConversationSummary | None, bool]:
    """The newest memory version the conversation's owner may still be shown (every document its answers cited is
    readable), and whether it is older than the latest (then the memory needs rebuilding without the answers that
    were lost)."""
    # Versions are cumulative: looking further back than a few only finds ranges the rebuild folds again anyway.
    versions = list(
        ConversationSummary.objects.filter(conversation_id=conversation_id).order_by("-version")[:VERSIONS_CHECKED]
    )
    if not versions:
        return None, False
    cited = {pk for version in versions for pk in version.document_ids}
    visible = get_turn_source().readable_document_ids(conversation_id=conversation_id, document_ids=cited)
    for index, version in enumerate(versions):
        if set(version.document_ids) <= visible:
            return version, index > 0
    return None, True


@dataclass(frozen=True)
class FoldPlan:
    """What the next summary version is built from: the latest version and the turns right after its range."""

    conversation_id: int
    previous: ConversationSummary | None
    batch: list[Turn]
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
        for turn in self.batch:
            cited.update(turn.document_ids)
        return sorted(cited)


def fold_plan(*, conversation_id: int) -> FoldPlan | None:
    """The next fold, or ``None`` while the settled tail (minus the turns kept verbatim) is below the trigger."""
    latest = summary_latest(conversation_id=conversation_id)
    # A version quoting a document the owner lost is set aside: the memory is folded again from the newest version
    # that is still clean, without the answers citing what the owner may no longer read (the turn source leaves
    # those out).
    previous, _ = summary_for_owner(conversation_id=conversation_id)
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
    return FoldPlan(conversation_id, previous, batch, sum(sizes), latest.version if latest else 0)


@dataclass(frozen=True)
class SummarySpending:
    summaries: int
    tokens: int  # prompt and completion tokens the summarizer spent, all versions


def summary_spending(*, conversation_id: int) -> SummarySpending:
    spent = ConversationSummary.objects.filter(conversation_id=conversation_id).aggregate(
        n=Count("pk"), prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens")
    )
    return SummarySpending(summaries=spent["n"], tokens=(spent["prompt"] or 0) + (spent["completion"] or 0))
