"""Quotas are edited here; the usage page shows the ledger per day (a bar chart) and per user, and exports CSV."""

from __future__ import annotations

import csv
from datetime import date, timedelta

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone

from usage import charts, selectors
from usage.models import QuotaLimit, UsageDay

DEFAULT_DAYS = 30
MAX_DAYS = 400


@admin.register(QuotaLimit)
class QuotaLimitAdmin(admin.ModelAdmin):
    list_display = ("__str__", "user", "group", "period", "max_tokens", "max_answers", "note")
    list_filter = ("period",)
    list_editable = ("max_tokens", "max_answers")
    autocomplete_fields = ("user", "group")
    search_fields = ("user__username", "group__name", "note")


class RangeForm(forms.Form):
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    user = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def clean(self) -> dict:
        cleaned = super().clean()
        until = cleaned.get("until") or timezone.localdate()
        since = cleaned.get("since") or until - timedelta(days=DEFAULT_DAYS - 1)
        if since > until:
            raise forms.ValidationError("The start date is after the end date.")
        if (until - since).days >= MAX_DAYS:
            raise forms.ValidationError(f"Choose at most {MAX_DAYS} days.")
        cleaned["since"], cleaned["until"] = since, until
        return cleaned


def _range(request: HttpRequest) -> tuple[RangeForm, date, date, int | None]:
    form = RangeForm(request.GET or None)
    if form.is_bound and form.is_valid():
        return form, form.cleaned_data["since"], form.cleaned_data["until"], form.cleaned_data.get("user")
    until = timezone.localdate()
    since = until - timedelta(days=DEFAULT_DAYS - 1)
    if not form.is_bound:
        form = RangeForm(initial={"since": since.isoformat(), "until": until.isoformat()})
    return form, since, until, None


@admin.register(UsageDay)
class UsageDayAdmin(admin.ModelAdmin):
    list_display = ("day", "user", "answers", "prompt_tokens", "completion_tokens", "summary_prompt_tokens")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the ledger is written by answers and summaries only

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_urls(self):
        extra = [
            path("report/", self.admin_site.admin_view(self.report_view), name="usage_usageday_report"),
            path("report.csv", self.admin_site.admin_view(self.csv_view), name="usage_usageday_csv"),
        ]
        return extra + super().get_urls()

    def changelist_view(self, request: HttpRequest, extra_context=None):
        return HttpResponseRedirect(reverse("admin:usage_usageday_report"))

    def report_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        form, since, until, user_id = _range(request)
        days = selectors.usage_by_day(since=since, until=until, user_id=user_id)
        users = selectors.usage_by_user(since=since, until=until)
        query = request.GET.urlencode()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Usage",
            "form": form,
            "since": since,
            "until": until,
            "selected_user": next((row.label for uid, row in users if uid == user_id), None),
            "chart": charts.daily_token_bars(days),
            "days": days,
            "users": charts.user_share_bars(users),
            "totals": {
                "answers": sum(row.answers for row in days),
                "tokens": charts.compact(sum(row.total_tokens for row in days)),
            },
            "csv_url": reverse("admin:usage_usageday_csv") + (f"?{query}" if query else ""),
        }
        return render(request, "admin/usage/report.html", context)

    def csv_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        _, since, until, _user = _range(request)
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="usage-{since}-{until}.csv"'
        response.write("\ufeff")  # spreadsheet programs read the BOM as UTF-8 (Korean user names)
        writer = csv.writer(response)
        writer.writerow(
            [
                "day",
                "user",
                "answers",
                "prompt_tokens",
                "completion_tokens",
                "summary_prompt_tokens",
                "summary_completion_tokens",
                "total_tokens",
            ]
        )
        for row in selectors.usage_ledger(since=since, until=until):
            writer.writerow(
                [
                    row.day.isoformat(),
                    row.user.username,
                    row.answers,
                    row.prompt_tokens,
                    row.completion_tokens,
                    row.summary_prompt_tokens,
                    row.summary_completion_tokens,
                    row.total_tokens,
                ]
            )
        return response
