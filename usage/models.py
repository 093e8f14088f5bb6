"""The usage ledger (model tokens and answers per user and day) and the quota limits checked before an answer."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class UsageDay(models.Model):
    """What one user's answers and conversation memory cost on one day (``TIME_ZONE``), kept by increments."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage_days")
    day = models.DateField()
    answers = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    # The memory summaries' model calls, on the bill of the conversation's owner.
    summary_prompt_tokens = models.PositiveBigIntegerField(default=0)
    summary_completion_tokens = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-day", "user_id"]
        constraints = [models.UniqueConstraint(fields=["user", "day"], name="usage_one_row_per_user_day")]
        verbose_name = "usage day"

    def __str__(self) -> str:
        return f"{self.user_id} on {self.day}"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens + self.summary_prompt_tokens + self.summary_completion_tokens


class QuotaLimit(models.Model):
    """A daily or monthly ceiling on model tokens and/or answers, for one user or for a group's members together."""

    class Period(models.TextChoices):
        DAY = "day", "Per day"
        MONTH = "month", "Per month"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="quota_limits"
    )
    group = models.ForeignKey(
        "auth.Group", null=True, blank=True, on_delete=models.CASCADE, related_name="quota_limits"
    )
    period = models.CharField(max_length=8, choices=Period.choices, default=Period.DAY)
    max_tokens = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Prompt, completion and memory tokens together; empty for no token limit."
    )
    max_answers = models.PositiveIntegerField(null=True, blank=True, help_text="Empty for no limit on answers.")
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["group__name", "user__username", "period"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(user__isnull=False) & Q(group__isnull=True))
                | (Q(user__isnull=True) & Q(group__isnull=False)),
                name="quota_for_a_user_or_a_group",
            ),
            models.CheckConstraint(
                condition=Q(max_tokens__isnull=False) | Q(max_answers__isnull=False), name="quota_limits_something"
            ),
        ]

    def __str__(self) -> str:
        who = f"user {self.user}" if self.user_id else f"group {self.group}"
        return f"{who}: {self.get_period_display().lower()}"
