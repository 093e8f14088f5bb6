"""Admin for synced sources: register a folder or bucket prefix with its visibility, sync now, read each run."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from knowledge.models import Source, SourceRun
from knowledge.sources.listing import folder_problem
from knowledge.sources.services import source_delete, source_enqueue_sync

ACTION_COLOURS = {"added": "#1a7f37", "updated": "#0a66c2", "removed": "#777", "failed": "#cf222e"}


class SourceForm(forms.ModelForm):
    class Meta:
        model = Source
        fields = ("name", "kind", "location", "prefix", "allowed_groups", "enabled", "sync_interval_minutes")

    def clean(self):
        cleaned = super().clean()
        kind, location = cleaned.get("kind"), (cleaned.get("location") or "").strip()
        if kind == Source.Kind.FOLDER and location:
            problem = folder_problem(location)
            if problem:
                self.add_error("location", problem)
        if kind == Source.Kind.S3 and "/" in location:
            self.add_error("location", "Give the bucket name only; the key prefix goes in “Prefix”.")
        return cleaned


class SourceRunInline(admin.TabularInline):
    model = SourceRun
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ("-started_at",)
    fields = ("started_at", "status", "added", "updated", "removed", "unchanged", "failed", "changes", "error")
    readonly_fields = fields

    @admin.display(description="Files")
    def changes(self, obj: SourceRun) -> str:
        rows = [
            (ACTION_COLOURS.get(item["action"], "#777"), item["action"], item["path"], item.get("reason", ""))
            for item in obj.details[:200]
        ]
        more = len(obj.details) - len(rows)
        listing = format_html_join("", '<div><b style="color:{}">{}</b> {} <i>{}</i></div>', rows)
        return format_html("{}{}", listing, f"… and {more} more" if more > 0 else "")


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    form = SourceForm
    list_display = ("name", "kind", "location", "prefix", "enabled", "document_total", "last_synced_at", "last_run")
    list_filter = ("kind", "enabled")
    filter_horizontal = ("allowed_groups",)
    inlines = (SourceRunInline,)
    actions = ("sync_now", "delete_selected")

    @admin.display(description="Documents")
    def document_total(self, obj: Source) -> int:
        return obj.documents.count()

    @admin.display(description="Last run")
    def last_run(self, obj: Source) -> str:
        run = obj.runs.first()
        if run is None:
            return "—"
        summary = f"+{run.added} ~{run.updated} −{run.removed} ✗{run.failed}"
        return format_html("{} {}<br>{}", run.get_status_display(), summary, run.error)

    # Deleting goes through the service: the documents' stored files are removed too, not only their rows.
    def delete_model(self, request: HttpRequest, obj: Source) -> None:
        source_delete(source=obj)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        for source in queryset:
            source_delete(source=source)

    @admin.action(description="Sync selected sources now", permissions=["change"])
    def sync_now(self, request: HttpRequest, queryset) -> None:
        for source in queryset:
            source_enqueue_sync(source_id=source.pk)
        self.message_user(request, f"Queued a sync of {queryset.count()} source(s).", messages.SUCCESS)
