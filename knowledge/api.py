"""``/api/v1/documents`` and ``/api/v1/search``: the knowledge base over HTTP, through the same services and
selectors as the admin and the commands. Reads need the ``read`` scope; uploads, reprocessing and deletion the
``manage`` scope and the staff permissions the admin asks for."""

# No ``from __future__ import annotations`` here: ninja reads the views' parameter types at import, through
# decorators (pagination) whose module cannot resolve names given as strings.

from datetime import datetime
from typing import Annotated, Literal

from django.conf import settings
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from ninja import Field, File, Form, Path, Query, Router, Schema, UploadedFile
from ninja.pagination import paginate

from accounts.auth import require_permission, require_scope
from knowledge import selectors, services
from knowledge.models import Chunk, Document
from knowledge.search import MAX_K, MODES, SearchError, search_chunks
from protostar.api.errors import ERROR_RESPONSES, Refused
from protostar.api.params import MAX_ID, Pages, Text, UtcDatetime

router = Router(tags=["documents"])
search_router = Router(tags=["search"])
DocumentStatus = Literal["queued", "processing", "ready", "failed"]
UploadStatus = Literal["queued", "duplicate", "rejected"]
Visibility = Literal["staff", "groups", "all_users"]
READ_ERRORS = ERROR_RESPONSES
DocumentId = Path(..., ge=1, le=MAX_ID)
UPLOAD_FILES = File(..., min_length=1, max_length=100, description="One or more files.")
UPLOAD_GROUPS = Form(None, max_length=100, description="The groups that may read the new documents.")
UPLOAD_VISIBILITY = Form(
    None,
    description="Who may read the new documents: `staff`, `groups` (with `groups`) or `all_users`. Default: "
    "`groups` when groups are named, else the server's DOCUMENT_DEFAULT_VISIBILITY (staff only unless configured).",
)


class DocumentOut(Schema):
    id: int
    title: str
    original_filename: str
    content_type: str
    size: int
    status: DocumentStatus
    progress_percent: int
    progress_done: int
    progress_total: int
    page_count: int | None
    chunk_count: int
    error: str = Field(description="Why ingestion failed (shown to staff only).")
    visibility: Visibility = Field(description="Who may read it: staff only, selected groups, all signed-in users.")
    groups: list[str] = Field(description="The groups that may read it (visibility `groups`).")
    created_at: datetime
    processed_at: datetime | None


def document_out(document: Document, request: HttpRequest) -> DocumentOut:
    return DocumentOut(
        id=document.pk,
        title=document.title,
        original_filename=document.original_filename,
        content_type=document.content_type,
        size=document.size,
        status=document.status,
        progress_percent=document.progress_percent,
        progress_done=document.progress_done,
        progress_total=document.progress_total,
        page_count=document.page_count,
        chunk_count=document.chunk_count,
        error=document.error if request.auth.is_staff else "",
        visibility=document.visibility,
        groups=sorted(group.name for group in document.allowed_groups.all()),
        created_at=document.created_at,
        processed_at=document.processed_at,
    )


class DocumentFilters(Schema):
    status: DocumentStatus | None = None
    type: Text | None = Field(None, max_length=120, description="Content type, e.g. application/pdf.")
    uploaded_after: UtcDatetime | None = None
    uploaded_before: UtcDatetime | None = None


@router.get("", response={200: list[DocumentOut], **READ_ERRORS}, summary="List documents")
@paginate(Pages)
def document_list(request: HttpRequest, filters: Query[DocumentFilters]):
    require_scope(request, "read")
    documents = selectors.documents_list(
        user=request.auth,
        status=filters.status,
        content_type=filters.type,
        uploaded_after=filters.uploaded_after,
        uploaded_before=filters.uploaded_before,
    )
    return [document_out(document, request) for document in documents]


class UploadResult(Schema):
    filename: str
    status: UploadStatus
    reason: str
    document: DocumentOut | None


class UploadOut(Schema):
    results: list[UploadResult]


@router.post(
    "",
    response={**ERROR_RESPONSES, 201: UploadOut, 200: UploadOut, 400: UploadOut},
    summary="Upload documents",
    description="One or more files (multipart field `files`), checked like uploads in the admin. 201 when at least "
    "one was queued, 200 when all were already there, 400 when all were rejected; each file's outcome is listed.",
)
def document_upload(
    request: HttpRequest,
    files: list[UploadedFile] = UPLOAD_FILES,
    groups: list[Annotated[Text, Field(max_length=150)]] = UPLOAD_GROUPS,
    visibility: Visibility | None = UPLOAD_VISIBILITY,
):
    require_permission(request, "manage", "knowledge.add_document")
    allowed, unknown = selectors.groups_named(groups or [])
    if unknown:
        raise Refused(422, "invalid", f"unknown group(s) {', '.join(unknown)}.", field="groups")
    try:
        # Checked once before any file is stored, so a bad choice refuses the request and leaves nothing behind.
        visibility, allowed = services.document_visibility_resolve(visibility=visibility, groups=allowed)
    except services.VisibilityError as exc:
        raise Refused(422, "invalid", str(exc), field="visibility") from exc
    results = [_upload_one(request, upload, visibility, allowed) for upload in files]
    statuses = {result.status for result in results}
    status = 201 if "queued" in statuses else 200 if "duplicate" in statuses else 400
    return status, UploadOut(results=results)


