"""Writes for the knowledge base: upload, ingestion, reprocessing and deletion of documents."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from rq import Retry

from knowledge.extraction import DocumentRejected, detect_content_type
from knowledge.models import Chunk, ChunkWindow, Document
from protostar.queues import JobKind

logger = logging.getLogger(__name__)

INGEST_JOB = JobKind(
    queue="knowledge",
    function="knowledge.tasks.ingest_document",
    timeout_setting="INGEST_JOB_TIMEOUT",
    # Transient failures (storage, database, embedding service) and a worker killed mid-document.
    retry=Retry(max=3, interval=[5, 30, 120]),
    job_id=lambda document_id: f"ingest-document-{document_id}",
    describe=lambda document_id: f"ingest document {document_id}",
)
# The next part of a long ingestion (OCR of many pages), queued by the part before it while that one still runs:
# it cannot take INGEST_JOB's stable id, which is the running job's own. A part that waits long in the queue may be
# queued once more by the reconcile; the document's lease lets one run at a time, and stored OCR pages are not
# read again, so the extra run only finds the work done.
INGEST_PART_JOB = JobKind(
    queue="knowledge",
    function="knowledge.tasks.ingest_document",
    timeout_setting="INGEST_JOB_TIMEOUT",
    retry=Retry(max=3, interval=[5, 30, 120]),
    describe=lambda document_id: f"ingest document {document_id} (next part)",
)


@dataclass(frozen=True)
class UploadOutcome:
    """What happened to one uploaded file: ``queued`` (new document), ``duplicate`` or ``rejected``."""

    status: str
    document: Document | None = None
    reason: str = ""


def _human_size(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KB"


class VisibilityError(ValueError):
    """A visibility that cannot be applied (unknown value, groups missing or given where they mean nothing)."""


def document_visibility_resolve(*, visibility: str | None, groups: Sequence[Group] = ()) -> tuple[str, list[Group]]:
    """The visibility to store: the one asked for, ``groups`` when only groups were named, else the default
    (``DOCUMENT_DEFAULT_VISIBILITY``, staff-only unless configured otherwise)."""
    groups = list(groups)
    if visibility is None:
        visibility = Document.Visibility.GROUPS if groups else settings.DOCUMENT_DEFAULT_VISIBILITY
    if visibility not in Document.Visibility.values:
        choices = ", ".join(Document.Visibility.values)
        raise VisibilityError(f"Unknown visibility {visibility!r}; choose one of {choices}.")
    if visibility == Document.Visibility.GROUPS and not groups:
        raise VisibilityError("A document shared with groups needs at least one group.")
    if visibility != Document.Visibility.GROUPS and groups:
        raise VisibilityError("Groups only apply to a document shared with selected groups.")
    return visibility, groups


def document_set_visibility(*, document: Document, visibility: str, groups: Sequence[Group] = ()) -> Document:
    """Publish or restrict a document; search, downloads and stored answers follow at once (they check per read)."""
    visibility, groups = document_visibility_resolve(visibility=visibility, groups=groups)
    with transaction.atomic():
        document.visibility = visibility
        document.save(update_fields=["visibility", "updated_at"])
        document.allowed_groups.set(groups)
    return document


def document_upload(
    *,
    data: bytes,
    filename: str,
    uploaded_by=None,
    title: str = "",
    visibility: str | None = None,
    groups: Sequence[Group] = (),
) -> UploadOutcome:
    """Check a file by size and content, store it under a server-generated key and queue its ingestion.

    The document is readable as ``visibility`` says (with ``groups``) from its first moment: a document is
    private (staff-only, ``DOCUMENT_DEFAULT_VISIBILITY``) unless its uploader chose otherwise.
    """
    try:
        visibility, groups = document_visibility_resolve(visibility=visibility, groups=groups)
    except VisibilityError as exc:
        return UploadOutcome("rejected", reason=str(exc))
    if len(data) > settings.UPLOAD_MAX_BYTES:
        return UploadOutcome(
            "rejected",
            reason=f"The file is {_human_size(len(data))}; the limit is {_human_size(settings.UPLOAD_MAX_BYTES)}.",
        )
    try:
        content_type = detect_content_type(data, filename)
    except DocumentRejected as exc:
        return UploadOutcome("rejected", reason=str(exc))
    sha256 = hashlib.sha256(data).hexdigest()
    existing = Document.objects.filter(sha256=sha256, source__isnull=True).first()
    if existing:
        return UploadOutcome("duplicate", document=existing, reason=f"Already uploaded as “{existing.title}”.")
    name = PurePath(filename).name[:255] or "document"
    document = Document(
        title=(title or PurePath(name).stem or name)[:300],
        original_filename=name,
        content_type=content_type,
        size=len(data),
        sha256=sha256,
        uploaded_by=uploaded_by if getattr(uploaded_by, "pk", None) else None,
        visibility=visibility,
    )
    # Store the object first: a row must never point at a missing file. If the row then loses the
    # race on the sha256 constraint, the object is removed again.
    document.file.save(uuid.uuid4().hex, ContentFile(data), save=False)
    try:
        with transaction.atomic():
            document.save()
            document.allowed_groups.set(groups)
            document_ingest_enqueue(document_id=document.pk)
    except IntegrityError:
        default_storage.delete(document.file.name)
        existing = Document.objects.get(sha256=sha256, source__isnull=True)
        return UploadOutcome("duplicate", document=existing, reason=f"Already uploaded as “{existing.title}”.")
    return UploadOutcome("queued", document=document)


def document_ingest_enqueue(*, document_id: int) -> None:
    """Queue the document's ingestion (once the current transaction commits)."""
    INGEST_JOB.enqueue(document_id)


