"""rq jobs of the summaries app (thin: they take ids and call ``summaries.services``)."""

from __future__ import annotations

from rq import Retry

from protostar.queues import JobKind

MEMORY_JOB = JobKind(
    queue="summaries",
    function="summaries.tasks.update_memory",
    timeout_setting="MEMORY_JOB_TIMEOUT",
    # A model outage fails the job; the memory stays as it was, and a retry (or the next answer) catches up.
    retry=Retry(max=2, interval=[10, 60]),
    describe=lambda conversation_id: f"update the memory of conversation {conversation_id}",
)


def enqueue_memory_update(conversation_id: int) -> None:
    """Queue a memory update; called after every complete answer (the job itself decides whether one is due)."""
    MEMORY_JOB.enqueue(conversation_id)


def update_memory(conversation_id: int) -> int | None:
    """The newest summary version stored, or ``None`` when nothing was due or the conversation is gone."""
    from summaries.services import memory_update

    summary = memory_update(conversation_id=conversation_id)
    return summary.version if summary else None
