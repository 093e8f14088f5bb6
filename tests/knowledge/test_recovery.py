"""Documents are never stuck: the ingestion lease, the bound on runs and the knowledge workers' reconcile, against
the real Redis and PostgreSQL (the fault suite, ``tests/faults``, kills real workers)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from knowledge.ingestion import document_ingest
from knowledge.models import Document
from knowledge.recovery import documents_reconcile, ingestion_lease, lease_key, rescue_key
from knowledge.services import document_reprocess, document_upload
from protostar import queues

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def document(monkeypatch):
    monkeypatch.setattr("knowledge.services.document_ingest_enqueue", lambda *, document_id: None)
    document = document_upload(data="복구 시험 문서. A recovery test.".encode(), filename="recovery.md").document
    yield document
    queues.connection("knowledge").delete(rescue_key(document.pk), lease_key(document.pk))


def test_a_second_run_backs_off_while_the_first_holds_the_lease(document):
    with ingestion_lease(document.pk) as first, ingestion_lease(document.pk) as second:
        assert first and not second
    with ingestion_lease(document.pk) as again:
        assert again, "released when the first run ended"


def test_a_document_past_its_last_run_is_failed_with_the_reason_and_reprocess_starts_counting_again(document, settings):
    settings.INGEST_MAX_ATTEMPTS = 2
    Document.objects.filter(pk=document.pk).update(status="processing", attempt_count=2)
    assert document_ingest(document_id=document.pk) is None
    document.refresh_from_db()
    assert document.status == Document.Status.FAILED and document.attempt_count == 3
    assert "interrupted 2 times" in document.error and "Reprocess" in document.error
    document_reprocess(document=document)
    document.refresh_from_db()
    assert document.status == Document.Status.QUEUED and document.attempt_count == 0


def test_a_queued_document_with_no_job_is_queued_again_once(document, monkeypatch):
    queued = []
    monkeypatch.setattr("knowledge.recovery.document_ingest_enqueue", lambda *, document_id: queued.append(document_id))
    Document.objects.filter(pk=document.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    assert document.pk in documents_reconcile() and queued == [document.pk]
    assert document.pk not in documents_reconcile(), "the next pass does not queue it a second time"


def test_a_document_a_live_run_holds_is_left_alone(document, monkeypatch):
    monkeypatch.setattr("knowledge.recovery.document_ingest_enqueue", lambda *, document_id: None)
    Document.objects.filter(pk=document.pk).update(
        status="processing", updated_at=timezone.now() - timedelta(minutes=5)
    )
    with ingestion_lease(document.pk) as held:
        assert held and document.pk not in documents_reconcile()