def document_reprocess(*, document: Document) -> None:
    with transaction.atomic():
        Document.objects.filter(pk=document.pk).update(
            status=Document.Status.QUEUED,
            error="",
            attempt_count=0,
            progress_done=0,
            progress_total=0,
            updated_at=timezone.now(),
        )
        document_ingest_enqueue(document_id=document.pk)


def document_delete(*, document: Document) -> None:
    """Delete the row (its chunks go with it, by cascade) and, once committed, the stored object.

    The row is locked first, as ``chunks_replace`` locks it: an ingestion swapping in its chunks meanwhile either
    finishes before (and its chunks are deleted too) or finds the document gone; without the lock its new chunks
    could commit between the cascade and the row's deletion, and the delete would fail on their foreign key."""
    file_name = document.file.name
    with transaction.atomic():
        if Document.objects.select_for_update().filter(pk=document.pk).first() is None:
            return
        document.delete()
        if file_name:
            transaction.on_commit(lambda: default_storage.delete(file_name))


def document_mark_failed(*, document_id: int, reason: str) -> None:
    Document.objects.filter(pk=document_id).update(
        status=Document.Status.FAILED, error=reason[:2000], processed_at=timezone.now(), updated_at=timezone.now()
    )


def document_claim(*, document_id: int) -> Document | None:
    """Mark a queued (or interrupted) document as processing; None when it is gone or already done."""
    claimed = Document.objects.filter(
        pk=document_id, status__in=[Document.Status.QUEUED, Document.Status.PROCESSING]
    ).update(
        status=Document.Status.PROCESSING,
        error="",
        attempt_count=F("attempt_count") + 1,
        progress_done=0,
        ocr_pages=[],
        ocr_confidence=None,
        processing_started_at=timezone.now(),
        updated_at=timezone.now(),
    )
    return Document.objects.filter(pk=document_id).first() if claimed else None


def document_report_progress(*, document_id: int, done: int, total: int, stage: str | None = None) -> None:
    changes: dict = {"progress_done": done, "progress_total": total}
    if stage is not None:
        changes["progress_stage"] = stage
    Document.objects.filter(pk=document_id).update(**changes)


def document_continue(*, document_id: int) -> None:
    """Queue the next part of a long ingestion (OCR of many pages); the document stays ``processing``.

    A finished part is progress: the attempt count starts again, so only runs that die count against
    ``INGEST_MAX_ATTEMPTS``, not the parts of a long document."""
    Document.objects.filter(pk=document_id).update(updated_at=timezone.now(), attempt_count=0)
    INGEST_PART_JOB.enqueue(document_id)


def document_record_ocr(*, document_id: int, pages: list[int], confidence: float | None) -> None:
    Document.objects.filter(pk=document_id).update(ocr_pages=pages, ocr_confidence=confidence)


class ChunkSetChanged(Exception):
    """Chunks planned to be kept were replaced meanwhile (a concurrent run of the same job)."""


def chunks_replace(
    *,
    document: Document,
    chunks: list[Chunk],
    page_count: int | None,
    embedding_model: str,
    windows: list[list[ChunkWindow]] | None = None,
    kept: list[Chunk] | None = None,
) -> bool:
    """Swap a document's chunk set in one transaction: readers see the old set or the new one, never a mix.

    ``windows[i]`` are the sentence windows of ``chunks[i]``. ``kept`` are existing chunk rows (by pk) that stay,
    with their vectors and windows, at the new position they carry. Returns False when the document was deleted
    meanwhile (nothing is written then); raises ``ChunkSetChanged`` when a kept row is gone.
    """
    kept = kept or []
    with transaction.atomic():
        locked = Document.objects.select_for_update().filter(pk=document.pk).first()
        if locked is None:
            return False
        kept_ids = [chunk.pk for chunk in kept]
        if Chunk.objects.filter(document_id=document.pk, pk__in=kept_ids).count() != len(kept_ids):
            raise ChunkSetChanged(document.pk)
        Chunk.objects.filter(document_id=document.pk).exclude(pk__in=kept_ids).delete()
        # The ordinal constraint is deferred to the commit, so kept rows can be renumbered in any order.
        Chunk.objects.bulk_update(
            kept, ["ordinal", "page_start", "page_end", "char_start", "char_end", "token_count"], batch_size=500
        )
        Chunk.objects.bulk_create(chunks, batch_size=500)
        if windows:
            for chunk, chunk_windows in zip(chunks, windows, strict=True):
                for window in chunk_windows:
                    window.chunk_id = chunk.pk
            ChunkWindow.objects.bulk_create([w for chunk_windows in windows for w in chunk_windows], batch_size=500)
        Document.objects.filter(pk=document.pk).update(
            status=Document.Status.READY,
            error="",
            page_count=page_count,
            chunk_count=len(chunks) + len(kept),
            progress_done=F("progress_total"),
            progress_stage="",
            embedding_model=embedding_model,
            processed_at=timezone.now(),
            updated_at=timezone.now(),
        )
    return True
