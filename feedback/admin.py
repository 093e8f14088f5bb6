"""Staff review of answer feedback: filters by rating, reason, document and date; CSV export; and an action that
turns rated answers into retrieval test cases for the evaluation harness."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import F, Func, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from feedback import selectors, services
from feedback.models import AnswerFeedback, RetrievalCase
from knowledge.models import Document


class DocumentFilter(admin.SimpleListFilter):
    title = _("document")
    parameter_name = "document"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        cited = AnswerFeedback.objects.annotate(doc=Func(F("document_ids"), function="unnest")).values("doc")
        documents = Document.objects.filter(pk__in=cited).order_by("title").only("pk", "title")
        return [(str(document.pk), document.title) for document in documents]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(document_ids__contains=[int(value)])
        return queryset


@admin.register(AnswerFeedback)
class AnswerFeedbackAdmin(admin.ModelAdmin):
    list_display = ("created_at", "rating", "reason", "short_question", "user", "model_name", "prompt_version")
    list_filter = ("rating", "reason", DocumentFilter, "created_at")
    date_hierarchy = "created_at"
    search_fields = ("question", "comment", "answer", "retrieval_query")
    list_select_related = ("user", "message")
    actions = ("export_csv", "make_retrieval_cases")
    fields = (
        "created_at",
        "user",
        "rating",
        "reason",
        "comment",
        "question",
        "retrieval_query",
        "answer",
        "source_table",
        "prompt_version",
        "model_name",
        "message",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description=_("question"))
    def short_question(self, feedback: AnswerFeedback) -> str:
        text = " ".join(feedback.question.split())
        return text if len(text) <= 80 else text[:79] + "…"

    @admin.display(description=_("sources (retrieval order)"))
    def source_table(self, feedback: AnswerFeedback) -> str:
        rows = [
            (
                item.get("rank"),
                item.get("label"),
                item.get("title") or "",
                item.get("page") or "–",
                item.get("chunk_id"),
            )
            for item in feedback.sources
        ]
        if not rows:
            return "–"
        head = format_html(
            "<tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            _("rank"),
            _("label"),
            _("document"),
            _("page"),
            _("chunk"),
        )
        body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows)
        return format_html("<table>{}{}</table>", head, body)

    @admin.action(description=_("Export the selected feedback as CSV"))
    def export_csv(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        rows = queryset.select_related("user", "message").order_by("created_at", "id")
        response = HttpResponse(selectors.feedback_csv(rows), content_type="text/csv; charset=utf-8")
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="feedback-{stamp}.csv"'
        return response

    @admin.action(description=_("Make retrieval test cases from the selected answers"))
    def make_retrieval_cases(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        """First a page to choose, per answer, the chunk that should have been found; then the cases."""
        rows = list(queryset.order_by("id"))
        if "apply" not in request.POST:
            context = {
                **self.admin_site.each_context(request),
                "title": _("Make retrieval test cases"),
                "opts": self.model._meta,
                "rows": rows,
                "action": "make_retrieval_cases",
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/feedback/make_retrieval_cases.html", context)
        created = 0
        for feedback in rows:
            raw = request.POST.get(f"chunk-{feedback.pk}", "").strip()
            if not raw:
                continue
            try:
                services.retrieval_case_create(feedback=feedback, chunk_id=int(raw), created_by=request.user)
            except ValueError as exc:
                self.message_user(request, f"#{feedback.pk}: {exc}", messages.ERROR)
                continue
            created += 1
        message = ngettext("%(count)d retrieval test case saved.", "%(count)d retrieval test cases saved.", created)
        self.message_user(request, message % {"count": created}, messages.SUCCESS)
        return None


@admin.register(RetrievalCase)
class RetrievalCaseAdmin(admin.ModelAdmin):
    list_display = ("question", "language", "document", "snippet", "created_at")
    list_filter = ("language", "created_at")
    search_fields = ("question", "snippet")
    list_select_related = ("document",)
    raw_id_fields = ("chunk", "document", "feedback", "created_by")
