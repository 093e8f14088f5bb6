"""rq jobs of the summaries app (thin: they take ids and call ``summaries.services``)."""

from __future__ import annotations

from django.conf import settings

MEMORY_JOB = "summaries.tasks.update_memory"


def enqueue_memory_update(conversation_id: int) -> None:
    """Queue a memory update; called after every complete answer (the job itself decides whether one is due)."""
    from rq import Retry

    from protostar import queues

    queues.queue("summaries").enqueue(
        MEMORY_JOB,
        conversation_id,
        job_timeout=settings.MEMORY_JOB_TIMEOUT,
        # A model outage fails the job; the memory stays as it was, and a retry (or the next answer) catches up.
        retry=Retry(max=2, interval=[10, 60]),
    )


def update_memory(conversation_id: int) -> int | None:
    """The newest summary version stored, or ``None`` when nothing was due or the conversation is gone."""
    from summaries.services import memory_update

    summary = memory_update(conversation_id=conversation_id)
    return summary.version if summary else None
