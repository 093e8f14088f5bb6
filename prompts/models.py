from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class PromptVersion(models.Model):
    """An admin-written version of a shipped prompt. Never edited in place: a change is a new row.

    The shipped file (prompts/defaults/<name>.md) stays the default; it is active whenever no row for the name is.
    """

    name = models.CharField(max_length=100)
    body = models.TextField()
    note = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    is_active = models.BooleanField(default=False)

    class Meta:
        ordering = ["name", "-created_at", "-id"]
        constraints = [
            # Also the index behind render_prompt's per-call lookup (WHERE name = %s AND is_active).
            models.UniqueConstraint(fields=["name"], condition=Q(is_active=True), name="prompts_one_active_per_name"),
        ]
        indexes = [models.Index(fields=["name", "-created_at"], name="prompts_version_name_created")]

    def __str__(self) -> str:
        return f"{self.name} v{self.pk}"


class PromptActivation(models.Model):
    """One activation of a prompt (a version, or the shipped default when ``version`` is empty): the audit trail
    and the undo stack that roll back walks down."""

    name = models.CharField(max_length=100)
    version = models.ForeignKey(PromptVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    activated_at = models.DateTimeField(default=timezone.now)
    rolled_back_at = models.DateTimeField(null=True, blank=True)
    rolled_back_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name", "-activated_at", "-id"]
        indexes = [models.Index(fields=["name", "-activated_at"], name="prompts_activation_name_at")]

    def __str__(self) -> str:
        target = f"v{self.version_id}" if self.version_id else "shipped default"
        return f"{self.name} → {target}"

    @property
    def is_rolled_back(self) -> bool:
        return self.rolled_back_at is not None
