"""Conversations for staff: the messages, the memory summary with its versions, and what the memory saved."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from chat.models import Conversation, Message
from chat.selectors import TokenTotals, conversation_token_totals
from summaries.models import ConversationSummary
from summaries.selectors import summary_latest


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class MessageInline(ReadOnlyInline):
    model = Message
    fields = (
        "id",
        "role",
        "status",
        "superseded",
        "short_content",
        "retrieval_query",
        "prompt_version",
        "context_tokens",
        "full_history_tokens",
        "memory_version",
        "prompt_tokens",
        "completion_tokens",
        "attempt_count",
        "error_code",
        "error_detail",
        "created_at",
    )
    readonly_fields = fields
    ordering = ("id",)

    @admin.display(description=gettext_lazy("content"))
    def short_content(self, message: Message) -> str:
        text = " ".join(message.content.split())
        return text if len(text) <= 300 else text[:299] + "…"


class SummaryInline(ReadOnlyInline):
    model = ConversationSummary
    verbose_name_plural = gettext_lazy("memory versions (newest first)")
    fields = (
        "version",
        "covers_from_message_id",
        "covers_to_message_id",
        "message_count",
        "token_count",
        "spent_tokens",
        "summarizer",
        "created_at",
        "text",
    )
    readonly_fields = fields
    ordering = ("-version",)


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("__str__", "owner", "message_count", "memory_version", "token_saving", "updated_at")
    list_select_related = ("owner",)
    search_fields = ("title", "owner__username")
    list_filter = ("updated_at",)
    readonly_fields = ("owner", "title", "created_at", "updated_at", "current_memory", "token_report")
    fields = readonly_fields
    inlines = (SummaryInline, MessageInline)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description=gettext_lazy("messages"))
    def message_count(self, conversation: Conversation) -> int:
        return conversation.messages.count()

    @admin.display(description=gettext_lazy("memory"))
    def memory_version(self, conversation: Conversation) -> str:
        summary = summary_latest(conversation_id=conversation.pk)
        return f"v{summary.version}" if summary else "–"

    @admin.display(description=gettext_lazy("net saving"))
    def token_saving(self, conversation: Conversation) -> str:
        totals = conversation_token_totals(conversation_id=conversation.pk)
        return _percent(totals.share(totals.net_saved_tokens))

    @admin.display(description=gettext_lazy("current memory"))
    def current_memory(self, conversation: Conversation) -> str:
        summary = summary_latest(conversation_id=conversation.pk)
        if summary is None:
            return _("No summary yet: every answer so far saw the recent turns only.")
        return format_html(
            "<p>v{} by {} · {} tokens · covers messages up to #{} ({} messages)</p>"
            '<pre style="white-space: pre-wrap">{}</pre>',
            summary.version,
            summary.summarizer,
            summary.token_count,
            summary.covers_to_message_id,
            summary.message_count,
            summary.text,
        )

    @admin.display(description=gettext_lazy("tokens: used vs full history"))
    def token_report(self, conversation: Conversation) -> str:
        return _token_table(conversation_token_totals(conversation_id=conversation.pk))


def _token_table(totals: TokenTotals) -> str:
    rows = [
        (_("Answers measured"), f"{totals.answers}"),
        (_("Prompt tokens used (with memory)"), f"{totals.context_tokens:,}"),
        (_("Prompt tokens with the full history"), f"{totals.full_history_tokens:,}"),
        (_("Saving"), f"{totals.saved_tokens:,} ({_percent(totals.share(totals.saved_tokens))})"),
        (_("Tokens spent on summaries"), f"{totals.summary_spent_tokens:,} ({totals.summaries} versions)"),
        (_("Net saving"), f"{totals.net_saved_tokens:,} ({_percent(totals.share(totals.net_saved_tokens))})"),
    ]
    body = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows)
    return format_html("<table>{}</table>", body)
