"""Reads for the chat app. Everything a user can name by id is looked up through their own conversations."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q
from django.utils import timezone

from chat.models import Conversation, Message


def conversation_get_for_user(*, conversation_id: int, user: AbstractBaseUser) -> Conversation | None:
    return Conversation.objects.filter(pk=conversation_id, owner=user).first()


def assistant_message_get_for_user(*, message_id: int, user: AbstractBaseUser) -> Message | None:
    """An assistant message the user may stop or resume; ``None`` for other users' messages as for missing ones."""
    return (
        Message.objects.select_related("conversation")
        .filter(pk=message_id, role=Message.Role.ASSISTANT, conversation__owner=user)
        .first()
    )


def message_get(*, message_id: int) -> Message | None:
    related = ("conversation", "conversation__owner", "reply_to")
    return Message.objects.select_related(*related).filter(pk=message_id).first()


def message_get_by_client_id(*, user: AbstractBaseUser, conversation_id: int | None, client_id: str) -> Message | None:
    """The user message an earlier ask with this ``client_id`` created (for idempotent retries)."""
    if not client_id:
        return None
    messages = Message.objects.select_related("reply").filter(
        role=Message.Role.USER, client_id=client_id, conversation__owner=user
    )
    if conversation_id is not None:
        messages = messages.filter(conversation_id=conversation_id)
    return messages.order_by("-id").first()


def recent_turns(*, message: Message, limit: int) -> list[Message]:
    """The last ``limit`` finished messages before ``message``'s question, oldest first (the chat's short memory)."""
    question_id = message.reply_to_id or message.pk
    turns = (
        Message.objects.filter(conversation_id=message.conversation_id, pk__lt=question_id)
        .exclude(content="")
        .filter(status__in=[Message.Status.COMPLETE, Message.Status.CANCELLED])
        .order_by("-id")[:limit]
    )
    return list(reversed(turns))


def conversations_for_user(*, user: AbstractBaseUser, limit: int = 200) -> list[Conversation]:
    """The user's conversations for the sidebar, most recently active first."""
    return list(Conversation.objects.filter(owner=user).order_by("-updated_at", "-id").only("id", "title")[:limit])


def conversation_messages(*, conversation: Conversation) -> list[Message]:
    """Every message of a conversation in the order they were written (questions before their answers)."""
    return list(Message.objects.filter(conversation=conversation).order_by("id"))


def unfinished_answers(*, pending_for_seconds: float, limit: int = 500) -> list[tuple[int, str]]:
    """(id, status) of the answers being streamed, and of those queued for longer than ``pending_for_seconds``."""
    queued_before = timezone.now() - timedelta(seconds=pending_for_seconds)
    rows = (
        Message.objects.filter(role=Message.Role.ASSISTANT)
        .filter(
            Q(status=Message.Status.STREAMING) | Q(status=Message.Status.PENDING, queued_at__lt=queued_before),
        )
        .order_by("id")
        .values_list("pk", "status")[:limit]
    )
    return list(rows)


def message_owner_id(*, message_id: int) -> int | None:
    """Whose conversation a message is in (for the ids a job's log lines carry)."""
    return Message.objects.filter(pk=message_id).values_list("conversation__owner_id", flat=True).first()


def conversation_owner_id(*, conversation_id: int) -> int | None:
    return Conversation.objects.filter(pk=conversation_id).values_list("owner_id", flat=True).first()
