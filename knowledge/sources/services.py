"""Bring a source's documents in step with the source: add new files, re-ingest changed ones, remove deleted ones.

A re-ingested file keeps its document (id, title, visibility) and only its changed chunks are embedded again.
A source that cannot be listed removes nothing: an unmounted folder must not empty the knowledge base.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import timedelta
from pathlib import PurePosixPath

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from knowledge.extraction import DocumentRejected, detect_content_type
from knowledge.models import Document, Source, SourceRun
from knowledge.services import document_delete, document_reprocess
from knowledge.sources.listing import SourceFile, SourceLister, SourceUnavailable, lister_for
from protostar.queues import JobKind

logger = logging.getLogger(__name__)

# A sync lists the source and queues the ingestion of what changed; the listing is cheap, so a failed or
# interrupted sync is simply run again at the next due time rather than retried.
SOURCE_SYNC_JOB = JobKind(
    queue="default",
    function="knowledge.tasks.sync_source",
    timeout_setting="SOURCE_SYNC_JOB_TIMEOUT",
    describe=lambda source_id: f"sync source {source_id}",
)


def source_sync(*, source_id: int) -> SourceRun | None:
    """One pass over a source; None when the source is gone, disabled or already being synced."""
    source = Source.objects.filter(pk=source_id, enabled=True).first()
    if source is None or _running(source):
        return None
    run = SourceRun.objects.create(source=source)
    try:
        _sync(source, lister_for(source), run)
    except SourceUnavailable as exc:
        run.status, run.error = SourceRun.Status.FAILED, str(exc)
    except Exception:
        logger.exception("syncing source %s failed", source.pk)
        run.status, run.error = SourceRun.Status.FAILED, "Unexpected error while syncing; see the server log."
    else:
        run.status = SourceRun.Status.DONE
    run.finished_at = timezone.now()
    run.save()
    Source.objects.filter(pk=source.pk).update(last_synced_at=run.finished_at)
    return run


def _running(source: Source) -> bool:
    # A run older than the job timeout was killed with its job: it no longer blocks the next one.
    recent = timezone.now() - timedelta(seconds=settings.SOURCE_SYNC_JOB_TIMEOUT)
    return source.runs.filter(status=SourceRun.Status.RUNNING, started_at__gte=recent).exists()


def _sync(source: Source, lister: SourceLister, run: SourceRun) -> None:
    documents = {document.source_path: document for document in source.documents.all()}
    seen: set[str] = set()
    for item in lister.files():  # raises SourceUnavailable before anything is removed
        seen.add(item.path)
        try:
            action, reason = _sync_file(source, lister, item, documents.get(item.path))
        except SourceUnavailable as exc:
            action, reason = "failed", str(exc)
        except OSError as exc:
            action, reason = "failed", f"The file could not be read ({exc.strerror or type(exc).__name__})."
        _record(run, item.path, action, reason)
    for path, document in documents.items():
        if path not in seen:
            document_delete(document=document)
            _record(run, path, "removed", "")


def _record(run: SourceRun, path: str, action: str, reason: str) -> None:
    setattr(run, action, getattr(run, action) + 1)
    if action != "unchanged":
        run.details.append({"path": path, "action": action, "reason": reason})
    # Saved as it goes, so the admin shows a long run's progress.
    run.save(update_fields=["added", "updated", "removed", "unchanged", "failed", "details"])


def _sync_file(source: Source, lister: SourceLister, item: SourceFile, document: Document | None) -> tuple[str, str]:
    if document is not None and document.source_version == item.version:
        source_apply_visibility(source=source, document=document)
        return "unchanged", ""
    if item.size > settings.UPLOAD_MAX_BYTES:
        return "failed", f"The file is larger than the upload limit of {settings.UPLOAD_MAX_BYTES:,} bytes."
    data = lister.read(item.path)
    try:
        content_type = detect_content_type(data, PurePosixPath(item.path).name)
    except DocumentRejected as exc:
        return "failed", str(exc)
    sha256 = hashlib.sha256(data).hexdigest()
    if document is None:
        document = _document_add(source, item, data, content_type, sha256)
        source_apply_visibility(source=source, document=document)
        return "added", ""
    source_apply_visibility(source=source, document=document)
    if document.sha256 == sha256:  # touched, not changed
        Document.objects.filter(pk=document.pk).update(source_version=item.version)
        return "unchanged", ""
    _document_replace_file(document, item, data, content_type, sha256)
    return "updated", ""


def _document_add(source: Source, item: SourceFile, data: bytes, content_type: str, sha256: str) -> Document:
    name = PurePosixPath(item.path).name[:255] or "document"
    document = Document(
        title=(PurePosixPath(name).stem or name)[:300],
        original_filename=name,
        content_type=content_type,
        size=len(data),
        sha256=sha256,
        source=source,
        source_path=item.path,
        source_version=item.version,
        status=Document.Status.QUEUED,
    )
    document.file.save(uuid.uuid4().hex, ContentFile(data), save=False)
    with transaction.atomic():
        document.save()
        # Queues the ingestion once committed (the same path as the admin's "Reprocess").
        document_reprocess(document=document)
    return document


def _document_replace_file(document: Document, item: SourceFile, data: bytes, content_type: str, sha256: str) -> None:
    old_name = document.file.name
    document.file.save(uuid.uuid4().hex, ContentFile(data), save=False)
    with transaction.atomic():
        Document.objects.filter(pk=document.pk).update(
            file=document.file.name,
            content_type=content_type,
            size=len(data),
            sha256=sha256,
            source_version=item.version,
        )
        document_reprocess(document=document)
        if old_name:
            transaction.on_commit(lambda: default_storage.delete(old_name))


def source_apply_visibility(*, source: Source, document: Document) -> None:
    """A source's documents are readable by the source's groups (all signed-in users when it has none).

    Kept in one place so the rule can follow the document-visibility model when it changes.
    """
    wanted = set(source.allowed_groups.values_list("pk", flat=True))
    if set(document.allowed_groups.values_list("pk", flat=True)) != wanted:
        document.allowed_groups.set(wanted)


def sources_enqueue_due() -> list[int]:
    """Queue a sync of every enabled source whose interval has passed; returns their ids.

    Each source is claimed by a conditional update of ``last_synced_at``, so two schedulers never queue it twice.
    """
    now = timezone.now()
    queued = []
    for source in Source.objects.filter(enabled=True):
        due_before = now - timedelta(minutes=source.sync_interval_minutes)
        claimed = (
            Source.objects.filter(pk=source.pk)
            .filter(Q(last_synced_at__isnull=True) | Q(last_synced_at__lte=due_before))
            .update(last_synced_at=now)
        )
        if claimed:
            source_enqueue_sync(source_id=source.pk)
            queued.append(source.pk)
    return queued


def source_enqueue_sync(*, source_id: int) -> None:
    SOURCE_SYNC_JOB.enqueue(source_id)


def source_delete(*, source: Source) -> None:
    """Remove a source and every document it brought in (they would otherwise stay searchable for ever)."""
    for document in source.documents.all():
        document_delete(document=document)
    Source.objects.filter(pk=source.pk).delete()
