"""The knowledge job wrapper: time limit and final failures mark the document failed; transient ones are retried."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from rq.timeouts import JobTimeoutException

from knowledge import tasks
from knowledge.models import Document
from knowledge.services import document_upload
from tests.conftest import frozen_startup_objects

pytestmark = pytest.mark.django_db


@pytest.fixture
def document(monkeypatch) -> Document:
    monkeypatch.setattr("knowledge.services.document_ingest_enqueue", lambda *, document_id: None)
    return document_upload(data=b"Some text to ingest.", filename="a.txt").document


def _fail_with(monkeypatch, exc: Exception) -> None:
    def boom(*, document_id: int):
        raise exc

    monkeypatch.setattr(tasks, "document_ingest", boom)


def test_job_over_its_time_limit_marks_the_document_failed(document, monkeypatch, settings):
    settings.INGEST_JOB_TIMEOUT = 7
    _fail_with(monkeypatch, JobTimeoutException("timeout"))
    assert tasks.ingest_document(document.pk) == "failed"
    document.refresh_from_db()
    assert document.status == Document.Status.FAILED and "7 s" in document.error


def test_transient_failure_with_retries_left_is_raised_for_rq_to_retry(document, monkeypatch):
    class Job:
        retries_left = 2

    monkeypatch.setattr(tasks, "get_current_job", lambda: Job())
    _fail_with(monkeypatch, OperationalError("connection refused"))
    with pytest.raises(OperationalError):
        tasks.ingest_document(document.pk)
    document.refresh_from_db()
    assert document.status == Document.Status.QUEUED, "left for the retry, not failed"


def test_transient_failure_without_retries_left_marks_the_document_failed(document, monkeypatch):
    monkeypatch.setattr(tasks, "get_current_job", lambda: None)
    _fail_with(monkeypatch, OperationalError("connection refused"))
    assert tasks.ingest_document(document.pk) == "failed"
    document.refresh_from_db()
    assert document.status == Document.Status.FAILED and "Reprocess later" in document.error


def test_the_knowledge_worker_leaves_its_start_up_objects_out_of_garbage_collection(live_workers):
    assert frozen_startup_objects(live_workers) > 100_000
