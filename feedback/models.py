"""What people said about answers, and the retrieval test cases staff made from it."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils.translation import gettext_lazy as _


class AnswerFeedback(models.Model):
    class Rating(models.TextChoices):
        UP = "up", _("Helpful")
        DOWN = "down", _("Not helpful")

    class Reason(models.TextChoices):
        WRONG = "wrong", _("Wrong")
        INCOMPLETE = "incomplete", _("Incomplete")
        WRONG_SOURCE = "wrong_source", _("Wrong source")
        OUTDATED = "outdated", _("Outdated")
        OTHER = "other", _("Other")

    # One rating per answer (only its conversation's owner may give it); rating again replaces it.
    message = models.OneToOneField(
        "chat.Message", on_delete=models.CASCADE, related_name="feedback", verbose_name=_("answer")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="answer_feedback", verbose_name=_("user")
    )
    rating = models.CharField(_("rating"), max_length=8, choices=Rating.choices, db_index=True)
    reason = models.CharField(_("reason"), max_length=16, choices=Reason.choices, blank=True, db_index=True)
    comment = models.TextField(_("comment"), blank=True)
    # A copy of what was rated, as it was: the answer may be regenerated and the prompt changed afterwards.
    question = models.TextField(_("question"), blank=True)
    answer = models.TextField(_("answer text"), blank=True)
    # [{rank, label, chunk_id, document_id, title, page}] in the order retrieval ranked them.
    sources = models.JSONField(_("sources"), default=list, blank=True)
    document_ids = ArrayField(models.IntegerField(), default=list, blank=True, verbose_name=_("documents"))
    retrieval_query = models.TextField(_("retrieval query"), blank=True)
    prompt_version = models.CharField(_("prompt version"), max_length=64, blank=True)
    model_name = models.CharField(_("model"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("answer feedback")
        verbose_name_plural = _("answer feedback")

    def __str__(self) -> str:
        return f"{self.get_rating_display()} · #{self.message_id}"


class RetrievalCase(models.Model):
    """A question and the passage retrieval should have found for it, read by ``bench/retrieval_eval.py``.

    The chunk is named by its document and a snippet of its text as well as by id: re-ingesting a document gives
    its chunks new ids, and the case must still be judged.
    """

    question = models.TextField(_("question"))
    language = models.CharField(_("language"), max_length=8, blank=True)
    chunk = models.ForeignKey(
        "knowledge.Chunk", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("chunk")
    )
    document = models.ForeignKey(
        "knowledge.Document", on_delete=models.CASCADE, related_name="retrieval_cases", verbose_name=_("document")
    )
    snippet = models.CharField(_("snippet"), max_length=200)
    feedback = models.ForeignKey(
        AnswerFeedback,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="retrieval_cases",
        verbose_name=_("from feedback"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("retrieval test case")
        verbose_name_plural = _("retrieval test cases")
        constraints = [
            models.UniqueConstraint(fields=["question", "document", "snippet"], name="feedback_case_unique"),
        ]

    def __str__(self) -> str:
        return self.question[:80]
