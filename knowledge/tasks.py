"""rq jobs of the ``knowledge`` queue: thin wrappers that take ids and call the ingestion service."""

from __future__ import annotations

import logging
import time

from botocore.exceptions import BotoCoreError
from django.conf import settings
from django.db import InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import get_current_job
from rq.timeouts import JobTimeoutException

from knowledge.ingestion import document_ingest
from knowledge.models import Document
from knowledge.recovery import ingestion_lease
from knowledge.services import document_mark_failed
from protostar import metrics
from protostar.llm.base import LLMError

logger = logging.getLogger(__name__)

# Failures worth another attempt (rq Retry); anything else fails the document at once with its reason.
TRANSIENT_ERRORS = (BotoCoreError, OperationalError, InterfaceError, RedisConnectionError, ConnectionError)


def ingest_document(document_id: int) -> str:
    with ingestion_lease(document_id) as held:
        if not held:
            logger.info("document %s is being processed by a live run; this run backs off", document_id)
            return "skipped"
        started = time.perf_counter()
        status = _ingest(document_id)
    metrics.INGESTION_DURATION.observe(time.perf_counter() - started)
    metrics.INGESTED_DOCUMENTS.labels(status).inc()
    return status


def _ingest(document_id: int) -> str:
    try:
        document = document_ingest(document_id=document_id)
    except JobTimeoutException:
        document_mark_failed(
            document_id=document_id,
            reason=f"Processing stopped after {settings.INGEST_JOB_TIMEOUT} s (the time limit). The file may be too "
            "large or too complex; split it and upload the parts.",
        )
        return "failed"
    except Exception as exc:
        if _will_retry(exc):
            logger.warning("transient failure ingesting document %s, will retry: %s", document_id, exc)
            raise
        logger.exception("ingesting document %s failed", document_id)
        document_mark_failed(document_id=document_id, reason=_readable(exc))
        return "failed"
    if document is None:
        return "skipped"
    if document.status == Document.Status.READY:
        metrics.INGESTED_PAGES.inc(document.page_count or 1)
        logger.info("document %s ingested: %s pages, %s chunks", document_id, document.page_count, document.chunk_count)
    return document.status


def sync_source(source_id: int) -> str:
    from knowledge.sources.services import source_sync

    run = source_sync(source_id=source_id)
    return run.status if run else "skipped"


def sync_due_sources() -> list[int]:
    """Run by rq's cron scheduler every SOURCE_SYNC_TICK_SECONDS: queue the sources whose interval has passed."""
    from knowledge.sources.services import sources_enqueue_due

    return sources_enqueue_due()


def _will_retry(exc: Exception) -> bool:
    job = get_current_job()
    transient = isinstance(exc, TRANSIENT_ERRORS) or (isinstance(exc, LLMError) and exc.transient)
    return transient and bool(job and job.retries_left)


def _readable(exc: Exception) -> str:
    if isinstance(exc, LLMError):
        return f"The embedding service failed: {exc.detail}"
    if isinstance(exc, TRANSIENT_ERRORS):
        return f"A service was unavailable after several attempts ({type(exc).__name__}: {exc}). Reprocess later."
    return f"Unexpected error while processing ({type(exc).__name__}: {exc})."
