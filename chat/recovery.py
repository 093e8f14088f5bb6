"""Answers whose run died are found and run again: the chat workers' reconcile, every ``CHAT_RECONCILE_SECONDS``.

A live run holds its answer's Redis lease and renews it every second (``chat.watch``); a run whose worker was
killed, or that lost Redis, leaves its answer unfinished and its lease lapses within ``CHAT_LEASE_SECONDS``. The
reconcile queues such answers again; the new run takes the lease (so two runs never write one answer at once), tells
readers to ``reset`` and starts over, and after ``CHAT_ANSWER_MAX_ATTEMPTS`` runs the answer ends as failed
(``chat.answering``). rq's own detection of an abandoned job takes minutes; this takes seconds.
"""

from __future__ import annotations

import logging

from django.conf import settings
from rq.job import JobStatus

from chat import selectors, streams
from chat.models import Message
from chat.tasks import ANSWER_JOB

logger = logging.getLogger(__name__)


def rescue_key(message_id: int) -> str:
    """Set while a rescued answer's job waits for a worker, so the next passes do not queue it again."""
    return f"chat:rescue:{message_id}"


def answers_reconcile() -> list[int]:
    """Queue again every unfinished answer that no live run owns and no queued job will run; returns their ids."""
    grace = settings.CHAT_LEASE_SECONDS
    candidates = selectors.unfinished_answers(pending_for_seconds=grace)
    if not candidates:
        return []
    conn = streams.sync_client()
    with conn.pipeline(transaction=False) as pipe:
        for message_id, _ in candidates:
            pipe.exists(streams.lease_key(message_id))
        leased = pipe.execute()
    rescued = []
    for (message_id, status), has_lease in zip(candidates, leased, strict=True):
        if has_lease or _job_will_run(message_id, status):
            continue
        if not conn.set(rescue_key(message_id), "1", nx=True, px=int(grace * 1000)):
            continue
        logger.warning("message %s: its run is gone (status %s, no lease); queueing it again", message_id, status)
        ANSWER_JOB.enqueue(message_id)
        rescued.append(message_id)
    return rescued


def _job_will_run(message_id: int, status: str) -> bool:
    """A pending answer's job still queued or starting, or a streaming answer's job queued again (not yet run)."""
    job = ANSWER_JOB.queued_job(message_id)
    if job is None:
        return False
    return status == Message.Status.PENDING or job.get_status(refresh=False) != JobStatus.STARTED
