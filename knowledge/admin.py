"""The staff's home: upload, watch, inspect and manage documents; test retrieval."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.template.defaultfilters import filesizeformat
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from knowledge import services
from knowledge.forms import SearchForm, UploadForm
from knowledge.models import Document
from knowledge.search import SearchError, search_chunks
from knowledge.selectors import document_chunks, document_download_url, documents_without_windows

STATUS_COLOURS = {"queued": "#777", "processing": "#0a66c2", "ready": "#1a7f37", "failed": "#cf222e"}


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = (
        "title",
        "status_badge",
        "progress_bar",
        "attempt_count",
        "page_count",
        "chunk_count",
        "size_display",
        "content_type",
        "uploaded_by",
        "created_at",
        "download_link",
    )
    list_filter = ("status", "content_type", "source", "created_at")
    search_fields = ("title", "original_filename")
    list_select_related = ("uploaded_by",)
    actions = ("reprocess_selected", "delete_selected")
    fields = (
        "title",
        "allowed_groups",
        "status_badge",
        "error",
        "original_filename",
        "content_type",
        "size_display",
        "sha256",
        "page_count",
        "chunk_count",
        "progress_bar",
        "attempt_count",
        "embedding_model",
        "ocr_summary",
        "source",
        "source_path",
        "uploaded_by",
        "created_at",
        "processed_at",
        "download_link",
    )
    readonly_fields = tuple(f for f in fields if f not in ("title", "allowed_groups"))
    filter_horizontal = ("allowed_groups",)
    change_form_template = "admin/knowledge/document/change_form.html"
    change_list_template = "admin/knowledge/document/change_list.html"

    # -- columns -----------------------------------------------------------------------------------------
    @admin.display(description=gettext_lazy("Status"), ordering="status")
    def status_badge(self, obj: Document) -> str:
        colour = STATUS_COLOURS.get(obj.status, "#777")
        badge = format_html('<strong style="color:{}">{}</strong>', colour, obj.get_status_display())
        if obj.status == Document.Status.FAILED and obj.error:
            return format_html('{}<br><span style="color:#cf222e">{}</span>', badge, obj.error)
        return badge

    @admin.display(description=gettext_lazy("OCR"))
    def ocr_summary(self, obj: Document) -> str:
        if not obj.ocr_pages:
            return "—"
        pages = ", ".join(str(number) for number in obj.ocr_pages[:50]) + (" …" if len(obj.ocr_pages) > 50 else "")
        confidence = f"{obj.ocr_confidence:.0f}" if obj.ocr_confidence is not None else "?"
        return f"{len(obj.ocr_pages)} page(s) read by OCR, mean confidence {confidence}/100: {pages}"

    @admin.display(description=gettext_lazy("Progress"))
    def progress_bar(self, obj: Document) -> str:
        label = f"{obj.progress_done}/{obj.progress_total}" if obj.progress_total else ""
        if label and obj.progress_stage:
            label = f"{'OCR' if obj.progress_stage == 'ocr' else obj.progress_stage}: {label}"
        return format_html(
            '<progress max="100" value="{}" title="{}"></progress> {}', obj.progress_percent, label, label
        )

    @admin.display(description=gettext_lazy("Size"), ordering="size")
    def size_display(self, obj: Document) -> str:
        return filesizeformat(obj.size)

    @admin.display(description=gettext_lazy("Original"))
    def download_link(self, obj: Document) -> str:
        if not obj.pk:
            return ""
        return format_html('<a href="{}">download</a>', reverse("admin:knowledge_document_download", args=[obj.pk]))

    # -- writes go through the services -----------------------------------------------------------------
    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:knowledge_document_upload"))

    def delete_model(self, request: HttpRequest, obj: Document) -> None:
        services.document_delete(document=obj)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        for document in queryset:
            services.document_delete(document=document)

    @admin.action(description=gettext_lazy("Reprocess selected documents"), permissions=["change"])
    def reprocess_selected(self, request: HttpRequest, queryset) -> None:
        for document in queryset:
            services.document_reprocess(document=document)
        message = _("Queued %(count)s document(s) for reprocessing.") % {"count": queryset.count()}
        self.message_user(request, message, messages.SUCCESS)

    # -- extra pages -------------------------------------------------------------------------------------
    def changelist_view(self, request: HttpRequest, extra_context=None):
        # After an upgrade, documents ingested before sentence windows rank lower until they are ingested again.
        stale = documents_without_windows().count() if request.method == "GET" else 0
        if stale:
            self.message_user(
                request,
                _(
                    "%(count)s ready document(s) were ingested before sentence windows and rank lower in search until "
                    "they are reprocessed: select them and run “Reprocess”, or run `manage.py reprocess --stale`."
                )
                % {"count": stale},
                messages.WARNING,
            )
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        extra = [
            path("upload/", self.admin_site.admin_view(self.upload_view), name="knowledge_document_upload"),
            path("search/", self.admin_site.admin_view(self.search_view), name="knowledge_document_search"),
            path(
                "<int:pk>/download/", self.admin_site.admin_view(self.download_view), name="knowledge_document_download"
            ),
        ]
        return extra + super().get_urls()

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            return HttpResponse(status=403)
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            for upload in form.cleaned_data["files"]:
                self._report_upload(request, upload)
            return HttpResponseRedirect(reverse("admin:knowledge_document_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "title": _("Upload documents"),
            "max_bytes": settings.UPLOAD_MAX_BYTES,
        }
        return render(request, "admin/knowledge/document/upload.html", context)

    def _report_upload(self, request: HttpRequest, upload) -> None:
        if upload.size > settings.UPLOAD_MAX_BYTES:
            # Refuse before reading: the size limit must not depend on memory.
            reason = _("The file is %(size)s; the limit is %(limit)s.") % {
                "size": filesizeformat(upload.size),
                "limit": filesizeformat(settings.UPLOAD_MAX_BYTES),
            }
            message = _("%(name)s: rejected. %(reason)s") % {"name": upload.name, "reason": reason}
            self.message_user(request, message, messages.ERROR)
            return
        outcome = services.document_upload(data=upload.read(), filename=upload.name, uploaded_by=request.user)
        if outcome.status == "queued":
            message = _("%(name)s: uploaded and queued for processing.") % {"name": upload.name}
            self.message_user(request, message, messages.SUCCESS)
        elif outcome.status == "duplicate":
            message = _("%(name)s: already exists. %(reason)s") % {"name": upload.name, "reason": outcome.reason}
            self.message_user(request, message, messages.WARNING)
        else:
            message = _("%(name)s: rejected. %(reason)s") % {"name": upload.name, "reason": outcome.reason}
            self.message_user(request, message, messages.ERROR)

    def download_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        document = get_object_or_404(Document, pk=pk)
        return HttpResponseRedirect(document_download_url(document=document))

    def search_view(self, request: HttpRequest) -> HttpResponse:
        form = SearchForm(request.GET or None)
        hits, error = [], ""
        if form.is_valid():
            try:
                hits = search_chunks(query=form.cleaned_data["query"], user=request.user, k=form.cleaned_data["k"])
            except SearchError as exc:
                error = str(exc)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "hits": hits,
            "error": error,
            "title": _("Test retrieval"),
        }
        return render(request, "admin/knowledge/document/search.html", context)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        document = self.get_object(request, object_id)
        extra_context = extra_context or {}
        if document is not None:
            paginator = Paginator(document_chunks(document=document), 50)
            extra_context["chunk_page"] = paginator.get_page(request.GET.get("chunks"))
        return super().change_view(request, object_id, form_url, extra_context)


# Synced sources register their own admin pages.
from knowledge.sources import admin as _sources_admin  # noqa: E402, F401
