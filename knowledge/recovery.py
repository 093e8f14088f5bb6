"""Documents are never left stuck: a running ingestion holds a lease, and the knowledge workers' reconcile queues
again every document left ``queued`` or ``processing`` with neither a live run nor a job (a killed worker, a Redis
that lost its queues). Each run counts as an attempt (``Document.attempt_count``, shown to staff); after
``INGEST_MAX_ATTEMPTS`` the document is marked failed with the reason (``knowledge.ingestion``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

import redis
from django.conf import settings
from django.utils import timezone
from rq.job import JobStatus

from knowledge.models import Document
from knowledge.services import INGEST_JOB, document_ingest_enqueue
from protostar import queues

logger = logging.getLogger(__name__)
REDIS_UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError)
# KEYS: lease. ARGV: token, ms. Extends the lease only while this run still holds it.
_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""


def lease_key(document_id: int) -> str:
    return f"knowledge:lease:{document_id}"


def rescue_key(document_id: int) -> str:
    return f"knowledge:rescue:{document_id}"


@contextlib.contextmanager
def ingestion_lease(document_id: int) -> Iterator[bool]:
    """Hold the document's lease while the block runs (renewed by a thread); yields False when a live run holds it."""
    conn = queues.connection(INGEST_JOB.queue)
    token, lease_ms = uuid.uuid4().hex, int(settings.INGEST_LEASE_SECONDS * 1000)
    if not conn.set(lease_key(document_id), token, nx=True, px=lease_ms):
        yield False
        return
    done = threading.Event()
    renew = conn.register_script(_RENEW)

    def keep() -> None:
        while not done.wait(settings.INGEST_LEASE_SECONDS / 3):
            try:
                renew(keys=[lease_key(document_id)], args=[token, lease_ms])
            except REDIS_UNAVAILABLE:  # the lease may lapse meanwhile: a re-run then starts the document over
                logger.warning("document %s: the lease could not be renewed", document_id)

    keeper = threading.Thread(target=keep, name=f"ingest-lease-{document_id}", daemon=True)
    keeper.start()
    try:
        yield True
    finally:
        done.set()
        keeper.join()
        with contextlib.suppress(*REDIS_UNAVAILABLE):
            conn.register_script(_RELEASE)(keys=[lease_key(document_id)], args=[token])


def documents_reconcile() -> list[int]:
    """Queue again the documents waiting or processing with no lease and no job that will run; returns their ids."""
    grace = settings.INGEST_LEASE_SECONDS
    candidates = list(
        Document.objects.filter(
            status__in=[Document.Status.QUEUED, Document.Status.PROCESSING],
            updated_at__lt=timezone.now() - timedelta(seconds=grace),
        )
        .order_by("id")
        .values_list("pk", "status")[:500]
    )
    if not candidates:
        return []
    conn = queues.connection(INGEST_JOB.queue)
    with conn.pipeline(transaction=False) as pipe:
        for document_id, _ in candidates:
            pipe.exists(lease_key(document_id))
        leased = pipe.execute()
    rescued = []
    for (document_id, status), has_lease in zip(candidates, leased, strict=True):
        if has_lease or _job_will_run(document_id, status):
            continue
        if not conn.set(rescue_key(document_id), "1", nx=True, px=int(grace * 1000)):
            continue
        logger.warning("document %s: %s with no run behind it; queueing it again", document_id, status)
        document_ingest_enqueue(document_id=document_id)
        rescued.append(document_id)
    return rescued


def _job_will_run(document_id: int, status: str) -> bool:
    """A job queued, scheduled for a retry, or started on a queued document (about to take the lease)."""
    job = INGEST_JOB.queued_job(document_id)
    if job is None:
        return False
    return status == Document.Status.QUEUED or job.get_status(refresh=False) != JobStatus.STARTED
