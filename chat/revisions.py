"""Services that take a conversation somewhere else: a new attempt at an answer, or a question edited and asked again.

Nothing is deleted. A regenerated answer's earlier attempts stay stored (``superseded``) and browsable beside the new
one; an edited question and everything after it leave the conversation's path the same way. History, the recent
window and the memory read only the path, so the next answer is written as if the old branch had never been there.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from chat import streams
from chat.models import Message
from chat.services import AskResult, ChatError, answer_enqueue


def _lock_user(user: AbstractBaseUser) -> None:
    # Serialises one user's requests, as asks do, so a retried client_id cannot create two attempts.
    get_user_model().objects.select_for_update().filter(pk=user.pk).first()


def _pending_answer(*, question: Message, client_id: str) -> Message:
    answer = Message.objects.create(
        conversation_id=question.conversation_id,
        role=Message.Role.ASSISTANT,
        reply_to=question,
        status=Message.Status.PENDING,
        queued_at=timezone.now(),
        client_id=client_id,
    )
    answer_enqueue(message_id=answer.pk)
    return answer


def answer_regenerate(*, user: AbstractBaseUser, message_id: int, client_id: str = "") -> AskResult:
    """Answer the question of ``message_id`` again; the earlier attempt is kept, off the path.

    Only the conversation's latest answer can be regenerated (an earlier one has later turns built on it: edit its
    question instead), and only once it has finished.
    """
    with transaction.atomic():
        _lock_user(user)
        answer = (
            Message.objects.select_related("conversation")
            .filter(pk=message_id, role=Message.Role.ASSISTANT, conversation__owner=user)
            .first()
        )
        if answer is None:
            raise ChatError("not_found", _("Message %(id)s does not exist.") % {"id": message_id}, message=message_id)
        if client_id:
            earlier = Message.objects.filter(conversation_id=answer.conversation_id, client_id=client_id).first()
            if earlier is not None and earlier.role == Message.Role.ASSISTANT:
                return AskResult(answer.conversation_id, earlier.reply_to_id, earlier.pk, created=False)
        if answer.superseded or answer.reply_to_id is None:
            raise ChatError("invalid", _("Only the latest answer can be regenerated."), message=message_id)
        later = Message.objects.filter(conversation_id=answer.conversation_id, pk__gt=answer.pk, superseded=False)
        if later.exists():
            raise ChatError("invalid", _("Only the latest answer can be regenerated."), message=message_id)
        if not answer.is_terminal:
            raise ChatError("busy", _("This answer is still being written; stop it first."), message=message_id)
        Message.objects.filter(pk=answer.pk).update(superseded=True)
        fresh = _pending_answer(question=answer.reply_to, client_id=client_id)
        answer.conversation.save(update_fields=["updated_at"])
    return AskResult(answer.conversation_id, answer.reply_to_id, fresh.pk, created=True)


def question_edit(*, user: AbstractBaseUser, message_id: int, content: str, client_id: str = "") -> AskResult:
    """Ask ``content`` in place of the question ``message_id``: it and everything after it leave the path, answers
    still being written there are stopped, and memory versions that read them are dropped (rebuilt from the path)."""
    from summaries.models import ConversationSummary

    with transaction.atomic():
        _lock_user(user)
        question = (
            Message.objects.select_related("conversation")
            .filter(pk=message_id, role=Message.Role.USER, conversation__owner=user)
            .first()
        )
        if question is None:
            raise ChatError("not_found", _("Message %(id)s does not exist.") % {"id": message_id}, message=message_id)
        if client_id:
            earlier = Message.objects.filter(conversation_id=question.conversation_id, client_id=client_id).first()
            if earlier is not None and earlier.role == Message.Role.USER:
                reply = earlier.replies.order_by("-id").first()
                return AskResult(question.conversation_id, earlier.pk, reply.pk, created=False)
        if question.superseded:
            raise ChatError("invalid", _("This question was already edited."), message=message_id)
        branch = Message.objects.filter(conversation_id=question.conversation_id, pk__gte=question.pk, superseded=False)
        unfinished = list(
            branch.filter(
                role=Message.Role.ASSISTANT, status__in=[Message.Status.PENDING, Message.Status.STREAMING]
            ).values_list("pk", flat=True)
        )
        branch.update(superseded=True)
        ConversationSummary.objects.filter(
            conversation_id=question.conversation_id, covers_to_message_id__gte=question.pk
        ).delete()
        edited = Message.objects.create(
            conversation_id=question.conversation_id,
            role=Message.Role.USER,
            content=content,
            status=Message.Status.COMPLETE,
            client_id=client_id,
        )
        answer = _pending_answer(question=edited, client_id="")
        question.conversation.save(update_fields=["updated_at"])
    conn = streams.sync_client()
    for pk in unfinished:
        streams.request_stop(conn, pk)
    return AskResult(question.conversation_id, edited.pk, answer.pk, created=True)
