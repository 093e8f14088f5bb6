"""Reads for the knowledge base, always filtered by what the asking user may read."""

from __future__ import annotations

from urllib.parse import quote

from django.db.models import Q, QuerySet

from knowledge.models import Chunk, Document


def documents_visible_to(user) -> QuerySet[Document]:
    """Documents a user may read: unrestricted ones, those shared with one of their groups; staff see all."""
    if user is None or not user.is_authenticated or not user.is_active:
        return Document.objects.none()
    if user.is_staff or user.is_superuser:
        return Document.objects.all()
    return Document.objects.filter(Q(allowed_groups__isnull=True) | Q(allowed_groups__in=user.groups.all())).distinct()


def visibility_filter_sql(user) -> tuple[str, dict]:
    """The same rule as ``documents_visible_to`` as a SQL condition on ``d`` (knowledge_document), for raw search."""
    if user is None or not user.is_authenticated or not user.is_active:
        return "FALSE", {}
    if user.is_staff or user.is_superuser:
        return "TRUE", {}
    return (
        "(NOT EXISTS (SELECT 1 FROM knowledge_document_allowed_groups ag WHERE ag.document_id = d.id)"
        " OR EXISTS (SELECT 1 FROM knowledge_document_allowed_groups ag"
        " JOIN auth_user_groups ug ON ug.group_id = ag.group_id"
        " WHERE ag.document_id = d.id AND ug.user_id = %(visible_user_id)s))",
        {"visible_user_id": user.pk},
    )


def documents_without_windows() -> QuerySet[Document]:
    """Ready documents whose chunks have no sentence windows: ingested before windows existed (or with the window
    and sparse lists off). Search still finds them by chunk vectors and keywords, but ranks them lower."""
    return (
        Document.objects.filter(status=Document.Status.READY, chunks__isnull=False)
        .exclude(chunks__windows__isnull=False)
        .distinct()
        .order_by("pk")
    )


def document_chunks(*, document: Document) -> QuerySet[Chunk]:
    return Chunk.objects.filter(document=document).only(
        "id", "ordinal", "text", "page_start", "page_end", "section_path", "token_count"
    )


# Presigned links are signed per click and expire quickly: a copied link stops working within a minute.
DOWNLOAD_URL_SECONDS = 60


def document_download_url(*, document: Document, inline: bool = False) -> str:
    """A short-lived presigned URL for the original file, named as uploaded (Korean names included)."""
    name = document.original_filename
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)
    # filename* carries the real (often Korean) name; the ASCII fallback is for clients that ignore it.
    disposition = (
        f"{'inline' if inline else 'attachment'}; filename=\"{fallback or 'document'}\"; filename*=UTF-8''{quote(name)}"
    )
    return document.file.storage.url(
        document.file.name,
        parameters={"ResponseContentDisposition": disposition, "ResponseContentType": document.content_type},
        expire=DOWNLOAD_URL_SECONDS,
    )


def document_uploader_id(*, document_id: int) -> int | None:
    """Who uploaded a document (for the ids an ingestion job's log lines carry; ``None`` for command-line uploads)."""
    return Document.objects.filter(pk=document_id).values_list("uploaded_by_id", flat=True).first()