def _upload_one(request: HttpRequest, upload: UploadedFile, visibility: str, groups: list) -> UploadResult:
    # PostgreSQL cannot store NUL; a name is only shown, so dropping it loses nothing.
    name = (upload.name or "").replace("\x00", "") or "document"
    if upload.size > settings.UPLOAD_MAX_BYTES:
        # Refuse before reading: the size limit must not depend on memory.
        reason = f"The file is {filesizeformat(upload.size)}; the limit is {filesizeformat(settings.UPLOAD_MAX_BYTES)}."
        return UploadResult(filename=name, status="rejected", reason=reason, document=None)
    outcome = services.document_upload(
        data=upload.read(), filename=name, uploaded_by=request.auth, visibility=visibility, groups=groups
    )
    document = document_out(outcome.document, request) if outcome.document is not None else None
    return UploadResult(filename=name, status=outcome.status, reason=outcome.reason, document=document)


@router.get("/{document_id}", response={200: DocumentOut, **READ_ERRORS}, summary="Get a document")
def document_get(request: HttpRequest, document_id: int = DocumentId):
    require_scope(request, "read")
    return document_out(_visible(request, document_id), request)


class ChunkOut(Schema):
    id: int
    ordinal: int
    text: str
    page_start: int | None
    page_end: int | None
    section: str = Field(alias="section_path")
    token_count: int


@router.get("/{document_id}/chunks", response={200: list[ChunkOut], **READ_ERRORS}, summary="A document's chunks")
@paginate(Pages)
def document_chunk_list(request: HttpRequest, document_id: int = DocumentId):
    require_scope(request, "read")
    chunks: list[Chunk] = selectors.document_chunks(document=_visible(request, document_id)).order_by("ordinal")
    return chunks


@router.post("/{document_id}/reprocess", response={202: DocumentOut, **READ_ERRORS}, summary="Ingest a document again")
def document_reprocess(request: HttpRequest, document_id: int = DocumentId):
    require_permission(request, "manage", "knowledge.change_document")
    document = _visible(request, document_id)
    services.document_reprocess(document=document)
    document.refresh_from_db()
    return 202, document_out(document, request)


@router.delete("/{document_id}", response={204: None, **READ_ERRORS}, summary="Delete a document")
def document_delete(request: HttpRequest, document_id: int = DocumentId):
    require_permission(request, "manage", "knowledge.delete_document")
    services.document_delete(document=_visible(request, document_id))
    return 204, None


def _visible(request: HttpRequest, document_id: int = DocumentId) -> Document:
    document = selectors.document_get_visible(user=request.auth, document_id=document_id)
    if document is None:
        raise Refused(404, "not_found", f"Document {document_id} does not exist.")
    return document


class SearchIn(Schema):
    query: Text = Field(min_length=1, max_length=10_000)
    k: int = Field(10, ge=1, le=MAX_K)
    document_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(None, max_length=1000)
    uploaded_after: UtcDatetime | None = None
    uploaded_before: UtcDatetime | None = None
    mode: Literal[MODES] = "hybrid"  # type: ignore[valid-type]


class SearchHitOut(Schema):
    chunk_id: int
    document_id: int
    title: str
    original_filename: str
    ordinal: int
    page_start: int | None
    page_end: int | None
    section: str
    snippet: str
    text: str
    score: float = Field(description="The fused score (weighted reciprocal ranks).")
    vector_rank: int | None = Field(description="Rank among the chunk vectors' nearest (null: not among them).")
    window_rank: int | None = Field(description="Rank among the sentence windows' nearest.")
    keyword_rank: int | None = Field(description="Rank among the keyword matches.")
    sparse_rank: int | None = Field(description="Rank by the sparse latent terms.")


class SearchOut(Schema):
    hits: list[SearchHitOut]


@search_router.post("", response={200: SearchOut, **READ_ERRORS}, summary="Search the knowledge base")
def search(request: HttpRequest, body: SearchIn):
    require_scope(request, "read")
    try:
        hits = search_chunks(
            query=body.query,
            user=request.auth,
            k=body.k,
            document_ids=body.document_ids,
            uploaded_after=body.uploaded_after,
            uploaded_before=body.uploaded_before,
            mode=body.mode,
        )
    except SearchError as exc:
        raise Refused(422, "invalid", str(exc), field="query") from exc
    return SearchOut(hits=[SearchHitOut(**{**hit.__dict__}) for hit in hits])
