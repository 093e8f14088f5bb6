"""Reads for the knowledge base, always filtered by what the asking user may read."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote

from django.db.models import Exists, OuterRef, Q, QuerySet

from knowledge.models import Chunk, Document

VIEW_ALL_PERMISSION = "knowledge.view_all_documents"


def can_view_all_documents(user) -> bool:
    """Seeing every document is a permission (superusers hold it), not staff status."""
    return bool(user is not None and user.is_authenticated and user.is_active and user.has_perm(VIEW_ALL_PERMISSION))


def documents_visible_to(user) -> QuerySet[Document]:
    """Documents a user may read: published to all signed-in users, shared with one of their groups, staff-only ones
    for staff members, those they uploaded; every document for holders of ``knowledge.view_all_documents``."""
    if user is None or not user.is_authenticated or not user.is_active:
        return Document.objects.none()
    if can_view_all_documents(user):
        return Document.objects.all()
    # Written as EXISTS so the rule stays one condition of the query (no join fan-out, no DISTINCT).
    in_groups = Document.allowed_groups.through.objects.filter(document_id=OuterRef("pk"), group__user=user)
    rule = Q(visibility=Document.Visibility.ALL_USERS) | Q(uploaded_by=user)
    rule |= Q(visibility=Document.Visibility.GROUPS) & Exists(in_groups)
    if user.is_staff:
        rule |= Q(visibility=Document.Visibility.STAFF)
    return Document.objects.filter(rule)


def visibility_filter_sql(user) -> tuple[str, dict]:
    """The same rule as ``documents_visible_to`` as a SQL condition on ``d`` (knowledge_document), for raw search."""
    if user is None or not user.is_authenticated or not user.is_active:
        return "FALSE", {}
    if can_view_all_documents(user):
        return "TRUE", {}
    staff = " OR d.visibility = 'staff'" if user.is_staff else ""
    return (
        "(d.visibility = 'all_users' OR d.uploaded_by_id = %(visible_user_id)s" + staff + " OR (d.visibility = 'groups'"
        " AND EXISTS (SELECT 1 FROM knowledge_document_allowed_groups ag"
        " JOIN auth_user_groups ug ON ug.group_id = ag.group_id"
        " WHERE ag.document_id = d.id AND ug.user_id = %(visible_user_id)s)))",
        {"visible_user_id": user.pk},
    )


def visible_document_ids(*, user, document_ids: Iterable[int]) -> set[int]:
    """Which of ``document_ids`` the user may read now (deleted documents are not among them)."""
    wanted = {int(pk) for pk in document_ids if pk is not None}
    if not wanted:
        return set()
    return set(documents_visible_to(user).filter(pk__in=wanted).values_list("pk", flat=True))


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


def documents_list(
    *,
    user,
    status: str | None = None,
    content_type: str | None = None,
    uploaded_after=None,
    uploaded_before=None,
) -> QuerySet[Document]:
    """The documents ``user`` may read, newest first, narrowed by the given filters."""
    documents = documents_visible_to(user).prefetch_related("allowed_groups")
    if status:
        documents = documents.filter(status=status)
    if content_type:
        documents = documents.filter(content_type=content_type)
    if uploaded_after:
        documents = documents.filter(created_at__gte=uploaded_after)
    if uploaded_before:
        documents = documents.filter(created_at__lt=uploaded_before)
    return documents.order_by("-created_at", "-id")


def document_get_visible(*, user, document_id: int) -> Document | None:
    """A document ``user`` may read; ``None`` for one they may not, as for one that does not exist."""
    return documents_visible_to(user).prefetch_related("allowed_groups").filter(pk=document_id).first()


def groups_named(names: list[str]) -> tuple[list, list[str]]:
    """The groups with these names, and the names no group has."""
    from django.contrib.auth.models import Group

    groups = list(Group.objects.filter(name__in=set(names)))
    return groups, sorted(set(names) - {group.name for group in groups})


def document_uploader_id(*, document_id: int) -> int | None:
    """Who uploaded a document (for the ids an ingestion job's log lines carry; ``None`` for command-line uploads)."""
    return Document.objects.filter(pk=document_id).values_list("uploaded_by_id", flat=True).first()
