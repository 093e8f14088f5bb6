"""Writes for conversation memory: folding turns into a new summary version, and the prompt's token figures."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import IntegrityError, transaction

from chat.models import Message
from summaries import selectors
from summaries.models import ConversationSummary
from summaries.summarizers import SummaryResult, Turn

logger = logging.getLogger(__name__)
# A long backlog (the summarizer was down for a while) is folded in bounded batches, at most this many per job.
MAX_ROUNDS = 20
# Losing the version race twice in a row means another job is busy with this conversation; it will finish the work.
MAX_RACE_RETRIES = 3


def memory_update(*, conversation_id: int) -> ConversationSummary | None:
    """Fold the conversation's settled tail into new summary versions while it is over the trigger.

    Returns the newest version stored, or ``None`` when nothing was due (or the conversation is gone). Safe to run
    twice and concurrently: see ``_fold_once``. A summarizer failure propagates and leaves the memory as it was.
    """
    stored = None
    for _ in range(MAX_ROUNDS):
        summary = _fold_once(conversation_id)
        if summary is None:
            break
        stored = summary
    return stored


def _fold_once(conversation_id: int) -> ConversationSummary | None:
    # No lock is held while the summarizer runs (an LLM call takes seconds, and a lock on the conversation row
    # would stall the answers that touch it). Instead each version is built on the latest one read, and the
    # unique (conversation, version) constraint lets only one job store its successor: the loser re-reads and
    # builds on the winner, so a turn is never skipped and a version never overwritten by an older view.
    for _ in range(MAX_RACE_RETRIES):
        plan = selectors.fold_plan(conversation_id=conversation_id)
        if plan is None:
            return None
        result = _summarize(plan)
        try:
            return _store(plan, result)
        except IntegrityError:
            logger.info("conversation %s: memory v%s was stored by another job", conversation_id, plan.next_version)
    return None


def _summarize(plan: selectors.FoldPlan) -> SummaryResult:
    from protostar.llm.registry import get_summarizer
    from protostar.tokens import detect_language, truncate_to_tokens

    limit = settings.MEMORY_FOLD_MAX_TOKENS
    turns = [Turn(role=m.role, content=truncate_to_tokens(m.content, limit)) for m in plan.batch]
    questions = " ".join(m.content for m in plan.batch if m.role == Message.Role.USER)
    return get_summarizer().summarize(
        previous=plan.previous.text if plan.previous else "",
        turns=turns,
        language=detect_language(questions or turns[0].content),
        max_tokens=settings.CONTEXT_BUDGET_MEMORY,
    )


def _store(plan: selectors.FoldPlan, result: SummaryResult) -> ConversationSummary:
    from protostar.llm.registry import get_summarizer
    from protostar.tokens import count_tokens

    with transaction.atomic():
        summary = ConversationSummary.objects.create(
            conversation_id=plan.conversation_id,
            version=plan.next_version,
            text=result.text,
            covers_from_message_id=plan.batch[0].pk,
            covers_to_message_id=plan.batch[-1].pk,
            message_count=(plan.previous.message_count if plan.previous else 0) + len(plan.batch),
            token_count=count_tokens(result.text),
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            summarizer=get_summarizer().name,
            document_ids=plan.document_ids,
        )
        # Billed with the version it produced: a version that lost the race (IntegrityError) costs nobody.
        _record_usage(plan.conversation_id, result)
    return summary


def _record_usage(conversation_id: int, result: SummaryResult) -> None:
    from chat.models import Conversation
    from usage.services import usage_record

    owner_id = Conversation.objects.filter(pk=conversation_id).values_list("owner_id", flat=True).first()
    if owner_id is not None:
        usage_record(
            user_id=owner_id,
            summary_prompt_tokens=result.prompt_tokens,
            summary_completion_tokens=result.completion_tokens,
        )


def message_context_record(
    *, message_id: int, attempt_id: str, context_tokens: int, full_history_tokens: int, memory_version: int | None
) -> bool:
    """Store what the answer's prompt cost and what the full history would have cost; fenced by the attempt."""
    return bool(
        Message.objects.filter(pk=message_id, attempt_id=attempt_id).update(
            context_tokens=context_tokens, full_history_tokens=full_history_tokens, memory_version=memory_version
        )
    )
