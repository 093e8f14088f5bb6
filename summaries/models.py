from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models

from chat.models import Conversation


class ConversationSummary(models.Model):
    """One version of a conversation's rolling memory: it replaces every message up to ``covers_to_message_id``.

    Versions are never edited: a newer one is built from the latest plus the turns after its range, so the
    history of versions shows how the memory evolved (and what it cost to produce).
    """

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="summaries")
    version = models.PositiveIntegerField()
    text = models.TextField()
    # The turns this version folded in (the previous version covers everything before ``covers_from``). Message
    # ids rather than foreign keys: messages only disappear with their conversation, which takes these rows with
    # it, and ids keep the range comparable with ``Message.pk`` in plain filters.
    covers_from_message_id = models.BigIntegerField()
    covers_to_message_id = models.BigIntegerField()
    message_count = models.PositiveIntegerField(default=0)  # every message the summary stands for, all versions
    token_count = models.PositiveIntegerField(default=0)
    # Tokens spent producing this version (zero for the offline summarizer): the cost side of the net saving.
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    summarizer = models.CharField(max_length=200, blank=True)
    # Documents cited by the answers this version (with the versions before it) folded in: when the owner can no
    # longer read one of them, this version is set aside and the memory rebuilt without those answers.
    document_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation_id", "-version"]
        constraints = [
            # The race guard: two jobs that built on the same latest version cannot both store the next one.
            models.UniqueConstraint(fields=["conversation", "version"], name="summaries_unique_conversation_version"),
            models.CheckConstraint(
                condition=models.Q(covers_to_message_id__gte=models.F("covers_from_message_id")),
                name="summaries_range_ordered",
            ),
        ]
        verbose_name_plural = "conversation summaries"

    def __str__(self) -> str:
        return f"Conversation {self.conversation_id} memory v{self.version}"

    @property
    def spent_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens
