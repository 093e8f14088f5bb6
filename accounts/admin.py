"""Staff see every API key (never the key itself) and can revoke any of them."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest

from accounts import services
from accounts.models import ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "user", "scopes", "state", "created_at", "expires_at", "last_used_at")
    list_filter = ("revoked_at", "expires_at", "created_at")
    search_fields = ("name", "prefix", "user__username")
    list_select_related = ("user",)
    actions = ("revoke_selected",)
    readonly_fields = (
        "user",
        "name",
        "prefix",
        "scopes",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    exclude = ("digest",)

    @admin.display(description="State")
    def state(self, obj: ApiKey) -> str:
        return obj.state

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A key must be shown to its owner once: they create it on their account page or with `manage.py apikey`.
        return False

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke_selected(self, request: HttpRequest, queryset) -> None:
        for key in queryset:
            services.apikey_revoke(api_key=key)
        self.message_user(request, f"Revoked {queryset.count()} API key(s).", messages.SUCCESS)
