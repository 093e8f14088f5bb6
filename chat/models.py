from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

TITLE_MAX_CHARS = 80


class Conversation(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    title = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.title or f"Conversation {self.pk}"


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        STREAMING = "streaming", "Streaming"
        COMPLETE = "complete", "Complete"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    TERMINAL = (Status.COMPLETE, Status.CANCELLED, Status.FAILED)

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=Role.choices)
    # The question an assistant message answers; empty for user messages. A question has one answer per attempt
    # (regenerate adds one); the newest attempt is the one the conversation continues from.
    reply_to = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="replies")
    content = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    error_code = models.CharField(max_length=64, blank=True)
    # ``error`` is the sentence the user reads (``events.failure_sentence``); ``error_detail`` what went wrong
    # technically, for staff and the log only (it may name servers).
    error = models.TextField(blank=True)
    error_detail = models.TextField(blank=True)
    # [{label, chunk_id, document_id, title, page, snippet, score}], in the order the answer cites them.
    sources = models.JSONField(default=list, blank=True)
    # What retrieval searched for: the question, or its standalone rewrite when it was a follow-up.
    retrieval_query = models.TextField(blank=True)
    model_name = models.CharField(max_length=200, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    # Counted with our tokenizer when the prompt is built (servers may not report usage, or report words):
    # what the budgeted context cost, and what sending the whole history instead would have cost.
    context_tokens = models.PositiveIntegerField(default=0)
    full_history_tokens = models.PositiveIntegerField(default=0)
    # The conversation summary version the prompt included (None: no memory yet).
    memory_version = models.PositiveIntegerField(null=True, blank=True)
    # Off the conversation's path: an earlier attempt at an answer (still browsable), or a question edited later
    # and everything after it. History, memory and context read only messages on the path.
    superseded = models.BooleanField(default=False)
    # Which version of the answer prompt wrote it ("answer_system@v12", "answer_system@shipped").
    prompt_version = models.CharField(max_length=64, blank=True)
    # Idempotent asks: a client retrying the same ask gets the same messages back instead of a second answer.
    client_id = models.CharField(max_length=64, blank=True)
    # Fencing token of the job run that owns generation; a re-run claims a fresh one so stale runs cannot write.
    attempt_id = models.CharField(max_length=32, blank=True)
    attempt_count = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    first_token_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["conversation_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "client_id"],
                condition=~Q(client_id=""),
                name="chat_message_unique_client_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role} #{self.pk} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL
