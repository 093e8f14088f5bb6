"""What a signed-in user sees of a document a source links to: its details, the cited page's passages, the file.

Every lookup goes through ``documents_visible_to``: a document the user may not read is a 404, like a missing one, and
so is one not ready yet (a queued or failed upload is the staff's business, reached through the admin).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from knowledge.models import Chunk, Document
from knowledge.selectors import document_chunks, document_download_url, documents_visible_to

# The download URL is signed on each click, so it can be short-lived: long enough to start the download.
PAGE_PASSAGES_LIMIT = 50


def _visible_document_or_404(request: HttpRequest, document_id: int) -> Document:
    visible = documents_visible_to(request.user).filter(status=Document.Status.READY)
    document = visible.filter(pk=document_id).first()
    if document is None:
        raise Http404("No such document.")
    return document


def _page_number(request: HttpRequest) -> int | None:
    try:
        page = int(request.GET.get("page", ""))
    except ValueError:
        return None
    return page if page > 0 else None


def _passages_on_page(document: Document, page: int | None) -> QuerySet[Chunk]:
    if page is None:
        return Chunk.objects.none()
    on_page = Q(page_start__lte=page) & (Q(page_end__gte=page) | Q(page_end__isnull=True, page_start=page))
    return document_chunks(document=document).filter(on_page).order_by("ordinal")[:PAGE_PASSAGES_LIMIT]


@never_cache
@login_required
@require_GET
def document_detail(request: HttpRequest, document_id: int) -> HttpResponse:
    document = _visible_document_or_404(request, document_id)
    page = _page_number(request)
    context = {
        "document": document,
        "page": page,
        "passages": _passages_on_page(document, page),
        "is_pdf": document.content_type == "application/pdf",
    }
    return render(request, "chat/document.html", context)


@never_cache
@login_required
@require_GET
def document_file(request: HttpRequest, document_id: int) -> HttpResponse:
    """Redirect to a presigned storage URL; PDFs may open inline (``?inline=1``) so ``#page=N`` reaches the viewer."""
    document = _visible_document_or_404(request, document_id)
    inline = request.GET.get("inline") == "1" and document.content_type == "application/pdf"
    return HttpResponseRedirect(document_download_url(document=document, inline=inline))
